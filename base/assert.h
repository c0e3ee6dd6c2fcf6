#pragma once
// Two levels of assertion (DPDK's RTE_VERIFY/RTE_ASSERT, Redpanda's vassert):
//   SLUICE_ASSERT  always on, O(1): setup and per-burst invariants.
//   SLUICE_DASSERT debug and sanitizer builds only: per-event or O(n) checks.
// Assertions catch programmer errors, never user input.
#include <cstdio>
#include <cstdlib>

namespace sluice::detail {
[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line) noexcept {
    std::fprintf(stderr, "sluice: assertion failed: %s (%s:%d)\n", expr, file, line);
    std::abort();
}
} // namespace sluice::detail

#define SLUICE_ASSERT(x)                                                                      \
    do {                                                                                      \
        if (!(x)) [[unlikely]]                                                                \
            ::sluice::detail::assert_fail(#x, __FILE__, __LINE__);                            \
    } while (0)

#if defined(SLUICE_DEBUG_ASSERTS)
#define SLUICE_DASSERT(x) SLUICE_ASSERT(x)
#else
#define SLUICE_DASSERT(x)                                                                     \
    do {                                                                                      \
        (void)sizeof(x);                                                                      \
    } while (0)
#endif
