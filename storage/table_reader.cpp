#include "storage/table_reader.h"

#include <cstring>
#include <optional>

#include "base/log.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"

namespace sluice::storage {

void filter_rows_by_time(column_batch& batch, int tc, int64_t from_ms, int64_t to_ms) {
    const uint32_t rows = batch.rows();
    uint32_t kept = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        int64_t t = batch.i64_at(tc, r);
        if (t < from_ms || t > to_ms) continue;
        if (kept != r) {
            for (int c = 0; c < int(batch.schema().columns.size()); ++c) {
                auto& col = batch.col(c);
                if (col.type != column_type::string) {
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
    for (int c = 0; c < int(batch.schema().columns.size()); ++c) {
        auto& col = batch.col(c);
        if (col.type == column_type::string) col.arena_used = kept == 0 ? 0 : col.offsets[kept - 1];
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
        ++sum.segments;
        if (!rd) {
            SLUICE_LOG_WARN("skipping %s (run recovery)", rd.err().message.c_str());
            ++sum.damaged_segments;
            continue;
        }
        auto& reader = **rd;
        const table_schema& schema = reader.schema();
        const int tc = schema.time_column;
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
            SLUICE_LOG_WARN("%s; the rest of the segment is not served (run recovery)",
                            reader.damage().c_str());
            ++sum.damaged_segments;
        }
    }
    return sum;
}

result<std::vector<table_info>> list_table_infos(const std::string& data_dir) {
    auto names = list_tables(data_dir);
    if (!names) return std::move(names).err();
    std::vector<table_info> out;
    for (const auto& name : *names) {
        auto files = list_segments(data_dir + "/" + name);
        if (!files || files->empty()) continue;
        table_info t{name, files->size(), 0, 0};
        for (const auto& f : *files) {
            auto rd = segment_reader::open(f.path);
            if (!rd) {
                ++t.damaged_segments;
                continue;
            }
            while ((*rd)->next_block()) {
            }
            if ((*rd)->end() == segment_reader::end_state::damaged) ++t.damaged_segments;
            // Rows before a damaged block are counted: they are what a scan serves, except
            // that a bad payload is only found by reading it.
            t.rows += (*rd)->rows_seen();
        }
        out.push_back(std::move(t));
    }
    return out;
}

} // namespace sluice::storage
