#pragma once
// A query's result table (§8: `<data_dir>/<query>/`): its schema and how one window's row
// is written, for the live merger, the restart rebuild and replay alike.
//   window_start_ms, window_end_ms, one string column per group-by field, one column per
//   aggregate value (u64 for count and distinct, f64 otherwise), revision (0: live;
//   a replay's id otherwise).
#include <cstdint>

#include "processing/query_runtime.h"
#include "processing/window_merger.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace sluice::processing {

storage::table_schema result_table_schema(const compiled_query& q);

// One result row into a query table; group values longer than event_bytes_max are cut.
void write_result_row(storage::segment_writer& writer, const compiled_query& q,
                      const result_row& row, uint64_t revision, uint32_t event_bytes_max);

} // namespace sluice::processing
