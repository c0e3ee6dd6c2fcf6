#pragma once
// query_service's private parts shared by its two halves: query_service.cpp (start-up,
// registry, the merger thread) and query_commands.cpp (the control-thread handlers).
// Include only from those two files.
#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <rte_ring.h>

#include "control/query_service.h"
#include "control/replay.h"
#include "processing/event_replayer.h"
#include "processing/query_runtime.h"
#include "processing/window_merger.h"
#include "storage/segment_writer.h"

namespace sluice::control {

namespace query_detail {

inline constexpr int op_timeout_ms = 10'000;

inline json fail(const std::string& message) {
    return json{{"ok", false}, {"error", message}};
}

} // namespace query_detail

// A worker's partial rings to the merger and back, and its buffers.
struct query_service::link {
    uint32_t worker = 0;
    rte_ring* to_merger = nullptr;
    rte_ring* free = nullptr;
    std::vector<std::unique_ptr<char[]>> buffers;
};

struct query_service::entry {
    std::shared_ptr<processing::compiled_query> query;
    std::unique_ptr<processing::query_merger> merger;
    std::unique_ptr<storage::segment_writer> writer;
    storage::table_schema schema;
    std::atomic<uint64_t> rows_emitted{0};
    uint64_t rows_written = 0;
    // Checkpoint: written once the rows emitted up to it are durable.
    bool checkpoint_pending = false;
    uint64_t checkpoint_rows = 0;
    int64_t checkpoint_from = INT64_MIN, checkpoint_closed = INT64_MIN;
    int64_t checkpoint_written_from = INT64_MIN, checkpoint_written_closed = INT64_MIN;
    int64_t checkpoint_last_ns = 0;
    // Restart: the watermark floor, the floors of the runs before (they judged the stored
    // events: processing/window_assigner.h) and the open cells to hand to the workers.
    int64_t floor_ms = INT64_MIN;
    processing::floor_history floors;
    struct cell {
        int64_t start, end;
        std::string key;
        std::vector<uint8_t> blob;
    };
    std::vector<cell> reopened;
};

struct query_service::op {
    virtual ~op() = default;
    // Runs on the merger thread; true once finished (the promise is then set).
    virtual bool step(query_service& s) = 0;
    // Snapshot routing (live view of open windows).
    virtual bool wants(const processing::partial_batch&) const { return false; }
    virtual void take(const processing::partial_batch&) {}
    virtual bool holds_back(const processing::partial_batch&) const { return false; }
    // The query `name` (merger thread), or nullptr once the reply says there is none.
    entry* find_or_reply(query_service& s, const std::string& name) {
        entry* e = s.find(name);
        if (e == nullptr)
            reply.set_value(
                query_detail::fail("no query named \"" + name + "\" (see sluicectl queries list)"));
        return e;
    }
    std::promise<json> reply;
};

struct query_service::replay_job {
    uint64_t id = 0; // also the rows' revision
    std::string query;
    int64_t from_ms = 0, to_ms = 0;
    replay_progress progress;
    std::atomic<int> state{0}; // 0 running, 1 done, 2 failed
    std::string error;         // set before state = 2
    std::thread thread;
};

} // namespace sluice::control
