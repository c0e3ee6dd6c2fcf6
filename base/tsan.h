#pragma once
// ThreadSanitizer annotations for hand-offs that happen inside libraries built without
// it (DPDK's EAL and mempool plugins): TSan sees neither side's synchronisation, so
// sluice states the order those libraries really give. No-ops in other builds.
// docs/RELIABILITY.md, "ThreadSanitizer", lists each use.

#if defined(__SANITIZE_THREAD__)
#define SLUICE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLUICE_TSAN 1
#endif
#endif
#ifdef SLUICE_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace sluice {

// Everything this thread did before is ordered before what a thread does after a
// tsan_acquire on the same address.
inline void tsan_release([[maybe_unused]] const void* addr) noexcept {
#ifdef SLUICE_TSAN
    __tsan_release(const_cast<void*>(addr));
#endif
}
inline void tsan_acquire([[maybe_unused]] const void* addr) noexcept {
#ifdef SLUICE_TSAN
    __tsan_acquire(const_cast<void*>(addr));
#endif
}

} // namespace sluice
