#pragma once
// sluiced's configuration: a TOML file, then command-line overrides. One struct per TOML
// section (docs/sluiced.toml), each key under its TOML name where it can be; every
// default comes from base/limits.h. load_config() checks everything once, so the users
// read plain data: the input as an enum, [storage] as the storage::writer_options every
// writer gets whole.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/limits.h"
#include "base/log.h"
#include "base/result.h"
#include "processing/query.h"
#include "storage/retention.h"
#include "storage/writer_options.h"

namespace sluice::control {

// input.mode: where events come from.
enum class input_mode : uint8_t {
    dpdk,       // a DPDK port
    kernel_udp, // kernel UDP sockets (io_uring)
    kafka,      // the Kafka listener alone
};
// Its TOML spelling ("dpdk", "kernel_udp", "kafka").
const char* input_mode_name(input_mode mode) noexcept;
std::optional<input_mode> parse_input_mode(std::string_view name) noexcept;

// [sluice]
struct sluice_config {
    std::string data_dir{limits::data_dir_default};
    std::string control_socket{limits::control_socket_default};
    bool operator==(const sluice_config&) const = default;
};

// lcores.idle: what an idle lcore that can block does. DPDK RX lcores always poll.
enum class idle_mode : uint8_t {
    wait, // block until handed work or a deadline (base/idle_wake.h; the Kafka RX's ring)
    poll, // spin, then sleep 10-200 us at a time and look again (base/backoff.h)
};
// Its TOML spelling ("wait", "poll").
const char* idle_mode_name(idle_mode mode) noexcept;
std::optional<idle_mode> parse_idle_mode(std::string_view name) noexcept;

// [lcores] and [sluice] workers (see dataplane/lcore_map.h for how the defaults are
// derived). `rx` and `workers` are each a count or a list of EAL lcore ids.
struct lcores_config {
    uint32_t rx_count = 0;         // RX lcores; 0: one per four workers, <= queues
    std::vector<unsigned> rx;      // explicit EAL lcore ids for RX
    uint32_t worker_count = 0;     // 0: every lcore beyond the main and RX lcores
    std::vector<unsigned> workers; // explicit EAL lcore ids for workers
    idle_mode idle = idle_mode::wait; // workers, the merger, the Kafka RX
    bool operator==(const lcores_config&) const = default;
};

// [control]: who may use the control socket, and how much.
struct control_config {
    std::vector<uint32_t> allow_uids;
    std::vector<uint32_t> allow_gids;
    int64_t socket_group_gid = -1;
    uint32_t socket_mode = limits::control_socket_mode_default;
    uint32_t requests_per_s = limits::control_requests_per_s_default; // all clients; 0 = no limit
    uint32_t connection_requests_per_s =
        limits::control_connection_requests_per_s_default; // per connection; 0 = no limit
    uint32_t idle_timeout_ms = limits::control_idle_timeout_ms_default; // 0 = never
    bool operator==(const control_config&) const = default;
};

// [input]
struct input_config {
    input_mode mode = input_mode::dpdk;
    bool mode_set = false; // input.mode was given in the file
    uint16_t port_id = 0;
    std::vector<uint16_t> udp_ports{limits::udp_port_default};
    std::string kernel_bind{limits::kernel_bind_default};
    uint32_t kernel_rcvbuf_bytes = limits::kernel_rcvbuf_bytes_default; // per kernel UDP socket
    uint32_t event_bytes_max = limits::event_bytes_default;
    int64_t max_future_skew_ms = limits::max_future_skew_ms_default;
    // Event slots in flight, all rings together; 0: dataplane::slots_default() for the
    // lcore map (4 Ki or more). Few enough that the slots in use stay in cache and the
    // TLB (docs/benchmarks.md: RX is ~1.5x faster with 4 Ki than with 32 Ki).
    uint32_t slots = 0;
    uint32_t rx_queues = 0; // port RX queues; 0: one per RX lcore
    uint32_t mbufs = limits::mbuf_pool_size; // the port's mbuf pool
    bool operator==(const input_config&) const = default;
};

// [[kafka.topic]]: a topic the Kafka listener knows from the start.
struct kafka_topic_def {
    std::string name;
    int32_t partitions = 0; // 0: one per worker
    bool operator==(const kafka_topic_def&) const = default;
};

// [kafka] (docs/KAFKA.md): a Kafka produce listener, alone (input_mode::kafka) or beside
// the DPDK or kernel UDP input, on an RX lcore of its own.
struct kafka_config {
    std::vector<std::string> listen;     // "HOST:PORT"; empty: no Kafka listener
    std::string advertised;              // "HOST:PORT" in Metadata; "": the first listen
    std::vector<kafka_topic_def> topics; // empty: events-topic
    bool auto_create_topics = true;
    uint32_t connections_max = limits::kafka_connections_default;
    uint32_t request_bytes_max = limits::kafka_request_bytes_default;
    uint32_t idle_timeout_ms = limits::kafka_idle_timeout_ms_default; // 0 = never
    int64_t lcore = -1; // beside another input: the EAL lcore; -1: the first free one
    bool operator==(const kafka_config&) const = default;
};

// [processing]
struct processing_config {
    int64_t watermark_delay_ms = limits::watermark_delay_ms_default;
    int64_t dedup_horizon_ms = limits::dedup_horizon_ms_default;
    uint64_t dedup_memory_mb = limits::dedup_memory_bytes_default >> 20; // all workers together
    bool operator==(const processing_config&) const = default;
};

// [retention] (the default of every table) and [retention.tables.NAME].
struct retention_config {
    storage::retention_policy defaults{};
    std::map<std::string, storage::retention_policy> tables;
    uint32_t interval_ms = limits::retention_interval_ms_default;
    bool operator==(const retention_config&) const = default;
};

// [metrics]: Prometheus' GET /metrics on "IPV4:PORT" (control/metrics_http.h); "" = none.
struct metrics_config {
    std::string listen;
    bool operator==(const metrics_config&) const = default;
};

// [log] (base/log.h): text or JSON lines; per call site at most rate_limit.burst lines
// each rate_limit.interval_ms (burst 0 = no limit).
struct log_config {
    log_format format = log_format::text;
    log_rate_limit rate_limit{};
    bool operator==(const log_config&) const = default;
};

// [testing] and the TEST ONLY / BENCHMARKS ONLY options: never for production use.
struct testing_config {
    uint32_t slow_worker_us = 0; // each worker sleeps this long after every burst
    bool bench_sink = false;     // workers discard slots unprocessed (RX rate only)
    uint32_t hold_us = 0;        // (--test-hold-us) workers hold each burst until this old
    bool operator==(const testing_config&) const = default;
};

struct daemon_config {
    std::string config_path; // the file loaded ("" = defaults only); SIGHUP re-reads it
    sluice_config sluice;
    lcores_config lcores;
    control_config control;
    input_config input;
    kafka_config kafka;
    processing_config processing;
    // [[query]]: the continuous queries started with the daemon (the reference query
    // when none is configured; its delay is processing.watermark_delay_ms). Queries
    // added or removed at run time are kept in the data dir (_processing/queries.json)
    // and applied on top of these at start.
    std::vector<processing::query_def> queries;
    bool queries_configured = false; // a `query` key was given (`query = []`: none)
    // [storage]: every writer's options, passed whole to each (workers, merger, replay).
    storage::writer_options storage;
    retention_config retention;
    metrics_config metrics;
    log_config log;
    testing_config testing;
    bool operator==(const daemon_config&) const = default;
};

// The keys whose new value a reload cannot apply while running (they need a restart),
// by their TOML names, comparing `running` with `fresh`.
std::vector<std::string> restart_required(const daemon_config& running, const daemon_config& fresh);

// Applies [log] (format, rate limit) to base/log.h: sluiced calls it once the config is loaded.
void apply_log_config(const daemon_config& config);

// Reads the TOML file at `path` into `c`: each section into its struct, key by key
// (config_file.cpp). A key of the wrong type, an integer out of its range or a key no
// table has is an error naming it (TABLE.KEY) and its line. load_config() calls it
// before the command-line overrides.
result<void> apply_config_file(const std::string& path, daemon_config& c);
// "text" or "json" into `out`; otherwise an error naming log.format.
result<void> parse_log_format_key(const std::string& name, log_format& out);

// Loads `path` (empty: defaults only) and applies the command-line options that follow
// EAL's `--`. Errors name the option or key and what to do about it.
result<daemon_config> load_config(int argc, char** argv);

} // namespace sluice::control
