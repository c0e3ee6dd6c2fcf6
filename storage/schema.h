#pragma once
// Table schemas: storage knows columns and files, not events' JSON.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::storage {

// `string` holds text (exported as UTF-8 strings); `bytes` holds arbitrary bytes
// (exported as binary). Both are stored alike. f64: IEEE 754 doubles (aggregates).
enum class column_type : uint8_t { i64 = 1, u64 = 2, u8 = 3, string = 4, bytes = 5, f64 = 6 };

constexpr bool is_variable(column_type t) noexcept {
    return t == column_type::string || t == column_type::bytes;
}

struct column_def {
    std::string name;
    column_type type;
    bool nullable = false;
    // For string/bytes columns: earlier columns of the same row whose text usually
    // appears inside this column's values (the raw event holds its parsed fields). The
    // encoder stores such values as a skeleton that refers to them (docs/FORMAT.md,
    // encoding ref_packed_string). At most format::refs_max; each index below this column's.
    std::vector<int> refs{};
};

struct table_schema {
    std::string name;                 // directory name under the data dir
    std::vector<column_def> columns;
    int time_column = -1;             // i64 column holding the row's time (ms), for footers/pruning

    // The index of the column called `name`, or -1: tables written by older builds may
    // lack a column added since (events' max_time_ms, a window table's revision).
    int column_index(std::string_view name) const noexcept;
};

// The built-in tables (docs/FORMAT.md lists their columns).
namespace events_col {
// max_time_ms: the largest event time the worker had seen when it took the event (the
// watermark's basis), so that replay and restart judge lateness exactly as live.
enum : int { event_time_ms, event_id, user_id, event_type, page, late, raw, max_time_ms, count_ };
}
namespace dead_letters_col {
enum : int { received_ms, reason, raw_len, raw, count_ };
}
// A continuous query's results: window_start_ms, window_end_ms, one string column per
// group-by field, the aggregates' columns, then revision (0 = live, n = replay n).
namespace window_col {
enum : int { window_start_ms, window_end_ms, first_group };
}

// events: every accepted event. `event_id` is null when the event had none (its
// identity is then the hash of `raw`, see storage/event_identity.h); `raw` is the
// event's exact bytes.
table_schema events_schema();
table_schema dead_letters_schema();
table_schema window_schema(const std::string& query_name, const std::vector<std::string>& group_columns,
                           const std::vector<column_def>& value_columns);

} // namespace sluice::storage
