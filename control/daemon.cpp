#include "control/daemon.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/tsc.h"
#include "control/control_server.h"
#include "control/pipeline.h"
#include "control/query_service.h"
#include "control/stats.h"
#include "control/stats_reader.h"
#include "storage/retention.h"

namespace sluice::control {

namespace {

std::atomic<bool> g_signal_shutdown{false};
std::atomic<bool> g_signal_reload{false};

void on_signal(int) { g_signal_shutdown.store(true); }
void on_reload_signal(int) { g_signal_reload.store(true); }

class daemon {
  public:
    daemon(const daemon_config& config, config_loader reload_config)
        : _config(config), _reload_config(std::move(reload_config)) {}
    result<void> start();
    int run();

  private:
    result<void> start_control();
    // The typed snapshot `stats` and `metrics` render (control/stats.h); its rate
    // bases point into _history.
    stats_snapshot snapshot() const;
    json status() const;
    json lcore_map_json() const;
    json flush();
    json retention(const json& req);
    // SIGHUP and the `reload` command. Each hook applies the keys it owns from the fresh
    // config and returns their names; queries add theirs here.
    json reload(const char* trigger);
    result<std::vector<std::string>> reload_control(const daemon_config& fresh);
    result<std::vector<std::string>> reload_retention(const daemon_config& fresh);
    using reload_hook = std::function<result<std::vector<std::string>>(const daemon_config&)>;
    std::vector<std::pair<std::string, reload_hook>> _reload_hooks;

