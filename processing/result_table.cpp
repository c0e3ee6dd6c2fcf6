#include "processing/result_table.h"

#include <map>
#include <tuple>
#include <vector>

#include "storage/table_reader.h"

namespace sluice::processing {

storage::table_schema result_table_schema(const compiled_query& q) {
    std::vector<storage::column_def> values;
    size_t i = 0;
    for (const auto& s : q.aggs.slots()) {
        size_t n = s.kind == agg_kind::quantile ? s.quantiles.size() : 1;
        bool integer = s.kind == agg_kind::count || s.kind == agg_kind::distinct;
        for (size_t k = 0; k < n; ++k, ++i)
            values.push_back({q.value_columns[i],
                              integer ? storage::column_type::u64 : storage::column_type::f64});
    }
    return storage::window_schema(q.def.name, q.group_columns, values);
}

void write_result_row(storage::segment_writer& writer, const compiled_query& q,
                      const result_row& row, uint64_t revision, uint32_t event_bytes_max) {
    auto& b = writer.batch();
    b.push_i64(storage::window_col::window_start_ms, row.start_ms);
    b.push_i64(storage::window_col::window_end_ms, row.end_ms);
    int col = storage::window_col::first_group;
    for (std::string_view part : split_key(q, row.key))
        b.push_string(col++, part.substr(0, event_bytes_max));
    for (const auto& v : row.values) {
        if (v.is_integer)
            b.push_u64(col++, v.integer);
        else
            b.push_f64(col++, v.real);
    }
    b.push_u64(col, revision);
    b.end_row();
    writer.commit_row();
}

result<stored_windows> read_stored_windows(const std::string& data_dir, const std::string& table,
                                           int64_t from_ms, int64_t to_ms, size_t limit) {
    stored_windows out;
    // (end, start, group) -> (revision, row): only the `limit` newest windows seen so far.
    // A scan reads the whole table (a session query stores a row per session: millions
    // within the retention age), so holding every row until the end costs memory in
    // proportion to the table for a reply of `limit` rows — tens of MiB per request that
    // the control threads' malloc arenas then keep or return at random (the soak's RSS
    // swings, docs/RELIABILITY.md). A window older than the oldest of `limit` kept ones
    // can never be in the reply, and stays out when a later revision of it comes: the
    // oldest kept only gets newer.
    using key = std::tuple<int64_t, int64_t, std::string>;
    std::map<key, std::pair<uint64_t, std::vector<result_cell>>> newest;
    auto scanned =
        storage::scan_table(data_dir, table, from_ms, to_ms, [&](const storage::column_batch& b) {
            const auto& cols = b.schema().columns;
            if (cols.size() < 3 || cols.back().name != "revision") return;
            if (out.columns.empty())
                for (size_t c = 0; c + 1 < cols.size(); ++c)
                    out.columns.push_back(cols[c].name);
            for (uint32_t r = 0; r < b.rows(); ++r) {
                std::string group;
                for (size_t c = size_t(storage::window_col::first_group); c + 1 < cols.size(); ++c)
                    if (cols[c].type == storage::column_type::string ||
                        cols[c].type == storage::column_type::bytes) {
                        group += b.string_at(int(c), r);
                        group += '\0';
                    }
                key k(b.i64_at(storage::window_col::window_end_ms, r),
                      b.i64_at(storage::window_col::window_start_ms, r), std::move(group));
                uint64_t revision = b.u64_at(int(cols.size() - 1), r);
                auto it = newest.find(k);
                if (it != newest.end() && it->second.first > revision) continue;
                if (it == newest.end() && (limit == 0 || (newest.size() == limit && k < newest.begin()->first))) {
                    out.truncated = true; // older than every window kept: not in the reply
                    continue;
                }
                std::vector<result_cell> row;
                row.reserve(cols.size() - 1);
                for (size_t c = 0; c + 1 < cols.size(); ++c) {
                    switch (cols[c].type) {
                    case storage::column_type::i64: row.emplace_back(b.i64_at(int(c), r)); break;
                    case storage::column_type::u64: row.emplace_back(b.u64_at(int(c), r)); break;
                    case storage::column_type::u8:
                        row.emplace_back(uint64_t(b.u8_at(int(c), r)));
                        break;
                    case storage::column_type::f64: row.emplace_back(b.f64_at(int(c), r)); break;
                    case storage::column_type::string:
                    case storage::column_type::bytes:
                        row.emplace_back(std::string(b.string_at(int(c), r)));
                        break;
                    }
                }
                if (it != newest.end()) {
                    it->second = {revision, std::move(row)};
                    continue;
                }
                newest.emplace(std::move(k), std::make_pair(revision, std::move(row)));
                if (newest.size() > limit) {
                    newest.erase(newest.begin());
                    out.truncated = true;
                }
            }
        });
    if (!scanned) return std::move(scanned).err();
    for (auto it = newest.rbegin(); it != newest.rend(); ++it)
        out.rows.push_back(std::move(it->second.second));
    return out;
}

} // namespace sluice::processing
