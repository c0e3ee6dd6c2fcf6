#include "storage/schema.h"

namespace sluice::storage {

table_schema events_schema() {
    return {"events",
            {{"event_time_ms", column_type::i64},
             {"id_hi", column_type::u64},
             {"id_lo", column_type::u64},
             {"event_id", column_type::string},
             {"user_id", column_type::string},
             {"event_type", column_type::string},
             {"page", column_type::string},
             {"late", column_type::u8},
             {"raw", column_type::string},
             {"max_time_ms", column_type::i64}},
            events_col::event_time_ms};
}

table_schema dead_letters_schema() {
    return {"dead_letters",
            {{"received_ms", column_type::i64},
             {"reason", column_type::string},
             {"raw_len", column_type::u64},
             {"raw", column_type::string}},
            dead_letters_col::received_ms};
}

table_schema window_schema(const std::string& query_name, const std::vector<std::string>& group_columns,
                           const std::vector<column_def>& value_columns) {
    table_schema s{query_name,
                   {{"window_start_ms", column_type::i64}, {"window_end_ms", column_type::i64}},
                   window_col::window_end_ms};
    for (const auto& g : group_columns) s.columns.push_back({g, column_type::string});
    for (const auto& v : value_columns) s.columns.push_back(v);
    s.columns.push_back({"revision", column_type::u64});
    return s;
}

} // namespace sluice::storage
