#include "storage/segment_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

#include "base/assert.h"
#include "base/clock.h"
#include "base/log.h"
#include "storage/fault_injection.h"
#include "storage/row_log.h"
#include "storage/segment_files.h"

namespace sluice::storage {
namespace {

// user_data: a write carries its sequence number; the other kinds set the top bits.
constexpr uint64_t ud_sync = 1ull << 63;
constexpr uint64_t ud_rot = 1ull << 62; // | 0: the write (or open), 1: its sync, 2: dir sync
// -EAGAIN/-EINTR are retried this many times per write before the writer gives up.
constexpr uint32_t write_retries_max = 64;
constexpr int64_t time_none = std::numeric_limits<int64_t>::min();

inline bool disk_full(int err) noexcept { return err == ENOSPC || err == EDQUOT; }

void sleep_ms(uint32_t ms) noexcept {
    timespec ts{time_t(ms / 1000), long(ms % 1000) * 1000000L};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

} // namespace

segment_writer::segment_writer(const writer_config& cfg, const table_schema& schema)
    : _cfg(cfg), _schema(schema),
      _batch(_schema, cfg.rows_per_block, cfg.string_bytes_max, cfg.row_string_bytes_max),
      _encoder(_schema, cfg.rows_per_block, cfg.string_bytes_max, cfg.options.compression),
      _prefix_max_time_ms(time_none), _durable_max_time_ms(time_none) {}

result<std::unique_ptr<segment_writer>> segment_writer::open(const writer_config& cfg,
                                                             const table_schema& schema) {
    if (cfg.data_dir.empty() || cfg.writer_name.empty() ||
        cfg.writer_name.find('/') != std::string::npos)
        return make_error(errc::bad_config, "segment writer needs a data dir and a writer name "
                                            "without '/'");
    if (cfg.rows_per_block == 0 || cfg.rows_per_block > limits::batch_rows_max)
        return make_error(errc::bad_config, "rows_per_block must be 1.." +
                                                std::to_string(limits::batch_rows_max));
    if (cfg.row_string_bytes_max == 0 || cfg.row_string_bytes_max > cfg.string_bytes_max ||
        cfg.string_bytes_max >= (size_t(1) << 31))
        return make_error(errc::bad_config, "need 0 < row_string_bytes_max <= string_bytes_max "
                                            "< 2 GiB");
    if (cfg.write_buffers < 2 || cfg.write_buffers > limits::writes_in_flight_max)
        return make_error(errc::bad_config, "write_buffers must be 2.." +
                                                std::to_string(limits::writes_in_flight_max));
    const auto& comp = cfg.options.compression;
    if ((comp.kind == format::codec::zstd && (comp.level < -7 || comp.level > 19)) ||
        (comp.kind == format::codec::lz4 && (comp.level < 1 || comp.level > 65537)))
        return make_error(errc::bad_config, "compression level out of range (zstd: -7..19, "
                                            "lz4 acceleration: 1..65537)");
    if (cfg.options.sync_bytes == 0)
        return make_error(errc::bad_config, "sync_bytes must be at least 1");
    if (schema.name.empty() || schema.name.find('/') != std::string::npos || schema.name == "." ||
        schema.name == ".." || schema.columns.empty())
        return make_error(errc::bad_config, "bad table name or no columns: '" + schema.name + "'");
    std::unique_ptr<segment_writer> w(new segment_writer(cfg, schema));
    SLUICE_TRY(w->start());
    return w;
}

result<void> segment_writer::start() {
    _table_dir = _cfg.data_dir + "/" + _schema.name;
    std::error_code ec;
    std::filesystem::create_directories(_table_dir, ec);
    if (ec)
        return make_error(errc::io_error, "cannot create " + _table_dir + ": " + ec.message() +
                                              " (check --data-dir and its permissions)");
    auto seq = next_segment_seq(_table_dir, _cfg.writer_name);
    if (!seq) return std::move(seq).err();
    auto first_offset = next_row_offset(_table_dir, _cfg.writer_name);
    if (!first_offset) return std::move(first_offset).err();
    _run_first_row_offset = _next_row_offset = *first_offset;

    // One aligned buffer per in-flight block, plus one for headers and footers.
    _buffer_bytes = _encoder.block_bytes_max();
    _slots.resize(_cfg.write_buffers);
    for (auto& s : _slots) {
        s.buf = static_cast<uint8_t*>(std::aligned_alloc(format::page_bytes, _buffer_bytes));
        if (!s.buf) return make_error(errc::no_space, "cannot allocate write buffers");
        std::memset(s.buf, 0, _buffer_bytes); // fault the pages in now, not on the hot path
        _iovecs.push_back({s.buf, _buffer_bytes});
    }
    const size_t aux_bytes =
        std::max(format::file_header_bytes,
                 format::block_bytes(format::footer_payload_bytes(_schema.columns.size())));
    auto* aux = static_cast<uint8_t*>(std::aligned_alloc(format::page_bytes, aux_bytes));
    if (!aux) return make_error(errc::no_space, "cannot allocate write buffers");
    std::memset(aux, 0, aux_bytes);
    _iovecs.push_back({aux, aux_bytes});
    _footer.columns.resize(_schema.columns.size());
    SLUICE_TRY(_io.init(limits::uring_depth, _iovecs));

    _dir_fd = fault::fails(fault::op::open)
                  ? -1
                  : ::open(_table_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (_dir_fd < 0)
        return make_error(errc::io_error, "cannot open " + _table_dir + ": " +
                                              std::strerror(errno));
    // The first segment: the same steps as a rotation's second half, waited for.
    _rot = {};
    _rot.open_new = true;
    _rot.seq = *seq;
    _rot.try_direct = _cfg.options.direct_io;
    start_segment_state();
    rot_submit_open();
    if (!wait_rotation()) return _failure;
    return ok_result();
}

segment_writer::~segment_writer() {
    // The kernel may still be reading our buffers: wait for every operation first.
    while (_ops_in_flight > 0 && _io.reap(true, [this](uint64_t ud, int res) {
               on_completion(ud, res);
           }) >= 0) {
    }
    if (_fd >= 0) ::close(_fd);
    if (_dir_fd >= 0) ::close(_dir_fd);
    for (auto& v : _iovecs) std::free(v.iov_base);
}

void segment_writer::fail(errc code, const char* what, int err) noexcept {
    if (failed()) return;
    _failure = make_error(code, std::string(what) + " " + _path + ": " + std::strerror(err) +
                                    (disk_full(err) ? " (disk full: free space or lower retention)"
                                                    : ""));
    _failed.store(true, std::memory_order_release);
    // A segment being created holds no rows yet: leave no header-less file behind.
    if (_rot.step == rot_step::open || _rot.step == rot_step::header) abandon_new_segment();
    // Writes not completed now never will be: their rows are lost, and counted.
    uint64_t lost = 0;
    for (uint64_t q = _prefix_done_seq; q < _submitted_seq; ++q) {
        const slot& s = _slots[q % _slots.size()];
        if (!s.complete) lost += s.rows;
    }
    _rows_dropped.fetch_add(lost, std::memory_order_relaxed);
    SLUICE_LOG_ERROR("storage: %s; rows for table %s are dropped from now on (counted)",
                     _failure.message.c_str(), _schema.name.c_str());
}

// ---- a full disk ----

void segment_writer::stall_begin() noexcept {
    if (_stalled.load(std::memory_order_relaxed)) return;
    _stalls.fetch_add(1, std::memory_order_relaxed);
    _stalled.store(true, std::memory_order_relaxed);
    // Control-path logging on the writer's thread, once per stall (not per event).
    SLUICE_LOG_ERROR("storage: disk full writing %s: table %s stopped accepting rows; retrying "
                     "every %u ms, nothing appended is lost (free space or lower retention)",
                     _path, _schema.name.c_str(), _cfg.disk_full_retry_ms);
}

void segment_writer::stall_end() noexcept {
    if (!_stalled.load(std::memory_order_relaxed) || _parked > 0 || _rot.step == rot_step::parked)
        return;
    _stalled.store(false, std::memory_order_relaxed);
    _stop_seen_ns = 0;
    SLUICE_LOG_INFO("storage: space is back; table %s resumed writing %s", _schema.name.c_str(),
                    _path);
}

// One step of a blocked wait on a full disk: sleeps one retry interval. false when the
// writer must give up (it was told to stop and the disk stayed full).
bool segment_writer::wait_disk(bool& gave_up) noexcept {
    gave_up = false;
    if (_cfg.stop_flag && _cfg.stop_flag->load(std::memory_order_relaxed)) {
        const int64_t now = monotonic_ns();
        if (_stop_seen_ns == 0) _stop_seen_ns = now;
        if (now - _stop_seen_ns >= int64_t(_cfg.disk_full_stop_wait_ms) * 1000000) {
            gave_up = true;
            return false;
        }
    }
    sleep_ms(_cfg.disk_full_retry_ms);
    return true;
}

void segment_writer::resubmit_parked() noexcept {
    for (uint64_t q = _prefix_done_seq; q < _submitted_seq && !failed(); ++q) {
        slot& s = _slots[q % _slots.size()];
        if (!s.parked) continue;
        s.parked = false;
        --_parked;
        submit_slot(s, false);
    }
    rot_retry();
}

// ---- rotation: finish the old segment, create the next, without blocking ----
//
// The steps run in order, each submitted when the one before has completed (reap() calls
// advance_rotation()), so that the product's invariants hold as when they ran inline: the
// old segment's footer is written and synced after all of its blocks, the new file is
// created only once the old one is closed (only a writer's newest segment may lack a
// footer: recovery and retention rely on it), and no block of the new segment is written
// before its header and its name are durable. Meanwhile the owner seals blocks into free
// slots (`pending`), written once the new segment exists.

void segment_writer::begin_rotation(bool open_new) noexcept {
    SLUICE_ASSERT(!rotating() && _fd >= 0 && _segment_rows > 0);
    // The old segment's footer, from its statistics, into the aux page now: the slots
    // sealed meanwhile start the next segment's.
    _footer.rows = _segment_rows;
    _footer.data_blocks = _block_index;
    _footer.min_time_ms = _segment_min_time_ms;
    _footer.max_time_ms = _segment_max_time_ms;
    _footer.data_end_offset = _file_offset;
    auto* aux = static_cast<uint8_t*>(_iovecs.back().iov_base);
    _rot = {};
    _rot.len = uint32_t(format::write_footer_block(_footer, _block_index, aux));
    _rot.offset = _file_offset;
    _rot.open_new = open_new;
    _rot.seq = _segment_seq + 1;
    _rot.boundary_seq = _submitted_seq;
    _rot.step = rot_step::drain;
    _next_row_offset += _segment_rows;
    start_segment_state();
    advance_rotation();
}

// The next segment's blocks start after its header; its statistics start empty.
void segment_writer::start_segment_state() noexcept {
    _file_offset = format::file_header_bytes;
    _block_index = 0;
    _segment_rows = 0;
    _segment_min_time_ms = std::numeric_limits<int64_t>::max();
    _segment_max_time_ms = std::numeric_limits<int64_t>::min();
    for (auto& st : _footer.columns) st = {};
}

// Queues the aux page's [done, len) at fd's offset, linked to an fdatasync of fd, and
// (sync_dir) an fdatasync of the table directory; one submission.
bool segment_writer::rot_submit_aux(int fd, bool sync_dir) noexcept {
    const auto* aux = static_cast<const uint8_t*>(_iovecs.back().iov_base);
    const int aux_index = int(_iovecs.size() - 1);
    _rot.res[0] = _rot.res[1] = _rot.res[2] = 0;
    uint32_t ops = 0;
    bool queued = _io.prep_write(fd, aux + _rot.done, _rot.len - _rot.done,
                                 _rot.offset + _rot.done, aux_index, ud_rot | 0, true);
    ops += queued;
    queued = queued && _io.prep_fdatasync(fd, ud_rot | 1);
    ops += queued;
    if (queued && sync_dir) {
        queued = _io.prep_fdatasync(_dir_fd, ud_rot | 2);
        ops += queued;
    }
    if (!queued) return fail(errc::internal, "io_uring submission queue full for", EBUSY), false;
    if (int rc = _io.submit(); rc < 0)
        return fail(errc::io_error, "io_uring_submit for", -rc), false;
    _rot.ops = ops;
    _ops_in_flight += ops;
    return true;
}

void segment_writer::rot_submit_open() noexcept {
    std::snprintf(_path, sizeof _path, "%s/%s-%06llu.seg", _table_dir.c_str(),
                  _cfg.writer_name.c_str(), static_cast<unsigned long long>(_rot.seq));
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (_rot.try_direct ? O_DIRECT : 0);
    if (!_io.prep_openat(_path, flags, 0640, ud_rot | 0))
        return fail(errc::internal, "io_uring submission queue full for", EBUSY);
    if (int rc = _io.submit(); rc < 0) return fail(errc::io_error, "io_uring_submit for", -rc);
    _rot.step = rot_step::open;
    _rot.res[0] = 0;
    _rot.ops = 1;
    ++_ops_in_flight;
}

// Steps whose operations have all completed move on; called after every reap.
void segment_writer::advance_rotation() noexcept {
    while (rotating() && _rot.ops == 0 && !failed()) {
        switch (_rot.step) {
        case rot_step::drain:
            // The footer goes after every block of the old segment (parked ones too).
            if (_prefix_done_seq < _rot.boundary_seq) return;
            _rot.step = rot_step::footer;
            rot_submit_aux(_fd, false);
            break;
        case rot_step::footer: rot_footer_done(); break;
        case rot_step::open: rot_open_done(); break;
        case rot_step::header: rot_header_done(); break;
        case rot_step::none:
        case rot_step::parked: return;
        }
    }
}

void segment_writer::rot_park(rot_step redo) noexcept {
    _rot.step = rot_step::parked;
    _rot.redo = redo;
    if (!_stalled.load(std::memory_order_relaxed)) _retry_at_ns = 0;
    stall_begin();
}

// A parked rotation tries its step again (from the start of the footer, or of the file).
void segment_writer::rot_retry() noexcept {
    if (_rot.step != rot_step::parked || failed()) return;
    _rot.done = 0;
    if (_rot.redo == rot_step::footer) {
        _rot.step = rot_step::footer;
        rot_submit_aux(_fd, false);
    } else {
        rot_submit_open();
    }
}

void segment_writer::rot_footer_done() noexcept {
    const int w = _rot.res[0], s = _rot.res[1];
    if (w > 0) _rot.done += uint32_t(w);
    if (w < 0 && w != -ECANCELED) {
        if ((w == -EAGAIN || w == -EINTR) && ++_rot.retries <= write_retries_max) {
            rot_submit_aux(_fd, false);
            return;
        }
        if (disk_full(-w)) return rot_park(rot_step::footer);
        return fail(errc::io_error, "cannot write footer", -w);
    }
    if (w == 0) return fail(errc::io_error, "cannot write footer", EIO);
    if (_rot.done < _rot.len) {
        rot_submit_aux(_fd, false); // short: the rest, and the sync again
        return;
    }
    if (s < 0) {
        // As before rotation ran asynchronously: a full disk at the sync redoes the footer.
        if (disk_full(-s)) return rot_park(rot_step::footer);
        return fail(errc::io_error, "cannot write footer", -s);
    }
    // The sync was issued after every block of the old segment had completed: its rows
    // are durable.
    if (_rot.boundary_seq > _durable_seq) {
        _durable_seq = _rot.boundary_seq;
        _rows_durable.store(_prefix_rows, std::memory_order_relaxed);
        _durable_max_time_ms.store(_prefix_max_time_ms, std::memory_order_relaxed);
    }
    ::close(_fd);
    _fd = -1;
    if (!_rot.open_new) {
        _rot.step = rot_step::none;
        stall_end();
        return;
    }
    _rot.done = 0;
    _rot.retries = 0;
    _rot.try_direct = _cfg.options.direct_io;
    rot_submit_open();
}

void segment_writer::rot_open_done() noexcept {
    const int r = _rot.res[0];
    if (r >= 0) {
        // (on_completion already took the descriptor into _fd.)
        _direct = _rot.try_direct;
        auto* aux = static_cast<uint8_t*>(_iovecs.back().iov_base);
        format::segment_meta meta{_schema, _cfg.writer_name, _rot.seq, _next_row_offset};
        if (auto h = format::write_file_header(meta, aux); !h) {
            abandon_new_segment();
            _failure = h.err();
            _failed.store(true, std::memory_order_release);
            return;
        }
        _rot.step = rot_step::header;
        _rot.len = uint32_t(format::file_header_bytes);
        _rot.offset = 0;
        _rot.done = 0;
        rot_submit_aux(_fd, true);
        return;
    }
    if (r == -EINVAL && _rot.try_direct) {
        _rot.try_direct = false; // the filesystem refuses O_DIRECT: buffered
        rot_submit_open();
        return;
    }
    if (disk_full(-r)) return rot_park(rot_step::open);
    fail(errc::io_error, "cannot create", -r);
}

void segment_writer::rot_header_done() noexcept {
    const int w = _rot.res[0], s = _rot.res[1], d = _rot.res[2];
    if (w > 0) _rot.done += uint32_t(w);
    int err = 0;
    if (w < 0 && w != -ECANCELED) {
        if (w == -EINVAL && _direct && _rot.done == 0) {
            // The filesystem took O_DIRECT at open but refuses the I/O: go buffered.
            int fl = ::fcntl(_fd, F_GETFL);
            if (fl >= 0 && ::fcntl(_fd, F_SETFL, fl & ~O_DIRECT) == 0) {
                _direct = false;
                rot_submit_aux(_fd, true);
                return;
            }
        }
        if ((w == -EAGAIN || w == -EINTR) && ++_rot.retries <= write_retries_max) {
            rot_submit_aux(_fd, true);
            return;
        }
        err = -w;
    } else if (w == 0) {
        err = EIO;
    } else if (_rot.done < _rot.len) {
        rot_submit_aux(_fd, true); // short: the rest, and the syncs again
        return;
    } else if (s < 0) {
        err = -s;
    } else if (d < 0) {
        err = -d;
    }
    if (err != 0) {
        // Start clean: the next try (a full disk) creates the file again.
        abandon_new_segment();
        if (disk_full(err)) return rot_park(rot_step::open);
        return fail(errc::io_error, "cannot create", err);
    }
    // The new segment and its name are durable: its blocks go out.
    _rot.step = rot_step::none;
    _segment_seq = _rot.seq;
    ++_segments_opened;
    stall_end();
    for (uint64_t q = _prefix_done_seq; q < _submitted_seq && !failed(); ++q) {
        slot& p = _slots[q % _slots.size()];
        if (!p.pending) continue;
        p.pending = false;
        submit_slot(p, false);
    }
}

void segment_writer::abandon_new_segment() noexcept {
    if (_fd < 0) return;
    ::close(_fd);
    _fd = -1;
    if (!fault::fails(fault::op::unlink)) ::unlink(_path);
}

// Blocks until the rotation in progress has finished; false when the writer failed.
bool segment_writer::wait_rotation() noexcept {
    while (rotating() && !failed())
        if (!wait_progress()) break;
    return !failed();
}

// ---- the write path ----

segment_writer::slot* segment_writer::acquire_slot() noexcept {
    const uint64_t n = _slots.size();
    // Buffers are reused in submission order, so the durable prefix can read each
    // block's row count from its slot. Waiting here is the writer's back-pressure.
    while (_submitted_seq - _prefix_done_seq >= n) {
        if (!wait_progress()) return nullptr;
    }
    if (failed()) return nullptr;
    slot& s = _slots[_submitted_seq % n];
    s.seq = _submitted_seq;
    s.done = 0;
    s.retries = 0;
    s.complete = false;
    s.parked = false;
    s.pending = false;
    return &s;
}

void segment_writer::seal(bool sync_after) noexcept {
    const uint32_t rows = _batch.rows();
    if (rows == 0) return;
    slot* s = acquire_slot();
    if (!s) {
        // Failed writer: count what is lost, keep the caller running.
        _rows_dropped.fetch_add(rows, std::memory_order_relaxed);
        _batch.clear();
        return;
    }
    format::block_header h = _encoder.encode(_batch, _block_index, s->buf);
    _batch.clear();
    const uint64_t len = format::block_bytes(h.payload_bytes);
    if (_block_index > 0 &&
        _file_offset + len + format::page_bytes > _cfg.options.segment_bytes_max) [[unlikely]] {
        // Rotate (every segment_bytes_max). It runs in the background: this block and the
        // next wait in their slots (pending) until the new segment exists. Only when the
        // blocks sealed during a rotation already fill the next segment (segments of a
        // few blocks) does the owner wait for the rotation before starting another.
        if (rotating() && !wait_rotation()) {
            _rows_dropped.fetch_add(rows, std::memory_order_relaxed);
            return;
        }
        begin_rotation(true);
        if (failed()) {
            _rows_dropped.fetch_add(rows, std::memory_order_relaxed);
            return;
        }
        h.block_index = 0;
        format::write_block_header(h, s->buf);
    }
    s->offset = _file_offset;
    s->len = uint32_t(len);
    s->rows = rows;
    s->max_time_ms = _schema.time_column >= 0 ? h.max_time_ms : time_none;
    ++_submitted_seq;
    _file_offset += len;
    ++_block_index;
    _segment_rows += rows;
    _segment_min_time_ms = std::min(_segment_min_time_ms, h.min_time_ms);
    _segment_max_time_ms = std::max(_segment_max_time_ms, h.max_time_ms);
    const auto& block_stats = _encoder.block_stats();
    for (size_t c = 0; c < _footer.columns.size(); ++c)
        format::merge_stats(_schema.columns[c].type, _footer.columns[c], block_stats[c]);
    _unsynced_bytes += len;
    if (_unsynced_bytes >= _cfg.options.sync_bytes) sync_after = true;
    if (sync_after) {
        _sync_target_seq = _submitted_seq;
        ++_commits;
        _unsynced_bytes = 0;
    }
    if (rotating()) [[unlikely]] {
        s->pending = true; // written (and synced by poll()) once the new segment exists
        return;
    }
    // Group commit rides on the write: one submission, and the fdatasync starts as soon
    // as the write ends. With a sync already in flight, poll() issues the next one.
    submit_slot(*s, sync_after && !_sync_in_flight && !failed());
}

bool segment_writer::submit_slot(slot& s, bool link_sync) noexcept {
    int index = int(&s - _slots.data());
    if (!_io.prep_write(_fd, s.buf + s.done, s.len - s.done, s.offset + s.done, index, s.seq,
                        link_sync))
        return fail(errc::internal, "io_uring submission queue full for", EBUSY), false;
    ++_ops_in_flight;
    if (link_sync) {
        if (!_io.prep_fdatasync(_fd, ud_sync))
            return fail(errc::internal, "io_uring submission queue full for", EBUSY), false;
        // The linked sync covers this write, and every earlier one that has completed;
        // with an earlier write still in flight it covers the completed prefix only.
        const bool contiguous = _prefix_done_seq == s.seq;
        _sync_seq = contiguous ? s.seq + 1 : _prefix_done_seq;
        _sync_rows = _prefix_rows + (contiguous ? s.rows : 0);
        _sync_max_time_ms = contiguous ? std::max(_prefix_max_time_ms, s.max_time_ms)
                                       : _prefix_max_time_ms;
        _sync_in_flight = true;
        ++_ops_in_flight;
    }
    int rc = _io.submit();
    if (rc < 0) {
        _ops_in_flight -= link_sync ? 2 : 1;
        _sync_in_flight = false;
        return fail(errc::io_error, "io_uring_submit for", -rc), false;
    }
    return true;
}

void segment_writer::on_completion(uint64_t ud, int res) noexcept {
    --_ops_in_flight;
    if ((ud & ~uint64_t(3)) == ud_rot) {
        const unsigned op = unsigned(ud & 3);
        // A new descriptor is ours at once, so that it is closed whatever happens next.
        if (op == 0 && _rot.step == rot_step::open && res >= 0) {
            _fd = res;
            if (failed()) abandon_new_segment();
        }
        _rot.res[op] = res;
        --_rot.ops;
        return;
    }
    if (ud == ud_sync) {
        _sync_in_flight = false;
        // Cancelled: its linked write failed or was short; the next poll syncs again.
        if (res == -ECANCELED) return;
        // Not retried: after a failed fsync the kernel may have dropped the dirty
        // pages, so nothing tells what reached the disk.
        if (res < 0) return fail(errc::io_error, "fdatasync", -res);
        _syncs.fetch_add(1, std::memory_order_relaxed);
        if (_sync_seq > _durable_seq) {
            _durable_seq = _sync_seq;
            _rows_durable.store(_sync_rows, std::memory_order_relaxed);
            _durable_max_time_ms.store(_sync_max_time_ms, std::memory_order_relaxed);
        }
        return;
    }
    slot& s = _slots[ud % _slots.size()];
    SLUICE_ASSERT(s.seq == ud);
    SLUICE_ASSERT(!s.complete);
    if (failed()) return;
    on_write_done(s, res);
}

void segment_writer::on_write_done(slot& s, int res) noexcept {
    if (res < 0) {
        // -EAGAIN is a normal, bounded case: resubmit the same range.
        if ((res == -EAGAIN || res == -EINTR) && ++s.retries <= write_retries_max) {
            submit_slot(s, false);
            return;
        }
        if (disk_full(-res)) {
            // Park it: poll() (or a blocked wait) resubmits it once space may be back.
            s.parked = true;
            ++_parked;
            if (!_stalled.load(std::memory_order_relaxed)) _retry_at_ns = 0;
            stall_begin();
            return;
        }
        if (res == -EINVAL && _direct && (s.done % format::page_bytes) != 0) {
            // A short O_DIRECT write left an unaligned remainder: finish it buffered.
            int fl = ::fcntl(_fd, F_GETFL);
            if (fl >= 0 && ::fcntl(_fd, F_SETFL, fl & ~O_DIRECT) == 0) {
                _direct = false;
                submit_slot(s, false);
                return;
            }
        }
        return fail(errc::io_error, "write", -res);
    }
    if (res == 0) return fail(errc::io_error, "write made no progress on", EIO);
    s.done += uint32_t(res);
    if (s.done < s.len) {
        submit_slot(s, false); // short write: the rest, at its offset
        return;
    }
    s.complete = true;
    _bytes_written.fetch_add(s.len, std::memory_order_relaxed);
    while (_prefix_done_seq < _submitted_seq) {
        slot& p = _slots[_prefix_done_seq % _slots.size()];
        if (!p.complete) break;
        _prefix_rows += p.rows;
        _prefix_max_time_ms = std::max(_prefix_max_time_ms, p.max_time_ms);
        ++_prefix_done_seq;
    }
    stall_end();
}

void segment_writer::maybe_submit_sync() noexcept {
    // During a rotation the footer's sync covers the old segment, and the new one's
    // blocks wait for their file.
    if (_sync_in_flight || failed() || rotating() || _durable_seq >= _sync_target_seq) return;
    // fdatasync covers the writes completed before it is submitted: the done prefix.
    if (_prefix_done_seq <= _durable_seq) return;
    if (!_io.prep_fdatasync(_fd, ud_sync))
        return fail(errc::internal, "io_uring submission queue full for", EBUSY);
    _sync_seq = _prefix_done_seq;
    _sync_rows = _prefix_rows;
    _sync_max_time_ms = _prefix_max_time_ms;
    _sync_in_flight = true;
    ++_ops_in_flight;
    if (int rc = _io.submit(); rc < 0) {
        --_ops_in_flight;
        _sync_in_flight = false;
        fail(errc::io_error, "io_uring_submit for", -rc);
    }
}

bool segment_writer::reap(bool wait) noexcept {
    int rc = _io.reap(wait, [this](uint64_t ud, int res) { on_completion(ud, res); });
    if (rc < 0) fail(errc::io_error, "io_uring_wait_cqe for", -rc);
    advance_rotation();
    return !failed();
}

// Blocks until some operation completes or, with writes parked on a full disk, for one
// retry interval before resubmitting them. false when the writer failed or gave up.
bool segment_writer::wait_progress() noexcept {
    if (failed()) return false;
    if (_ops_in_flight > 0) return reap(true);
    if (_parked > 0 || _rot.step == rot_step::parked) {
        bool gave_up;
        if (!wait_disk(gave_up)) {
            fail(errc::no_space, "gave up waiting for space (stopping) on", ENOSPC);
            return false;
        }
        resubmit_parked();
    }
    return !failed();
}

void segment_writer::poll(int64_t now_ns) noexcept {
    if (_closed) return;
    if (_ops_in_flight > 0) reap(false);
    if ((_parked > 0 || _rot.step == rot_step::parked) && now_ns >= _retry_at_ns) {
        _retry_at_ns = now_ns + int64_t(_cfg.disk_full_retry_ms) * 1000000;
        resubmit_parked();
    }
    const bool unsynced = !_batch.empty() || _sync_target_seq < _submitted_seq;
    if (!unsynced) {
        _unsynced_since_set = false;
    } else if (!_unsynced_since_set) {
        _unsynced_since_set = true;
        _oldest_unsynced_ns = now_ns;
    } else if (now_ns - _oldest_unsynced_ns >= int64_t(_cfg.options.flush_interval_ms) * 1000000) {
        // Group commit: everything appended so far becomes durable together.
        _unsynced_since_set = false;
        if (!_batch.empty()) {
            seal(true);
        } else {
            _sync_target_seq = _submitted_seq;
            ++_commits;
            _unsynced_bytes = 0;
        }
    }
    maybe_submit_sync();
}

int64_t segment_writer::next_deadline_ns(int64_t now_ns) const noexcept {
    if (_closed) return INT64_MAX;
    int64_t at = INT64_MAX;
    if (_parked > 0 || _rot.step == rot_step::parked) at = _retry_at_ns;
    const bool unsynced = !_batch.empty() || _sync_target_seq < _submitted_seq;
    if (unsynced)
        at = std::min(at, _unsynced_since_set
                              ? _oldest_unsynced_ns + int64_t(_cfg.options.flush_interval_ms) * 1000000
                              : now_ns);
    return at;
}

void segment_writer::commit_now() noexcept {
    if (_closed || failed() || _sync_in_flight || _parked > 0 || rotating()) return;
    if (!_batch.empty()) {
        if (_submitted_seq - _prefix_done_seq >= _slots.size()) return; // seal would wait
        seal(true);
    } else if (_sync_target_seq < _submitted_seq) {
        _sync_target_seq = _submitted_seq;
        ++_commits;
        _unsynced_bytes = 0;
    }
    maybe_submit_sync();
}

bool segment_writer::drain_and_sync() noexcept {
    _sync_target_seq = _submitted_seq;
    ++_commits;
    _unsynced_bytes = 0;
    while (!failed() && (rotating() || _durable_seq < _submitted_seq)) {
        maybe_submit_sync();
        if (!wait_progress()) break;
    }
    return !failed();
}

result<void> segment_writer::flush_and_sync() {
    if (_closed) return make_error(errc::invalid_argument, "segment writer is closed");
    seal(false);
    drain_and_sync();
    if (failed()) return _failure;
    return ok_result();
}

result<void> segment_writer::close() {
    if (_closed) return ok_result();
    auto r = flush_and_sync();
    if (!failed() && _fd >= 0) {
        if (_segment_rows == 0) {
            // Nothing was written: leave no empty file behind.
            if (!fault::fails(fault::op::unlink)) ::unlink(_path);
        } else {
            begin_rotation(false); // the footer, synced; the file closed
            wait_rotation();
        }
    }
    if (_fd >= 0) ::close(_fd);
    _fd = -1;
    _closed = true;
    if (failed()) return _failure;
    return r;
}

} // namespace sluice::storage
