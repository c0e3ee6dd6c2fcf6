#include "storage/table_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tbb/concurrent_queue.h>
#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>

#include "base/assert.h"
#include "base/log.h"
#include "base/tsan.h"
#include "storage/schema.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"

namespace sluice::storage {

void filter_rows_by_time(column_batch& batch, int tc, int64_t from_ms, int64_t to_ms) {
    const uint32_t rows = batch.rows();
    const int ncols = int(batch.schema().columns.size());
    uint32_t kept = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        int64_t t = batch.i64_at(tc, r);
        if (t < from_ms || t > to_ms) continue;
        if (kept != r) {
            for (int c = 0; c < ncols; ++c) {
                auto& col = batch.col(c);
                if (col.nullable) col.valid[kept] = col.valid[r];
                if (!is_variable(col.type)) {
                    col.fixed[kept] = col.fixed[r];
                    continue;
                }
                // Rows only move towards the front, so the bytes can be moved in place.
                uint32_t src = r == 0 ? 0 : col.offsets[r - 1];
                uint32_t len = col.offsets[r] - src;
                uint32_t dst = kept == 0 ? 0 : col.offsets[kept - 1];
                if (len) std::memmove(col.arena.data() + dst, col.arena.data() + src, len);
                col.offsets[kept] = dst + len;
            }
        }
        ++kept;
    }
    for (int c = 0; c < ncols; ++c) {
        auto& col = batch.col(c);
        if (is_variable(col.type)) col.arena_used = kept == 0 ? 0 : col.offsets[kept - 1];
    }
    batch.set_rows(kept);
}

namespace {

// One file descriptor per segment, shared by the blocks in flight (closed after the last).
struct segment_file_handle {
    int fd = -1;
    ~segment_file_handle() {
        if (fd >= 0) ::close(fd);
    }
};

struct segment_state {
    std::string path;
    table_schema schema;
    bool damaged = false; // set by the deliver stage: later blocks are not served
};

// What the first stage hands on: a block to read, or the end of a segment whose walk
// found damage (reported in order, after the segment's good blocks).
struct scan_item {
    size_t slot = 0;
    segment_state* segment = nullptr;
    std::shared_ptr<segment_file_handle> file;
    format::block_header header;
    uint64_t offset = 0;
    std::string damage; // non-empty: the walk ended here
    uint64_t segments_done = 0; // progress once this item is delivered
    uint64_t bytes_done = 0;
};

struct scan_slot {
    std::unique_ptr<column_batch> batch;
    const table_schema* schema = nullptr;
    format::block_decoder decoder;
    std::vector<uint8_t> payload;
    std::string error;
};

// One scan of a table: a TBB pipeline of three steps. produce() (serial) walks the
// segments' block headers, prunes by time and hands out blocks; decode() (parallel) reads,
// verifies, decodes, filters and transforms one block in its slot; deliver() (serial, in
// order) serves it, or ends its segment at the first damage, and reports progress.
class table_scan {
  public:
    table_scan(std::vector<segment_file> files, int64_t from_ms, int64_t to_ms,
               const scan_hooks& hooks);
    scan_summary run();

  private:
    scan_item* produce(tbb::flow_control& fc);
    scan_item* decode(scan_item* item);
    void deliver(scan_item* item);

    bool open_next_segment(); // false: no more segments
    bool pruned(const format::block_header& h, int tc) const noexcept {
        return tc >= 0 && (h.rows == 0 || h.max_time_ms < _from_ms || h.min_time_ms > _to_ms);
    }
    scan_item* hand_out(scan_item* item);
    void pass_segment() {
        _bytes_passed += _sizes[_segments_passed];
        ++_segments_passed;
    }
    std::string read_block(scan_slot& s, const scan_item& item);

