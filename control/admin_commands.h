#pragma once
// The control commands of a running daemon: status, stats, metrics, flush, retention,
// reload, shutdown, and the query commands (queries, windows, replay) handed to the query
// service. Each handler only translates: it reads the pipeline (relaxed atomics, snapshots)
// or posts a request to its owner, and renders the reply. The daemon builds the pipeline
// and the retention manager; the control server calls these handlers, the slow ones on its
// worker pool (control_server.h).
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/limits.h"
#include "control/control_server.h"
#include "control/daemon.h"
#include "control/metrics_http.h"
#include "control/pipeline.h"
#include "control/stats.h"
#include "storage/retention.h"

namespace sluice::control {

// The control server's access policy from [control] (at start and at each reload).
inline access_policy access_policy_of(const control_config& c) {
    return {c.allow_uids, c.allow_gids, c.requests_per_s, c.connection_requests_per_s};
}

class admin_commands {
  public:
    /// `signal_shutdown` is set by SIGTERM/SIGINT (status shows "stopping").
    admin_commands(const daemon_config& config, config_loader reload_config, pipeline& p,
                   storage::retention_manager& retention, const std::atomic<bool>* signal_shutdown);

    /// The command table for control_server::start.
    std::map<std::string, handler> handlers();
    /// The commands that may block (waiting on the workers or the merger, scanning a
    /// table): the server runs them on its worker pool, never on its io_uring loop.
    static std::set<std::string> slow_commands();
    /// One stats sample: the server's tick (once a second) and the first, before it runs.
    void sample();
    /// Publishes the running server (status, control counters, reload of its access).
    void attach(control_server* server) { _server.store(server, std::memory_order_release); }
    /// Publishes the HTTP /metrics endpoint (its counters and address in stats and status).
    void attach(const metrics_http_server* http) {
        _metrics_http.store(http, std::memory_order_release);
    }

    json stats_reply() const;
    /// The Prometheus exposition: the `metrics` command's text and the HTTP endpoint's
    /// body. Any thread (the control loop, civetweb's threads).
    std::string metrics_text() const;
    /// SIGHUP and the `reload` command: each hook applies the keys it owns from the fresh
    /// config and returns their names.
    json reload(const char* trigger);
    bool shutdown_requested() const noexcept { return _shutdown_requested.load(); }

  private:
    // Renders the typed snapshot that `stats` and `metrics` show (control/stats.h), under
    // _snapshot_mutex: its rate bases point into _history, and the pipeline's readers
    // (ring counts, histogram snapshots, ethdev stats) keep one reader at a time as they
    // had when only the control loop read them. The HTTP threads and the loop contend
    // for the length of one render, never for a client's network round trip.
    template <class Render> auto with_snapshot(Render&& render) const;
    json status() const;
    json lcore_map_json() const;
    json metrics_url() const; ///< the HTTP endpoint's URL, or null

    json flush();
    json retention(const json& req);
    result<std::vector<std::string>> reload_control(const daemon_config& fresh);
    result<std::vector<std::string>> reload_retention(const daemon_config& fresh);
    using reload_hook = std::function<result<std::vector<std::string>>(const daemon_config&)>;

    daemon_config _config;
    config_loader _reload_config;
    pipeline& _pipeline;
    storage::retention_manager& _retention;
    const std::atomic<bool>* _signal_shutdown;
    std::vector<std::pair<std::string, reload_hook>> _reload_hooks;
    std::atomic<bool> _shutdown_requested{false};
    // The server thread may serve a request before the daemon has the server back from
    // control_server::start(): handlers read it through this pointer, published once.
    std::atomic<control_server*> _server{nullptr};
    std::atomic<const metrics_http_server*> _metrics_http{nullptr};
    int64_t _started_ns;
    double _ticks_per_us;
    // Samples for rates: pushed by the tick, read by stats and metrics (the loop) and by
    // the HTTP endpoint (civetweb's threads), under _snapshot_mutex.
    mutable std::mutex _snapshot_mutex;
    stats_history _history{limits::stats_samples_max};
    std::mutex _reload_mutex; // one reload at a time; guards _config's reloadable keys
    std::atomic<uint64_t> _reloads{0};
};

} // namespace sluice::control
