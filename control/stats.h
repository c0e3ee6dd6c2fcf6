#pragma once
// The `stats` reply and the Prometheus `metrics` from one typed snapshot. Each counter
// is named once, in a table (JSON key, metric, help text, accessor: the way DPDK's xstats
// name theirs), and both renderings walk the same tables, so a counter cannot reach one
// and miss the other. The daemon fills a stats_snapshot from relaxed reads of the data
// plane (control/stats_reader.h); nothing here touches the data plane.
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/latency_histogram.h"
#include "control/control_server.h"

namespace sluice::control {

using json = nlohmann::json;

/// One count by a label value: a dead-letter reason, a frame verdict.
struct labelled_count {
    std::string label;
    uint64_t value = 0;
};

enum class metric_type { counter, gauge };

/// How a field of T is named in `stats` and in `metrics`.
template <class T> struct stat_field {
    const char* key;    ///< JSON key
    const char* metric; ///< Prometheus family, or nullptr: JSON only
    const char* help;   ///< the family's HELP text
    metric_type type;
    uint64_t T::*value;
    double metric_scale = 1; ///< e.g. 1e-3: ms in JSON, seconds in Prometheus
    const char* label =
        nullptr; ///< the family is labelled `label="<key>"` (one family, many fields)
};

/// Counters summed over the lcores: the ones `rates` are computed from.
struct totals_counters {
    uint64_t rx_packets = 0, rx_bytes = 0, events_received = 0, events_accepted = 0, duplicates = 0,
             late_events = 0, dead_letters = 0, rx_dropped = 0, bytes_written = 0;
    std::vector<labelled_count> dead_letters_by_reason;
};

/// Events and bytes through one core (RX: received, worker: taken in and written).
struct core_flow {
    uint64_t events = 0, bytes = 0;
};

/// The Kafka RX lcore's counters that its rates come from, and its produce-ack latency
/// per acks mode (0, 1, all). `present` is false without a Kafka listener.
struct kafka_sample {
    bool present = false;
    uint64_t requests = 0, records = 0, errors = 0;
    std::array<histogram_snapshot, 3> ack;
};

/// What rates and recent latency are computed from, at one instant.
struct stats_sample {
    int64_t at_ns = 0;
    totals_counters totals;
    std::vector<core_flow> rx, workers;
    histogram_snapshot window_visible; ///< merged over every worker
    histogram_snapshot durable;
    kafka_sample kafka;
};

/// Per-second change of `field` from `base` to `now` (0 when no time passed, never negative).
double rate_per_s(uint64_t now, uint64_t base, int64_t now_ns, int64_t base_ns);

/// The last few samples, one per control tick, oldest first. One thread only.
class stats_history {
  public:
    explicit stats_history(size_t samples_max) : _samples_max(samples_max) {}
    void push(stats_sample s);
    /// The newest sample taken at least `min_age_ns` before `now_ns`, else the oldest;
    /// nullptr when there is none.
    const stats_sample* base_for_rates(int64_t now_ns, int64_t min_age_ns) const;
    const stats_sample* oldest() const { return _samples.empty() ? nullptr : &_samples.front(); }
    size_t size() const { return _samples.size(); }

  private:
    size_t _samples_max;
    std::deque<stats_sample> _samples;
};

struct rx_core_stats {
    uint32_t rx = 0;
    unsigned lcore = 0;
    std::string input; ///< dpdk | kernel_udp | kafka
    std::vector<uint16_t> queues;
    uint64_t rx_packets = 0, rx_bytes = 0, ignored_packets = 0, events_received = 0,
             rx_dead_letters = 0, binary_events = 0, backpressure_waits = 0, rx_dropped = 0;
    std::vector<labelled_count> ignored_by_reason;
    std::optional<bool> kernel_multishot; ///< kernel mode: one multishot recvmsg
};

struct worker_core_stats {
    uint32_t worker = 0;
    unsigned lcore = 0;
    uint64_t events_in = 0, events_accepted = 0, duplicates = 0, late_events = 0, dead_letters = 0,
             window_overflow = 0, bench_sunk = 0, dedup_tracked = 0, dedup_capacity = 0,
             dedup_horizon_ms = 0, bytes_written = 0, rows_durable = 0, events_durable = 0,
             dead_letters_durable = 0, idle_slept_with_work_max_us = 0;
    histogram_snapshot window_visible, durable;
};

struct ring_stats {
    uint32_t rx = 0, worker = 0;
    uint64_t occupancy = 0, capacity = 0;
};

struct port_stats_entry {
    uint16_t port_id = 0, rx_queues = 0;
    std::string driver;
    bool rss = false;
    uint64_t ipackets = 0, imissed = 0, rx_nombuf = 0, ierrors = 0, rx_dropped = 0;
};

/// Totals beyond the rate counters: over every lcore and table.
struct totals_stats {
    uint64_t ignored_packets = 0, window_rows = 0, rows_durable = 0;
    std::vector<labelled_count> ignored_by_reason;
    int64_t durable_event_time_ms = 0;
};

/// Log lines the rate limit dropped (base/log.h).
struct log_counters {
    uint64_t lines_suppressed = 0;
};

/// What the HTTP /metrics endpoint answered, per outcome (control/metrics_http.h; zeros
/// when it is off).
struct metrics_http_stats {
    uint64_t ok = 0, not_found = 0, method_not_allowed = 0, error = 0;
};

/// Everything `stats` reports, read at one instant.
struct stats_snapshot {
    std::string version;
    double uptime_s = 0;
    double ticks_per_us = 0;
    int64_t watermark_ms = 0; ///< 0 before any event
    int64_t watermark_delay_ms = 0;
    std::optional<int64_t> watermark_lag_ms, max_event_time_ms;
    stats_sample now;
    const stats_sample* rate_base = nullptr;   ///< about a second old; nullptr: no rates yet
    const stats_sample* recent_base = nullptr; ///< the oldest kept: recent latency
    totals_stats totals;
    std::vector<rx_core_stats> rx;
    std::vector<worker_core_stats> workers;
    std::vector<ring_stats> rings;
    std::vector<port_stats_entry> ports;
    server_counters control;
    bool control_up = false; ///< the server has been handed over (else `control` is {})
    log_counters log;
    metrics_http_stats metrics_http;
    // Sections with no metrics of their own, built by their owners.
    json storage = json::object(); ///< control/stats_reader.h
    json kafka; ///< null without a Kafka listener; rates and ack latency come from `now`
    json queries = json::array();  ///< query_service::stats()
};

/// The `stats` reply ("ok", "v" and every section).
json stats_json(const stats_snapshot& s);

/// The Prometheus text exposition format (version 0.0.4) of the same snapshot: counters
/// per core and per reason, gauges for watermark, lag, rings and rates, and the latency
/// as a histogram (since start) and a summary (quantiles over the recent interval).
std::string prometheus_text(const stats_snapshot& s);

/// The content type to serve prometheus_text() with.
inline constexpr const char* prometheus_content_type = "text/plain; version=0.0.4";

} // namespace sluice::control