    const std::vector<segment_file> _files;
    const int64_t _from_ms;
    const int64_t _to_ms;
    const scan_hooks& _hooks;
    scan_summary _sum;
    std::vector<scan_slot> _slots;
    tbb::concurrent_queue<size_t> _free_slots;
    std::deque<segment_state> _segments; // stable addresses for the items in flight
    // Progress is measured against the sizes the files have now: a segment counts its
    // blocks' ends up to that size, and the whole size once it is passed.
    std::vector<uint64_t> _sizes;
    uint64_t _bytes_total = 0;
    uint64_t _bytes_passed = 0; // of the segments produce() is done with
    uint64_t _segments_passed = 0;
    // produce()'s position.
    size_t _next_file = 0;
    std::unique_ptr<segment_reader> _reader;
    std::shared_ptr<segment_file_handle> _file;
    segment_state* _segment = nullptr;
    // ThreadSanitizer only (base/tsan.h; no-ops in other builds): oneTBB is not built with
    // TSan, so the order it gives (a serial step's calls one after another on any thread,
    // an item from one step to the next, a slot back through _free_slots, the pipeline's
    // end before run() returns) is invisible and every access on both sides read as a
    // race, suppressed (tests/tsan/suppressions.txt) but each checked against every
    // earlier one: a caller reading thousands of delivered rows took minutes. These
    // addresses carry that order; items and slots carry their own.
    char _produce_order = 0;
    char _deliver_order = 0;
};

// Acquires `addr` for a step's body and releases it when the step returns (TSan only).
struct tsan_step {
    const void* addr;
    explicit tsan_step(const void* a) noexcept : addr(a) { tsan_acquire(addr); }
    ~tsan_step() { tsan_release(addr); }
    tsan_step(const tsan_step&) = delete;
    tsan_step& operator=(const tsan_step&) = delete;
};

table_scan::table_scan(std::vector<segment_file> files, int64_t from_ms, int64_t to_ms,
                       const scan_hooks& hooks)
    : _files(std::move(files)), _from_ms(from_ms), _to_ms(to_ms), _hooks(hooks),
      _slots(scan_slots()), _sizes(_files.size(), 0) {
    for (size_t i = 0; i < _slots.size(); ++i) {
        tsan_release(&_slots[i]);
        _free_slots.push(i);
    }
    for (size_t i = 0; i < _files.size(); ++i) {
        struct stat st {};
        if (::stat(_files[i].path.c_str(), &st) == 0) _sizes[i] = uint64_t(st.st_size);
        _bytes_total += _sizes[i];
    }
}

scan_summary table_scan::run() {
    tsan_release(&_produce_order); // what this thread set up, before the first step
    tsan_release(&_deliver_order);
    tbb::parallel_pipeline(
        _slots.size(),
        tbb::make_filter<void, scan_item*>(tbb::filter_mode::serial_in_order,
                                           [this](tbb::flow_control& fc) { return produce(fc); }) &
            tbb::make_filter<scan_item*, scan_item*>(tbb::filter_mode::parallel,
                                                     [this](scan_item* it) { return decode(it); }) &
            tbb::make_filter<scan_item*, void>(tbb::filter_mode::serial_in_order,
                                               [this](scan_item* it) { deliver(it); }));
    tsan_acquire(&_produce_order); // every step's work, before the caller reads it
    tsan_acquire(&_deliver_order);
    if (_hooks.progress)
        _hooks.progress({_files.size(), _files.size(), _bytes_total, _bytes_total, _sum.rows});
    return _sum;
}

// Opens the next segment that is readable and not pruned whole by its footer.
bool table_scan::open_next_segment() {
    while (_next_file < _files.size()) {
        const auto& f = _files[_next_file++];
        auto rd = segment_reader::open(f.path);
        if (!rd) {
            pass_segment();
            if (rd.err().code == errc::not_found) continue; // deleted by retention
            ++_sum.segments;
            ++_sum.damaged_segments;
            SLUICE_LOG_WARN("skipping %s (recovery repairs it at the next start)",
                            rd.err().message.c_str());
            continue;
        }
        ++_sum.segments;
        format::footer footer;
        if (rd.value()->schema().time_column >= 0 && rd.value()->peek_footer(footer) &&
            (footer.rows == 0 || footer.max_time_ms < _from_ms || footer.min_time_ms > _to_ms)) {
            ++_sum.segments_skipped;
            pass_segment();
            continue;
        }
        _reader = std::move(rd.value());
        _file = std::make_shared<segment_file_handle>();
        _file->fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
        _segments.push_back({f.path, _reader->schema()});
        _segment = &_segments.back();
        return true;
    }
    return false;
}

scan_item* table_scan::hand_out(scan_item* item) {
    bool got = _free_slots.try_pop(item->slot);
    SLUICE_ASSERT(got); // the pipeline runs at most `slots` items at once
    tsan_acquire(&_slots[item->slot]);
    tsan_release(item); // to decode()
    return item;
}

// Step 1 (serial): the next block to read, or the end of a damaged segment.
scan_item* table_scan::produce(tbb::flow_control& fc) {
    tsan_step order(&_produce_order);
    for (;;) {
        if (!_reader && !open_next_segment()) {
            fc.stop();
            return nullptr;
        }
        const int tc = _segment->schema.time_column;
        while (_reader->next_block()) {
            const auto& h = _reader->block();
            if (pruned(h, tc)) {
                ++_sum.blocks_skipped;
                continue;
            }
            const uint64_t off = _reader->block_offset();
            const uint64_t end = off + format::block_header_bytes + h.payload_bytes;
            return hand_out(new scan_item{0,
                                          _segment,
                                          _file,
                                          h,
                                          off,
                                          {},
                                          _segments_passed,
                                          _bytes_passed + std::min(end, _sizes[_segments_passed])});
        }
        std::string damage = _reader->end() == segment_reader::end_state::damaged
                                 ? _reader->damage()
                                 : std::string();
        _reader.reset();
        _file.reset();
        pass_segment();
        if (!damage.empty())
            return hand_out(new scan_item{
                0, _segment, nullptr, {}, 0, std::move(damage), _segments_passed, _bytes_passed});
    }
}

// Reads and decodes the item's block into its slot; returns what went wrong, if anything.
std::string table_scan::read_block(scan_slot& s, const scan_item& item) {
    if (s.schema != &item.segment->schema) {
        s.batch = std::make_unique<column_batch>(item.segment->schema, 1, 0, 0);
        s.schema = &item.segment->schema;
    }
    const auto& h = item.header;
    const std::string where =
        item.segment->path + ": block at offset " + std::to_string(item.offset);
    s.payload.resize(h.payload_bytes);
    if (item.file->fd < 0 || !pread_full(item.file->fd, s.payload.data(), s.payload.size(),
                                         item.offset + format::block_header_bytes))
        return where + ": read error";
    auto r = s.decoder.decode(h, s.payload.data(), *s.batch);
    if (!r) return where + ": " + r.err().message;
    return {};
}

// Step 2 (parallel): read, verify and decode the block, filter, transform.
scan_item* table_scan::decode(scan_item* item) {
    tsan_step handed(item); // from produce(), to deliver()
    if (!item->damage.empty()) return item;
    scan_slot& s = _slots[item->slot];
    s.error = read_block(s, *item);
    if (!s.error.empty()) return item;
    const auto& h = item->header;
    const int tc = item->segment->schema.time_column;
    if (tc >= 0 && (h.min_time_ms < _from_ms || h.max_time_ms > _to_ms))
        filter_rows_by_time(*s.batch, tc, _from_ms, _to_ms);
    if (_hooks.transform && !s.batch->empty()) _hooks.transform(*s.batch, item->slot);
    return item;
}

// Step 3 (serial, in order): deliver; a damaged block ends its segment.
void table_scan::deliver(scan_item* item) {
    tsan_step order(&_deliver_order);
    tsan_acquire(item);
    std::unique_ptr<scan_item> own(item);
    scan_slot& s = _slots[item->slot];
    segment_state& sg = *item->segment;
    const std::string& damage = item->damage.empty() ? s.error : item->damage;
    if (!sg.damaged && !damage.empty()) {
        sg.damaged = true;
        ++_sum.damaged_segments;
        SLUICE_LOG_WARN("%s; the rest of the segment is not served (recovery repairs it "
                        "at the next start)",
                        damage.c_str());
    } else if (!sg.damaged) {
        ++_sum.blocks_read;
        if (!s.batch->empty()) {
            _sum.rows += s.batch->rows();
            if (_hooks.deliver) _hooks.deliver(*s.batch, item->slot);
        }
    }
    if (_hooks.progress)
        _hooks.progress(
            {item->segments_done, _files.size(), item->bytes_done, _bytes_total, _sum.rows});
    tsan_release(&_slots[item->slot]); // to the next produce() that takes it
    _free_slots.push(item->slot);
}

} // namespace

