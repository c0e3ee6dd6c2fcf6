#include "storage/row_log.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <system_error>

#include "storage/segment_files.h"
#include "storage/segment_reader.h"

namespace sluice::storage {
namespace {

// Rows of a segment: its footer's count when it has one, else its whole blocks.
uint64_t count_rows(segment_reader& r, bool& closed, int64_t* max_time_ms = nullptr) {
    format::footer f;
    closed = r.peek_footer(f);
    if (closed && max_time_ms) *max_time_ms = f.max_time_ms;
    if (closed) return f.rows;
    while (r.next_block()) {
    }
    return r.rows_seen();
}

} // namespace

result<std::vector<log_segment>> list_log_segments(const std::string& table_dir,
                                                   const std::string& writer,
                                                   const std::vector<log_segment>* known) {
    auto files = list_segments(table_dir);
    if (!files) return std::move(files).err();
    std::vector<log_segment> out;
    uint64_t next = 0;
    size_t k = 0;
    for (const auto& f : *files) {
        if (f.writer != writer) continue;
        if (known) {
            while (k < known->size() && (*known)[k].seq < f.seq) ++k;
            if (k < known->size() && (*known)[k].seq == f.seq && (*known)[k].closed) {
                out.push_back((*known)[k]);
                next = out.back().first_offset + out.back().rows;
                continue;
            }
        }
        auto r = segment_reader::open(f.path);
        if (!r) continue; // deleted by retention meanwhile, or unreadable: never served
        log_segment s;
        s.path = f.path;
        s.seq = f.seq;
        s.first_offset = (*r)->meta().first_row_offset.value_or(next);
        s.rows = count_rows(**r, s.closed, &s.max_time_ms);
        next = s.first_offset + s.rows;
        out.push_back(std::move(s));
    }
    return out;
}

result<uint64_t> next_row_offset(const std::string& table_dir, const std::string& writer) {
    auto live = list_log_segments(table_dir, writer);
    if (!live) {
        if (live.err().code == errc::not_found) return uint64_t(0);
        return std::move(live).err();
    }
    uint64_t next = live->empty() ? 0 : live->back().first_offset + live->back().rows;
    for (const auto& s : *live) next = std::max(next, s.first_offset + s.rows);
    // Segments moved aside keep their offsets: rows of them may have been read.
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(table_dir, ec)) {
        segment_file f;
        const std::string name = e.path().filename().string();
        if (!name.ends_with(".corrupt") || !parse_segment_name(name, f, true) ||
            f.writer != writer)
            continue;
        auto r = segment_reader::open(e.path().string());
        if (!r || !(*r)->meta().first_row_offset) continue;
        bool closed;
        const uint64_t rows = count_rows(**r, closed);
        next = std::max(next, *(*r)->meta().first_row_offset + rows);
    }
    return next;
}

result<void> read_log_rows(const log_segment& s, uint64_t from, uint64_t to,
                           const std::function<bool(const column_batch&, uint64_t)>& fn,
                           const std::function<block_step(uint64_t, uint64_t)>& before) {
    auto r = segment_reader::open(s.path);
    if (!r) return std::move(r).err();
    segment_reader& reader = **r;
    column_batch batch(reader.schema(), 1, 0, 0);
    uint64_t offset = s.first_offset;
    while (offset < to && reader.next_block()) {
        const uint64_t rows = reader.block().rows;
        const block_step step = offset + rows <= from ? block_step::skip
                                : before                ? before(offset, rows)
                                                        : block_step::read;
        if (step == block_step::stop) break;
        if (step == block_step::read) {
            if (auto ok = reader.read_block(batch); !ok) return ok;
            if (!fn(batch, offset)) break;
        }
        offset += rows;
    }
    return ok_result();
}

} // namespace sluice::storage
