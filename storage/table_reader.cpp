#include "storage/table_reader.h"

#include <cstring>
#include <optional>

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

result<scan_summary> scan_table(const std::string& data_dir, const std::string& table,
                                int64_t from_ms, int64_t to_ms,
                                const std::function<void(const column_batch&)>& fn) {
    auto files = list_segments(data_dir + "/" + table);
    if (!files) {
        if (files.err().code == errc::not_found)
            return make_error(errc::not_found, "no table '" + table + "' in " + data_dir);
        return std::move(files).err();
    }
    scan_summary sum;
    for (const auto& f : *files) {
        auto rd = segment_reader::open(f.path);
        if (!rd) {
            if (rd.err().code == errc::not_found) continue; // removed by retention meanwhile
            ++sum.segments;
            SLUICE_LOG_WARN("skipping %s (recovery repairs it at the next start)",
                            rd.err().message.c_str());
            ++sum.damaged_segments;
            continue;
        }
        ++sum.segments;
        auto& reader = **rd;
        const table_schema& schema = reader.schema();
        const int tc = schema.time_column;
        format::footer footer;
        if (tc >= 0 && reader.peek_footer(footer) &&
            (footer.rows == 0 || footer.max_time_ms < from_ms || footer.min_time_ms > to_ms)) {
            ++sum.segments_skipped;
            continue;
        }
        // The batch points at the reader's schema; the decoder sizes it.
        column_batch batch(schema, 1, 0, 0);
        while (reader.next_block()) {
            const auto& h = reader.block();
            if (tc >= 0 && (h.rows == 0 || h.max_time_ms < from_ms || h.min_time_ms > to_ms)) {
                ++sum.blocks_skipped;
                continue;
            }
            if (!reader.read_block(batch)) break;
            ++sum.blocks_read;
            if (tc >= 0 && (h.min_time_ms < from_ms || h.max_time_ms > to_ms))
                filter_rows_by_time(batch, tc, from_ms, to_ms);
            if (batch.empty()) continue;
            sum.rows += batch.rows();
            fn(batch);
        }
        if (reader.end() == segment_reader::end_state::damaged) {
            SLUICE_LOG_WARN("%s; the rest of the segment is not served (recovery repairs it "
                            "at the next start)",
                            reader.damage().c_str());
            ++sum.damaged_segments;
        }
    }
    return sum;
}

result<scan_summary> scan_event_identities(
    const std::string& data_dir, int64_t from_ms, int64_t to_ms,
    const std::function<void(std::span<const identity_row>)>& fn) {
    namespace ev = events_col;
    std::vector<identity_row> rows;
    std::string schema_error;
    auto r = scan_table(data_dir, "events", from_ms, to_ms, [&](const column_batch& b) {
        const auto& cols = b.schema().columns;
        // Segments carry their own schema: find the columns by name and type.
        if (cols.size() <= ev::raw || cols[ev::event_time_ms].name != "event_time_ms" ||
            cols[ev::event_id].name != "event_id" || !cols[ev::event_id].nullable ||
            cols[ev::raw].name != "raw") {
            schema_error = "the events table's segments do not have the events schema";
            return;
        }
        rows.resize(b.rows());
        for (uint32_t i = 0; i < b.rows(); ++i) {
            rows[i].id = identity_of_stored_event(!b.is_null(ev::event_id, i),
                                                  b.string_at(ev::event_id, i),
                                                  b.string_at(ev::raw, i));
            rows[i].event_time_ms = b.i64_at(ev::event_time_ms, i);
        }
        fn(std::span<const identity_row>(rows.data(), rows.size()));
    });
    if (!schema_error.empty()) return make_error(errc::corrupt, schema_error + " in " + data_dir);
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
