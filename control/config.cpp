#include "control/config.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>

#include "base/limits.h"
#include "control/query_config.h"

namespace sluice::control {

namespace {

template <typename T>
void get(const toml::table& t, const char* section, const char* key, T& out) {
    if (auto v = t[section][key].value<T>()) out = *v;
}

result<void> apply_toml(const std::string& path, daemon_config& c) {
    toml::table t;
    try {
        t = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return make_error(errc::bad_config,
                          "cannot read config " + path + ": " + std::string(e.description()) +
                              " at line " + std::to_string(e.source().begin.line) +
                              " (fix the file or pass another --config)");
    }
    get(t, "sluice", "data_dir", c.data_dir);
    get(t, "sluice", "control_socket", c.control_socket);
    if (auto v = t["sluice"]["workers"].value<int64_t>()) c.workers = uint32_t(*v);
    if (auto a = t["control"]["allow_uids"].as_array())
        for (auto& e : *a)
            if (auto v = e.value<int64_t>()) c.allow_uids.push_back(uint32_t(*v));
    if (auto a = t["control"]["allow_gids"].as_array())
        for (auto& e : *a)
            if (auto v = e.value<int64_t>()) c.allow_gids.push_back(uint32_t(*v));
    get(t, "control", "socket_group_gid", c.socket_group_gid);
    if (auto v = t["control"]["socket_mode"].value<std::string>()) {
        c.socket_mode = uint32_t(std::strtoul(v->c_str(), nullptr, 8));
    } else if (auto n = t["control"]["socket_mode"].value<int64_t>()) {
        c.socket_mode = uint32_t(*n);
    }
    if (auto v = t["control"]["requests_per_s"].value<int64_t>()) c.requests_per_s = uint32_t(*v);
    if (auto v = t["control"]["connection_requests_per_s"].value<int64_t>())
        c.connection_requests_per_s = uint32_t(*v);
    if (auto v = t["control"]["idle_timeout_ms"].value<int64_t>()) c.idle_timeout_ms = uint32_t(*v);
    get(t, "input", "mode", c.mode);
    if (auto v = t["input"]["port_id"].value<int64_t>()) c.port_id = uint16_t(*v);
    if (auto a = t["input"]["udp_ports"].as_array()) {
        c.udp_ports.clear();
        for (auto& e : *a)
            if (auto v = e.value<int64_t>()) c.udp_ports.push_back(uint16_t(*v));
    }
    get(t, "input", "kernel_bind", c.kernel_bind);
    if (auto v = t["input"]["event_bytes_max"].value<int64_t>()) c.event_bytes_max = uint32_t(*v);
    get(t, "input", "max_future_skew_ms", c.max_future_skew_ms);
    if (auto v = t["input"]["slots"].value<int64_t>()) c.slots = uint32_t(*v);
    get(t, "processing", "watermark_delay_ms", c.watermark_delay_ms);
    get(t, "processing", "dedup_horizon_ms", c.dedup_horizon_ms);
    if (auto v = t["processing"]["dedup_memory_mb"].value<int64_t>()) c.dedup_memory_mb = uint64_t(*v);
    // [[query]] tables, or one [query] table (the slice's form: name, window_size_ms,
    // group_by).
    std::vector<json> queries;
    c.queries_configured = t.contains("query");
    if (auto a = t["query"].as_array()) {
        for (auto& e : *a) {
            auto tab = e.as_table();
            if (tab == nullptr)
                return make_error(errc::bad_config, "config " + path +
                                                        ": query must be a list of tables ([[query]])");
            queries.push_back(toml_to_json(*tab));
        }
    } else if (auto tab = t["query"].as_table()) {
        json j = toml_to_json(*tab);
        if (!j.contains("name")) j["name"] = processing::reference_query().name;
        queries.push_back(j);
    }
    c.queries.clear();
    for (const auto& j : queries) {
        auto q = query_from_json(j, c.watermark_delay_ms);
        if (!q)
            return make_error(errc::bad_config, "config " + path + ": " + q.err().message +
                                                    " (fix the [[query]] table)");
        for (const auto& other : c.queries)
            if (other.name == q->name)
                return make_error(errc::bad_config, "config " + path + ": two queries are named \"" +
                                                        q->name + "\" (names must be unique)");
        c.queries.push_back(std::move(q.value()));
    }
    if (auto v = t["storage"]["flush_interval_ms"].value<int64_t>()) c.flush_interval_ms = uint32_t(*v);
    get(t, "storage", "direct_io", c.direct_io);
    return ok_result();
}

result<void> validate(const daemon_config& c) {
    auto bad = [](std::string what) { return make_error(errc::bad_config, std::move(what)); };
    if (c.mode != "dpdk" && c.mode != "kernel_udp")
        return bad("input.mode must be \"dpdk\" or \"kernel_udp\", not \"" + c.mode + "\"");
    if (c.udp_ports.empty()) return bad("input.udp_ports is empty (list at least one UDP port)");
    if (c.event_bytes_max < 64 || c.event_bytes_max > 65536)
        return bad("input.event_bytes_max must be within 64..65536");
    if (c.watermark_delay_ms < 0) return bad("processing.watermark_delay_ms must be >= 0");
    if (c.dedup_horizon_ms <= 0) return bad("processing.dedup_horizon_ms must be > 0");
    if (c.queries.size() > limits::queries_max)
        return bad("at most " + std::to_string(limits::queries_max) + " [[query]] tables");
    if (c.data_dir.empty()) return bad("sluice.data_dir is empty (pass --data-dir)");
    if ((c.socket_mode & ~0777u) != 0 || (c.socket_mode & 0600u) != 0600u)
        return bad("control.socket_mode must be an octal mode within 0600..0777 that lets the "
                   "owner read and write, e.g. \"0600\" or \"0660\"");
    return ok_result();
}

} // namespace

std::vector<std::string> restart_required(const daemon_config& a, const daemon_config& b) {
    std::vector<std::string> keys;
    auto check = [&](bool same, const char* key) {
        if (!same) keys.emplace_back(key);
    };
    check(a.data_dir == b.data_dir, "sluice.data_dir");
    check(a.control_socket == b.control_socket, "sluice.control_socket");
    check(a.workers == b.workers, "sluice.workers");
    check(a.socket_group_gid == b.socket_group_gid, "control.socket_group_gid");
    check(a.socket_mode == b.socket_mode, "control.socket_mode");
    check(a.idle_timeout_ms == b.idle_timeout_ms, "control.idle_timeout_ms");
    check(a.mode == b.mode, "input.mode");
    check(a.port_id == b.port_id, "input.port_id");
    check(a.udp_ports == b.udp_ports, "input.udp_ports");
    check(a.kernel_bind == b.kernel_bind, "input.kernel_bind");
    check(a.event_bytes_max == b.event_bytes_max, "input.event_bytes_max");
    check(a.max_future_skew_ms == b.max_future_skew_ms, "input.max_future_skew_ms");
    check(a.slots == b.slots, "input.slots");
    check(a.watermark_delay_ms == b.watermark_delay_ms, "processing.watermark_delay_ms");
    check(a.dedup_horizon_ms == b.dedup_horizon_ms, "processing.dedup_horizon_ms");
    check(a.dedup_memory_mb == b.dedup_memory_mb, "processing.dedup_memory_mb");
    // Queries change at run time with `sluicectl queries add|remove`, not by reload. (The
    // default reference query follows processing.watermark_delay_ms, reported above.)
    if (a.queries_configured || b.queries_configured) check(a.queries == b.queries, "query");
    check(a.flush_interval_ms == b.flush_interval_ms, "storage.flush_interval_ms");
    check(a.direct_io == b.direct_io, "storage.direct_io");
    return keys;
}

result<daemon_config> load_config(int argc, char** argv) {
    daemon_config c;
    CLI::App app{"sluiced: streaming ingestion appliance (EAL options, then --, then these)",
                 "sluiced"};
    std::string config_path;
    std::string data_dir, socket, kernel_udp;
    int64_t udp_port = -1, workers = -1, port_id = -1;
    app.add_option("-c,--config", config_path, "TOML configuration file");
    app.add_option("--data-dir", data_dir, "data directory (overrides sluice.data_dir)");
    app.add_option("--control-socket", socket, "control socket path");
    app.add_option("--udp-port", udp_port, "UDP port to accept events on");
    app.add_option("--workers", workers, "number of worker lcores");
    app.add_option("--port-id", port_id, "DPDK port id");
    app.add_option("--kernel-udp", kernel_udp,
                   "receive from a kernel UDP socket bound to ADDR instead of a DPDK port");
    int64_t test_hold_us = -1;
    app.add_option("--test-hold-us", test_hold_us,
                   "TEST ONLY: workers hold each burst until it is this many microseconds old "
                   "(a known delay for latency tests)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        return make_error(errc::invalid_argument, app.help());
    } catch (const CLI::ParseError& e) {
        return make_error(errc::invalid_argument,
                          std::string(e.what()) + " (run `sluiced -- --help` for the options)");
    }
    if (!config_path.empty()) SLUICE_TRY(apply_toml(config_path, c));
    c.config_path = config_path;
    if (test_hold_us >= 0) c.test_hold_us = uint32_t(std::min<int64_t>(test_hold_us, 10'000'000));
    if (!data_dir.empty()) c.data_dir = data_dir;
    if (!socket.empty()) c.control_socket = socket;
    if (udp_port >= 0) {
        if (udp_port == 0 || udp_port > 65535)
            return make_error(errc::invalid_argument, "--udp-port must be within 1..65535");
        c.udp_ports = {uint16_t(udp_port)};
    }
    if (workers >= 0) c.workers = uint32_t(workers);
    if (port_id >= 0) c.port_id = uint16_t(port_id);
    if (!kernel_udp.empty()) {
        c.mode = "kernel_udp";
        c.kernel_bind = kernel_udp;
    }
    if (c.queries.empty() && !c.queries_configured) {
        processing::query_def q = processing::reference_query();
        q.watermark_delay_ms = c.watermark_delay_ms;
        c.queries.push_back(q);
    }
    SLUICE_TRY(validate(c));
    return c;
}

} // namespace sluice::control
