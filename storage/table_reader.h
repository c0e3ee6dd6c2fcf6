#pragma once
// Reading whole tables of a data dir: time-range scans (offline reader, replay, export,
// dedup rebuild) and the list of tables. Control path; never on an lcore.
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/column_batch.h"
#include "storage/event_identity.h"

namespace sluice::storage {

struct scan_summary {
    uint64_t segments = 0;
    uint64_t segments_skipped = 0; // pruned whole by their footer's min/max time
    uint64_t blocks_read = 0;
    uint64_t blocks_skipped = 0; // pruned by their header's min/max time
    uint64_t rows = 0;           // rows passed to fn
    uint64_t damaged_segments = 0; // torn or corrupt: read up to the damage, then skipped
};

// Calls fn with the rows of `table` whose time column is in [from_ms, to_ms] (inclusive),
// segment by segment in (writer, seq) order, block by block; within a writer, rows come
// in the order they were appended. A closed segment entirely outside the range is
// skipped by its footer, a block by its header, without reading their data. A torn or
// corrupt block ends that segment's scan with a warning (the rows before it are served,
// never the bad block's); recovery repairs it at the daemon's next start. A segment
// deleted while the scan runs (retention) is skipped. Tables without a time column are
// not filtered. Blocks are read and decoded in parallel (TBB); fn is called one block
// at a time, in order, possibly on a TBB thread. The batch is valid only during the call.
result<scan_summary> scan_table(const std::string& data_dir, const std::string& table,
                                int64_t from_ms, int64_t to_ms,
                                const std::function<void(const column_batch&)>& fn);

// How far a scan is, in segment files walked (read, or pruned by footer and block
// headers) out of the segments and bytes the table had when the scan began. Rows a
// writer appends during the scan are served but not counted in bytes_total, so
// bytes_done never exceeds it; every field only grows.
struct scan_progress {
    uint64_t segments_done = 0;
    uint64_t segments_total = 0;
    uint64_t bytes_done = 0;
    uint64_t bytes_total = 0;
    uint64_t rows = 0; // rows delivered so far
};

// scan_table with work of the caller's in the parallel stage: `transform` runs on TBB
// threads for several blocks at once, right after a block is decoded and filtered;
// `deliver` then runs once per block, in scan order, one call at a time. Both get the
// block's slot, 0 .. scan_slots() - 1: the caller keeps per-slot state (e.g. the text of
// an export) in an array of scan_slots() entries; a slot is not reused before deliver
// returned. `progress` runs in the same serial stage after each block (delivered,
// filtered empty or damaged), never per row, and once more at the end with
// bytes_done == bytes_total and segments_done == segments_total. Any function may be
// empty.
struct scan_hooks {
    std::function<void(const column_batch&, size_t slot)> transform;
    std::function<void(const column_batch&, size_t slot)> deliver;
    std::function<void(const scan_progress&)> progress;
};
size_t scan_slots() noexcept;
result<scan_summary> scan_table_parallel(const std::string& data_dir, const std::string& table,
                                         int64_t from_ms, int64_t to_ms, const scan_hooks& hooks);

// One stored event's identity and event time.
struct identity_row {
    event_identity id;
    int64_t event_time_ms;
};
// Scans the `events` table like scan_table and calls fn with each block's rows as
// (identity, event time), in the same order; the span is valid only during the call.
// For rebuilding dedup state from the store (storage/event_identity.h says how an
// identity is derived).
result<scan_summary> scan_event_identities(const std::string& data_dir, int64_t from_ms,
                                           int64_t to_ms,
                                           const std::function<void(std::span<const identity_row>)>& fn);

struct table_info {
    std::string name;
    uint64_t segments = 0;
    uint64_t rows = 0;        // from footers, or block headers when a segment has none
    uint64_t bytes = 0;       // file sizes
    int64_t min_time_ms = std::numeric_limits<int64_t>::max(); // over rows (time tables)
    int64_t max_time_ms = std::numeric_limits<int64_t>::min();
    uint64_t damaged_segments = 0;
};
// Tables (directories holding segments) of a data dir, by name.
result<std::vector<table_info>> list_table_infos(const std::string& data_dir);

// Keeps the rows whose time column is in [from_ms, to_ms], in order (in place).
void filter_rows_by_time(column_batch& batch, int time_column, int64_t from_ms, int64_t to_ms);

} // namespace sluice::storage
