#pragma once
// Reading back what a previous run stored, for a restart (§3 "Dedup state survives a
// restart", "exactly-once across a crash"). Control path, before the lcores start.
//
// Dedup state is rebuilt from the events table, not from snapshots: the table is the
// record of what was accepted and made durable, so it can be neither behind nor ahead
// of it. A snapshot taken between group commits could remember an identity whose event
// was lost with the crash (a re-sent copy would then be dropped as a duplicate: a loss)
// or miss one that was stored (a re-sent copy stored twice). The cost is one scan of
// the last dedup horizon of (identity, event time), pruned by block headers.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "base/result.h"
#include "processing/dedup_filter.h"
#include "processing/event.h"

namespace sluice::processing {

// The largest stored event time (block headers only); no_time for an empty store.
result<int64_t> stored_max_event_time(const std::string& data_dir);

// What a run records about itself before its workers start (<data_dir>/_processing/run):
// the M its workers started from and, per worker, the first events segment it wrote.
struct run_record {
    int64_t start_max_time_ms = no_time;
    std::map<std::string, uint64_t> first_segment; // writer -> seq
};
result<std::optional<run_record>> read_run_record(const std::string& data_dir);
result<void> write_run_record(const std::string& data_dir, const run_record& run);

// The M a restarted run starts from: over the last run's workers, the smallest M of
// each one's last durable event (its start M when it made none durable). An event that
// was not durable at the crash came after its own worker's last durable one, so its M
// was at least this: re-sent, it is judged against the same watermark or an earlier
// one, never a later one (and the queries' floors keep closed windows closed). Without
// a run record (a store from before them), the smallest last M among the writers.
result<int64_t> restored_max_time(const std::string& data_dir, const std::optional<run_record>& last);

// Inserts the identity of every stored event with event time >= from_ms into the dedup
// filter of the worker that owns it (owner_worker over filters.size() workers), each
// judged with M = max_time_ms; returns how many were read. A block's identities go in
// per worker through check_and_insert_burst, which leaves each table as inserting them
// one by one in the same order would.
result<uint64_t> reload_dedup(const std::string& data_dir, int64_t from_ms, int64_t max_time_ms,
                              std::span<dedup_filter* const> filters);

} // namespace sluice::processing
