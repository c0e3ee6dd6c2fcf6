#pragma once
// Reading whole tables of a data dir: time-range scans (offline reader, replay, export)
// and the list of tables. Control path; never on an lcore.
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/column_batch.h"

namespace sluice::storage {

struct scan_summary {
    uint64_t segments = 0;
    uint64_t blocks_read = 0;
    uint64_t blocks_skipped = 0; // pruned by their header's min/max time
    uint64_t rows = 0;           // rows passed to fn
    uint64_t damaged_segments = 0; // torn or corrupt: read up to the damage, then skipped
};

// Calls fn with the rows of `table` whose time column is in [from_ms, to_ms] (inclusive),
// segment by segment in (writer, seq) order, block by block. Blocks entirely outside the
// range are skipped by their header without being read. A torn or corrupt block ends
// that segment's scan with a warning (the rows before it are served, never the bad
// block's); run recovery to repair. Tables without a time column are not filtered.
// The batch passed to fn is valid only during the call.
result<scan_summary> scan_table(const std::string& data_dir, const std::string& table,
                                int64_t from_ms, int64_t to_ms,
                                const std::function<void(const column_batch&)>& fn);

struct table_info {
    std::string name;
    uint64_t segments = 0;
    uint64_t rows = 0;        // from footers, or block headers when a segment has none
    uint64_t damaged_segments = 0;
};
// Tables (directories holding segments) of a data dir, by name.
result<std::vector<table_info>> list_table_infos(const std::string& data_dir);

// Keeps the rows whose time column is in [from_ms, to_ms], in order (in place).
void filter_rows_by_time(column_batch& batch, int time_column, int64_t from_ms, int64_t to_ms);

} // namespace sluice::storage
