#include "dataplane/kafka/sequence_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "base/log.h"
#include "dataplane/kafka/kafka_codec.h"
#include "storage/atomic_file.h"
#include "storage/fault_injection.h"

namespace sluice::dataplane::kafka {

namespace {

constexpr uint32_t record_magic = 0x31514553; // "SEQ1" little-endian
constexpr size_t crc_covered = offsetof(sequence_record, crc);

uint32_t record_crc(const sequence_record& r) noexcept {
    return crc32c(bytes_view(reinterpret_cast<const uint8_t*>(&r), crc_covered));
}

bool record_ok(const sequence_record& r) noexcept {
    return r.magic == record_magic && r.zero == 0 && r.crc == record_crc(r);
}

sequence_record make_record(const sequence_key& k, int16_t epoch, int32_t first_seq,
                            int32_t last_seq, int64_t base_offset) noexcept {
    sequence_record r;
    r.topic_hash = k.topic;
    r.producer_id = k.producer_id;
    r.base_offset = base_offset;
    r.partition = k.partition;
    r.first_seq = first_seq;
    r.last_seq = last_seq;
    r.epoch = epoch;
    r.magic = record_magic;
    r.crc = record_crc(r);
    return r;
}

} // namespace

std::string sequence_journal_path(const std::string& data_dir) {
    return data_dir + "/_processing/kafka_sequences";
}

uint64_t topic_hash(std::string_view name) noexcept {
    return XXH3_64bits(name.data(), name.size());
}

result<uint64_t> read_sequence_journal(const std::string& path, producer_sequences& into) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) return uint64_t(0);
        return make_error(errc::io_error, "cannot read " + path + " (check the data dir's "
                                                                  "permissions)");
    }
    uint64_t n = 0;
    sequence_record r;
    while (in.read(reinterpret_cast<char*>(&r), sizeof r)) {
        if (!record_ok(r)) break; // a torn or damaged record ends the log
        into.accepted(sequence_key{r.producer_id, r.topic_hash, r.partition}, r.epoch,
                      r.first_seq, r.last_seq, r.base_offset);
        ++n;
    }
    return n;
}

sequence_journal::~sequence_journal() {
    if (_ring_ready) {
        while (_inflight > 0) {
            io_uring_cqe* cqe = nullptr;
            if (io_uring_wait_cqe(&_ring, &cqe) != 0) break;
            io_uring_cqe_seen(&_ring, cqe);
            --_inflight;
        }
        io_uring_queue_exit(&_ring);
    }
    if (_fd >= 0) ::close(_fd);
}

result<void> sequence_journal::open(const std::string& data_dir, producer_sequences& into) {
    if (data_dir.empty()) return ok_result();
    std::error_code ec;
    std::filesystem::create_directories(data_dir + "/_processing", ec);
    if (ec)
        return make_error(errc::io_error, "cannot create " + data_dir + "/_processing: " +
                                              ec.message() + " (check the data dir's permissions)");
    _path = sequence_journal_path(data_dir);
    auto n = read_sequence_journal(_path, into);
    if (!n) return std::move(n).err();
    _restored = *n;
    SLUICE_TRY(rewrite_reduced());
    if (const int rc = io_uring_queue_init(8, &_ring, 0); rc < 0)
        return make_error(errc::io_error, std::string("cannot set up the Kafka sequence "
                                                      "journal's io_uring: ") +
                                              std::strerror(-rc) +
                                              " (check RLIMIT_MEMLOCK / io_uring_disabled)");
    _ring_ready = true;
    return ok_result();
}

bool sequence_journal::set_wake_fd(int fd) noexcept {
    return !_ring_ready || io_uring_register_eventfd(&_ring, fd) == 0;
}

// Reads the journal's durable records, keeps the last batches per (producer, topic,
// partition) and replaces the file with them (temporary file, fdatasync, rename).
result<void> sequence_journal::rewrite_reduced() {
    if (_fd >= 0) {
        ::close(_fd);
        _fd = -1;
    }
    producer_sequences reduced;
    auto n = read_sequence_journal(_path, reduced);
    if (!n) return std::move(n).err();
    std::string text;
    reduced.for_each_batch([&](const sequence_key& k, int16_t epoch, int32_t first,
                               int32_t last, int64_t base_offset) {
        const sequence_record r = make_record(k, epoch, first, last, base_offset);
        text.append(reinterpret_cast<const char*>(&r), sizeof r);
    });
    SLUICE_TRY(storage::write_file_atomically(_path, text));
    _file_bytes = text.size();
    _fd = storage::fault::fails(storage::fault::op::open) ? -1 : ::open(_path.c_str(), O_WRONLY | O_CLOEXEC);
    if (_fd < 0)
        return make_error(errc::io_error, "cannot open " + _path + ": " + std::strerror(errno) +
                                              " (check the data dir's permissions)");
    ++_compactions;
    return ok_result();
}

