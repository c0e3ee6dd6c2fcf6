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

// ---- Prometheus ----

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

bool number(const json& obj, const char* key, double& out) {
    if (!obj.is_object()) return false;
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number()) return false;
    out = it->get<double>();
    return true;
}

// stats.kafka (docs/KAFKA.md), when a Kafka listener runs.
void kafka_counters(exposition& e, const json& k) {
    if (!k.is_object()) return;
    double v;
    if (number(k, "connections_open", v))
        e.gauge("sluice_kafka_connections_open", "Kafka client connections open now.", {}, v);
    if (number(k, "connections_total", v))
        e.counter("sluice_kafka_connections_total", "Kafka client connections accepted.", {}, v);
    if (number(k, "connections_refused", v))
        e.counter("sluice_kafka_connections_refused_total",
                  "Kafka connections refused beyond kafka.connections_max.", {}, v);
    if (number(k, "connections_max", v))
        e.gauge("sluice_kafka_connections_max",
                "Kafka connections accepted at most (kafka.connections_max, or fewer where "
                "RLIMIT_NOFILE is lower).",
                {}, v);
    if (number(k, "accept_errors", v))
        e.counter("sluice_kafka_accept_errors_total",
                  "Kafka accepts that failed (EMFILE, ENFILE, ENOMEM, ENOBUFS), retried.", {}, v);
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
    if (auto c = k.find("requests_by_version"); c != k.end() && c->is_object())
        for (auto api = c->begin(); api != c->end(); ++api)
            if (api->is_object())
                for (auto v = api->begin(); v != api->end(); ++v)
                    if (v->is_number())
                        e.counter("sluice_kafka_requests_by_version_total",
                                  "Kafka requests, per API and the version the client asked.",
                                  {{"api", api.key()}, {"version", v.key()}}, v->get<double>());
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
    // The consume side (docs/KAFKA.md "Consuming"): every stats.kafka.consume counter.
    // cache_bytes is a level, the rest count.
    if (auto c = k.find("consume"); c != k.end() && c->is_object()) {
        for (auto r = c->begin(); r != c->end(); ++r) {
            if (!r->is_number()) continue;
            if (r.key() == "cache_bytes")
                e.gauge("sluice_kafka_consume_cache_bytes",
                        "Bytes of built RecordBatches the fetch reader's cache holds now.", {},
                        r->get<double>());
            else
                e.counter("sluice_kafka_consume_" + r.key() + "_total",
                          "Kafka consumers of sluice's topics: " + r.key() +
                              " (stats.kafka.consume).",
                          {}, r->get<double>());
        }
    }
    // Consumer groups (docs/KAFKA.md "Consumer groups"): every stats.kafka.groups counter,
    // and each committed partition's lag (high watermark - committed offset).
    if (auto g = k.find("groups"); g != k.end() && g->is_object()) {
        for (auto r = g->begin(); r != g->end(); ++r)
            if (r->is_number())
                e.counter("sluice_kafka_group_" + r.key() + "_total",
                          "Kafka consumer groups: " + r.key() + " (stats.kafka.groups).", {},
                          r->get<double>());
        if (auto list = g->find("groups"); list != g->end() && list->is_array())
            for (const auto& grp : *list)
                for (const auto& part : grp.value("partitions", json::array()))
                    if (part.contains("lag") && part["lag"].is_number())
                        e.gauge("sluice_kafka_consumer_lag",
                                "Rows of a partition a consumer group has not committed yet "
                                "(high watermark - committed offset).",
                                {{"group", grp.value("group", "")},
                                 {"topic", part.value("topic", "")},
                                 {"partition", std::to_string(part.value("partition", 0))}},
                                part["lag"].get<double>());
    }
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
    if (number(k, "sequences_journaled", v))
        e.counter("sluice_kafka_sequences_journaled_total",
                  "Idempotent batches made durable in the sequence journal.", {}, v);
    if (number(k, "sequence_journal_errors", v))
        e.counter("sluice_kafka_sequence_journal_errors_total",
                  "Failed writes of the sequence journal (its persistence is then off).", {}, v);
}

} // namespace

void exposition::counter(const std::string& name, const std::string& help, const labels& l,
                         double v) {
    ClientMetric& m = add(name, help, MetricType::Counter, l);
    m.counter.value = v;
}

void exposition::gauge(const std::string& name, const std::string& help, const labels& l,
                       double v) {
    ClientMetric& m = add(name, help, MetricType::Gauge, l);
    m.gauge.value = v;
}

ClientMetric& exposition::add(const std::string& name, const std::string& help, MetricType type,
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

std::string exposition::text() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, _families);
    return out.str();
}

void kafka_metrics(exposition& e, const json& kafka) { kafka_counters(e, kafka); }

} // namespace sluice::control
