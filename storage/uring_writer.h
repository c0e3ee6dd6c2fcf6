#pragma once
// uring_writer: the io_uring instance of one segment_writer. Thin: it prepares writes
// (from registered buffers when the kernel allowed registering them) and fdatasyncs,
// and hands completions back. Used from one thread only.
#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <sys/uio.h>

#include "base/result.h"

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

    // Queue operations; false when the submission queue is full (caller bounds in-flight
    // operations below the ring depth, so this is a programming error in practice).
    // link: the next operation queued (an fdatasync) starts only once this write has
    // completed in full (IOSQE_IO_LINK); a failed or short write cancels it (-ECANCELED).
    bool prep_write(int fd, const uint8_t* buf, uint32_t len, uint64_t offset, int buf_index,
                    uint64_t user_data, bool link = false) noexcept;
    bool prep_fdatasync(int fd, uint64_t user_data) noexcept;
    // Submits queued operations; returns the count or -errno.
    int submit() noexcept;

    // Calls fn(user_data, res) for each completion ready now (wait == false) or for at
    // least one, blocking until it arrives (wait == true). Returns the count or -errno.
    template <typename Fn>
    int reap(bool wait, Fn&& fn) noexcept {
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
    io_uring _ring{};
    bool _ready = false;
    bool _fixed = false;
    const iovec* _buffers = nullptr;
    size_t _buffer_count = 0;
};

} // namespace sluice::storage
