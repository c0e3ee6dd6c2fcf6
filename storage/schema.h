#pragma once
// Table schemas: storage knows columns and files, not events' JSON.
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::storage {

// (5 is kept free for storage's `bytes` type, on its way from issue 5.)
enum class column_type : uint8_t { i64 = 1, u64 = 2, u8 = 3, string = 4, f64 = 6 };

struct column_def {
    std::string name;
    column_type type;
};

struct table_schema {
    std::string name;                 // directory name under the data dir
    std::vector<column_def> columns;
    int time_column = -1;             // i64 column holding the row's time (ms), for footers/pruning
};

// The built-in tables (docs/FORMAT.md lists their columns).
namespace events_col {
// max_time_ms: the largest event time the worker had seen when it took the event (the
// watermark's basis), so that replay and restart judge lateness exactly as live.
enum : int {
    event_time_ms, id_hi, id_lo, event_id, user_id, event_type, page, late, raw, max_time_ms, count_
};
}
namespace dead_letters_col {
enum : int { received_ms, reason, raw_len, raw, count_ };
}
// A continuous query's results: window_start_ms, window_end_ms, one string column per
// group-by field, the aggregates' columns, then revision (0 = live, n = replay n).
namespace window_col {
enum : int { window_start_ms, window_end_ms, first_group };
}

table_schema events_schema();
table_schema dead_letters_schema();
table_schema window_schema(const std::string& query_name, const std::vector<std::string>& group_columns,
                           const std::vector<column_def>& value_columns);

} // namespace sluice::storage
