#pragma once
// merger's private parts shared by its files: merger.cpp (start-up, the thread, reads),
// merger_restore.cpp (restart rebuild, attach), merger_ops.cpp (operations queued to the
// thread) and merger_replay.cpp (replay jobs). Include only from those.
#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "processing/merger.h"
#include "processing/range_replay.h"

namespace sluice::processing {

struct merger::entry {
    std::shared_ptr<compiled_query> query;
    std::unique_ptr<window_merger> merger;
    std::unique_ptr<storage::segment_writer> writer;
    storage::table_schema schema;
    std::atomic<uint64_t> rows_emitted{0};
    std::atomic<uint64_t> pending_cells{0}; // the window_merger's, after its last round
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
    floor_history floors;
    struct cell {
        int64_t start, end;
        std::string key;
        std::vector<uint8_t> blob;
    };
    std::vector<cell> reopened;
};

struct merger::op {
    virtual ~op() = default;
    // Runs on the merger thread; true once finished (the reply is then set).
    virtual bool step(merger& m) = 0;
    // Answers with an error (shutdown).
    virtual void fail(const std::string& message) = 0;
    // Snapshot routing (live view of open windows).
    virtual bool wants(const partial_batch&) const { return false; }
    virtual void take(const partial_batch&) {}
    virtual bool holds_back(const partial_batch&) const { return false; }
};

inline std::string no_query_named(const std::string& name) {
    return "no query named \"" + name + "\" (see sluicectl queries list)";
}

// An op answering result<T>.
template <typename T> struct merger_op : merger::op {
    std::promise<result<T>> reply;
    void fail(const std::string& message) override {
        reply.set_value(make_error(errc::busy, message));
    }
    // The query `name` (merger thread), or nullptr once the reply says there is none.
    merger::entry* find_or_fail(merger& m, const std::string& name) {
        merger::entry* e = m.find(name);
        if (e == nullptr) reply.set_value(make_error(errc::not_found, no_query_named(name)));
        return e;
    }
};

struct merger::replay_job {
    uint64_t id = 0; // also the rows' revision
    std::string query;
    int64_t from_ms = 0, to_ms = 0;
    replay_progress progress;
    std::atomic<replay_status::state> state{replay_status::state::running};
    std::string error; // set before state = failed
    std::thread thread;
};

} // namespace sluice::processing
