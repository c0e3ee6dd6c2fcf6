#pragma once
// The time-stamp counter: what the hot path reads (once per burst, never per event) to
// stamp and measure latency. On x86-64 it is RDTSC (what rte_rdtsc() reads); on other
// machines the monotonic clock in nanoseconds stands in. Invariant-TSC CPUs keep it in
// step across cores, so a stamp taken on an RX lcore can be compared on a worker lcore.
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "base/clock.h"

namespace sluice {

inline uint64_t tsc_now() noexcept {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return uint64_t(monotonic_ns());
#endif
}

/// Ticks per second of tsc_now(), measured once against the monotonic clock (about 20 ms
/// on the first call; call it at start, not on the hot path).
uint64_t tsc_hz() noexcept;

/// `later - earlier`, or 0 when a stamp from another core reads slightly ahead.
inline uint64_t tsc_elapsed(uint64_t earlier, uint64_t later) noexcept {
    return later > earlier ? later - earlier : 0;
}

} // namespace sluice
