#pragma once
// query_service: the continuous queries of a running sluiced, on the control side.
//
// It owns the field catalog, the worker -> merger partial rings, the merger thread
// (window_merger per query, each query's result table writer, checkpoints), and the
// query registry in the data dir. The control socket's `queries` and `windows` commands
// land here. Changes to the set of queries run on the merger thread, which talks to each
// worker through its mailbox; a control request waits for the outcome.
//
// Files under <data_dir>/_processing/ (never a table: no segments):
//   queries.json                queries added / removed at run time (applied on top of
//                               the configured ones at start)
//   checkpoints/<query>.json    {rebuild_from_ms, closed_until_ms, floors}: where a
//                               restart rebuild of the query's open windows starts, and
//                               the watermark floor of each run (control/checkpoint.h)
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <rte_ring.h>

#include "base/result.h"
#include "processing/field_catalog.h"
#include "processing/query.h"
#include "processing/query_runtime.h"
#include "processing/window_merger.h"
#include "processing/worker.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace sluice::control {

using json = nlohmann::json;

struct query_service_config {
    std::string data_dir;
    uint32_t event_bytes_max = 4096;
    uint32_t flush_interval_ms = 100;
    bool direct_io = true;
    uint64_t sync_bytes = 8u << 20;                  // storage::writer_config's
    uint64_t segment_bytes_max = 256ull << 20;
    storage::format::compression compression{};
    const std::atomic<bool>* storage_stop = nullptr;
    int64_t default_delay_ms = 10 * 60 * 1000;
    uint32_t workers = 1;
};

class query_service {
  public:
    struct entry;
    struct op;
    struct link; // a worker's partial rings

    // Start-up, before the workers open: applies the registry to the configured queries,
    // compiles them and publishes the catalog.
    static result<std::unique_ptr<query_service>> open(const query_service_config& config,
                                                       const std::vector<processing::query_def>& configured);
    ~query_service();

    const processing::field_catalog& catalog() const noexcept { return _catalog; }

    struct restore_report {
        uint64_t queries_rebuilt = 0;
        uint64_t events_replayed = 0; // stored events run through the queries again
        uint64_t rows_emitted = 0;    // windows that had closed but had no durable row
        uint64_t cells_reopened = 0;  // open windows handed back to the workers
    };
    // Restart, after open() and before attach(): for each query, reads its checkpoint and
    // its table, replays the stored events from the checkpoint on through its windows,
    // writes the rows of windows that had closed without a durable row, keeps the open
    // ones for attach() (spread over the workers), and sets the query's watermark floor. `restored_max_time_ms` is
    // the workers' starting M, `stored_max_time_ms` the largest stored event time.
    result<restore_report> restore(int64_t restored_max_time_ms, int64_t stored_max_time_ms);
    processing::partial_channel channel(uint32_t worker) noexcept;
    // Installs every query into every worker (a window state each), before they run.
    result<void> attach(const std::vector<processing::worker*>& workers);
    // Starts the merger thread. It exits once workers_finished() and everything is emitted.
    void start(const std::atomic<uint64_t>* flush_requested, std::function<bool()> workers_finished);
    void join();
    bool done() const noexcept { return _done.load(); }
    uint64_t flushes_done() const noexcept { return _flushes_done.load(); }
    // Calls fn(const storage::segment_writer&) for each query's result writer, under the
    // list's lock (control thread: stats).
    void for_each_writer(const std::function<void(const storage::segment_writer&)>& fn) const;
    uint64_t window_rows() const noexcept { return _window_rows.load(std::memory_order_relaxed); }
    uint64_t bytes_written() const noexcept;

    // Control socket handlers (control thread).
    json stats() const;
    json handle_queries(const json& req);
    json handle_windows(const json& req);
    // `replay`: start one (query, from, to) or read one's status (control/replay.h).
    json handle_replay(const json& req);

  private:

    explicit query_service(const query_service_config& config);
    // Every query table's writer options (the live merger's and replay's), but the name.
    storage::writer_config table_writer_config() const;
    result<std::unique_ptr<entry>> make_entry(const processing::query_def& def, uint32_t start_generation);
    result<void> load_registry(std::vector<processing::query_def>& queries);
    result<void> save_registry();
    void run();
    bool drain();
    void merge_batch(const processing::partial_batch& batch);
    void finalize(entry& e);
    void write_row(entry& e, const processing::result_row& row, uint64_t revision);
    void maybe_checkpoint(entry& e, int64_t now_ns, bool force);
    json submit(std::shared_ptr<op> o, int timeout_ms);
    entry* find(const std::string& name) const;
    json list_json() const;
    json entry_stats(const entry& e) const;
    json add_query(const json& req);
    json remove_query(const json& req);
    json open_windows(const std::string& name);

    query_service_config _config;
    processing::field_catalog _catalog;
    std::vector<std::unique_ptr<link>> _links;
    std::vector<processing::worker*> _workers;
    uint32_t _next_uid = 1;
    uint64_t _next_snapshot = 1;

    // Merger-thread state; the list itself is also read (under _list_mutex) by control.
    mutable std::mutex _list_mutex;
    std::vector<std::unique_ptr<entry>> _queries;
    std::vector<processing::query_def> _added;  // registry
    std::vector<std::string> _removed;          // registry

    std::mutex _ops_mutex;
    std::deque<std::shared_ptr<op>> _incoming;
    std::vector<std::shared_ptr<op>> _ops; // merger thread
    std::vector<processing::partial_batch*> _held; // closed batches held back by a snapshot

    std::thread _thread;
    const std::atomic<uint64_t>* _flush_requested = nullptr;
    std::function<bool()> _workers_finished;
    std::atomic<bool> _done{false};
    std::atomic<uint64_t> _flushes_done{0};
    std::atomic<uint64_t> _window_rows{0};
    std::atomic<uint64_t> _retired_bytes{0}; // bytes written by removed queries' writers

    struct replay_job;
    std::mutex _replay_mutex;
    std::vector<std::unique_ptr<replay_job>> _replays;
    uint64_t _last_revision = 0;
    std::atomic<bool> _stopping{false};
};

} // namespace sluice::control
