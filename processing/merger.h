#pragma once
// merger: the continuous queries after the workers (§3 Windows, §7.4, §7.5, §7.6). One
// thread (never an lcore) merges every worker's window partials per query
// (window_merger.h), writes each window's row once into the query's result table
// (result_table.h) and the query's checkpoint (state_dir.h) once those rows are durable.
// It also owns the field catalog (its only writer), the restart rebuild of open windows
// and the replay jobs, which judge stored events by the one window rule
// (window_assigner.h) through event_replayer.h.
//
// Operations that change the queries or need the workers (add, remove, a live view of
// open windows) are queued to the merger thread, which talks to each worker through its
// mailbox, and return once done (or after op_timeout_ms). Errors are result<T> with a
// message that names the cause and the fix; control/ turns requests into these calls.
//
// Start-up: open() (compiles the queries, publishes the catalog) → restore() (restart)
// → channel(w) for each worker → attach() → start(); join() after the workers finished.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/idle_wake.h"
#include "base/limits.h"
#include "base/result.h"
#include "processing/aggregates.h"
#include "processing/event_replayer.h"
#include "processing/field_catalog.h"
#include "processing/query.h"
#include "processing/query_runtime.h"
#include "processing/window_merger.h"
#include "processing/worker.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace sluice::processing {

// One worker's ring of partial batches to the merger and the ring of free ones back,
// built by whoever builds the rings (control/). Both calls are single-consumer /
// single-producer from the merger thread.
struct partial_inbox {
    void* ctx = nullptr;
    partial_batch* (*receive)(void* ctx) noexcept = nullptr; // the next batch, or nullptr
    void (*give_back)(void* ctx, partial_batch* batch) noexcept = nullptr;
};

struct merger_config {
    std::string data_dir;
    uint32_t workers = 1;
    uint32_t event_bytes_max = limits::event_bytes_default;
    // Every query table's writer options but the name (the live merger's and replay's).
    storage::writer_config table_writer;
    // The RX's event parser for stored events (rebuild, replay); it reads catalog().
    std::function<parser_factory(const field_catalog*)> make_parser;
    // Told on the merger thread, in order, after a query was added or removed at run
    // time (the registry: control/query_registry.h); an error is logged, not fatal.
    std::function<result<void>(const query_def&)> on_added;
    std::function<result<void>(const std::string&)> on_removed;
};

// A query's counters, summed over the workers.
struct query_stats {
    std::string name;
    window_kind window = window_kind::tumbling;
    uint64_t events = 0;
    uint64_t late_events = 0;
    uint64_t window_overflow = 0;
    uint64_t rows_emitted = 0;
    // Cells (session pieces) the merger holds, not yet final, after its last round.
    uint64_t pending_cells = 0;
    int64_t closed_until_ms = INT64_MIN; // INT64_MIN: nothing closed yet
};

struct query_info {
    query_def def;
    query_stats stats;
    std::vector<std::string> columns; // its result table's
};

struct removed_query {
    std::string name;
    uint64_t rows_emitted = 0;
    std::optional<std::string> warning; // closing its table failed
};

// A window of a live view, its group values split out.
struct window_row {
    int64_t start_ms = 0;
    int64_t end_ms = 0;
    std::vector<std::string> group;
    std::vector<agg_value> values;
};

struct replay_status {
    enum class state : uint8_t { running, done, failed };
    uint64_t id = 0; // also the rows' revision
    std::string query;
    int64_t from_ms = 0, to_ms = 0;
    state st = state::running;
    uint64_t events_read = 0, rows_written = 0, segments_done = 0, segments_total = 0;
    std::string error; // failed
};
const char* replay_state_name(replay_status::state s) noexcept;

struct restore_report {
    uint64_t queries_rebuilt = 0;
    uint64_t events_replayed = 0; // stored events run through the queries again
    uint64_t rows_emitted = 0;    // windows that had closed but had no durable row
    uint64_t cells_reopened = 0;  // open windows handed back to the workers
};

class merger {
  public:
    static constexpr int op_timeout_ms = 10'000;
    struct entry;
    struct op;
    struct replay_job;

    // Start-up, before the workers open: compiles `queries` (configured and registered)
    // and publishes the catalog.
    static result<std::unique_ptr<merger>> open(merger_config config,
                                                const std::vector<query_def>& queries);
    ~merger();

    const field_catalog& catalog() const noexcept { return _catalog; }

