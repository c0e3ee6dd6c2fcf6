#pragma once
// event_replayer: stored events through queries' windows again (event sourcing, §4
// "replay", §3 "exactly-once across a crash"). The restart rebuild of open windows
// (processing/merger_restore.cpp) and `replay` of a time range (range_replay.h) both
// call replay_events(); each then decides which of the resulting windows to write.
//
// Every stored event is parsed again (the RX's parser, through parser_factory), filtered,
// keyed and aggregated as a worker did, and judged by window_assigner.h's rule with the
// M it was judged by live (events.max_time_ms) and the floor its run had
// (floor_history): what a query computed live is computed again, exactly. Segments are
// read in parallel with TBB (off-lcore work, §1), each task with its own parser and
// partial window_merger per query; partials merge exactly in any order
// (window_merger.h), so the result does not depend on the split.
//
// I/O: only storage's segment listing and reader. Control path (threads, allocation).
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/limits.h"
#include "base/result.h"
#include "processing/event.h"
#include "processing/query_runtime.h"
#include "processing/window_merger.h"

namespace sluice::processing {

// Turns a stored event's raw bytes back into a slot, as the RX did (the parser lives in
// dataplane/, which processing/ does not depend on). One per replay task.
class stored_event_parser {
  public:
    virtual ~stored_event_parser() = default;
    virtual void parse(std::string_view raw, event_slot& out) = 0;
};
using parser_factory = std::function<std::unique_ptr<stored_event_parser>()>;

// The watermark floor of each run of a query (window_assigner.h): a run's floor applies
// to the events segments it wrote, from its workers' first segments on.
struct floor_epoch {
    std::map<std::string, uint64_t> first_segment; // events writer ("w0"...) -> first seq
    int64_t floor_ms = INT64_MIN;
};
struct floor_history {
    // Segments written before the first epoch (before any restart, or by a store whose
    // checkpoints predate floor histories).
    int64_t base_floor_ms = INT64_MIN;
    std::vector<floor_epoch> epochs; // in run order

    // The floor in force for events segment (writer, seq): the last epoch that names
    // the writer with a first segment at or before seq.
    int64_t floor_for(const std::string& writer, uint64_t seq) const noexcept;
    // Appends a run's epoch; when its floor equals the last one, that epoch covers it
    // (writers it lacked are added). At most limits::floor_epochs_max: the oldest are
    // dropped, and their runs' events are judged by the base floor. True if it changed.
    bool add(const floor_epoch& epoch);
};

struct replay_query {
    std::shared_ptr<const compiled_query> query;
    int64_t from_ms = INT64_MIN; // events with event time >= from_ms
    floor_history floors;
};

struct replay_scan {
    std::string data_dir;
    int64_t to_ms = INT64_MAX; // events with event time < to_ms
    uint32_t event_bytes_max = limits::event_bytes_default;
    parser_factory make_parser;
};

struct replay_progress {
    std::atomic<uint64_t> events_read{0};  // stored events in range, parsed
    std::atomic<uint64_t> rows_written{0}; // (the caller's: rows it wrote from the result)
    std::atomic<uint64_t> segments_done{0};
    std::atomic<uint64_t> segments_total{0};
};

// Runs the events table's events of [min from_ms, to_ms) through every query. Returns one
// window_merger per query (same order) holding every window the events made, merged and
// not finished; the caller takes them (window_merger::take_all). An unreadable segment is
// an error; *cancel (when given) stops early with errc::busy.
result<std::vector<std::unique_ptr<window_merger>>>
replay_events(const replay_scan& scan, const std::vector<replay_query>& queries,
              replay_progress& progress, const std::atomic<bool>* cancel = nullptr);

} // namespace sluice::processing
