#pragma once
// uring_writer: the io_uring instance of one segment_writer. Thin: it prepares writes
// (from registered buffers when the kernel allowed registering them) and fdatasyncs,
// and hands completions back. Used from one thread only.
#include <liburing.h>

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <span>
#include <sys/uio.h>

#include "base/limits.h"
#include "base/result.h"
#include "storage/fault_injection.h"

namespace sluice::storage {

class uring_writer {
  public:
    uring_writer() = default;
    ~uring_writer();
    uring_writer(const uring_writer&) = delete;
    uring_writer& operator=(const uring_writer&) = delete;

    // Sets up a ring of `depth` entries and tries to register `buffers` (fixed buffers
    // save the kernel a page pinning per write); registration failure is not an error.
    result<void> init(unsigned depth, std::span<const iovec> buffers);
    bool fixed_buffers() const noexcept { return _fixed; }
    // Completions also write this eventfd (io_uring_register_eventfd), so that an owner
    // blocked on it (base/idle_wake.h) wakes for them. False if the kernel refused.
    bool register_eventfd(int fd) noexcept {
        return _ready && io_uring_register_eventfd(&_ring, fd) == 0;
    }

    // Queue operations; false when the submission queue is full (caller bounds in-flight
    // operations below the ring depth, so this is a programming error in practice).
    // link: the next operation queued (an fdatasync) starts only once this write has
    // completed in full (IOSQE_IO_LINK); a failed or short write cancels it (-ECANCELED).
    bool prep_write(int fd, const uint8_t* buf, uint32_t len, uint64_t offset, int buf_index,
                    uint64_t user_data, bool link = false) noexcept;
    bool prep_fdatasync(int fd, uint64_t user_data) noexcept;
    // open(path, flags, mode) in the ring (IORING_OP_OPENAT): the completion's result is
    // the new descriptor or -errno. `path` must stay valid until it completes. Judged as
    // an `open` by fault injection.
    bool prep_openat(const char* path, int flags, unsigned mode, uint64_t user_data) noexcept;
    // Submits queued operations; returns the count or -errno.
    int submit() noexcept;

    // Calls fn(user_data, res) for each completion ready now (wait == false) or for at
    // least one, blocking until it arrives (wait == true). Returns the count or -errno.
    template <typename Fn>
    int reap(bool wait, Fn&& fn) noexcept {
        if (fault::armed()) [[unlikely]]
            return reap_faulty(wait, fn);
        io_uring_cqe* cqe;
        if (wait) {
            int rc;
            do {
                rc = io_uring_wait_cqe(&_ring, &cqe);
            } while (rc == -EINTR);
            if (rc < 0) return rc;
        }
        int n = 0;
        while (io_uring_peek_cqe(&_ring, &cqe) == 0) {
            uint64_t ud = cqe->user_data;
            int res = cqe->res;
            io_uring_cqe_seen(&_ring, cqe);
            fn(ud, res);
            ++n;
        }
        return n;
    }

  private:
    // ---- fault injection (storage/fault_injection.h): test runs only ----
    // A write linked to the fdatasync after it: when a fault makes the write fail or
    // short, the kernel would have cancelled the sync, so its completion reads -ECANCELED;
    // when the write's completion is held back, the sync's waits behind it.
    struct fault_link {
        uint64_t write_ud = 0, sync_ud = 0;
        bool write_seen = false, cancel = false, held = false;
        bool used = false;
    };
    struct fault_op {
        uint64_t ud = 0;
        int res = 0;          // forced result (the operation was replaced by a no-op)
        int64_t delay_ns = 0; // its completion is held back this long
        bool forced = false;
        bool unused_ = false;
        bool used = false;
    };
    struct held_completion {
        uint64_t ud = 0;
        int res = 0;
        int64_t due_ns = 0;
    };
    void fault_prep(io_uring_sqe* sqe, uint64_t ud, const fault::verdict& v,
                    bool is_linked_write) noexcept;
    // Applies faults to one completion; false when it is held back (delayed).
    bool fault_filter(uint64_t ud, int& res) noexcept;
    int64_t fault_next_due_ns() const noexcept; // INT64_MAX when nothing is held
    int fault_release(bool all, int64_t now_ns, uint64_t* ud, int* res) noexcept;

    template <typename Fn>
    int reap_faulty(bool wait, Fn& fn) noexcept {
        int n = 0;
        uint64_t ud;
        int res;
        auto drain_ready = [&] {
            io_uring_cqe* c;
            while (io_uring_peek_cqe(&_ring, &c) == 0) {
                ud = c->user_data;
                res = c->res;
                io_uring_cqe_seen(&_ring, c);
                if (!fault_filter(ud, res)) continue;
                fn(ud, res);
                ++n;
            }
        };
        for (;;) {
            while (fault_release(false, fault_now_ns(), &ud, &res) == 1) {
                fn(ud, res);
                ++n;
            }
            drain_ready();
            if (n > 0 || !wait) return n;
            // Wait for a completion, or until the next held one is due.
            const int64_t due = fault_next_due_ns();
            io_uring_cqe* cqe;
            int rc;
            if (due == INT64_MAX) {
                rc = io_uring_wait_cqe(&_ring, &cqe);
            } else {
                const int64_t left = std::max<int64_t>(0, due - fault_now_ns());
                __kernel_timespec ts{left / 1000000000, left % 1000000000};
                rc = io_uring_wait_cqe_timeout(&_ring, &cqe, &ts);
                if (rc == -ETIME) rc = 0;
            }
            if (rc < 0 && rc != -EINTR) return rc;
        }
    }
    static int64_t fault_now_ns() noexcept;

    fault_link _links[limits::uring_depth];
    fault_op _fault_ops[limits::uring_depth];
    held_completion _held[limits::uring_depth];
    size_t _held_count = 0;
    uint64_t _link_write_ud = 0;
    bool _link_pending = false, _link_cancel = false, _link_held = false;

    io_uring _ring{};
    bool _ready = false;
    bool _fixed = false;
    const iovec* _buffers = nullptr;
    size_t _buffer_count = 0;
};

} // namespace sluice::storage
