#pragma once
// sluiced's configuration: a TOML file, then command-line overrides.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/retention.h"
#include "storage/segment_format.h"
#include "processing/query.h"

namespace sluice::control {

// [[kafka.topic]]: a topic the Kafka listener knows from the start.
struct kafka_topic_def {
    std::string name;
    int32_t partitions = 0; // 0: one per worker
    bool operator==(const kafka_topic_def&) const = default;
};

struct daemon_config {
    // [sluice]
    std::string data_dir = "/var/lib/sluice";
    std::string control_socket = "/run/sluice/sluiced.sock";
    uint32_t workers = 0; // 0: every lcore beyond the main and RX lcores
    // [lcores] (see dataplane/lcore_map.h for how the defaults are derived)
    uint32_t rx_count = 0;               // RX lcores; 0: one per four workers, <= queues
    std::vector<unsigned> rx_lcores;     // explicit EAL lcore ids for RX
    std::vector<unsigned> worker_lcores; // explicit EAL lcore ids for workers
    std::string config_path; // the file loaded ("" = defaults only); SIGHUP re-reads it
    // [control]
    std::vector<uint32_t> allow_uids;
    std::vector<uint32_t> allow_gids;
    int64_t socket_group_gid = -1;
    uint32_t socket_mode = 0600;
    uint32_t requests_per_s = 2000;           // all clients together; 0 = no limit
    uint32_t connection_requests_per_s = 200; // per connection; 0 = no limit
    uint32_t idle_timeout_ms = 60'000;        // 0 = never
    // [input]
    std::string mode = "dpdk"; // dpdk | kernel_udp | kafka (the Kafka listener alone)
    bool mode_set = false;     // input.mode was given in the file
    uint16_t port_id = 0;
    std::vector<uint16_t> udp_ports{9000};
    std::string kernel_bind = "127.0.0.1";
    uint32_t kernel_rcvbuf_bytes = 32u << 20; // per kernel UDP socket (SO_RCVBUF)
    uint32_t event_bytes_max = 4096;
    int64_t max_future_skew_ms = 5 * 60 * 1000;
    // Event slots in flight, all rings together; 0: dataplane::slots_default() for the
    // lcore map (4 Ki or more). Few enough that the slots in use stay in cache and the
    // TLB (docs/benchmarks.md: RX is ~1.5x faster with 4 Ki than with 32 Ki).
    uint32_t slots = 0;
    uint32_t rx_queues = 0; // port RX queues; 0: one per RX lcore
    uint32_t mbufs = 8191;  // the port's mbuf pool
    // [kafka] (docs/KAFKA.md): a Kafka produce listener, alone (mode kafka) or beside the
    // DPDK or kernel UDP input, on an RX lcore of its own.
    std::vector<std::string> kafka_listen; // "HOST:PORT"; empty: no Kafka listener
    std::string kafka_advertised;          // "HOST:PORT" in Metadata; "": the first listen
    std::vector<kafka_topic_def> kafka_topics; // empty: events-topic
    bool kafka_auto_create_topics = true;
    uint32_t kafka_connections_max = 1024;
    uint32_t kafka_request_bytes_max = 16u << 20;
    uint32_t kafka_idle_timeout_ms = 10 * 60 * 1000; // 0 = never
    int64_t kafka_lcore = -1; // beside another input: the EAL lcore; -1: the first free one
    // [processing]
    int64_t watermark_delay_ms = 10 * 60 * 1000;
    int64_t dedup_horizon_ms = 60 * 60 * 1000;
    uint64_t dedup_memory_mb = 256; // all workers together
    // [[query]]: the continuous queries started with the daemon (the reference query
    // when none is configured; its delay is processing.watermark_delay_ms). Queries
    // added or removed at run time are kept in the data dir (_processing/queries.json)
    // and applied on top of these at start.
    std::vector<processing::query_def> queries;
    bool queries_configured = false; // a `query` key was given (`query = []`: none)
    // [storage]
    uint32_t flush_interval_ms = 100;
    uint64_t sync_bytes = 8u << 20;
    uint64_t segment_bytes_max = 256ull << 20; // a writer starts a new segment after this
    bool direct_io = true;
    // [testing] — test-only knobs, never for production use.
    uint32_t test_slow_worker_us = 0; // each worker sleeps this long after every burst
    bool bench_sink = false;          // workers discard slots unprocessed (RX rate only)
    storage::format::compression compression{}; // compression = "zstd"|"lz4"|"none", compression_level
    // [retention] (the default of every table) and [retention.tables.NAME]
    storage::retention_policy retention{};
    std::map<std::string, storage::retention_policy> retention_tables;
    uint32_t retention_interval_ms = 1000;
    // [metrics]: Prometheus' GET /metrics on "IPV4:PORT" (control/metrics_http.h); "" = none.
    std::string metrics_listen;
    // [log] (base/log.h): "text" or "json" lines; per call site at most log_burst lines
    // each log_interval_ms (log_burst 0 = no limit).
    std::string log_format = "text";
    uint32_t log_burst = 10;
    uint32_t log_interval_ms = 5000;
    // Test only (--test-hold-us): workers hold each burst until it is this old.
    uint32_t test_hold_us = 0;
};

// The keys whose new value a reload cannot apply while running (they need a restart),
// by their TOML names, comparing `running` with `fresh`.
std::vector<std::string> restart_required(const daemon_config& running, const daemon_config& fresh);

// Applies [log] (format, rate limit) to base/log.h: sluiced calls it once the config is loaded.
void apply_log_config(const daemon_config& config);

// Loads `path` (empty: defaults only) and applies the command-line options that follow
// EAL's `--`. Errors name the option or key and what to do about it.
result<daemon_config> load_config(int argc, char** argv);

} // namespace sluice::control
