#pragma once
// Counters: std::atomic<uint64_t> read by any thread (stats, metrics), written as below.
#include <atomic>
#include <cstdint>

namespace sluice {

/// A counter with one writing thread (an lcore's own counters): a relaxed load and store,
/// no locked read-modify-write on the hot path. Readers see every increment eventually;
/// none is lost because no other thread writes it.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

/// A counter that several threads may write (control path): an atomic add.
inline void bump_shared(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
}

} // namespace sluice
