#pragma once
// Replay of a time range (event sourcing, issue 5 item 7): re-runs the stored events of
// [from, to) through one query's windows and aggregates to rebuild its results, e.g.
// after the query was added at run time (its history) or to repair a range. The events
// go through processing/event_replayer.h (the same rule as live windows and the restart
// rebuild); this file picks the windows to write and writes them as their own segment
// (writer `r<revision>`) into the query's table: live ingest, the workers and the merger
// are never touched. The rows carry `revision` (the replay's id, larger than any before
// it); readers keep the newest revision of a window (`windows` does), so a replay
// replaces what it recomputes. processing::merger runs these as background jobs.
//
// Windows written: tumbling and hopping windows inside [from, to); sessions that start
// at or after `from` and end at or before `to` (events from `from - gap` on are read,
// so a session that began earlier is never cut short). Only windows the live query has
// closed (end <= closed_until_ms) are written. Lateness is judged as it was live (each
// event's stored max_time_ms and its run's watermark floor): a replay of a range a
// query saw live writes the same rows.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "base/limits.h"
#include "base/result.h"
#include "processing/event_replayer.h"
#include "processing/query_runtime.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace sluice::processing {

struct replay_request {
    std::shared_ptr<const compiled_query> query;
    parser_factory make_parser; // the RX's parser, holding the query's fields
    floor_history floors;       // the query's runs' floors
    std::string data_dir;
    int64_t from_ms = 0;
    int64_t to_ms = 0;
    int64_t closed_until_ms = INT64_MIN; // the live query's merger watermark
    uint64_t revision = 1;
    uint32_t event_bytes_max = limits::event_bytes_default;
    storage::table_schema schema; // the query's table
    // The query table's writer options, whole (codec, group commit, segment size): a
    // replayed revision is stored like the live rows. The writer name is set here.
    storage::writer_config writer;
};

// Runs the replay to the end (or until *cancel); the rows are durable when it returns.
result<void> run_replay(const replay_request& req, replay_progress& progress,
                        const std::atomic<bool>& cancel);

} // namespace sluice::processing
