#pragma once
// The counter tables of control/stats.h — one row per counter: JSON key, Prometheus
// family, help text, type, accessor — and the rate helpers both renderings share.
// Private to stats.cpp (the `stats` JSON) and stats_prometheus.cpp (the `metrics` text):
// a counter added here reaches both.
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/stats.h"

namespace sluice::control::stats_detail {

using mt = metric_type;

inline const stat_field<rx_core_stats> rx_fields[] = {
    {"rx_packets", "sluice_rx_packets_total",
     "Frames (DPDK) or datagrams (kernel socket) received, per RX lcore.", mt::counter,
     &rx_core_stats::rx_packets},
    {"rx_bytes", "sluice_rx_bytes_total",
     "Bytes of the frames or datagrams received, per RX lcore.", mt::counter,
     &rx_core_stats::rx_bytes},
    {"ignored_packets", "sluice_ignored_packets_total",
     "Frames that were not UDP to a configured port, per RX lcore.", mt::counter,
     &rx_core_stats::ignored_packets},
    {"events_received", "sluice_events_received_total",
     "Events split from the payloads, per RX lcore.", mt::counter, &rx_core_stats::events_received},
    {"backpressure_waits", "sluice_backpressure_waits_total",
     "Polls an RX lcore spent waiting for ring or slot room.", mt::counter,
     &rx_core_stats::backpressure_waits},
    {"rx_dead_letters", nullptr, "Dead letters an RX lcore rejected.", mt::counter,
     &rx_core_stats::rx_dead_letters},
    {"binary_events", nullptr, "Of events_received: records of binary batches.", mt::counter,
     &rx_core_stats::binary_events},
    {"rx_dropped", nullptr, "Kernel mode: the socket's drops.", mt::counter,
     &rx_core_stats::rx_dropped},
};

inline const stat_field<worker_core_stats> worker_fields[] = {
    {"events_in", "sluice_events_in_total", "Events and dead letters a worker took from its rings.",
     mt::counter, &worker_core_stats::events_in},
    {"events_accepted", "sluice_events_accepted_total",
     "Events stored (first sighting within the dedup horizon), per worker.", mt::counter,
     &worker_core_stats::events_accepted},
    {"duplicates", "sluice_duplicates_total",
     "Events dropped as duplicates (dedup hits), per worker.", mt::counter,
     &worker_core_stats::duplicates},
    {"late_events", "sluice_late_events_total",
     "Events stored as late (their window had closed), per worker.", mt::counter,
     &worker_core_stats::late_events},
    {"window_overflow", "sluice_window_overflow_total",
     "Events the window state had no room for, per worker.", mt::counter,
     &worker_core_stats::window_overflow},
    {"bytes_written", "sluice_bytes_written_total", "Bytes a worker wrote to its segments.",
     mt::counter, &worker_core_stats::bytes_written},
    {"rows_durable", "sluice_rows_durable_total", "Rows a worker has fsynced.", mt::counter,
     &worker_core_stats::rows_durable},
    {"dedup_tracked", "sluice_dedup_tracked", "Identities in a worker's dedup state.", mt::gauge,
     &worker_core_stats::dedup_tracked},
    {"dedup_capacity", "sluice_dedup_capacity", "Slots in a worker's dedup table.", mt::gauge,
     &worker_core_stats::dedup_capacity},
    {"dedup_horizon_ms", "sluice_dedup_horizon_seconds",
     "A worker's effective dedup horizon (event time).", mt::gauge,
     &worker_core_stats::dedup_horizon_ms, 1e-3},
    {"dead_letters", nullptr, "Dead letters a worker stored.", mt::counter,
     &worker_core_stats::dead_letters},
    {"bench_sunk", nullptr, "Benchmark only: slots discarded unprocessed.", mt::counter,
     &worker_core_stats::bench_sunk},
    {"events_durable", nullptr, "Rows of the events table fsynced.", mt::counter,
     &worker_core_stats::events_durable},
    {"dead_letters_durable", nullptr, "Rows of the dead_letters table fsynced.", mt::counter,
     &worker_core_stats::dead_letters_durable},
    {"idle_slept_with_work_max_us", nullptr,
     "The longest idle wait after which the worker found work in its rings (stall detector).",
     mt::gauge, &worker_core_stats::idle_slept_with_work_max_us},
};

// Totals with a rate: `<key>_per_s` in `rates`; `sluice_<key>_per_second` unless noted.
struct total_field {
    stat_field<totals_counters> f;
    bool rate_metric; // dead letters have a per-reason rate family instead
};

inline const total_field total_fields[] = {
    {{"rx_packets", nullptr, "", mt::counter, &totals_counters::rx_packets}, true},
    {{"rx_bytes", nullptr, "", mt::counter, &totals_counters::rx_bytes}, true},
    {{"events_received", nullptr, "", mt::counter, &totals_counters::events_received}, true},
    {{"events_accepted", nullptr, "", mt::counter, &totals_counters::events_accepted}, true},
    {{"duplicates", nullptr, "", mt::counter, &totals_counters::duplicates}, true},
    {{"late_events", nullptr, "", mt::counter, &totals_counters::late_events}, true},
    {{"dead_letters", nullptr, "", mt::counter, &totals_counters::dead_letters}, false},
    {{"rx_dropped", "sluice_rx_dropped_total",
      "Frames dropped by the NIC or the kernel socket (back-pressure).", mt::counter,
      &totals_counters::rx_dropped},
     true},
    {{"bytes_written", "sluice_bytes_written_all_total",
      "Bytes written to segments by every writer (workers and windows).", mt::counter,
      &totals_counters::bytes_written},
     true},
};

inline const stat_field<totals_stats> more_total_fields[] = {
    {"ignored_packets", nullptr, "", mt::counter, &totals_stats::ignored_packets},
    {"window_rows", "sluice_window_rows_total", "Closed window results written.", mt::counter,
     &totals_stats::window_rows},
    {"rows_durable", nullptr, "", mt::counter, &totals_stats::rows_durable},
};

inline const stat_field<server_counters> control_fields[] = {
    {"requests", "sluice_control_requests_total", "Control requests handled.", mt::counter,
     &server_counters::requests},
    {"refused_peers", "sluice_control_refusals_total",
     "Control connections or requests refused, per reason.", mt::counter,
     &server_counters::refused_peers, 1, "reason"},
    {"refused_clients", "sluice_control_refusals_total",
     "Control connections or requests refused, per reason.", mt::counter,
     &server_counters::refused_clients, 1, "reason"},
    {"rate_limited", "sluice_control_refusals_total",
     "Control connections or requests refused, per reason.", mt::counter,
     &server_counters::rate_limited, 1, "reason"},
    {"oversize", "sluice_control_refusals_total",
     "Control connections or requests refused, per reason.", mt::counter,
     &server_counters::oversize, 1, "reason"},
    {"malformed", "sluice_control_refusals_total",
     "Control connections or requests refused, per reason.", mt::counter,
     &server_counters::malformed, 1, "reason"},
    {"idle_closed", "sluice_control_refusals_total",
     "Control connections or requests refused, per reason.", mt::counter,
     &server_counters::idle_closed, 1, "reason"},
    {"busy", "sluice_control_refusals_total",
     "Control connections or requests refused, per reason.", mt::counter, &server_counters::busy, 1,
     "reason"},
    {"accept_errors", "sluice_control_accept_errors_total",
     "Control accepts that failed (EMFILE, ENFILE, ENOMEM, ENOBUFS), retried.", mt::counter,
     &server_counters::accept_errors},
    {"deadline_exceeded", "sluice_control_deadline_exceeded_total",
     "Slow control requests (flush, queries, windows, replay) answered with a deadline error.",
     mt::counter, &server_counters::deadline_exceeded},
    {"connections", nullptr, "", mt::counter, &server_counters::connections},
    {"connections_open", "sluice_control_connections_open", "Control connections open now.",
     mt::gauge, &server_counters::connections_open},
    {"clients_max", "sluice_control_clients_max",
     "Control clients accepted at once (256, or fewer where RLIMIT_NOFILE is low).", mt::gauge,
     &server_counters::clients_max},
};

inline const stat_field<log_counters> log_fields[] = {
    {"lines_suppressed", "sluice_log_lines_suppressed_total",
     "Log lines dropped by the per-call-site log rate limit.", mt::counter,
     &log_counters::lines_suppressed},
};

inline const stat_field<metrics_http_stats> metrics_http_fields[] = {
    {"ok", "sluice_metrics_http_requests_total",
     "Requests the HTTP /metrics endpoint answered, per outcome.", mt::counter,
     &metrics_http_stats::ok, 1, "outcome"},
    {"not_found", "sluice_metrics_http_requests_total",
     "Requests the HTTP /metrics endpoint answered, per outcome.", mt::counter,
     &metrics_http_stats::not_found, 1, "outcome"},
    {"method_not_allowed", "sluice_metrics_http_requests_total",
     "Requests the HTTP /metrics endpoint answered, per outcome.", mt::counter,
     &metrics_http_stats::method_not_allowed, 1, "outcome"},
    {"error", "sluice_metrics_http_requests_total",
     "Requests the HTTP /metrics endpoint answered, per outcome.", mt::counter,
     &metrics_http_stats::error, 1, "outcome"},
};

// The Kafka produce-ack latency histograms, by acks mode (0, 1, all): their labels.
inline const char* const kafka_ack_modes[] = {"0", "1", "all"};

// ---- rates, shared by both renderings ----

inline double seconds_between(const stats_sample& now, const stats_sample& base) {
    return double(now.at_ns - base.at_ns) / 1e9;
}

// A per-core rate: events or bytes of core `i` in `now` and `base`.
template <class Pick>
std::optional<double> core_rate(const stats_snapshot& s, bool rx, size_t i, Pick pick) {
    if (s.rate_base == nullptr) return std::nullopt;
    const auto& now = rx ? s.now.rx : s.now.workers;
    const auto& base = rx ? s.rate_base->rx : s.rate_base->workers;
    const uint64_t b = i < base.size() ? pick(base[i]) : 0;
    return rate_per_s(pick(now[i]), b, s.now.at_ns, s.rate_base->at_ns);
}

inline std::optional<double> core_events_rate(const stats_snapshot& s, bool rx, size_t i) {
    return core_rate(s, rx, i, [](const core_flow& c) { return c.events; });
}
inline std::optional<double> core_bytes_rate(const stats_snapshot& s, bool rx, size_t i) {
    return core_rate(s, rx, i, [](const core_flow& c) { return c.bytes; });
}

// Per-reason dead-letter rates, in the order of the reasons now.
inline std::vector<std::pair<std::string, double>> reason_rates(const stats_snapshot& s) {
    std::vector<std::pair<std::string, double>> out;
    for (const auto& r : s.now.totals.dead_letters_by_reason) {
        uint64_t base = 0;
        for (const auto& b : s.rate_base->totals.dead_letters_by_reason)
            if (b.label == r.label) base = b.value;
        out.emplace_back(r.label, rate_per_s(r.value, base, s.now.at_ns, s.rate_base->at_ns));
    }
    return out;
}
} // namespace sluice::control::stats_detail
