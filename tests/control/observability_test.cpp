#include "control/observability.h"

#include <prometheus/check_names.h>

#include <map>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace sluice::control {
namespace {

constexpr double ticks_per_us = 3000; // a 3 GHz counter

TEST(Observability, LatencyJsonReportsMicroseconds) {
    latency_histogram h;
    for (int i = 0; i < 99; ++i)
        h.record(uint64_t(100 * ticks_per_us)); // 100 us
    h.record(uint64_t(50'000 * ticks_per_us));  // one at 50 ms
    json j = latency_json(h.snapshot(), ticks_per_us, false);
    EXPECT_EQ(j["count"], 100);
    EXPECT_NEAR(j["p50_us"].get<double>(), 100, 100 * 0.02);
    EXPECT_NEAR(j["p99_us"].get<double>(), 100, 100 * 0.02);
    EXPECT_NEAR(j["p999_us"].get<double>(), 50'000, 50'000 * 0.02);
    EXPECT_DOUBLE_EQ(j["max_us"].get<double>(), 50'000);
    EXPECT_NEAR(j["mean_us"].get<double>(), (99 * 100 + 50'000) / 100.0, 0.01);
    EXPECT_FALSE(j.contains("le_us"));
}

TEST(Observability, LatencyHistogramBucketsAreCumulativeAndNeverEarly) {
    latency_histogram h;
    // Exactly on a bound, just above it, and far above every bound.
    h.record(uint64_t(1000 * ticks_per_us));
    h.record(uint64_t(1001 * ticks_per_us));
    h.record(uint64_t(120e6 * ticks_per_us));
    json j = latency_json(h.snapshot(), ticks_per_us, true);
    const json& le = j["le_us"];
    const json& cum = j["cumulative"];
    ASSERT_EQ(cum.size(), le.size() + 1);
    EXPECT_EQ(cum.back(), 3);
    for (size_t i = 1; i < cum.size(); ++i)
        EXPECT_LE(cum[i - 1].get<uint64_t>(), cum[i].get<uint64_t>());
    for (size_t i = 0; i < le.size(); ++i) {
        double bound = le[i].get<double>();
        uint64_t truly_below = (bound >= 1000) + (bound >= 1001);
        // Never more than the truth (a value is not counted under a smaller bound), and at
        // most one bucket late.
        EXPECT_LE(cum[i].get<uint64_t>(), truly_below) << bound;
        if (bound >= 1001 * 1.04) EXPECT_EQ(cum[i].get<uint64_t>(), truly_below) << bound;
    }
    EXPECT_EQ(cum[le.size() - 1], 2); // 120 s is above the last bound: only in +Inf
}

stats_sample sample_at(int64_t ns, uint64_t events) {
    stats_sample s;
    s.at_ns = ns;
    s.counters["events"] = events;
    return s;
}

TEST(Observability, RatesArePerSecondBetweenSamples) {
    stats_sample a = sample_at(1'000'000'000, 100);
    stats_sample b = sample_at(3'000'000'000, 1100);
    EXPECT_DOUBLE_EQ(rate_per_s(b, a, "events"), 500);
    EXPECT_DOUBLE_EQ(rate_per_s(b, a, "missing"), 0);
    EXPECT_DOUBLE_EQ(rate_per_s(a, a, "events"), 0); // no time passed
    EXPECT_DOUBLE_EQ(rate_per_s(a, b, "events"), 0); // never negative
}

TEST(Observability, HistoryKeepsTheNewestAndPicksARateBase) {
    stats_history h(3);
    EXPECT_EQ(h.base_for_rates(0, 1), nullptr);
    for (int i = 1; i <= 5; ++i)
        h.push(sample_at(int64_t(i) * 1'000'000'000, uint64_t(i)));
    EXPECT_EQ(h.size(), 3u);
    EXPECT_EQ(h.oldest()->at_ns, 3'000'000'000);
    // At t = 5.5 s, the newest sample at least 1 s old is the one at 4 s.
    EXPECT_EQ(h.base_for_rates(5'500'000'000, 1'000'000'000)->at_ns, 4'000'000'000);
    // None is old enough: the oldest stands in.
    EXPECT_EQ(h.base_for_rates(5'000'000'000, 10'000'000'000)->at_ns, 3'000'000'000);
}

json sample_stats() {
    latency_histogram visible, durable;
    for (int i = 0; i < 1000; ++i) {
        visible.record(uint64_t(200 * ticks_per_us));
        durable.record(uint64_t(120'000 * ticks_per_us));
    }
    json lat{{"window_visible", latency_json(visible.snapshot(), ticks_per_us, true)},
             {"durable", latency_json(durable.snapshot(), ticks_per_us, true)},
             {"recent",
              {{"interval_s", 10},
               {"window_visible", latency_json(visible.snapshot(), ticks_per_us, false)},
               {"durable", latency_json(durable.snapshot(), ticks_per_us, false)}}}};
    return json{
        {"uptime_s", 12.5},
        {"version", "0.1.0 \"quoted\"\nline"},
        {"watermark_ms", 1740755000000},
        {"watermark_delay_ms", 600000},
        {"totals",
         {{"rx_dropped", 2},
          {"dead_letters", 3},
          {"window_rows", 7},
          {"bytes_written", 4096},
          {"dead_letters_by_reason", {{"parse_error", 3}, {"oversize", 0}}}}},
        {"rates",
         {{"interval_s", 1.0},
          {"events_received_per_s", 1500.5},
          {"dead_letters_per_s", 1},
          {"dead_letters_by_reason_per_s", {{"parse_error", 1}, {"oversize", 0}}}}},
        {"lag", {{"watermark_lag_ms", 601000}, {"max_event_time_ms", 1740755600000}}},
        {"per_core",
         {{{"lcore", 1}, {"role", "rx"}, {"rx", 0}, {"rx_packets", 5}, {"rx_bytes", 500},
           {"events_received", 9}, {"events_per_s", 9.5}, {"bytes_per_s", 100}},
          {{"lcore", 2}, {"role", "worker"}, {"worker", 0}, {"events_accepted", 6},
           {"duplicates", 1}, {"dedup_horizon_ms", 3600000}, {"dedup_capacity", 1048576},
           {"events_per_s", 4}}}},
        {"rings", {{{"rx", 0}, {"worker", 0}, {"occupancy", 12}, {"capacity", 4095}}}},
        {"latency", lat},
        {"control", {{"requests", 40}, {"refused_peers", 1}, {"rate_limited", 2}}}};
}

// Sample lines by "name{labels}", and the TYPE of each family.
struct parsed {
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types;
};

parsed parse(const std::string& text) {
    parsed p;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream t(line.substr(7));
            std::string name, type;
            t >> name >> type;
            EXPECT_TRUE(p.types.emplace(name, type).second) << "TYPE twice: " << name;
            continue;
        }
        if (line.empty() || line[0] == '#') continue;
        size_t sp = line.rfind(' ');
        std::string key = line.substr(0, sp);
        std::string value = line.substr(sp + 1);
        p.samples[key] = value == "+Inf" ? INFINITY : std::stod(value);
    }
    return p;
}

std::string family_of(const std::string& key, const std::map<std::string, std::string>& types) {
    std::string name = key.substr(0, key.find('{'));
    if (types.count(name)) return name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string s(suffix);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
            std::string base = name.substr(0, name.size() - s.size());
            if (types.count(base)) return base;
        }
    }
    return name;
}

TEST(Observability, PrometheusTextHasEverySeriesWithItsType) {
    std::string text = prometheus_text(sample_stats());
    parsed p = parse(text);
    // Every sample belongs to a declared family with a valid name.
    for (const auto& [key, value] : p.samples) {
        std::string fam = family_of(key, p.types);
        EXPECT_TRUE(p.types.count(fam)) << "no TYPE for " << key;
        EXPECT_TRUE(prometheus::CheckMetricName(fam)) << fam;
    }
    EXPECT_EQ(p.samples["sluice_rx_packets_total{lcore=\"1\",rx=\"0\"}"], 5);
    EXPECT_EQ(p.types["sluice_rx_packets_total"], "counter");
    EXPECT_EQ(p.samples["sluice_events_accepted_total{lcore=\"2\",worker=\"0\"}"], 6);
    EXPECT_EQ(p.samples["sluice_dead_letters_total{reason=\"parse_error\"}"], 3);
    EXPECT_EQ(p.samples["sluice_dead_letters_per_second{reason=\"parse_error\"}"], 1);
    EXPECT_EQ(p.samples["sluice_events_received_per_second"], 1500.5);
    EXPECT_EQ(p.samples["sluice_core_events_per_second{lcore=\"1\",role=\"rx\"}"], 9.5);
    EXPECT_EQ(p.samples["sluice_ring_occupancy{rx=\"0\",worker=\"0\"}"], 12);
    EXPECT_EQ(p.samples["sluice_watermark_lag_seconds"], 601);
    EXPECT_EQ(p.samples["sluice_dedup_horizon_seconds{lcore=\"2\",worker=\"0\"}"], 3600);
    EXPECT_EQ(p.samples["sluice_dedup_capacity{lcore=\"2\",worker=\"0\"}"], 1048576);
    EXPECT_EQ(p.samples["sluice_control_refusals_total{reason=\"refused_peers\"}"], 1);
    EXPECT_EQ(p.samples["sluice_rx_dropped_total"], 2);
    // Latency: a histogram since start and a summary of the recent quantiles.
    EXPECT_EQ(p.types["sluice_latency_seconds"], "histogram");
    EXPECT_EQ(p.samples["sluice_latency_seconds_count{stage=\"window_visible\"}"], 1000);
    EXPECT_EQ(p.samples["sluice_latency_seconds_bucket{stage=\"window_visible\",le=\"0.0001\"}"], 0);
    EXPECT_EQ(p.samples["sluice_latency_seconds_bucket{stage=\"window_visible\",le=\"0.00025\"}"],
              1000);
    EXPECT_EQ(p.samples["sluice_latency_seconds_bucket{stage=\"durable\",le=\"0.1\"}"], 0);
    EXPECT_EQ(p.samples["sluice_latency_seconds_bucket{stage=\"durable\",le=\"+Inf\"}"], 1000);
    EXPECT_EQ(p.types["sluice_latency_recent_seconds"], "summary");
    EXPECT_NEAR(p.samples["sluice_latency_recent_seconds{stage=\"durable\",quantile=\"0.99\"}"],
                0.12, 0.12 * 0.02);
    EXPECT_NEAR(p.samples["sluice_latency_max_seconds{stage=\"window_visible\"}"], 200e-6, 1e-9);
    // Label values are escaped.
    EXPECT_NE(text.find("sluice_build_info{version=\"0.1.0 \\\"quoted\\\"\\nline\"} 1"),
              std::string::npos)
        << text;
}

// stats.kafka.ack_latency (per acks mode, as the daemon builds it) becomes one histogram
// family and one summary family labelled by acks, shaped like sluice_latency_*.
TEST(Observability, PrometheusKafkaAckLatencyPerAcksMode) {
    latency_histogram acks1, all;
    for (int i = 0; i < 10; ++i)
        acks1.record(uint64_t(40 * ticks_per_us));
    for (int i = 0; i < 4; ++i)
        all.record(uint64_t(150'000 * ticks_per_us));
    json ack{{"unit", "us"},
             {"0", latency_json(latency_histogram().snapshot(), ticks_per_us, true)},
             {"1", latency_json(acks1.snapshot(), ticks_per_us, true)},
             {"all", latency_json(all.snapshot(), ticks_per_us, true)},
             {"recent",
              {{"interval_s", 10},
               {"1", latency_json(acks1.snapshot(), ticks_per_us, false)},
               {"all", latency_json(all.snapshot(), ticks_per_us, false)}}}};
    json stats{
        {"kafka",
         {{"connections_open", 2},
          {"ack_latency", ack},
          {"rates", {{"interval_s", 1.0}, {"requests_per_s", 12.5}, {"records_per_s", 900}}}}}};
    parsed p = parse(prometheus_text(stats));
    EXPECT_EQ(p.types["sluice_kafka_produce_ack_latency_seconds"], "histogram");
    EXPECT_EQ(p.samples["sluice_kafka_produce_ack_latency_seconds_count{acks=\"all\"}"], 4);
    EXPECT_EQ(p.samples["sluice_kafka_produce_ack_latency_seconds_count{acks=\"1\"}"], 10);
    EXPECT_EQ(p.samples["sluice_kafka_produce_ack_latency_seconds_count{acks=\"0\"}"], 0);
    EXPECT_EQ(p.samples["sluice_kafka_produce_ack_latency_seconds_bucket{acks=\"all\",le=\"0.1\"}"],
              0);
    EXPECT_EQ(
        p.samples["sluice_kafka_produce_ack_latency_seconds_bucket{acks=\"all\",le=\"0.25\"}"], 4);
    EXPECT_EQ(p.samples["sluice_kafka_produce_ack_latency_seconds_bucket{acks=\"1\",le=\"+Inf\"}"],
              10);
    EXPECT_EQ(p.types["sluice_kafka_produce_ack_latency_recent_seconds"], "summary");
    EXPECT_NEAR(
        p.samples
            ["sluice_kafka_produce_ack_latency_recent_seconds{acks=\"all\",quantile=\"0.99\"}"],
        0.15, 0.15 * 0.02);
    EXPECT_EQ(p.samples.count(
                  "sluice_kafka_produce_ack_latency_recent_seconds{acks=\"0\",quantile=\"0.99\"}"),
              0u); // no recent entry for acks 0: no summary for it
    EXPECT_NEAR(p.samples["sluice_kafka_produce_ack_latency_max_seconds{acks=\"1\"}"], 40e-6, 1e-6);
    EXPECT_EQ(p.samples["sluice_kafka_requests_per_second"], 12.5);
    EXPECT_EQ(p.samples["sluice_kafka_records_per_second"], 900);
}

TEST(Observability, PrometheusTextSkipsWhatIsMissing) {
    std::string text = prometheus_text(json{{"per_core", json::array({json{{"lcore", 1}}, 5})},
                                            {"rings", "nope"},
                                            {"latency", {{"window_visible", 3}}}});
    EXPECT_EQ(text.find("sluice_latency"), std::string::npos) << text;
    EXPECT_EQ(text.find("sluice_ring"), std::string::npos) << text;
    EXPECT_TRUE(prometheus_text(json::object()).empty());
}

} // namespace
} // namespace sluice::control
