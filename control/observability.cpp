#include "control/observability.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

namespace sluice::control {

namespace {

double round3(double v) {
    return std::round(v * 1000.0) / 1000.0;
}

} // namespace

json latency_json(const histogram_snapshot& s, double ticks_per_us, bool histogram) {
    auto us = [&](double ticks) { return ticks_per_us > 0 ? round3(ticks / ticks_per_us) : 0.0; };
    uint64_t n = s.count();
    json j{{"count", n},
           {"mean_us", us(s.mean())},
           {"p50_us", us(double(s.quantile(0.5)))},
           {"p99_us", us(double(s.quantile(0.99)))},
           {"p999_us", us(double(s.quantile(0.999)))},
           {"max_us", us(double(s.max()))},
           {"sum_us", us(double(s.sum()))}};
    if (!histogram) return j;
    // A bucket counts under a bound when all of it is at or below the bound, so no value
    // is ever counted under a bound smaller than itself (it may land one bound late).
    json le = json::array(), cumulative = json::array();
    uint32_t b = 0;
    uint64_t below = 0;
    for (double bound_us : latency_bounds_us) {
        double bound_ticks = bound_us * ticks_per_us;
        while (b < latency_histogram::bucket_count &&
               double(latency_histogram::bucket_high(b)) <= bound_ticks)
            below += s.bucket(b++);
        le.push_back(bound_us);
        cumulative.push_back(below);
    }
    cumulative.push_back(n);
    j["le_us"] = std::move(le);
    j["cumulative"] = std::move(cumulative);
    return j;
}

double rate_per_s(const stats_sample& now, const stats_sample& base, const std::string& key) {
    double seconds = double(now.at_ns - base.at_ns) / 1e9;
    auto a = now.counters.find(key);
    auto b = base.counters.find(key);
    if (seconds <= 0 || a == now.counters.end() || b == base.counters.end()) return 0;
    if (a->second < b->second) return 0;
    return round3(double(a->second - b->second) / seconds);
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

// ---- Prometheus ----

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

using labels = std::vector<std::pair<std::string, std::string>>;

class exposition {
  public:
    void counter(const std::string& name, const std::string& help, const labels& l, double v) {
        ClientMetric& m = add(name, help, MetricType::Counter, l);
        m.counter.value = v;
    }
    void gauge(const std::string& name, const std::string& help, const labels& l, double v) {
        ClientMetric& m = add(name, help, MetricType::Gauge, l);
        m.gauge.value = v;
    }
    ClientMetric& add(const std::string& name, const std::string& help, MetricType type,
                      const labels& l) {
        auto it = std::find_if(_families.begin(), _families.end(),
                               [&](const MetricFamily& f) { return f.name == name; });
        if (it == _families.end()) {
            _families.push_back(MetricFamily{name, help, type, {}});
            it = _families.end() - 1;
        }
        ClientMetric m;
        for (const auto& [k, v] : l)
            m.label.push_back({k, v});
        it->metric.push_back(std::move(m));
        return it->metric.back();
    }
    std::string text() const {
        std::ostringstream out;
        prometheus::TextSerializer().Serialize(out, _families);
        return out.str();
    }

  private:
    std::vector<MetricFamily> _families;
};

bool number(const json& obj, const char* key, double& out) {
    if (!obj.is_object()) return false;
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number()) return false;
    out = it->get<double>();
    return true;
}

std::string label_of(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    return v.dump();
}

struct counter_def {
    const char* key;
    const char* help;
};

const counter_def rx_counters[] = {
    {"rx_packets", "Frames (DPDK) or datagrams (kernel socket) received, per RX lcore."},
    {"rx_bytes", "Bytes of the frames or datagrams received, per RX lcore."},
    {"ignored_packets", "Frames that were not UDP to a configured port, per RX lcore."},
    {"events_received", "Events split from the payloads, per RX lcore."},
    {"backpressure_waits", "Polls an RX lcore spent waiting for ring or slot room."},
};

const counter_def worker_counters[] = {
    {"events_in", "Events and dead letters a worker took from its rings."},
    {"events_accepted", "Events stored (first sighting within the dedup horizon), per worker."},
    {"duplicates", "Events dropped as duplicates (dedup hits), per worker."},
    {"late_events", "Events stored as late (their window had closed), per worker."},
    {"window_overflow", "Events the window state had no room for, per worker."},
    {"bytes_written", "Bytes a worker wrote to its segments."},
    {"rows_durable", "Rows a worker has fsynced."},
};

void per_core(exposition& e, const json& cores) {
    for (const auto& core : cores) {
        if (!core.is_object() || !core.contains("lcore") || !core.contains("role")) continue;
        std::string role = label_of(core["role"]);
        labels l{{"lcore", label_of(core["lcore"])}};
        if (core.contains(role)) l.push_back({role, label_of(core[role])});
        double v;
        if (role == "rx") {
            for (const auto& c : rx_counters)
                if (number(core, c.key, v))
                    e.counter(std::string("sluice_") + c.key + "_total", c.help, l, v);
        } else if (role == "worker") {
            for (const auto& c : worker_counters)
                if (number(core, c.key, v))
                    e.counter(std::string("sluice_") + c.key + "_total", c.help, l, v);
            if (number(core, "dedup_tracked", v))
                e.gauge("sluice_dedup_tracked", "Identities in a worker's dedup state.", l, v);
            if (number(core, "dedup_capacity", v))
                e.gauge("sluice_dedup_capacity", "Slots in a worker's dedup table.", l, v);
            if (number(core, "dedup_horizon_ms", v))
                e.gauge("sluice_dedup_horizon_seconds",
                        "A worker's effective dedup horizon (event time).", l, v / 1e3);
        }
        labels rl{{"lcore", label_of(core["lcore"])}, {"role", role}};
        if (number(core, "events_per_s", v))
            e.gauge("sluice_core_events_per_second",
                    "Events per second through a core over the last rate interval.", rl, v);
        if (number(core, "bytes_per_s", v))
            e.gauge("sluice_core_bytes_per_second",
                    "Bytes per second through a core (RX: received, worker: written).", rl, v);
    }
}

// One latency family: the since-start histogram `name` (from latency_json's buckets), its
// max as `name`'s max gauge, and the recent quantiles as the summary `recent_name`.
struct latency_family {
    const char* name;
    const char* help;
    const char* max_name;
    const char* max_help;
    const char* recent_name;
    const char* recent_help;
};

void latency_metrics(exposition& e, const latency_family& f, const labels& l, const json& s,
                     const json* recent) {
    double count = 0, sum_us = 0, max_us = 0;
    number(s, "count", count);
    number(s, "sum_us", sum_us);
    if (s.contains("le_us") && s.contains("cumulative") && s["le_us"].is_array() &&
        s["cumulative"].is_array() && s["cumulative"].size() == s["le_us"].size() + 1) {
        ClientMetric& m = e.add(f.name, f.help, MetricType::Histogram, l);
        m.histogram.sample_count = uint64_t(count);
        m.histogram.sample_sum = sum_us / 1e6;
        for (size_t i = 0; i < s["le_us"].size(); ++i)
            m.histogram.bucket.push_back(
                {s["cumulative"][i].get<uint64_t>(), s["le_us"][i].get<double>() / 1e6});
        m.histogram.bucket.push_back(
            {s["cumulative"].back().get<uint64_t>(), std::numeric_limits<double>::infinity()});
    }
    if (number(s, "max_us", max_us)) e.gauge(f.max_name, f.max_help, l, max_us / 1e6);
    if (recent != nullptr && recent->is_object()) {
        ClientMetric& m = e.add(f.recent_name, f.recent_help, MetricType::Summary, l);
        m.summary.sample_count = uint64_t(count);
        m.summary.sample_sum = sum_us / 1e6;
        double q;
        if (number(*recent, "p50_us", q)) m.summary.quantile.push_back({0.5, q / 1e6});
        if (number(*recent, "p99_us", q)) m.summary.quantile.push_back({0.99, q / 1e6});
        if (number(*recent, "p999_us", q)) m.summary.quantile.push_back({0.999, q / 1e6});
    }
}

const latency_family stage_latency{
    "sluice_latency_seconds",
    "End-to-end latency per event from its RX stamp to the stage (window_visible, durable), "
    "since start.",
    "sluice_latency_max_seconds",
    "The largest end-to-end latency per stage since start.",
    "sluice_latency_recent_seconds",
    "End-to-end latency quantiles over the recent interval (count and sum since start)."};

void latency(exposition& e, const json& lat) {
    if (!lat.is_object()) return;
    const json recent = lat.value("recent", json::object());
    for (const char* stage : {"window_visible", "durable"}) {
        auto it = lat.find(stage);
        if (it == lat.end() || !it->is_object()) continue;
        auto r = recent.find(stage);
        latency_metrics(e, stage_latency, {{"stage", stage}}, *it,
                        r != recent.end() ? &*r : nullptr);
    }
}

void totals_and_rates(exposition& e, const json& stats) {
    const json totals = stats.value("totals", json::object());
    double v;
    if (number(totals, "rx_dropped", v))
        e.counter("sluice_rx_dropped_total",
                  "Frames dropped by the NIC or the kernel socket (back-pressure).", {}, v);
    if (auto it = totals.find("dead_letters_by_reason"); it != totals.end() && it->is_object())
        for (auto r = it->begin(); r != it->end(); ++r)
            if (r->is_number())
                e.counter("sluice_dead_letters_total", "Dead letters stored, per reason.",
                          {{"reason", r.key()}}, r->get<double>());
    if (number(totals, "window_rows", v))
        e.counter("sluice_window_rows_total", "Closed window results written.", {}, v);
    if (number(totals, "bytes_written", v))
        e.counter("sluice_bytes_written_all_total",
                  "Bytes written to segments by every writer (workers and windows).", {}, v);

    const json rates = stats.value("rates", json::object());
    if (number(rates, "interval_s", v))
        e.gauge("sluice_rate_interval_seconds", "The interval the per-second rates cover.", {}, v);
    // Dead letters are per reason only (sum() them): one family, one label set.
    for (const char* key : {"events_received", "events_accepted", "duplicates", "late_events",
                            "rx_packets", "rx_bytes", "bytes_written", "rx_dropped"}) {
        if (number(rates, (std::string(key) + "_per_s").c_str(), v))
            e.gauge(std::string("sluice_") + key + "_per_second",
                    std::string("Per-second rate of ") + key + " over the last rate interval.", {},
                    v);
    }
    if (auto it = rates.find("dead_letters_by_reason_per_s"); it != rates.end() && it->is_object())
        for (auto r = it->begin(); r != it->end(); ++r)
            if (r->is_number())
                e.gauge("sluice_dead_letters_per_second",
                        "Dead letters per second, per reason, over the last rate interval.",
                        {{"reason", r.key()}}, r->get<double>());
}

void lag_and_rings(exposition& e, const json& stats) {
    double v;
    if (number(stats, "watermark_ms", v) && v > 0)
        e.gauge("sluice_watermark_seconds", "The event-time watermark (Unix time).", {}, v / 1e3);
    if (number(stats, "watermark_delay_ms", v))
        e.gauge("sluice_watermark_delay_seconds",
                "Configured watermark delay behind the max event time.", {}, v / 1e3);
    const json lag = stats.value("lag", json::object());
    if (number(lag, "watermark_lag_ms", v))
        e.gauge("sluice_watermark_lag_seconds", "How far the watermark is behind the wall clock.",
                {}, v / 1e3);
    if (number(lag, "max_event_time_ms", v))
        e.gauge("sluice_max_event_time_seconds", "The largest event time seen (Unix time).", {},
                v / 1e3);
    if (auto rings = stats.find("rings"); rings != stats.end() && rings->is_array()) {
        for (const auto& r : *rings) {
            if (!r.is_object() || !r.contains("rx") || !r.contains("worker")) continue;
            labels l{{"rx", label_of(r["rx"])}, {"worker", label_of(r["worker"])}};
            if (number(r, "occupancy", v))
                e.gauge("sluice_ring_occupancy",
                        "Slots waiting in an (RX, worker) ring: the worker's consumer lag.", l, v);
            if (number(r, "capacity", v))
                e.gauge("sluice_ring_capacity", "Slots an (RX, worker) ring holds.", l, v);
        }
    }
}

void control_counters(exposition& e, const json& stats) {
    const json c = stats.value("control", json::object());
    double v;
    if (number(c, "requests", v))
        e.counter("sluice_control_requests_total", "Control requests handled.", {}, v);
    for (const char* reason : {"refused_peers", "refused_clients", "rate_limited", "oversize",
                               "malformed", "idle_closed"})
        if (number(c, reason, v))
            e.counter("sluice_control_refusals_total",
                      "Control connections or requests refused, per reason.",
                      {{"reason", reason}}, v);
    if (number(c, "connections_open", v))
        e.gauge("sluice_control_connections_open", "Control connections open now.", {}, v);
}

// stats.kafka (docs/KAFKA.md), when a Kafka listener runs.
void kafka_counters(exposition& e, const json& stats) {
    auto it = stats.find("kafka");
    if (it == stats.end() || !it->is_object()) return;
    const json& k = *it;
    double v;
    if (number(k, "connections_open", v))
        e.gauge("sluice_kafka_connections_open", "Kafka client connections open now.", {}, v);
    if (number(k, "connections_total", v))
        e.counter("sluice_kafka_connections_total", "Kafka client connections accepted.", {}, v);
    if (number(k, "connections_refused", v))
        e.counter("sluice_kafka_connections_refused_total",
                  "Kafka connections refused beyond kafka.connections_max.", {}, v);
    if (auto c = k.find("connections_closed"); c != k.end() && c->is_object())
        for (auto r = c->begin(); r != c->end(); ++r)
            if (r->is_number())
                e.counter("sluice_kafka_connections_closed_total",
                          "Kafka connections closed, per reason.", {{"reason", r.key()}},
                          r->get<double>());
    if (auto c = k.find("requests_by_api"); c != k.end() && c->is_object())
        for (auto r = c->begin(); r != c->end(); ++r)
            if (r->is_number())
                e.counter("sluice_kafka_requests_total", "Kafka requests, per API.",
                          {{"api", r.key()}}, r->get<double>());
    if (auto c = k.find("errors_by_code"); c != k.end() && c->is_object())
        for (auto r = c->begin(); r != c->end(); ++r)
            if (r->is_number())
                e.counter("sluice_kafka_errors_total", "Kafka error codes answered, per code.",
                          {{"code", r.key()}}, r->get<double>());
    if (auto c = k.find("produce_by_acks"); c != k.end() && c->is_object())
        for (auto r = c->begin(); r != c->end(); ++r)
            if (r->is_number())
                e.counter("sluice_kafka_produce_requests_total",
                          "Kafka Produce requests, per acks mode.", {{"acks", r.key()}},
                          r->get<double>());
    if (auto c = k.find("batches_by_compression"); c != k.end() && c->is_object())
        for (auto r = c->begin(); r != c->end(); ++r)
            if (r->is_number())
                e.counter("sluice_kafka_batches_total",
                          "Kafka record batches accepted (legacy: outer messages), per codec.",
                          {{"compression", r.key()}}, r->get<double>());
    if (number(k, "records", v))
        e.counter("sluice_kafka_records_total", "Kafka records received (one event each).", {}, v);
    if (number(k, "bytes_in", v))
        e.counter("sluice_kafka_bytes_in_total", "Bytes read from Kafka connections.", {}, v);
    if (number(k, "bytes_out", v))
        e.counter("sluice_kafka_bytes_out_total", "Bytes written to Kafka connections.", {}, v);
    if (number(k, "acks_parked", v))
        e.gauge("sluice_kafka_acks_parked", "acks=all answers waiting for durability now.", {}, v);
    if (number(k, "backpressure", v))
        e.counter("sluice_kafka_backpressure_total",
                  "Kafka requests left unread for a while: rings or slots were full.", {}, v);
    if (number(k, "duplicate_sequences", v))
        e.counter("sluice_kafka_duplicate_sequences_total",
                  "Idempotent producers' re-sent batches: answered, not stored again.", {}, v);
    if (number(k, "out_of_order_sequences", v))
        e.counter("sluice_kafka_out_of_order_sequences_total",
                  "Idempotent producers' batches refused with OUT_OF_ORDER_SEQUENCE_NUMBER.", {},
                  v);
    if (number(k, "fenced_epochs", v))
        e.counter("sluice_kafka_fenced_epochs_total",
                  "Idempotent producers' batches refused with INVALID_PRODUCER_EPOCH.", {}, v);
    if (number(k, "producer_states", v))
        e.gauge("sluice_kafka_producer_states",
                "Idempotent (producer, partition) sequence states kept now.", {}, v);
    if (number(k, "producer_state_evictions", v))
        e.counter("sluice_kafka_producer_state_evictions_total",
                  "Idempotent producer states forgotten (least recently used) at the limit.", {},
                  v);
    static const latency_family ack_latency{
        "sluice_kafka_produce_ack_latency_seconds",
        "Produce-ack latency per acks mode from the request's arrival: acks 0 to its records "
        "handed to the workers, 1 to the answer queued, all to the answer queued after "
        "durability; since start.",
        "sluice_kafka_produce_ack_latency_max_seconds",
        "The largest produce-ack latency per acks mode since start.",
        "sluice_kafka_produce_ack_latency_recent_seconds",
        "Produce-ack latency quantiles over the recent interval (count and sum since start)."};
    if (auto a = k.find("ack_latency"); a != k.end() && a->is_object()) {
        const json recent = a->value("recent", json::object());
        for (const char* mode : {"0", "1", "all"}) {
            auto it = a->find(mode);
            if (it == a->end() || !it->is_object()) continue;
            auto r = recent.find(mode);
            latency_metrics(e, ack_latency, {{"acks", mode}}, *it,
                            r != recent.end() ? &*r : nullptr);
        }
    }
    if (auto r = k.find("rates"); r != k.end() && r->is_object()) {
        if (number(*r, "requests_per_s", v))
            e.gauge("sluice_kafka_requests_per_second",
                    "Kafka requests per second over the last rate interval.", {}, v);
        if (number(*r, "records_per_s", v))
            e.gauge("sluice_kafka_records_per_second",
                    "Kafka records per second over the last rate interval.", {}, v);
    }
}

} // namespace

std::string prometheus_text(const json& stats) {
    exposition e;
    double v;
    if (number(stats, "uptime_s", v))
        e.gauge("sluice_uptime_seconds", "Seconds since sluiced started.", {}, v);
    if (stats.contains("version"))
        e.gauge("sluice_build_info", "sluiced's version, as a label.",
                {{"version", label_of(stats["version"])}}, 1);
    if (auto cores = stats.find("per_core"); cores != stats.end() && cores->is_array())
        per_core(e, *cores);
    totals_and_rates(e, stats);
    lag_and_rings(e, stats);
    latency(e, stats.value("latency", json::object()));
    control_counters(e, stats);
    kafka_counters(e, stats);
    return e.text();
}

} // namespace sluice::control