uint64_t sequence_journal::stage(const sequence_key& k, int16_t epoch, int32_t first_seq,
                                 int32_t last_seq, int64_t base_offset) noexcept {
    _records[_staged % staged_max] = make_record(k, epoch, first_seq, last_seq, base_offset);
    return _staged++;
}

void sequence_journal::writable_until(uint64_t end) noexcept {
    end = std::min(end, _staged); // never records discard_unwritable() dropped
    if (end <= _writable) return;
    _writable = end;
    if (_fd < 0) _durable = _submitted = _writable; // nothing to persist to
}

uint64_t sequence_journal::discard_unwritable(producer_sequences& from) noexcept {
    const uint64_t dropped = _staged - _writable;
    while (_staged > _writable) {
        const sequence_record& r = _records[--_staged % staged_max];
        from.forget({r.producer_id, r.topic_hash, r.partition}, r.epoch, r.first_seq, r.last_seq);
    }
    return dropped;
}

void sequence_journal::failed(int err) noexcept {
    ++_write_errors;
    SLUICE_LOG_ERROR("kafka: writing the sequence journal %s failed: %s; the idempotent "
                     "producers' sequence state of this run is not persisted from now on "
                     "(free the disk and restart sluiced to persist it again)",
                     _path.c_str(), std::strerror(err));
    if (_fd >= 0) ::close(_fd);
    _fd = -1;
    _durable = _submitted = _writable;
}

void sequence_journal::submit() noexcept {
    const uint64_t from = _submitted, to = _writable;
    const uint64_t a = from % staged_max, count = to - from;
    const uint64_t first = std::min<uint64_t>(count, staged_max - a);
    _iov[0] = {&_records[a], first * sizeof(sequence_record)};
    _iov[1] = {&_records[0], (count - first) * sizeof(sequence_record)};
    // The fault-injection hook (storage/fault_injection.h; off: one relaxed load each), as
    // the segment writer's: a failed write is not made, a failed fdatasync is not queued
    // and its error reported with the write's completion, a short write writes half.
    namespace fault = storage::fault;
    const fault::verdict vw = fault::check(fault::op::write);
    const fault::verdict vs = fault::check(fault::op::fsync);
    if (vw.what == fault::kind::error) {
        fault::count_injected();
        failed(vw.err);
        return;
    }
    if (vw.what == fault::kind::short_write) {
        fault::count_injected();
        if (_iov[1].iov_len > 0) _iov[1].iov_len = 0;
        else _iov[0].iov_len /= 2;
    }
    const bool sync_fails = vs.what == fault::kind::error;
    if (sync_fails) fault::count_injected();
    io_uring_sqe* w = io_uring_get_sqe(&_ring);
    io_uring_sqe* s = sync_fails ? nullptr : io_uring_get_sqe(&_ring);
    if (w == nullptr || (s == nullptr && !sync_fails)) return; // ring full: cannot happen with one write in flight
    io_uring_prep_writev(w, _fd, _iov, _iov[1].iov_len > 0 ? 2 : 1, _file_bytes);
    if (!sync_fails) {
        w->flags |= IOSQE_IO_LINK;
        io_uring_prep_fsync(s, _fd, IORING_FSYNC_DATASYNC);
    }
    const bool submit_fails = fault::fails(fault::op::submit);
    const int rc = submit_fails ? -errno : io_uring_submit(&_ring);
    if (rc < 0) {
        failed(-rc);
        return;
    }
    _submitted = to;
    _inflight = sync_fails ? 1 : 2;
    _inflight_bytes = count * sizeof(sequence_record);
    _inflight_error = sync_fails ? vs.err : 0;
}

uint32_t sequence_journal::poll() noexcept {
    if (_fd < 0 && _inflight == 0) return 0;
    uint32_t work = 0;
    while (_inflight > 0) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_peek_cqe(&_ring, &cqe) != 0 || cqe == nullptr) break;
        const int res = cqe->res;
        const bool is_write = _inflight == 2; // the linked write completes first
        io_uring_cqe_seen(&_ring, cqe);
        --_inflight;
        ++work;
        if (_inflight_error == 0) {
            if (res < 0)
                _inflight_error = -res;
            else if (is_write && uint64_t(res) != _inflight_bytes)
                _inflight_error = EIO; // a short write: the rest never reached the file
        }
        if (_inflight == 0) {
            if (_inflight_error != 0) {
                failed(_inflight_error);
                return work;
            }
            _file_bytes += _inflight_bytes;
            _durable_written += (_submitted - _durable);
            _durable = _submitted;
        }
    }
    if (_inflight == 0 && _fd >= 0 && _writable > _submitted) {
        if (_file_bytes > journal_bytes_max) {
            // Rare (once per ~350,000 batches): reduced on this lcore, a few MiB at most.
            if (auto r = rewrite_reduced(); !r) {
                SLUICE_LOG_ERROR("kafka: %s", r.err().message.c_str());
                failed(EIO);
                return work;
            }
        }
        submit();
        ++work;
    }
    return work;
}

} // namespace sluice::dataplane::kafka