    daemon_config _config;
    // Lcores, pools, rings, workers and the query service (control/pipeline.h).
    std::unique_ptr<pipeline> _pipeline;
    std::atomic<bool> _shutdown_requested{false};
    std::unique_ptr<control_server> _control;
    std::atomic<control_server*> _control_view{nullptr}; // _control, for the server thread
    std::unique_ptr<storage::retention_manager> _retention;
    int64_t _started_ns = monotonic_ns();
    double _ticks_per_us = double(tsc_hz()) / 1e6;
    stats_history _history{limits::stats_samples_max}; // control thread only
    config_loader _reload_config;
    std::mutex _reload_mutex; // one reload at a time; guards _config's reloadable keys
    std::atomic<uint64_t> _reloads{0}; // read by status() on the control thread
};

result<void> daemon::start() {
    auto p = pipeline::prepare(_config);
    if (!p) return std::move(p).err();
    _pipeline = std::move(p.value());
    _retention = std::make_unique<storage::retention_manager>(
        _config.data_dir, _config.retention, _config.retention_tables, [] {
            return int64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
        });
    _retention->start(_config.retention_interval_ms);
    SLUICE_TRY(_pipeline->build());
    SLUICE_TRY(start_control());
    return ok_result();
}

result<void> daemon::start_control() {
    server_config sc;
    sc.socket_path = _config.control_socket;
    sc.mode = _config.socket_mode;
    sc.group_gid = _config.socket_group_gid;
    sc.access = {_config.allow_uids, _config.allow_gids, _config.requests_per_s,
                 _config.connection_requests_per_s};
    sc.idle_timeout_ms = _config.idle_timeout_ms;
    // One sample a second feeds the rates and the recent latency percentiles; the first
    // is taken now, before the server thread exists, so every reply has a base.
    _history.push(read_sample(*_pipeline));
    sc.on_tick = [this] { _history.push(read_sample(*_pipeline)); };
    sc.tick_interval_ms = 1000;
    std::map<std::string, handler> handlers;
    handlers["stats"] = [this](const json&) { return stats_json(snapshot()); };
    handlers["status"] = [this](const json&) { return status(); };
    handlers["metrics"] = [this](const json&) {
        return json{{"content_type", prometheus_content_type}, {"text", prometheus_text(snapshot())}};
    };
    handlers["flush"] = [this](const json&) { return flush(); };
    handlers["queries"] = [this](const json& req) { return _pipeline->queries().handle_queries(req); };
    handlers["windows"] = [this](const json& req) { return _pipeline->queries().handle_windows(req); };
    handlers["replay"] = [this](const json& req) { return _pipeline->queries().handle_replay(req); };
    handlers["reload"] = [this](const json&) { return reload("reload command"); };
    handlers["retention"] = [this](const json& req) { return retention(req); };
    handlers["shutdown"] = [this](const json&) {
        _shutdown_requested.store(true);
        return json{{"ok", true},
                    {"state", "stopping"},
                    {"message", "shutting down: stop RX, drain, close windows, fsync"}};
    };
    // Hooks first: a reload may arrive as soon as the server runs.
    _reload_hooks.emplace_back("control", [this](const daemon_config& c) { return reload_control(c); });
    _reload_hooks.emplace_back("retention", [this](const daemon_config& c) { return reload_retention(c); });
    auto server = control_server::start(sc, std::move(handlers));
    if (!server) return std::move(server).err();
    _control = std::move(server.value());
    _control_view.store(_control.get(), std::memory_order_release);
    return ok_result();
}


stats_snapshot daemon::snapshot() const {
    stats_snapshot s;
    s.now = read_sample(*_pipeline);
    s.rate_base = _history.base_for_rates(s.now.at_ns, 900'000'000);
    s.recent_base = _history.oldest();
    s.ticks_per_us = _ticks_per_us;
    s.uptime_s = double(monotonic_ns() - _started_ns) / 1e9;
    // The server thread may serve a request before start() has returned the server
    // to the main thread: it reads the server through this pointer, published once.
    read_snapshot(*_pipeline, *_retention, _control_view.load(std::memory_order_acquire), s);
    return s;
}

json daemon::lcore_map_json() const {
    json rx = json::array(), workers = json::array();
    for (size_t r = 0; r < _pipeline->map().rx.size(); ++r)
        rx.push_back({{"rx", r},
                      {"lcore", _pipeline->map().rx[r].lcore},
                      {"cpus", _pipeline->map().rx[r].cpus},
                      {"queue", _pipeline->map().rx[r].queues.front()},
                      {"queues", _pipeline->map().rx[r].queues}});
    for (size_t w = 0; w < _pipeline->map().workers.size(); ++w)
        workers.push_back(
            {{"worker", w}, {"lcore", _pipeline->map().workers[w].lcore}, {"cpus", _pipeline->map().workers[w].cpus}});
    return json{{"source", _pipeline->map().source},
                {"rx_queues", _pipeline->map().rx_queues},
                {"rss", _pipeline->map().rss},
                {"rx", rx},
                {"workers", workers},
                {"unused", _pipeline->map().unused}};
}

// retention: lists every table's policy and state; with "table" (or "*" for the
// default) and max_age_ms / max_bytes, sets that policy first ("clear": true drops a
// table's own policy). The background pass applies a change at once.
json daemon::retention(const json& req) {
    auto it = req.find("table");
    if (it != req.end()) {
        if (!it->is_string()) return json{{"ok", false}, {"error", "retention: table must be a string"}};
        std::string table = it->get<std::string>();
        if (req.value("clear", false)) {
            _retention->clear_policy(table);
        } else {
            // Unset fields keep their current value (for a table without its own
            // policy: the default's).
            auto now = _retention->status();
            storage::retention_policy p = now.default_policy;
            for (const auto& t : now.tables)
                if (t.table == table) p = t.policy;
            auto age = req.find("max_age_ms");
            auto bytes = req.find("max_bytes");
            if (age == req.end() && bytes == req.end())
                return json{{"ok", false},
                            {"error", "retention: give max_age_ms and/or max_bytes (0 = no limit) "
                                      "with table, or clear"}};
            if (age != req.end()) {
                if (!age->is_number_integer() || age->get<int64_t>() < 0)
                    return json{{"ok", false}, {"error", "retention: max_age_ms must be an integer >= 0"}};
                p.max_age_ms = age->get<int64_t>();
            }
            if (bytes != req.end()) {
                if (!bytes->is_number_integer() || bytes->get<int64_t>() < 0)
                    return json{{"ok", false}, {"error", "retention: max_bytes must be an integer >= 0"}};
                p.max_bytes = bytes->get<uint64_t>();
            }
            auto r = _retention->set_policy(table, p);
            if (!r) return json{{"ok", false}, {"error", "retention: " + r.err().message}};
        }
    }
    auto st = _retention->status();
    json tables = json::array();
    for (const auto& t : st.tables)
        tables.push_back({{"table", t.table},
                          {"max_age_ms", t.policy.max_age_ms},
                          {"max_bytes", t.policy.max_bytes},
                          {"policy", t.policy_is_default ? "default" : "table"},
                          {"segments", t.segments},
                          {"bytes", t.bytes},
                          {"rows", t.rows},
                          {"oldest_time_ms", t.oldest_time_ms == INT64_MIN ? 0 : t.oldest_time_ms},
                          {"segments_deleted", t.segments_deleted},
                          {"bytes_deleted", t.bytes_deleted},
                          {"rows_deleted", t.rows_deleted}});
    return json{{"ok", true},
                {"default", {{"max_age_ms", st.default_policy.max_age_ms},
                             {"max_bytes", st.default_policy.max_bytes}}},
                {"passes", st.passes},
                {"tables", tables}};
}

// Absolute, so that a client in another directory (sluicectl export) finds it.
std::string absolute_path(const std::string& path) {
    std::error_code ec;
    auto p = std::filesystem::absolute(path, ec);
    return ec ? path : p.lexically_normal().string();
}

json daemon::status() const {
    // Before start() has handed the server over (_control_view: see control_json), the
    // policy is the configured one the server started with.
    // The reload count is read before the policy: reload() bumps it after its hooks have
    // applied, so a reply that shows a reload also shows what that reload applied.
    const uint64_t reloads = _reloads.load();
    const control_server* server = _control_view.load(std::memory_order_acquire);
    access_policy access = server ? server->access()
                                  : access_policy{_config.allow_uids, _config.allow_gids,
                                                  _config.requests_per_s,
                                                  _config.connection_requests_per_s};
    return json{{"ok", true},
                {"v", protocol_version},
                {"state", _shutdown_requested.load() || g_signal_shutdown.load() ? "stopping"
                                                                                : "running"},
                {"version", SLUICE_VERSION},
                {"pid", int64_t(::getpid())},
                {"mode", _config.mode},
                {"port", _pipeline->port() ? json(_pipeline->port()->driver) : json(nullptr)},
                {"rx_lcores", _pipeline->rx_lcores()},
                {"worker_lcores", _pipeline->worker_lcores()},
                {"lcore_map", lcore_map_json()},
                {"data_dir", absolute_path(_config.data_dir)},
                {"udp_ports", _config.udp_ports},
                {"kafka", _pipeline->kafka_rx_index() < 0 ? json(nullptr) : json(_pipeline->rx()[size_t(_pipeline->kafka_rx_index())].kafka_listener->addresses())},
                {"queries", _pipeline->queries().stats().size()},
                {"socket", _config.control_socket},
                {"config", _config.config_path.empty() ? json(nullptr) : json(_config.config_path)},
                {"reloads", reloads},
                {"control",
                 {{"allow_uids", access.allow_uids},
                  {"allow_gids", access.allow_gids},
                  {"requests_per_s", access.requests_per_s},
                  {"connection_requests_per_s", access.connection_requests_per_s}}},
                {"tsc_hz", tsc_hz()},
                {"uptime_s", double(monotonic_ns() - _started_ns) / 1e9}};
}

// Applies the control keys of a reloaded config: the allow lists and rate limits.
result<std::vector<std::string>> daemon::reload_control(const daemon_config& c) {
    std::vector<std::string> applied;
    control_server* server = _control_view.load(std::memory_order_acquire);
    if (server == nullptr) return make_error(errc::busy, "the control server is still starting");
    access_policy old_access = server->access();
    access_policy access{c.allow_uids, c.allow_gids, c.requests_per_s, c.connection_requests_per_s};
    if (access.allow_uids != old_access.allow_uids) applied.push_back("control.allow_uids");
    if (access.allow_gids != old_access.allow_gids) applied.push_back("control.allow_gids");
    if (access.requests_per_s != old_access.requests_per_s)
        applied.push_back("control.requests_per_s");
    if (access.connection_requests_per_s != old_access.connection_requests_per_s)
        applied.push_back("control.connection_requests_per_s");
    server->update_access(access);
    return applied;
}

// Re-reads the config file (with the same command-line overrides), lets every reload
// hook apply what it can change safely while running, lists what needs a restart, and
// keeps everything else. A hook that fails is reported; the others still apply.
// Retention from the file replaces the running policies (sluicectl retention changes are
// run-time only).
result<std::vector<std::string>> daemon::reload_retention(const daemon_config& c) {
    if (c.retention == _config.retention && c.retention_tables == _config.retention_tables)
        return std::vector<std::string>{};
    SLUICE_TRY(_retention->set_policy("*", c.retention));
    for (const auto& [table, p] : _config.retention_tables)
        if (!c.retention_tables.contains(table)) _retention->clear_policy(table);
    for (const auto& [table, p] : c.retention_tables) SLUICE_TRY(_retention->set_policy(table, p));
    _config.retention = c.retention;
    _config.retention_tables = c.retention_tables;
    return std::vector<std::string>{"retention"};
}

json daemon::reload(const char* trigger) {
    std::lock_guard lock(_reload_mutex);
    auto fresh = _reload_config();
    if (!fresh) {
        SLUICE_LOG_ERROR("reload (%s) failed, the running config stays: %s", trigger,
                         fresh.err().message.c_str());
        return json{{"ok", false},
                    {"error", "reload failed, the running config stays: " + fresh.err().message}};
    }
    const daemon_config& c = fresh.value();
    std::vector<std::string> restart = restart_required(_config, c);
    std::vector<std::string> applied;
    json failed = json::object();
    for (const auto& [name, hook] : _reload_hooks) {
        auto r = hook(c);
        if (!r) {
            failed[name] = r.err().message;
            SLUICE_LOG_ERROR("reload (%s): %s kept its running config: %s", trigger, name.c_str(),
                             r.err().message.c_str());
            continue;
        }
        applied.insert(applied.end(), r->begin(), r->end());
    }
    ++_reloads;
    std::string a, r;
    for (const auto& k : applied) a += (a.empty() ? "" : ", ") + k;
    for (const auto& k : restart) r += (r.empty() ? "" : ", ") + k;
    SLUICE_LOG_INFO("reloaded %s (%s): applied %s; %s", c.config_path.empty() ? "defaults" :
                    c.config_path.c_str(), trigger, a.empty() ? "no changes" : a.c_str(),
                    r.empty() ? "nothing needs a restart" : ("needs a restart, kept: " + r).c_str());
    json reply{{"config", c.config_path.empty() ? json(nullptr) : json(c.config_path)},
               {"applied", applied},
               {"restart_required", restart},
               {"reloads", _reloads.load()}};
    if (!failed.empty()) {
        reply["ok"] = false;
        reply["error"] = "reload applied only in part: " + failed.dump();
        reply["failed"] = std::move(failed);
    }
    return reply;
}

json daemon::flush() {
    const uint64_t want = _pipeline->request_flush();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!_pipeline->flush_done(want)) {
        if (std::chrono::steady_clock::now() > deadline)
            return json{{"ok", false}, {"error", "flush did not complete within 10 s (is the disk stuck?)"}};
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return json{{"ok", true}, {"rows_durable", _pipeline->rows_durable()}};
}

int daemon::run() {
    _pipeline->launch();
    _pipeline->print_startup_map();

    while (!_shutdown_requested.load() && !g_signal_shutdown.load()) {
        if (g_signal_reload.exchange(false)) reload("SIGHUP");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    SLUICE_LOG_INFO("graceful shutdown: stopping RX, draining rings, closing windows");
    const int rc = _pipeline->stop();
    // Every counter is final now (RX stopped, rings drained, workers done): one line
    // for logs and for tests that compare exact counts after a run.
    std::printf("sluiced: final stats %s\n", stats_json(snapshot()).dump().c_str());
    std::fflush(stdout);
    _control->stop();
    _retention->stop();
    _pipeline->release();
    SLUICE_LOG_INFO("stopped: %s", rc == 0 ? "all data flushed and synced" : "with storage errors");
    return rc;
}

} // namespace

int run_daemon(const daemon_config& config, config_loader reload_config) {
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    struct sigaction hup{};
    hup.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &hup, nullptr);
    daemon d(config, std::move(reload_config));
    if (auto r = d.start(); !r) {
        std::fprintf(stderr, "sluiced: %s\n", r.err().message.c_str());
        return 1;
    }
    return d.run();
}

} // namespace sluice::control