    // Restart, after open() and before attach(): for each query, reads its checkpoint and
    // its table, replays the stored events from the checkpoint on through its windows,
    // writes the rows of windows that had closed without a durable row, keeps the open
    // ones for attach() (spread over the workers), and sets the query's watermark floor.
    // `restored_max_time_ms` is the workers' starting M, `stored_max_time_ms` the largest
    // stored event time.
    result<restore_report> restore(int64_t restored_max_time_ms, int64_t stored_max_time_ms);
    // Installs every query into every worker (a window state each), before they run.
    result<void> attach(const std::vector<worker*>& workers, std::vector<partial_inbox> inboxes);
    // Starts the merger thread. It exits once workers_finished() and everything is emitted.
    void start(const std::atomic<uint64_t>* flush_requested,
               std::function<bool()> workers_finished);
    void join();
    // [lcores] idle = "wait", before start(): once idle, block on `wake` (the workers
    // notify it as they publish a partial batch and as they store window progress:
    // partial_channel::progressed, query_service's link) for at most max_wait_ns and no
    // later than a table writer's next group commit; the rest (ops, flush requests, write
    // completions) is seen by then. nullptr: the sleeping back-off.
    void set_idle_wake(idle_wake* wake,
                       int64_t max_wait_ns = int64_t(limits::idle_wait_us) * 1000) noexcept {
        _wake = wake;
        _max_wait_ns = max_wait_ns;
    }
    bool done() const noexcept { return _done.load(); }
    uint64_t flushes_done() const noexcept { return _flushes_done.load(); }

    // Any thread.
    // Calls fn(writer) for each query's result writer, under the list's lock (stats).
    void for_each_writer(const std::function<void(const storage::segment_writer&)>& fn) const;
    // Calls fn(query name, its live table writer) for each running query, under the same
    // lock (the Kafka topics of query tables read the writer's durable row end).
    void for_each_table(
        const std::function<void(const std::string&, const storage::segment_writer&)>& fn) const;
    uint64_t window_rows() const noexcept { return _window_rows.load(std::memory_order_relaxed); }
    uint64_t bytes_written() const noexcept;
    std::vector<query_stats> stats() const;
    std::vector<query_info> list() const;
    // A running query's result columns without `revision`; nullopt when there is none.
    std::optional<std::vector<std::string>> columns(const std::string& name) const;

    // Queued to the merger thread; they wait for it.
    result<query_def> add_query(const query_def& def);
    result<removed_query> remove_query(const std::string& name);
    // Every open window of the query right now (the workers' and the merger's pending
    // cells), finished, in (end, start, key) order.
    result<std::vector<window_row>> open_windows(const std::string& name);

    // Replay of [from, to) into the query's table (range_replay.h), one at a time, on a
    // background thread.
    result<replay_status> start_replay(const std::string& name, int64_t from_ms, int64_t to_ms);
    std::optional<replay_status> replay(uint64_t id) const;
    std::vector<replay_status> replays() const;

  private:
    template <typename T> friend struct merger_op;

    explicit merger(merger_config config);
    result<std::unique_ptr<entry>> make_entry(const query_def& def, uint32_t start_generation);
    template <typename T, typename Op> result<T> submit(std::shared_ptr<Op> o);
    entry* find(const std::string& name) const;
    query_stats entry_stats(const entry& e) const;
    void run();
    bool drain();
    void merge_batch(const partial_batch& batch);
    void finalize(entry& e);
    void write_row(entry& e, const result_row& row, uint64_t revision);
    void maybe_checkpoint(entry& e, int64_t now_ns, bool force);
    void fail_pending_ops();
    bool wait_idle(int64_t now_ns);

    merger_config _config;
    field_catalog _catalog;
    std::vector<partial_inbox> _inboxes;
    std::vector<worker*> _workers;
    uint32_t _next_uid = 1;
    uint64_t _next_snapshot = 1;

    // Merger-thread state; the list itself is also read (under _list_mutex) by others.
    mutable std::mutex _list_mutex;
    std::vector<std::unique_ptr<entry>> _queries;

    std::mutex _ops_mutex;
    std::deque<std::shared_ptr<op>> _incoming;
    std::vector<std::shared_ptr<op>> _ops; // merger thread
    std::vector<partial_batch*> _held;     // closed batches held back by a snapshot

    std::thread _thread;
    const std::atomic<uint64_t>* _flush_requested = nullptr;
    std::function<bool()> _workers_finished;
    std::atomic<bool> _done{false};
    std::atomic<uint64_t> _flushes_done{0};
    std::atomic<uint64_t> _window_rows{0};
    std::atomic<uint64_t> _retired_bytes{0}; // bytes written by removed queries' writers

    mutable std::mutex _replay_mutex;
    std::vector<std::unique_ptr<replay_job>> _replays;
    uint64_t _last_revision = 0;
    std::atomic<bool> _stopping{false};
    idle_wake* _wake = nullptr;
    int64_t _max_wait_ns = 0;
};

} // namespace sluice::processing