size_t scan_slots() noexcept {
    return size_t(std::clamp(2 * tbb::info::default_concurrency(), 2, 16));
}

result<scan_summary> scan_table_parallel(const std::string& data_dir, const std::string& table,
                                         int64_t from_ms, int64_t to_ms, const scan_hooks& hooks) {
    auto files = list_segments(data_dir + "/" + table);
    if (!files) {
        if (files.err().code == errc::not_found)
            return make_error(errc::not_found, "no table '" + table + "' in " + data_dir);
        return std::move(files).err();
    }
    table_scan scan(std::move(files.value()), from_ms, to_ms, hooks);
    return scan.run();
}

result<scan_summary> scan_table(const std::string& data_dir, const std::string& table,
                                int64_t from_ms, int64_t to_ms,
                                const std::function<void(const column_batch&)>& fn) {
    return scan_table_parallel(data_dir, table, from_ms, to_ms,
                               {nullptr, [&fn](const column_batch& b, size_t) { fn(b); }});
}

result<scan_summary> scan_event_identities(
    const std::string& data_dir, int64_t from_ms, int64_t to_ms,
    const std::function<void(std::span<const identity_row>)>& fn) {
    namespace ev = events_col;
    // Hashing runs in the parallel stage, per slot; delivery in order.
    std::vector<std::vector<identity_row>> rows(scan_slots());
    std::atomic<bool> bad_schema{false};
    auto transform = [&](const column_batch& b, size_t slot) {
        const auto& cols = b.schema().columns;
        // Segments carry their own schema: check it is the events table's.
        if (cols.size() <= ev::raw || cols[ev::event_time_ms].name != "event_time_ms" ||
            cols[ev::event_id].name != "event_id" || !cols[ev::event_id].nullable ||
            cols[ev::raw].name != "raw") {
            bad_schema = true;
            rows[slot].clear();
            return;
        }
        auto& out = rows[slot];
        out.resize(b.rows());
        for (uint32_t i = 0; i < b.rows(); ++i) {
            out[i].id = identity_of_stored_event(!b.is_null(ev::event_id, i),
                                                 b.string_at(ev::event_id, i),
                                                 b.string_at(ev::raw, i));
            out[i].event_time_ms = b.i64_at(ev::event_time_ms, i);
        }
    };
    auto deliver = [&](const column_batch&, size_t slot) {
        if (!rows[slot].empty()) fn(std::span<const identity_row>(rows[slot].data(), rows[slot].size()));
    };
    auto r = scan_table_parallel(data_dir, "events", from_ms, to_ms, {transform, deliver});
    if (bad_schema)
        return make_error(errc::corrupt,
                          "the events table's segments do not have the events schema in " + data_dir);
    return r;
}

