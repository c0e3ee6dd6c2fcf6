#include "storage/uring_writer.h"

#include <cstring>

#include "base/assert.h"
#include "base/log.h"

namespace sluice::storage {

uring_writer::~uring_writer() {
    if (_ready) io_uring_queue_exit(&_ring);
}

result<void> uring_writer::init(unsigned depth, std::span<const iovec> buffers) {
    SLUICE_ASSERT(!_ready);
    int rc = io_uring_queue_init(depth, &_ring, 0);
    if (rc < 0)
        return make_error(errc::unsupported,
                          std::string("io_uring_queue_init failed: ") + std::strerror(-rc) +
                              " (needs Linux >= 5.6 and io_uring not disabled by "
                              "kernel.io_uring_disabled or a seccomp profile)");
    _ready = true;
    _buffers = buffers.data();
    _buffer_count = buffers.size();
    if (!buffers.empty()) {
        rc = io_uring_register_buffers(&_ring, buffers.data(), unsigned(buffers.size()));
        if (rc == 0) {
            _fixed = true;
        } else {
            SLUICE_LOG_WARN("io_uring_register_buffers: %s; writing from unregistered buffers "
                            "(raise RLIMIT_MEMLOCK to register them)",
                            std::strerror(-rc));
        }
    }
    return ok_result();
}

bool uring_writer::prep_write(int fd, const uint8_t* buf, uint32_t len, uint64_t offset,
                              int buf_index, uint64_t user_data, bool link) noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    if (!sqe) return false;
    if (_fixed && buf_index >= 0) {
        SLUICE_DASSERT(size_t(buf_index) < _buffer_count);
        SLUICE_DASSERT(buf >= static_cast<const uint8_t*>(_buffers[buf_index].iov_base));
        io_uring_prep_write_fixed(sqe, fd, buf, len, offset, buf_index);
    } else {
        io_uring_prep_write(sqe, fd, buf, len, offset);
    }
    if (link) sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, user_data);
    return true;
}

bool uring_writer::prep_fdatasync(int fd, uint64_t user_data) noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    if (!sqe) return false;
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, user_data);
    return true;
}

int uring_writer::submit() noexcept {
    int rc;
    do {
        rc = io_uring_submit(&_ring);
    } while (rc == -EINTR);
    return rc;
}

} // namespace sluice::storage
