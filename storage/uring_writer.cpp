#include "storage/uring_writer.h"

#include <fcntl.h>

#include <cstring>
#include <ctime>

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
    fault::verdict v;
    if (fault::armed()) [[unlikely]] {
        v = fault::check(fault::op::write);
        if (v.what == fault::kind::short_write && len > 1) len /= 2; // really short
    }
    if (_fixed && buf_index >= 0) {
        SLUICE_DASSERT(size_t(buf_index) < _buffer_count);
        SLUICE_DASSERT(buf >= static_cast<const uint8_t*>(_buffers[buf_index].iov_base));
        io_uring_prep_write_fixed(sqe, fd, buf, len, offset, buf_index);
    } else {
        io_uring_prep_write(sqe, fd, buf, len, offset);
    }
    if (fault::armed()) [[unlikely]]
        fault_prep(sqe, user_data, v, link);
    if (link) sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, user_data);
    return true;
}

bool uring_writer::prep_fdatasync(int fd, uint64_t user_data) noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    if (!sqe) return false;
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    if (fault::armed()) [[unlikely]]
        fault_prep(sqe, user_data, fault::check(fault::op::fsync), false);
    io_uring_sqe_set_data64(sqe, user_data);
    return true;
}

bool uring_writer::prep_openat(const char* path, int flags, unsigned mode,
                               uint64_t user_data) noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    if (!sqe) return false;
    io_uring_prep_openat(sqe, AT_FDCWD, path, flags, mode);
    if (fault::armed()) [[unlikely]]
        fault_prep(sqe, user_data, fault::check(fault::op::open), false);
    io_uring_sqe_set_data64(sqe, user_data);
    return true;
}

int uring_writer::submit() noexcept {
    if (fault::armed()) [[unlikely]] {
        _link_pending = false;
        auto v = fault::check(fault::op::submit);
        if (v.what == fault::kind::error) {
            // As if the kernel refused the batch: the queued entries stay unsubmitted.
            fault::count_injected();
            return -v.err;
        }
    }
    int rc;
    do {
        rc = io_uring_submit(&_ring);
    } while (rc == -EINTR);
    return rc;
}

// ---- fault injection ----

int64_t uring_writer::fault_now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// An operation being queued under a plan. error: it is replaced by a no-op whose
// completion reports the error (the write or sync really does not happen); short_write:
// the write was queued with half its length (above); delay: its completion is held back.
// A write linked to the fdatasync queued next: when it fails or is short the kernel
// cancels the sync, so the sync's completion reads -ECANCELED; when its completion is
// held back, the sync's waits behind it.
void uring_writer::fault_prep(io_uring_sqe* sqe, uint64_t ud, const fault::verdict& v,
                              bool is_linked_write) noexcept {
    fault_op* f = nullptr;
    for (auto& e : _fault_ops)
        if (!e.used) {
            f = &e;
            break;
        }
    SLUICE_ASSERT(f != nullptr); // more faulted operations in flight than the ring holds
    *f = {ud, 0, 0, false, false, true};
    switch (v.what) {
    case fault::kind::none: f->used = false; break;
    case fault::kind::error:
        io_uring_prep_nop(sqe);
        f->forced = true;
        f->res = -v.err;
        fault::count_injected();
        break;
    case fault::kind::short_write:
        f->used = false;
        if (sqe->opcode == IORING_OP_WRITE || sqe->opcode == IORING_OP_WRITE_FIXED)
            fault::count_injected();
        break;
    case fault::kind::delay:
        f->delay_ns = int64_t(v.delay_ms) * 1000000;
        fault::count_injected();
        break;
    }
    const bool breaks_link = v.what == fault::kind::error || v.what == fault::kind::short_write;
    if (_link_pending) {
        // This is the fdatasync linked to the write queued just before.
        for (auto& l : _links) {
            if (l.used) continue;
            l = {_link_write_ud, ud, false, _link_cancel, _link_held, true};
            break;
        }
        _link_pending = false;
    }
    if (is_linked_write) {
        _link_pending = true;
        _link_write_ud = ud;
        _link_cancel = breaks_link;
        _link_held = v.what == fault::kind::delay;
    }
}

bool uring_writer::fault_filter(uint64_t ud, int& res) noexcept {
    int64_t hold_until = -1;
    // The sync of a linked pair whose write was seen: cancelled or held with it.
    for (auto& l : _links) {
        if (!l.used || !l.write_seen || l.sync_ud != ud) continue;
        l.used = false;
        if (l.cancel) res = -ECANCELED;
        if (l.held) {
            hold_until = 0; // with its write (earlier in the held list, so after it)
            for (size_t i = 0; i < _held_count; ++i)
                if (_held[i].ud == l.write_ud) hold_until = _held[i].due_ns;
        }
        break;
    }
    for (auto& l : _links)
        if (l.used && !l.write_seen && l.write_ud == ud) {
            l.write_seen = true;
            break;
        }
    for (auto& f : _fault_ops) {
        if (!f.used || f.ud != ud) continue;
        f.used = false;
        if (f.forced && res != -ECANCELED) res = f.res;
        if (f.delay_ns > 0) hold_until = std::max(hold_until, fault_now_ns() + f.delay_ns);
        break;
    }
    if (hold_until < 0) return true;
    SLUICE_ASSERT(_held_count < limits::uring_depth);
    _held[_held_count] = {ud, res, hold_until};
    ++_held_count;
    return false;
}

int64_t uring_writer::fault_next_due_ns() const noexcept {
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < _held_count; ++i) due = std::min(due, _held[i].due_ns);
    return due;
}

// Hands back the oldest held completion that is due: 1 when one was, else 0.
int uring_writer::fault_release(bool all, int64_t now_ns, uint64_t* ud, int* res) noexcept {
    for (size_t i = 0; i < _held_count; ++i) {
        if (!all && _held[i].due_ns > now_ns) continue;
        *ud = _held[i].ud;
        *res = _held[i].res;
        for (size_t j = i + 1; j < _held_count; ++j) _held[j - 1] = _held[j];
        --_held_count;
        return 1;
    }
    return 0;
}

} // namespace sluice::storage
