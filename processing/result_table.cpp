#include "processing/result_table.h"

#include <vector>

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

} // namespace sluice::processing
