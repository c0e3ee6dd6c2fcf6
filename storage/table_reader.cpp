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
    scan_summary sum;
    const size_t slots = scan_slots();
    std::vector<scan_slot> slot(slots);
    tbb::concurrent_queue<size_t> free_slots;
    for (size_t i = 0; i < slots; ++i) free_slots.push(i);
    std::deque<segment_state> segments; // stable addresses for the items in flight

    // Progress is measured against the sizes the files have now: a segment counts its
    // blocks' ends up to that size, and the whole size once it is passed.
    std::vector<uint64_t> sizes(files->size(), 0);
    uint64_t bytes_total = 0;
    for (size_t i = 0; i < files->size(); ++i) {
        struct stat st {};
        if (::stat((*files)[i].path.c_str(), &st) == 0) sizes[i] = uint64_t(st.st_size);
        bytes_total += sizes[i];
    }
    uint64_t bytes_passed = 0; // of the segments the first stage is done with
    uint64_t segments_passed = 0;
    auto pass_segment = [&] {
        bytes_passed += sizes[segments_passed];
        ++segments_passed;
    };

    // First stage (serial): walk the segments' block headers, prune, hand out blocks.
    size_t next_file = 0;
    std::unique_ptr<segment_reader> reader;
    std::shared_ptr<segment_file_handle> file;
    segment_state* seg = nullptr;
    auto produce = [&](tbb::flow_control& fc) -> scan_item* {
        for (;;) {
            if (!reader) {
                if (next_file == files->size()) {
                    fc.stop();
                    return nullptr;
                }
                const auto& f = (*files)[next_file++];
                auto rd = segment_reader::open(f.path);
                if (!rd) {
                    pass_segment();
                    if (rd.err().code == errc::not_found) continue; // deleted by retention
                    ++sum.segments;
                    ++sum.damaged_segments;
                    SLUICE_LOG_WARN("skipping %s (recovery repairs it at the next start)",
                                    rd.err().message.c_str());
                    continue;
                }
                ++sum.segments;
                reader = std::move(rd.value());
                const int tc = reader->schema().time_column;
                format::footer footer;
                if (tc >= 0 && reader->peek_footer(footer) &&
                    (footer.rows == 0 || footer.max_time_ms < from_ms || footer.min_time_ms > to_ms)) {
                    ++sum.segments_skipped;
                    reader.reset();
                    pass_segment();
                    continue;
                }
                file = std::make_shared<segment_file_handle>();
                file->fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
                segments.push_back({f.path, reader->schema()});
                seg = &segments.back();
            }
            const int tc = seg->schema.time_column;
            while (reader->next_block()) {
                const auto& h = reader->block();
                if (tc >= 0 && (h.rows == 0 || h.max_time_ms < from_ms || h.min_time_ms > to_ms)) {
                    ++sum.blocks_skipped;
                    continue;
                }
                const uint64_t end = reader->block_offset() + format::block_header_bytes +
                                     h.payload_bytes;
                auto* item = new scan_item{0, seg, file, h, reader->block_offset(), {},
                                           segments_passed,
                                           bytes_passed + std::min(end, sizes[segments_passed])};
                bool got = free_slots.try_pop(item->slot);
                SLUICE_ASSERT(got); // the pipeline runs at most `slots` items at once
                return item;
            }
            std::string damage = reader->end() == segment_reader::end_state::damaged
                                     ? reader->damage()
                                     : std::string();
            reader.reset();
            file.reset();
            pass_segment();
            if (!damage.empty()) {
                auto* item = new scan_item{0, seg, nullptr, {}, 0, std::move(damage),
                                           segments_passed, bytes_passed};
                bool got = free_slots.try_pop(item->slot);
                SLUICE_ASSERT(got);
                return item;
            }
        }
    };
    // Second stage (parallel): read, verify and decode the block, filter, transform.
    auto decode = [&](scan_item* item) -> scan_item* {
        if (!item->damage.empty()) return item;
        scan_slot& s = slot[item->slot];
        s.error.clear();
        if (s.schema != &item->segment->schema) {
            s.batch = std::make_unique<column_batch>(item->segment->schema, 1, 0, 0);
            s.schema = &item->segment->schema;
        }
        const auto& h = item->header;
        s.payload.resize(h.payload_bytes);
        if (item->file->fd < 0 ||
            !pread_full(item->file->fd, s.payload.data(), s.payload.size(),
                       item->offset + format::block_header_bytes)) {
            s.error = item->segment->path + ": block at offset " + std::to_string(item->offset) +
                      ": read error";
            return item;
        }
        auto r = s.decoder.decode(h, s.payload.data(), *s.batch);
        if (!r) {
            s.error = item->segment->path + ": block at offset " + std::to_string(item->offset) +
                      ": " + r.err().message;
            return item;
        }
        const int tc = item->segment->schema.time_column;
        if (tc >= 0 && (h.min_time_ms < from_ms || h.max_time_ms > to_ms))
            filter_rows_by_time(*s.batch, tc, from_ms, to_ms);
        if (hooks.transform && !s.batch->empty()) hooks.transform(*s.batch, item->slot);
        return item;
    };
    // Third stage (serial, in order): deliver; a damaged block ends its segment.
    auto deliver = [&](scan_item* item) {
        std::unique_ptr<scan_item> own(item);
        scan_slot& s = slot[item->slot];
        segment_state& sg = *item->segment;
        const std::string& damage = item->damage.empty() ? s.error : item->damage;
        if (!sg.damaged) {
            if (!damage.empty()) {
                sg.damaged = true;
                ++sum.damaged_segments;
                SLUICE_LOG_WARN("%s; the rest of the segment is not served (recovery repairs it "
                                "at the next start)",
                                damage.c_str());
            } else {
                ++sum.blocks_read;
                if (!s.batch->empty()) {
                    sum.rows += s.batch->rows();
                    if (hooks.deliver) hooks.deliver(*s.batch, item->slot);
                }
            }
        }
        if (hooks.progress)
            hooks.progress({item->segments_done, files->size(), item->bytes_done, bytes_total,
                            sum.rows});
        free_slots.push(item->slot);
    };
    tbb::parallel_pipeline(
        slots,
        tbb::make_filter<void, scan_item*>(tbb::filter_mode::serial_in_order, produce) &
            tbb::make_filter<scan_item*, scan_item*>(tbb::filter_mode::parallel, decode) &
            tbb::make_filter<scan_item*, void>(tbb::filter_mode::serial_in_order, deliver));
    if (hooks.progress)
        hooks.progress({files->size(), files->size(), bytes_total, bytes_total, sum.rows});
    return sum;
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
