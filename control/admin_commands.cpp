#include "control/admin_commands.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "base/clock.h"
#include "base/log.h"
#include "base/tsc.h"
#include "control/stats_reader.h"
#include "dataplane/eal_setup.h"

namespace sluice::control {

namespace {

// Absolute, so that a client in another directory (sluicectl export) finds it.
std::string absolute_path(const std::string& path) {
    std::error_code ec;
    auto p = std::filesystem::absolute(path, ec);
    return ec ? path : p.lexically_normal().string();
}

} // namespace

admin_commands::admin_commands(const daemon_config& config, config_loader reload_config,
                               pipeline& p, storage::retention_manager& retention,
                               const std::atomic<bool>* signal_shutdown)
    : _config(config), _reload_config(std::move(reload_config)), _pipeline(p),
      _retention(retention), _signal_shutdown(signal_shutdown), _started_ns(monotonic_ns()),
      _ticks_per_us(double(tsc_hz()) / 1e6) {
    _reload_hooks.emplace_back("control",
                               [this](const daemon_config& c) { return reload_control(c); });
    _reload_hooks.emplace_back("retention",
                               [this](const daemon_config& c) { return reload_retention(c); });
}

std::map<std::string, handler> admin_commands::handlers() {
    std::map<std::string, handler> h;
    h["stats"] = [this](const json&) { return stats_reply(); };
    h["status"] = [this](const json&) { return status(); };
    h["metrics"] = [this](const json&) {
        return json{{"content_type", prometheus_content_type}, {"text", metrics_text()}};
    };
    h["flush"] = [this](const json&) { return flush(); };
    h["queries"] = [this](const json& req) { return _pipeline.queries().handle_queries(req); };
    h["windows"] = [this](const json& req) { return _pipeline.queries().handle_windows(req); };
    h["replay"] = [this](const json& req) { return _pipeline.queries().handle_replay(req); };
    h["reload"] = [this](const json&) { return reload("reload command"); };
    h["retention"] = [this](const json& req) { return retention(req); };
    h["groups"] = [this](const json&) {
        json groups = kafka_groups_json(_pipeline);
        if (groups.is_null())
            return json{{"ok", false},
                         {"error", "groups: sluiced has no Kafka listener, so no consumer groups "
                                   "(start it with --kafka ADDR:PORT or [kafka] listen)"}};
        return json{{"ok", true}, {"groups", std::move(groups)}};
    };
    h["shutdown"] = [this](const json&) {
        _shutdown_requested.store(true);
        return json{{"ok", true},
                    {"state", "stopping"},
                    {"message", "shutting down: stop RX, drain, close windows, fsync"}};
    };
    return h;
}

std::set<std::string> admin_commands::slow_commands() {
    return {"flush", "queries", "windows", "replay"};
}

void admin_commands::sample() {
    std::lock_guard lock(_snapshot_mutex);
    _history.push(read_sample(_pipeline));
}

template <class Render> auto admin_commands::with_snapshot(Render&& render) const {
    std::lock_guard lock(_snapshot_mutex);
    stats_snapshot s;
    s.now = read_sample(_pipeline);
    s.rate_base = _history.base_for_rates(s.now.at_ns, 900'000'000);
    s.recent_base = _history.oldest();
    s.ticks_per_us = _ticks_per_us;
    s.uptime_s = double(monotonic_ns() - _started_ns) / 1e9;
    // The server thread may serve a request before start() has returned the server
    // to the main thread: it reads the server through this pointer, published once.
    read_snapshot(_pipeline, _retention, _server.load(std::memory_order_acquire), s);
    s.log.lines_suppressed = log_suppressed_total();
    if (const metrics_http_server* http = _metrics_http.load(std::memory_order_acquire))
        s.metrics_http = http->counters();
    return render(s);
}

json admin_commands::stats_reply() const {
    return with_snapshot([](const stats_snapshot& s) { return stats_json(s); });
}

std::string admin_commands::metrics_text() const {
    return with_snapshot([](const stats_snapshot& s) { return prometheus_text(s); });
}

json admin_commands::metrics_url() const {
    const metrics_http_server* http = _metrics_http.load(std::memory_order_acquire);
    return http ? json(http->url()) : json(nullptr);
}

json admin_commands::lcore_map_json() const {
    json rx = json::array(), workers = json::array();
    for (size_t r = 0; r < _pipeline.map().rx.size(); ++r)
        rx.push_back({{"rx", r},
                      {"lcore", _pipeline.map().rx[r].lcore},
                      {"cpus", _pipeline.map().rx[r].cpus},
                      {"queue", _pipeline.map().rx[r].queues.front()},
                      {"queues", _pipeline.map().rx[r].queues}});
    for (size_t w = 0; w < _pipeline.map().workers.size(); ++w)
        workers.push_back({{"worker", w},
                           {"lcore", _pipeline.map().workers[w].lcore},
                           {"cpus", _pipeline.map().workers[w].cpus}});
    return json{{"source", _pipeline.map().source},
                {"rx_queues", _pipeline.map().rx_queues},
                {"rss", _pipeline.map().rss},
                {"rx", rx},
                {"workers", workers},
                {"unused", _pipeline.map().unused}};
}

// retention: lists every table's policy and state; with "table" (or "*" for the
// default) and max_age_ms / max_bytes, sets that policy first ("clear": true drops a
// table's own policy). The background pass applies a change at once.
json admin_commands::retention(const json& req) {
    auto it = req.find("table");
    if (it != req.end()) {
        if (!it->is_string())
            return json{{"ok", false}, {"error", "retention: table must be a string"}};
        std::string table = it->get<std::string>();
        if (req.value("clear", false)) {
            _retention.clear_policy(table);
        } else {
            // Unset fields keep their current value (for a table without its own
            // policy: the default's).
            auto now = _retention.status();
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
                    return json{{"ok", false},
                                {"error", "retention: max_age_ms must be an integer >= 0"}};
                p.max_age_ms = age->get<int64_t>();
            }
            if (bytes != req.end()) {
                if (!bytes->is_number_integer() || bytes->get<int64_t>() < 0)
                    return json{{"ok", false},
                                {"error", "retention: max_bytes must be an integer >= 0"}};
                p.max_bytes = bytes->get<uint64_t>();
            }
            auto r = _retention.set_policy(table, p);
            if (!r) return json{{"ok", false}, {"error", "retention: " + r.err().message}};
        }
    }
    auto st = _retention.status();
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
                {"default",
                 {{"max_age_ms", st.default_policy.max_age_ms},
                  {"max_bytes", st.default_policy.max_bytes}}},
                {"passes", st.passes},
                {"tables", tables}};
}

