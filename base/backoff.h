#pragma once
// Idle backoff for polling loops: spin briefly, then sleep in growing steps, so that
// lcores sharing a core (2-core machines) and oversubscribed test runs still finish.
// Only ever called when a poll found nothing to do.
#include <immintrin.h>
#include <time.h>

#include <cstdint>

namespace sluice {

class idle_backoff {
  public:
    // Polls that found nothing spin this many times before the first sleep.
    static constexpr uint32_t spin_rounds = 64;

    void reset() noexcept { _idle = 0; }
    // The next wait() would sleep: a loop that can block on its own wake-ups (an io_uring
    // with a wake eventfd, kafka_rx) blocks instead from here on.
    bool spun_out() const noexcept { return _idle >= spin_rounds; }
    void wait() noexcept {
        ++_idle;
        if (_idle < spin_rounds) {
            _mm_pause();
            return;
        }
        // 10 us at first, up to 200 us: a watermark still reaches workers within 1 ms.
        long ns = _idle < 1024 ? 10'000 : 200'000;
        timespec ts{0, ns};
        nanosleep(&ts, nullptr);
    }

  private:
    uint32_t _idle = 0;
};

} // namespace sluice
