#pragma once
// pacer: the send schedule of sluice-gen's paced senders (--pps, over UDP or memif).
// Absolute: item i is due at start + i / pps, so a slow moment is caught up instead of
// lowering the average rate. A sender asks before each item how far ahead of the
// schedule it is and sleeps only when that is at least `min_sleep_ns` (sleeping for less
// costs more than it paces).
#include <time.h>

#include <cstdint>

#include "base/clock.h"

namespace sluice::tools {

class pacer {
  public:
    static constexpr int64_t min_sleep_ns = 50'000;

    explicit pacer(uint64_t pps) noexcept : _pps(pps) {}
    bool paced() const noexcept { return _pps != 0; }

    // How long before item `sent` is due, as of `now_ns` (the first call starts the
    // schedule); <= 0: due now or late. Always 0 when unpaced.
    int64_t ahead_ns(uint64_t sent, int64_t now_ns) noexcept {
        if (_pps == 0) return 0;
        if (!_started) {
            _started = true;
            _start_ns = now_ns;
        }
        const int64_t due = _start_ns + int64_t(sent * 1'000'000'000ull / _pps);
        return due - now_ns;
    }
    // Whether the item would wait: a sender that batches sends its queue first.
    bool would_sleep(uint64_t sent) noexcept {
        return ahead_ns(sent, monotonic_ns()) >= min_sleep_ns;
    }
    // Sleeps until item `sent` is due (when that is min_sleep_ns or more away).
    void wait(uint64_t sent) noexcept {
        const int64_t ahead = ahead_ns(sent, monotonic_ns());
        if (ahead < min_sleep_ns) return;
        const timespec ts{time_t(ahead / 1'000'000'000), long(ahead % 1'000'000'000)};
        nanosleep(&ts, nullptr);
    }

  private:
    uint64_t _pps;
    bool _started = false;
    int64_t _start_ns = 0;
};

} // namespace sluice::tools