result<std::vector<table_info>> list_table_infos(const std::string& data_dir) {
    auto names = list_tables(data_dir);
    if (!names) return std::move(names).err();
    std::vector<table_info> out;
    for (const auto& name : *names) {
        auto files = list_segments(data_dir + "/" + name);
        if (!files || files->empty()) continue;
        table_info t;
        t.name = name;
        for (const auto& f : *files) {
            auto rd = segment_reader::open(f.path);
            if (!rd) {
                if (rd.err().code == errc::not_found) continue;
                ++t.segments;
                ++t.damaged_segments;
                continue;
            }
            auto& reader = **rd;
            ++t.segments;
            t.bytes += reader.file_size();
            const bool timed = reader.schema().time_column >= 0;
            format::footer footer;
            if (reader.peek_footer(footer)) {
                t.rows += footer.rows;
                if (timed && footer.rows) {
                    t.min_time_ms = std::min(t.min_time_ms, footer.min_time_ms);
                    t.max_time_ms = std::max(t.max_time_ms, footer.max_time_ms);
                }
                continue;
            }
            while (reader.next_block()) {
                // Rows before a damaged block are counted: they are what a scan serves,
                // except that a bad payload is only found by reading it.
                const auto& h = reader.block();
                if (timed && h.rows) {
                    t.min_time_ms = std::min(t.min_time_ms, h.min_time_ms);
                    t.max_time_ms = std::max(t.max_time_ms, h.max_time_ms);
                }
            }
            if (reader.end() == segment_reader::end_state::damaged) ++t.damaged_segments;
            t.rows += reader.rows_seen();
        }
        out.push_back(std::move(t));
    }
    return out;
}

} // namespace sluice::storage
