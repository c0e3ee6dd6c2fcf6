#include "base/tsc.h"

#include <time.h>

#include <algorithm>

namespace sluice {

namespace {

int64_t raw_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One (clock, counter) pair read as close together as the machine allows: the counter
// is read on both sides of the clock and the tightest of a few tries is kept.
void paired_read(int64_t& ns, uint64_t& tsc) noexcept {
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; ++i) {
        uint64_t a = tsc_now();
        int64_t t = raw_ns();
        uint64_t b = tsc_now();
        if (b - a < best) {
            best = b - a;
            ns = t;
            tsc = a + (b - a) / 2;
        }
    }
}

uint64_t calibrate() noexcept {
#if defined(__x86_64__)
    int64_t ns0, ns1;
    uint64_t c0, c1;
    paired_read(ns0, c0);
    timespec pause{0, 20'000'000};
    nanosleep(&pause, nullptr);
    paired_read(ns1, c1);
    if (ns1 <= ns0 || c1 <= c0) return 1'000'000'000;
    return std::max<uint64_t>(1, uint64_t(double(c1 - c0) * 1e9 / double(ns1 - ns0)));
#else
    return 1'000'000'000;
#endif
}

} // namespace

uint64_t tsc_hz() noexcept {
    static const uint64_t hz = calibrate();
    return hz;
}

} // namespace sluice
