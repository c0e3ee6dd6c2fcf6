#pragma once
// query_service: the continuous queries of a running sluiced, on the control side. The
// work is processing::merger's (processing/merger.h: the merger thread, the restart
// rebuild, checkpoints, replay jobs); this class only wires it in and translates:
//   - the worker -> merger rings of partial batches (DPDK rings, created here) and the
//     RX's event parser for stored events (dataplane/), handed to the merger;
//   - the query registry (control/query_registry.h), applied at start and told of each
//     change;
//   - the control socket's `queries`, `windows` and `replay` requests (query_commands.cpp),
//     turned into the merger's typed calls and their results into replies.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/limits.h"
#include "base/result.h"
#include "control/query_registry.h"
#include "processing/field_catalog.h"
#include "processing/merger.h"
#include "processing/query.h"
#include "processing/worker.h"
#include "storage/segment_writer.h"

namespace sluice::control {

using json = nlohmann::json;

struct query_service_config {
    std::string data_dir;
    uint32_t event_bytes_max = limits::event_bytes_default;
    storage::writer_options storage; // [storage], whole: the merger's and every replay's writer
    const std::atomic<bool>* storage_stop = nullptr;
    int64_t default_delay_ms = limits::watermark_delay_ms_default;
    uint32_t workers = 1;
    bool idle_wait = true; // [lcores] idle = "wait": the merger blocks when idle
};

class query_service {
  public:
    struct link; // a worker's partial rings
    using restore_report = processing::restore_report;

    // Start-up, before the workers open: applies the registry to the configured queries
    // and opens the merger (which compiles them and publishes the catalog).
    static result<std::unique_ptr<query_service>>
    open(const query_service_config& config, const std::vector<processing::query_def>& configured);
    ~query_service();

    const processing::field_catalog& catalog() const noexcept { return _merger->catalog(); }
    // processing::merger::restore (restart rebuild).
    result<restore_report> restore(int64_t restored_max_time_ms, int64_t stored_max_time_ms) {
        return _merger->restore(restored_max_time_ms, stored_max_time_ms);
    }
    processing::partial_channel channel(uint32_t worker) noexcept;
    // Installs every query into every worker, with their rings to the merger.
    result<void> attach(const std::vector<processing::worker*>& workers);
    void start(const std::atomic<uint64_t>* flush_requested,
               std::function<bool()> workers_finished) {
        _merger->start(flush_requested, std::move(workers_finished));
    }
    void join() { _merger->join(); }
    bool done() const noexcept { return _merger->done(); }
    uint64_t flushes_done() const noexcept { return _merger->flushes_done(); }
    void for_each_writer(const std::function<void(const storage::segment_writer&)>& fn) const {
        _merger->for_each_writer(fn);
    }
    void for_each_table(
        const std::function<void(const std::string&, const storage::segment_writer&)>& fn) const {
        _merger->for_each_table(fn);
    }
    uint64_t window_rows() const noexcept { return _merger->window_rows(); }
    uint64_t bytes_written() const noexcept { return _merger->bytes_written(); }

    // Control socket handlers (control thread or its pool; query_commands.cpp).
    json stats() const;
    json handle_queries(const json& req);
    json handle_windows(const json& req);
    // `replay`: start one (query, from, to) or read one's status (processing/range_replay.h).
    json handle_replay(const json& req);

  private:
    explicit query_service(const query_service_config& config);
    json add_query(const json& req);
    json remove_query(const json& req);

    query_service_config _config;
    query_registry _registry;
    std::vector<std::unique_ptr<link>> _links;
    std::unique_ptr<idle_wake> _merger_wake; // before _merger: it outlives the thread
    std::unique_ptr<processing::merger> _merger;
};

} // namespace sluice::control
