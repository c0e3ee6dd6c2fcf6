// The `metrics` text (stats.h): the snapshot in Prometheus' exposition format, walking
// the counter tables of stats_fields.h that the `stats` JSON (stats.cpp) walks too.
#include <string>

#include "control/observability.h"
#include "control/stats.h"
#include "control/stats_fields.h"

namespace sluice::control {

using namespace stats_detail;

namespace {

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

void latency_metrics(exposition& e, const stats_snapshot& s) {
    const stats_sample* base = s.recent_base;
    latency_family_metrics(e, stage_latency, {{"stage", "window_visible"}}, s.now.window_visible,
                           base ? &base->window_visible : nullptr, s.ticks_per_us);
    latency_family_metrics(e, stage_latency, {{"stage", "durable"}}, s.now.durable,
                           base ? &base->durable : nullptr, s.ticks_per_us);
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
