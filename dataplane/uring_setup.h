#pragma once
// io_uring set-up shared by the receive paths that own a ring on one lcore (kernel UDP,
// Kafka): the same flags, the same fallbacks.
#include <cerrno>
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

} // namespace sluice::dataplane
