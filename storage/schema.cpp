#include "storage/schema.h"

namespace sluice::storage {

int table_schema::column_index(std::string_view name) const noexcept {
    for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i].name == name) return int(i);
    return -1;
}

table_schema events_schema() {
    namespace c = events_col;
    return {"events",
            {{"event_time_ms", column_type::i64},
             {"event_id", column_type::string, true},
             {"user_id", column_type::string},
             {"event_type", column_type::string},
             {"page", column_type::string},
             {"late", column_type::u8},
             {"raw", column_type::string, false,
              {c::event_id, c::user_id, c::event_type, c::page, c::event_time_ms}},
             {"max_time_ms", column_type::i64}},
            c::event_time_ms};
}

table_schema dead_letters_schema() {
    return {"dead_letters",
            {{"received_ms", column_type::i64},
             {"reason", column_type::string},
             {"raw_len", column_type::u64},
             {"raw", column_type::bytes}},
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
