#include "control/stats.h"

#include <cmath>
#include <limits>

#include "control/observability.h"
#include "control/protocol.h"

namespace sluice::control {

namespace {

using mt = metric_type;

// ---- the counter tables: one row per counter, read by both renderings ----

const stat_field<rx_core_stats> rx_fields[] = {
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

const stat_field<worker_core_stats> worker_fields[] = {
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
};

// Totals with a rate: `<key>_per_s` in `rates`; `sluice_<key>_per_second` unless noted.
struct total_field {
    stat_field<totals_counters> f;
    bool rate_metric; // dead letters have a per-reason rate family instead
};

const total_field total_fields[] = {
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

const stat_field<totals_stats> more_total_fields[] = {
    {"ignored_packets", nullptr, "", mt::counter, &totals_stats::ignored_packets},
    {"window_rows", "sluice_window_rows_total", "Closed window results written.", mt::counter,
     &totals_stats::window_rows},
    {"rows_durable", nullptr, "", mt::counter, &totals_stats::rows_durable},
};

const stat_field<server_counters> control_fields[] = {
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
    {"deadline_exceeded", "sluice_control_deadline_exceeded_total",
     "Slow control requests (flush, queries, windows, replay) answered with a deadline error.",
     mt::counter, &server_counters::deadline_exceeded},
    {"connections", nullptr, "", mt::counter, &server_counters::connections},
    {"connections_open", "sluice_control_connections_open", "Control connections open now.",
     mt::gauge, &server_counters::connections_open},
};

const stat_field<log_counters> log_fields[] = {
    {"lines_suppressed", "sluice_log_lines_suppressed_total",
     "Log lines dropped by the per-call-site log rate limit.", mt::counter,
     &log_counters::lines_suppressed},
};

const stat_field<metrics_http_stats> metrics_http_fields[] = {
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

// ---- shared by both renderings ----

template <class T, size_t N>
void put_fields(json& out, const stat_field<T> (&fields)[N], const T& s) {
    for (const auto& f : fields)
        out[f.key] = s.*(f.value);
}

template <class T, size_t N>
void put_metrics(exposition& e, const stat_field<T> (&fields)[N], const T& s, labels l) {
    for (const auto& f : fields) {
        if (f.metric == nullptr) continue;
        labels fl = l;
        if (f.label != nullptr) fl.push_back({f.label, f.key});
        const double v = double(s.*(f.value)) * f.metric_scale;
        if (f.type == mt::counter)
            e.counter(f.metric, f.help, fl, v);
        else
            e.gauge(f.metric, f.help, fl, v);
    }
}

json by_label(const std::vector<labelled_count>& counts) {
    json out = json::object();
    for (const auto& c : counts)
        out[c.label] = c.value;
    return out;
}

double seconds_between(const stats_sample& now, const stats_sample& base) {
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

std::optional<double> core_events_rate(const stats_snapshot& s, bool rx, size_t i) {
    return core_rate(s, rx, i, [](const core_flow& c) { return c.events; });
}
std::optional<double> core_bytes_rate(const stats_snapshot& s, bool rx, size_t i) {
    return core_rate(s, rx, i, [](const core_flow& c) { return c.bytes; });
}

// Per-reason dead-letter rates, in the order of the reasons now.
std::vector<std::pair<std::string, double>> reason_rates(const stats_snapshot& s) {
    std::vector<std::pair<std::string, double>> out;
    for (const auto& r : s.now.totals.dead_letters_by_reason) {
        uint64_t base = 0;
        for (const auto& b : s.rate_base->totals.dead_letters_by_reason)
            if (b.label == r.label) base = b.value;
        out.emplace_back(r.label, rate_per_s(r.value, base, s.now.at_ns, s.rate_base->at_ns));
    }
    return out;
}

// ---- JSON ----

json rx_core_json(const stats_snapshot& s, size_t i) {
    const rx_core_stats& c = s.rx[i];
    json core{{"lcore", c.lcore},
              {"role", "rx"},
              {"input", c.input},
              {"rx", c.rx},
              {"queue", c.queues.empty() ? json(nullptr) : json(c.queues.front())},
              {"queues", c.queues},
              {"ignored_by_reason", by_label(c.ignored_by_reason)}};
    put_fields(core, rx_fields, c);
    if (c.kernel_multishot) core["kernel_multishot"] = *c.kernel_multishot;
    if (auto r = core_events_rate(s, true, i)) core["events_per_s"] = *r;
    if (auto r = core_bytes_rate(s, true, i)) core["bytes_per_s"] = *r;
    return core;
}

json worker_core_json(const stats_snapshot& s, size_t i) {
    const worker_core_stats& c = s.workers[i];
    json core{{"lcore", c.lcore},
              {"role", "worker"},
              {"worker", c.worker},
              {"latency",
               {{"window_visible", latency_json(c.window_visible, s.ticks_per_us, false)},
                {"durable", latency_json(c.durable, s.ticks_per_us, false)}}}};
    put_fields(core, worker_fields, c);
    if (auto r = core_events_rate(s, false, i)) core["events_per_s"] = *r;
    if (auto r = core_bytes_rate(s, false, i)) core["bytes_per_s"] = *r;
    return core;
}

json totals_json(const stats_snapshot& s) {
    json t{{"ignored_by_reason", by_label(s.totals.ignored_by_reason)},
           {"dead_letters_by_reason", by_label(s.now.totals.dead_letters_by_reason)},
           {"watermark_ms", s.watermark_ms},
           {"durable_event_time_ms", s.totals.durable_event_time_ms}};
    for (const auto& f : total_fields)
        t[f.f.key] = s.now.totals.*(f.f.value);
    put_fields(t, more_total_fields, s.totals);
    return t;
}

// Per-second rates between the newest sample at least a second old and now.
json rates_json(const stats_snapshot& s) {
    if (s.rate_base == nullptr) return json{{"interval_s", 0}};
    json r{{"interval_s", seconds_between(s.now, *s.rate_base)}};
    for (const auto& f : total_fields)
        r[std::string(f.f.key) + "_per_s"] =
            rate_per_s(s.now.totals.*(f.f.value), s.rate_base->totals.*(f.f.value), s.now.at_ns,
                       s.rate_base->at_ns);
    json by_reason = json::object();
    for (const auto& [reason, rate] : reason_rates(s))
        by_reason[reason] = rate;
    r["dead_letters_by_reason_per_s"] = std::move(by_reason);
    return r;
}

// Since start (with histogram buckets) and over the recent interval (the oldest sample
// kept, about stats_samples_max - 1 seconds ago).
json latency_section(const stats_snapshot& s) {
    const stats_sample& now = s.now;
    json lat{{"unit", "us"},
             {"window_visible", latency_json(now.window_visible, s.ticks_per_us, true)},
             {"durable", latency_json(now.durable, s.ticks_per_us, true)}};
    if (const stats_sample* base = s.recent_base) {
        lat["recent"] = {
            {"interval_s", seconds_between(now, *base)},
            {"window_visible",
             latency_json(now.window_visible.since(base->window_visible), s.ticks_per_us, false)},
            {"durable", latency_json(now.durable.since(base->durable), s.ticks_per_us, false)}};
    }
    return lat;
}

json rings_and_lag(const stats_snapshot& s, json& lag) {
    json rings = json::array();
    uint64_t occupancy_total = 0, occupancy_max = 0;
    for (const auto& r : s.rings) {
        occupancy_total += r.occupancy;
        occupancy_max = std::max(occupancy_max, r.occupancy);
        rings.push_back({{"rx", r.rx},
                         {"worker", r.worker},
                         {"occupancy", r.occupancy},
                         {"capacity", r.capacity}});
    }
    auto opt = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
    lag = {{"watermark_lag_ms", opt(s.watermark_lag_ms)},
           {"max_event_time_ms", opt(s.max_event_time_ms)},
           {"ring_occupancy_total", occupancy_total},
           {"ring_occupancy_max", occupancy_max}};
    return rings;
}

json ports_json(const stats_snapshot& s) {
    json ports = json::array();
    for (const auto& p : s.ports)
        ports.push_back({{"port_id", p.port_id},
                         {"driver", p.driver},
                         {"rx_queues", p.rx_queues},
                         {"rss", p.rss},
                         {"ipackets", p.ipackets},
                         {"imissed", p.imissed},
                         {"rx_nombuf", p.rx_nombuf},
                         {"ierrors", p.ierrors},
                         {"rx_dropped", p.rx_dropped}});
    return ports;
}

// ---- Prometheus ----

void per_core_metrics(exposition& e, const stats_snapshot& s) {
    auto rates = [&](bool rx, size_t i, unsigned lcore) {
        labels rl{{"lcore", std::to_string(lcore)}, {"role", rx ? "rx" : "worker"}};
        if (auto r = core_events_rate(s, rx, i))
            e.gauge("sluice_core_events_per_second",
                    "Events per second through a core over the last rate interval.", rl, *r);
        if (auto r = core_bytes_rate(s, rx, i))
            e.gauge("sluice_core_bytes_per_second",
                    "Bytes per second through a core (RX: received, worker: written).", rl, *r);
    };
    for (size_t i = 0; i < s.rx.size(); ++i) {
        const auto& c = s.rx[i];
        put_metrics(e, rx_fields, c,
                    {{"lcore", std::to_string(c.lcore)}, {"rx", std::to_string(c.rx)}});
        rates(true, i, c.lcore);
    }
    for (size_t i = 0; i < s.workers.size(); ++i) {
        const auto& c = s.workers[i];
        put_metrics(e, worker_fields, c,
                    {{"lcore", std::to_string(c.lcore)}, {"worker", std::to_string(c.worker)}});
        rates(false, i, c.lcore);
    }
}

void totals_and_rate_metrics(exposition& e, const stats_snapshot& s) {
    for (const auto& f : total_fields)
        if (f.f.metric != nullptr)
            e.counter(f.f.metric, f.f.help, {}, double(s.now.totals.*(f.f.value)));
    for (const auto& r : s.now.totals.dead_letters_by_reason)
        e.counter("sluice_dead_letters_total", "Dead letters stored, per reason.",
                  {{"reason", r.label}}, double(r.value));
    put_metrics(e, more_total_fields, s.totals, {});
    if (s.rate_base == nullptr) return;
    e.gauge("sluice_rate_interval_seconds", "The interval the per-second rates cover.", {},
            seconds_between(s.now, *s.rate_base));
    // Dead letters are per reason only (sum() them): one family, one label set.
    for (const auto& f : total_fields) {
        if (!f.rate_metric) continue;
        const std::string key = f.f.key;
        e.gauge("sluice_" + key + "_per_second",
                "Per-second rate of " + key + " over the last rate interval.", {},
                rate_per_s(s.now.totals.*(f.f.value), s.rate_base->totals.*(f.f.value), s.now.at_ns,
                           s.rate_base->at_ns));
    }
    for (const auto& [reason, rate] : reason_rates(s))
        e.gauge("sluice_dead_letters_per_second",
                "Dead letters per second, per reason, over the last rate interval.",
                {{"reason", reason}}, rate);
}

void lag_and_ring_metrics(exposition& e, const stats_snapshot& s) {
    if (s.watermark_ms > 0)
        e.gauge("sluice_watermark_seconds", "The event-time watermark (Unix time).", {},
                double(s.watermark_ms) / 1e3);
    e.gauge("sluice_watermark_delay_seconds",
            "Configured watermark delay behind the max event time.", {},
            double(s.watermark_delay_ms) / 1e3);
    if (s.watermark_lag_ms)
        e.gauge("sluice_watermark_lag_seconds", "How far the watermark is behind the wall clock.",
                {}, double(*s.watermark_lag_ms) / 1e3);
    if (s.max_event_time_ms)
        e.gauge("sluice_max_event_time_seconds", "The largest event time seen (Unix time).", {},
                double(*s.max_event_time_ms) / 1e3);
    for (const auto& r : s.rings) {
        labels l{{"rx", std::to_string(r.rx)}, {"worker", std::to_string(r.worker)}};
        e.gauge("sluice_ring_occupancy",
                "Slots waiting in an (RX, worker) ring: the worker's consumer lag.", l,
                double(r.occupancy));
        e.gauge("sluice_ring_capacity", "Slots an (RX, worker) ring holds.", l, double(r.capacity));
    }
}

// One latency family: the since-start histogram, its max gauge, and the recent
// quantiles as a summary (count and sum since start).
struct latency_family {
    const char* name;
    const char* help;
    const char* max_name;
    const char* max_help;
    const char* recent_name;
    const char* recent_help;
};

void latency_family_metrics(exposition& e, const latency_family& f, const labels& l,
                            const histogram_snapshot& now, const histogram_snapshot* base,
                            double ticks_per_us) {
    const json h = latency_json(now, ticks_per_us, true);
    const double count = h["count"].get<double>(), sum_us = h["sum_us"].get<double>();
    ClientMetric& m = e.add(f.name, f.help, prometheus::MetricType::Histogram, l);
    m.histogram.sample_count = uint64_t(count);
    m.histogram.sample_sum = sum_us / 1e6;
    for (size_t i = 0; i < h["le_us"].size(); ++i)
        m.histogram.bucket.push_back(
            {h["cumulative"][i].get<uint64_t>(), h["le_us"][i].get<double>() / 1e6});
    m.histogram.bucket.push_back(
        {h["cumulative"].back().get<uint64_t>(), std::numeric_limits<double>::infinity()});
    e.gauge(f.max_name, f.max_help, l, h["max_us"].get<double>() / 1e6);
    if (base == nullptr) return;
    const json r = latency_json(now.since(*base), ticks_per_us, false);
    ClientMetric& q = e.add(f.recent_name, f.recent_help, prometheus::MetricType::Summary, l);
    q.summary.sample_count = uint64_t(count);
    q.summary.sample_sum = sum_us / 1e6;
    q.summary.quantile.push_back({0.5, r["p50_us"].get<double>() / 1e6});
    q.summary.quantile.push_back({0.99, r["p99_us"].get<double>() / 1e6});
    q.summary.quantile.push_back({0.999, r["p999_us"].get<double>() / 1e6});
}

const latency_family stage_latency{
    "sluice_latency_seconds",
    "End-to-end latency per event from its RX stamp to the stage (window_visible, durable), "
    "since start.",
    "sluice_latency_max_seconds",
    "The largest end-to-end latency per stage since start.",
    "sluice_latency_recent_seconds",
    "End-to-end latency quantiles over the recent interval (count and sum since start)."};

const latency_family kafka_ack_latency{
    "sluice_kafka_produce_ack_latency_seconds",
    "Produce-ack latency per acks mode from the request's arrival: acks 0 to its records "
    "handed to the workers, 1 to the answer queued, all to the answer queued after "
    "durability; since start.",
    "sluice_kafka_produce_ack_latency_max_seconds",
    "The largest produce-ack latency per acks mode since start.",
    "sluice_kafka_produce_ack_latency_recent_seconds",
    "Produce-ack latency quantiles over the recent interval (count and sum since start)."};

const char* const kafka_ack_modes[] = {"0", "1", "all"};

void latency_metrics(exposition& e, const stats_snapshot& s) {
    const stats_sample* base = s.recent_base;
    latency_family_metrics(e, stage_latency, {{"stage", "window_visible"}}, s.now.window_visible,
                           base ? &base->window_visible : nullptr, s.ticks_per_us);
    latency_family_metrics(e, stage_latency, {{"stage", "durable"}}, s.now.durable,
                           base ? &base->durable : nullptr, s.ticks_per_us);
}

// The `kafka` section: the listener's counters (stats_reader.h) with its rates and
// produce-ack latency per acks mode from the typed samples, as `rates` and `latency` are.
json kafka_section(const stats_snapshot& s) {
    if (!s.kafka.is_object() || !s.now.kafka.present) return s.kafka;
    json k = s.kafka;
    const kafka_sample& now = s.now.kafka;
    json ack{{"unit", "us"}};
    for (size_t i = 0; i < now.ack.size(); ++i)
        ack[kafka_ack_modes[i]] = latency_json(now.ack[i], s.ticks_per_us, true);
    if (const stats_sample* base = s.recent_base) {
        json recent{{"interval_s", double(s.now.at_ns - base->at_ns) / 1e9}};
        for (size_t i = 0; i < now.ack.size(); ++i)
            recent[kafka_ack_modes[i]] =
                latency_json(now.ack[i].since(base->kafka.ack[i]), s.ticks_per_us, false);
        ack["recent"] = std::move(recent);
    }
    const stats_sample* rb = s.rate_base;
    auto rate = [&](uint64_t kafka_sample::*field) {
        return rb ? rate_per_s(now.*field, rb->kafka.*field, s.now.at_ns, rb->at_ns) : 0.0;
    };
    k["rates"] = {{"interval_s", rb ? double(s.now.at_ns - rb->at_ns) / 1e9 : 0.0},
                  {"requests_per_s", rate(&kafka_sample::requests)},
                  {"records_per_s", rate(&kafka_sample::records)},
                  {"errors_per_s", rate(&kafka_sample::errors)}};
    k["ack_latency"] = std::move(ack);
    return k;
}

void kafka_typed_metrics(exposition& e, const stats_snapshot& s) {
    if (!s.kafka.is_object() || !s.now.kafka.present) return;
    const stats_sample* base = s.recent_base;
    for (size_t i = 0; i < s.now.kafka.ack.size(); ++i)
        latency_family_metrics(e, kafka_ack_latency, {{"acks", kafka_ack_modes[i]}},
                               s.now.kafka.ack[i], base ? &base->kafka.ack[i] : nullptr,
                               s.ticks_per_us);
    if (const stats_sample* rb = s.rate_base) {
        e.gauge("sluice_kafka_requests_per_second",
                "Kafka requests per second over the last rate interval.", {},
                rate_per_s(s.now.kafka.requests, rb->kafka.requests, s.now.at_ns, rb->at_ns));
        e.gauge("sluice_kafka_records_per_second",
                "Kafka records per second over the last rate interval.", {},
                rate_per_s(s.now.kafka.records, rb->kafka.records, s.now.at_ns, rb->at_ns));
    }
}

} // namespace

double rate_per_s(uint64_t now, uint64_t base, int64_t now_ns, int64_t base_ns) {
    const double seconds = double(now_ns - base_ns) / 1e9;
    if (seconds <= 0 || now < base) return 0;
    return std::round(double(now - base) / seconds * 1000.0) / 1000.0;
}

void stats_history::push(stats_sample s) {
    _samples.push_back(std::move(s));
    while (_samples.size() > _samples_max)
        _samples.pop_front();
}

const stats_sample* stats_history::base_for_rates(int64_t now_ns, int64_t min_age_ns) const {
    if (_samples.empty()) return nullptr;
    for (auto it = _samples.rbegin(); it != _samples.rend(); ++it)
        if (now_ns - it->at_ns >= min_age_ns) return &*it;
    return &_samples.front();
}

json stats_json(const stats_snapshot& s) {
    json per_core = json::array();
    for (size_t i = 0; i < s.rx.size(); ++i)
        per_core.push_back(rx_core_json(s, i));
    for (size_t i = 0; i < s.workers.size(); ++i)
        per_core.push_back(worker_core_json(s, i));
    json control = json::object();
    if (s.control_up) put_fields(control, control_fields, s.control);
    json log = json::object(), metrics_http = json::object();
    put_fields(log, log_fields, s.log);
    put_fields(metrics_http, metrics_http_fields, s.metrics_http);
    json lag;
    json rings = rings_and_lag(s, lag);
    return json{{"ok", true},
                {"v", protocol_version},
                {"version", s.version},
                {"uptime_s", s.uptime_s},
                {"watermark_ms", s.watermark_ms},
                {"watermark_delay_ms", s.watermark_delay_ms},
                {"totals", totals_json(s)},
                {"rates", rates_json(s)},
                {"latency", latency_section(s)},
                {"lag", std::move(lag)},
                {"per_core", std::move(per_core)},
                {"ports", ports_json(s)},
                {"rings", std::move(rings)},
                {"storage", s.storage},
                {"control", std::move(control)},
                {"kafka", kafka_section(s)},
                {"queries", s.queries},
                {"log", std::move(log)},
                {"metrics_http", std::move(metrics_http)}};
}

std::string prometheus_text(const stats_snapshot& s) {
    exposition e;
    e.gauge("sluice_uptime_seconds", "Seconds since sluiced started.", {}, s.uptime_s);
    e.gauge("sluice_build_info", "sluiced's version, as a label.", {{"version", s.version}}, 1);
    per_core_metrics(e, s);
    totals_and_rate_metrics(e, s);
    lag_and_ring_metrics(e, s);
    latency_metrics(e, s);
    if (s.control_up) put_metrics(e, control_fields, s.control, {});
    put_metrics(e, log_fields, s.log, {});
    put_metrics(e, metrics_http_fields, s.metrics_http, {});
    kafka_metrics(e, s.kafka);
    kafka_typed_metrics(e, s);
    return e.text();
}

} // namespace sluice::control