json admin_commands::status() const {
    // Before start() has handed the server over (_server), the
    // policy is the configured one the server started with.
    // The reload count is read before the policy: reload() bumps it after its hooks have
    // applied, so a reply that shows a reload also shows what that reload applied.
    const uint64_t reloads = _reloads.load();
    const control_server* server = _server.load(std::memory_order_acquire);
    access_policy access = server ? server->access() : access_policy_of(_config.control);
    return json{
        {"ok", true},
        {"v", protocol_version},
        {"state", _shutdown_requested.load() || _signal_shutdown->load() ? "stopping" : "running"},
        {"version", SLUICE_VERSION},
        {"pid", int64_t(::getpid())},
        {"mode", input_mode_name(_config.input.mode)},
        {"port", _pipeline.port() ? json(_pipeline.port()->driver) : json(nullptr)},
        {"rx_lcores", _pipeline.rx_lcores()},
        {"worker_lcores", _pipeline.worker_lcores()},
        {"lcore_map", lcore_map_json()},
        {"data_dir", absolute_path(_config.sluice.data_dir)},
        {"udp_ports", _config.input.udp_ports},
        {"kafka",
         _pipeline.kafka_rx_index() < 0
             ? json(nullptr)
             : json(
                   _pipeline.rx()[size_t(_pipeline.kafka_rx_index())].kafka_listener->addresses())},
        {"queries", _pipeline.queries().stats().size()},
        {"socket", _config.sluice.control_socket},
        {"metrics_url", metrics_url()},
        {"config", _config.config_path.empty() ? json(nullptr) : json(_config.config_path)},
        {"reloads", reloads},
        {"control",
         {{"allow_uids", access.allow_uids},
          {"allow_gids", access.allow_gids},
          {"requests_per_s", access.requests_per_s},
          {"connection_requests_per_s", access.connection_requests_per_s}}},
        {"memory",
         {{"mode", dataplane::eal_memory_mode().name()},
          {"page_bytes", dataplane::eal_memory_mode().page_bytes}}},
        {"tsc_hz", tsc_hz()},
        {"uptime_s", double(monotonic_ns() - _started_ns) / 1e9}};
}

// Applies the control keys of a reloaded config: the allow lists and rate limits.
result<std::vector<std::string>> admin_commands::reload_control(const daemon_config& c) {
    std::vector<std::string> applied;
    control_server* server = _server.load(std::memory_order_acquire);
    if (server == nullptr) return make_error(errc::busy, "the control server is still starting");
    access_policy old_access = server->access();
    access_policy access = access_policy_of(c.control);
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
result<std::vector<std::string>> admin_commands::reload_retention(const daemon_config& c) {
    if (c.retention.defaults == _config.retention.defaults &&
        c.retention.tables == _config.retention.tables)
        return std::vector<std::string>{};
    SLUICE_TRY(_retention.set_policy("*", c.retention.defaults));
    for (const auto& [table, p] : _config.retention.tables)
        if (!c.retention.tables.contains(table)) _retention.clear_policy(table);
    for (const auto& [table, p] : c.retention.tables)
        SLUICE_TRY(_retention.set_policy(table, p));
    _config.retention.defaults = c.retention.defaults;
    _config.retention.tables = c.retention.tables;
    return std::vector<std::string>{"retention"};
}

json admin_commands::reload(const char* trigger) {
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
    for (const auto& k : applied)
        a += (a.empty() ? "" : ", ") + k;
    for (const auto& k : restart)
        r += (r.empty() ? "" : ", ") + k;
    SLUICE_LOG_INFO("reloaded %s (%s): applied %s; %s",
                    c.config_path.empty() ? "defaults" : c.config_path.c_str(), trigger,
                    a.empty() ? "no changes" : a.c_str(),
                    r.empty() ? "nothing needs a restart"
                              : ("needs a restart, kept: " + r).c_str());
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

json admin_commands::flush() {
    const uint64_t want = _pipeline.request_flush();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!_pipeline.flush_done(want)) {
        if (std::chrono::steady_clock::now() > deadline)
            return json{{"ok", false},
                        {"error", "flush did not complete within 10 s (is the disk stuck?)"}};
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return json{{"ok", true}, {"rows_durable", _pipeline.rows_durable()}};
}

} // namespace sluice::control
