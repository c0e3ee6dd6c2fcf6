#pragma once
// io_uring set-up shared by the receive paths that own a ring on one lcore (kernel UDP,
// Kafka): the same flags, the same fallbacks.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include <liburing.h>

namespace sluice::dataplane {

/// Prefers deferred task work (6.1+): completions are produced only when the owner enters
/// the kernel, once per burst, never by interrupting it; older kernels get what they take.
/// With IORING_SETUP_R_DISABLED (*disabled set) the ring binds to the thread that enables
/// it (the RX thread), not to whoever set it up. Returns 0 or -errno.
inline int init_owner_ring(io_uring* ring, uint32_t sq_entries, uint32_t cq_entries,
                           bool* disabled) noexcept {
    const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_R_DISABLED,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (unsigned flags : flag_sets) {
        io_uring_params params{};
        params.flags = flags | IORING_SETUP_CQSIZE;
        params.cq_entries = cq_entries;
        rc = io_uring_queue_init_params(sq_entries, ring, &params);
        if (rc == 0) {
            *disabled = flags & IORING_SETUP_R_DISABLED;
            return 0;
        }
        if (rc != -EINVAL) return rc;
    }
    return rc;
}

/// A provided-buffer ring of `entries` (a power of two) for buffer group `bgid`: mapped,
/// initialised and registered with `ring` (liburing 2.3 has no io_uring_setup_buf_ring).
/// On success *out and *bytes say what to munmap at the end. Returns 0, -ENOMEM when the
/// mapping fails, or the registration's -errno (-EINVAL before kernel 5.19).
inline int register_buf_ring(io_uring* ring, uint32_t entries, uint16_t bgid,
                             io_uring_buf_ring** out, size_t* bytes) noexcept {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t size = (size_t(entries) * sizeof(io_uring_buf) + page - 1) / page * page;
    void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) return -ENOMEM;
    auto* br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(mem);
    reg.ring_entries = entries;
    reg.bgid = bgid;
    const int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        munmap(mem, size);
        return rc;
    }
    *out = br;
    *bytes = size;
    return 0;
}

} // namespace sluice::dataplane
