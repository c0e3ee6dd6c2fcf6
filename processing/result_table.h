#pragma once
// A query's result table (§8: `<data_dir>/<query>/`): its schema and how one window's row
// is written, for the live merger, the restart rebuild and replay alike.
//   window_start_ms, window_end_ms, one string column per group-by field, one column per
//   aggregate value (u64 for count and distinct, f64 otherwise), revision (0: live;
//   a replay's id otherwise).
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"

#include "processing/query_runtime.h"
#include "processing/window_merger.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace sluice::processing {

storage::table_schema result_table_schema(const compiled_query& q);

// One result row into a query table; group values longer than event_bytes_max are cut.
void write_result_row(storage::segment_writer& writer, const compiled_query& q,
                      const result_row& row, uint64_t revision, uint32_t event_bytes_max);

// A stored result row's cell, as its column's type (u8 reads as u64; an f64 may be NaN).
using result_cell = std::variant<int64_t, uint64_t, double, std::string>;

struct stored_windows {
    std::vector<std::string> columns;           // the table's, without revision
    std::vector<std::vector<result_cell>> rows; // without revision; newest first
    bool truncated = false;                     // more than `limit` windows
};

// The closed windows a query table holds in [from_ms, to_ms) (storage's scan), the
// newest revision of each window — a replay's rows replace the live ones — newest
// window first (by end, then start, then group, descending), at most `limit`.
// errc::not_found when there is no such table.
result<stored_windows> read_stored_windows(const std::string& data_dir, const std::string& table,
                                           int64_t from_ms, int64_t to_ms, size_t limit);

} // namespace sluice::processing
