#pragma once
// sluiced's configuration: a TOML file, then command-line overrides.
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "processing/query.h"

namespace sluice::control {

struct daemon_config {
    // [sluice]
    std::string data_dir = "/var/lib/sluice";
    std::string control_socket = "/run/sluice/sluiced.sock";
    uint32_t workers = 0; // 0: every lcore beyond the main and RX lcores
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
    std::string mode = "dpdk"; // dpdk | kernel_udp
    uint16_t port_id = 0;
    std::vector<uint16_t> udp_ports{9000};
    std::string kernel_bind = "127.0.0.1";
    uint32_t event_bytes_max = 4096;
    int64_t max_future_skew_ms = 5 * 60 * 1000;
    uint32_t slots = 32768; // event slots in flight, all rings together
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
    bool direct_io = true;
    // Test only (--test-hold-us): workers hold each burst until it is this old.
    uint32_t test_hold_us = 0;
};

// The keys whose new value a reload cannot apply while running (they need a restart),
// by their TOML names, comparing `running` with `fresh`.
std::vector<std::string> restart_required(const daemon_config& running, const daemon_config& fresh);

// Loads `path` (empty: defaults only) and applies the command-line options that follow
// EAL's `--`. Errors name the option or key and what to do about it.
result<daemon_config> load_config(int argc, char** argv);

} // namespace sluice::control
