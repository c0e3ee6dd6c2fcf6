// The `stats` reply (stats.h): the snapshot as JSON, walking the counter tables of
// stats_fields.h; and the rate history. The Prometheus text is stats_prometheus.cpp's.
#include "control/stats.h"

#include <cmath>
#include <limits>

#include "control/observability.h"
#include "control/protocol.h"
#include "control/stats_fields.h"

namespace sluice::control {

using namespace stats_detail;

namespace {

template <class T, size_t N>
void put_fields(json& out, const stat_field<T> (&fields)[N], const T& s) {
    for (const auto& f : fields)
        out[f.key] = s.*(f.value);
}

json by_label(const std::vector<labelled_count>& counts) {
    json out = json::object();
    for (const auto& c : counts)
        out[c.label] = c.value;
    return out;
}

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

} // namespace sluice::control
