// Configuration (config.h): load_config() reads the file (config_file.cpp), applies
// the command-line overrides and checks across sections; which keys need a restart.
#include "control/config.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>

#include "base/limits.h"
#include "base/log.h"
#include "control/metrics_http.h"
#include "dataplane/lcore_map.h"

namespace sluice::control {

namespace {

// The checks across keys, and of what the command line can set too; each key's own type
// and range are config_file.cpp's (its `section`).
result<void> validate(const daemon_config& c) {
    auto bad = [](std::string what) { return make_error(errc::bad_config, std::move(what)); };
    if (c.input.mode == input_mode::kafka && c.kafka.listen.empty())
        return bad("input.mode = \"kafka\" needs a listener: set kafka.listen or pass --kafka "
                   "ADDR:PORT");
    if (c.kafka.listen.size() > limits::kafka_listen_addresses_max)
        return bad("kafka.listen lists more than " +
                   std::to_string(limits::kafka_listen_addresses_max) + " addresses");
    if (c.input.udp_ports.empty())
        return bad("input.udp_ports is empty (list at least one UDP port)");
    if (c.queries.size() > limits::queries_max)
        return bad("at most " + std::to_string(limits::queries_max) + " [[query]] tables");
    if (c.sluice.data_dir.empty()) return bad("sluice.data_dir is empty (pass --data-dir)");
    if (c.input.rx_queues > 1024) return bad("input.rx_queues must be <= 1024");
    SLUICE_TRY(check_metrics_listen(c.metrics.listen));
    if ((c.control.socket_mode & ~0777u) != 0 || (c.control.socket_mode & 0600u) != 0600u)
        return bad("control.socket_mode must be an octal mode within 0600..0777 that lets the "
                   "owner read and write, e.g. \"0600\" or \"0660\"");
    return ok_result();
}

} // namespace

const char* input_mode_name(input_mode mode) noexcept {
    switch (mode) {
    case input_mode::dpdk: return "dpdk";
    case input_mode::kernel_udp: return "kernel_udp";
    case input_mode::kafka: return "kafka";
    }
    return "dpdk";
}

std::optional<input_mode> parse_input_mode(std::string_view name) noexcept {
    for (input_mode m : {input_mode::dpdk, input_mode::kernel_udp, input_mode::kafka})
        if (name == input_mode_name(m)) return m;
    return std::nullopt;
}

const char* idle_mode_name(idle_mode mode) noexcept {
    return mode == idle_mode::poll ? "poll" : "wait";
}

std::optional<idle_mode> parse_idle_mode(std::string_view name) noexcept {
    for (idle_mode m : {idle_mode::wait, idle_mode::poll})
        if (name == idle_mode_name(m)) return m;
    return std::nullopt;
}

std::vector<std::string> restart_required(const daemon_config& a, const daemon_config& b) {
    std::vector<std::string> keys;
    auto check = [&](bool same, const char* key) {
        if (!same) keys.emplace_back(key);
    };
    check(a.sluice.data_dir == b.sluice.data_dir, "sluice.data_dir");
    check(a.sluice.control_socket == b.sluice.control_socket, "sluice.control_socket");
    check(a.lcores.worker_count == b.lcores.worker_count, "sluice.workers");
    check(a.lcores.rx_count == b.lcores.rx_count && a.lcores.rx == b.lcores.rx, "lcores.rx");
    check(a.lcores.idle == b.lcores.idle, "lcores.idle");
    check(a.lcores.workers == b.lcores.workers, "lcores.workers");
    check(a.input.rx_queues == b.input.rx_queues, "input.rx_queues");
    check(a.input.mbufs == b.input.mbufs, "input.mbufs");
    check(a.input.kernel_rcvbuf_bytes == b.input.kernel_rcvbuf_bytes, "input.kernel_rcvbuf_bytes");
    check(a.control.socket_group_gid == b.control.socket_group_gid, "control.socket_group_gid");
    check(a.control.socket_mode == b.control.socket_mode, "control.socket_mode");
    check(a.control.idle_timeout_ms == b.control.idle_timeout_ms, "control.idle_timeout_ms");
    check(a.input.mode == b.input.mode, "input.mode");
    check(a.kafka == b.kafka, "kafka");
    check(a.input.port_id == b.input.port_id, "input.port_id");
    check(a.input.udp_ports == b.input.udp_ports, "input.udp_ports");
    check(a.input.kernel_bind == b.input.kernel_bind, "input.kernel_bind");
    check(a.input.event_bytes_max == b.input.event_bytes_max, "input.event_bytes_max");
    check(a.input.max_future_skew_ms == b.input.max_future_skew_ms, "input.max_future_skew_ms");
    check(a.input.slots == b.input.slots, "input.slots");
    check(a.processing.watermark_delay_ms == b.processing.watermark_delay_ms,
          "processing.watermark_delay_ms");
    check(a.processing.dedup_horizon_ms == b.processing.dedup_horizon_ms,
          "processing.dedup_horizon_ms");
    check(a.processing.dedup_memory_mb == b.processing.dedup_memory_mb,
          "processing.dedup_memory_mb");
    // Queries change at run time with `sluicectl queries add|remove`, not by reload. (The
    // default reference query follows processing.watermark_delay_ms, reported above.)
    if (a.queries_configured || b.queries_configured) check(a.queries == b.queries, "query");
    check(a.storage.flush_interval_ms == b.storage.flush_interval_ms, "storage.flush_interval_ms");
    check(a.storage.direct_io == b.storage.direct_io, "storage.direct_io");
    check(a.storage.sync_bytes == b.storage.sync_bytes, "storage.sync_bytes");
    check(a.storage.segment_bytes_max == b.storage.segment_bytes_max, "storage.segment_bytes_max");
    check(a.storage.compression.kind == b.storage.compression.kind, "storage.compression");
    check(a.storage.compression.level == b.storage.compression.level, "storage.compression_level");
    check(a.retention.interval_ms == b.retention.interval_ms, "retention.interval_ms");
    check(a.metrics.listen == b.metrics.listen, "metrics.listen");
    check(a.log.format == b.log.format && a.log.rate_limit.burst == b.log.rate_limit.burst &&
              a.log.rate_limit.interval_ms == b.log.rate_limit.interval_ms,
          "log");
    return keys;
}

void apply_log_config(const daemon_config& c) {
    log_set_format(c.log.format);
    log_set_journal(log_stderr_is_journal());
    log_set_rate_limit(c.log.rate_limit);
}

result<daemon_config> load_config(int argc, char** argv) {
    daemon_config c;
    CLI::App app{"sluiced: streaming ingestion appliance (EAL options, then --, then these)",
                 "sluiced"};
    std::string config_path;
    std::string data_dir, socket, kernel_udp;
    std::vector<std::string> kafka;
    int64_t udp_port = -1, workers = -1, port_id = -1, rx = -1, rx_queues = -1,
            slow_worker_us = -1;
    std::string rx_list, worker_list;
    app.add_option("-c,--config", config_path, "TOML configuration file");
    app.add_option("--data-dir", data_dir, "data directory (overrides sluice.data_dir)");
    app.add_option("--control-socket", socket, "control socket path");
    app.add_option("--udp-port", udp_port, "UDP port to accept events on");
    app.add_option("--workers", workers, "number of worker lcores");
    app.add_option("--port-id", port_id, "DPDK port id");
    app.add_option("--rx", rx, "number of RX lcores (default: one per four workers)");
    app.add_option("--rx-lcores", rx_list, "EAL lcore ids for RX, e.g. 1,2 (overrides --rx)");
    app.add_option("--worker-lcores", worker_list,
                   "EAL lcore ids for workers, e.g. 3-6 (overrides --workers)");
    app.add_option("--rx-queues", rx_queues,
                   "port RX queues, dealt round robin to the RX lcores (default: one each)");
    bool bench_sink = false;
    app.add_flag("--bench-sink", bench_sink,
                 "BENCHMARKS ONLY: workers give slots back unprocessed (measures RX -> rings "
                 "-> workers; nothing is stored)");
    app.add_option("--test-slow-worker-us", slow_worker_us,
                   "TEST ONLY: every worker sleeps this long after each burst (back-pressure "
                   "tests)");
    app.add_option("--kernel-udp", kernel_udp,
                   "receive from a kernel UDP socket bound to ADDR instead of a DPDK port");
    app.add_option("--kafka", kafka,
                   "accept Kafka producers on ADDR:PORT (repeatable; alone unless --kernel-udp "
                   "or input.mode names another input)");
    std::string metrics_listen, log_format_arg;
    bool metrics_listen_set = false;
    app.add_option("--metrics-listen", metrics_listen,
                   "serve Prometheus' GET /metrics on IPV4:PORT, \"\" for none (overrides "
                   "metrics.listen)")
        ->each([&](const std::string&) { metrics_listen_set = true; });
    app.add_option("--log-format", log_format_arg, "log lines as text or json (overrides log.format)");
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
    if (!config_path.empty()) SLUICE_TRY(apply_config_file(config_path, c));
    c.config_path = config_path;
    if (test_hold_us >= 0)
        c.testing.hold_us = uint32_t(std::min<int64_t>(test_hold_us, 10'000'000));
    if (!data_dir.empty()) c.sluice.data_dir = data_dir;
    if (metrics_listen_set) c.metrics.listen = metrics_listen;
    if (!log_format_arg.empty()) SLUICE_TRY(parse_log_format_key(log_format_arg, c.log.format));
    if (!socket.empty()) c.sluice.control_socket = socket;
    if (udp_port >= 0) {
        if (udp_port == 0 || udp_port > 65535)
            return make_error(errc::invalid_argument, "--udp-port must be within 1..65535");
        c.input.udp_ports = {uint16_t(udp_port)};
    }
    if (workers >= 0) c.lcores.worker_count = uint32_t(workers);
    if (rx >= 0) c.lcores.rx_count = uint32_t(rx);
    if (rx_queues >= 0) c.input.rx_queues = uint32_t(rx_queues);
    if (slow_worker_us >= 0) c.testing.slow_worker_us = uint32_t(slow_worker_us);
    c.testing.bench_sink = bench_sink;
    if (!rx_list.empty()) {
        auto l = dataplane::parse_lcore_list(rx_list);
        if (!l) return std::move(l).err();
        c.lcores.rx = *l;
    }
    if (!worker_list.empty()) {
        auto l = dataplane::parse_lcore_list(worker_list);
        if (!l) return std::move(l).err();
        c.lcores.workers = *l;
    }
    if (port_id >= 0) c.input.port_id = uint16_t(port_id);
    if (!kernel_udp.empty()) {
        c.input.mode = input_mode::kernel_udp;
        c.input.kernel_bind = kernel_udp;
    }
    if (!kafka.empty()) {
        c.kafka.listen = kafka;
        // Kafka alone unless another input was asked for.
        if (kernel_udp.empty() && !c.input.mode_set) c.input.mode = input_mode::kafka;
    }
    if (c.queries.empty() && !c.queries_configured) {
        processing::query_def q = processing::reference_query();
        q.watermark_delay_ms = c.processing.watermark_delay_ms;
        c.queries.push_back(q);
    }
    SLUICE_TRY(validate(c));
    return c;
}

} // namespace sluice::control
