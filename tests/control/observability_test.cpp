#include "control/observability.h"
#include "control/stats.h"

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
        if (bound >= 1001 * 1.04) { EXPECT_EQ(cum[i].get<uint64_t>(), truly_below) << bound; }
    }
    EXPECT_EQ(cum[le.size() - 1], 2); // 120 s is above the last bound: only in +Inf
}

stats_sample sample_at(int64_t ns, uint64_t events) {
    stats_sample s;
    s.at_ns = ns;
    s.totals.events_received = events;
    return s;
}

TEST(Observability, RatesArePerSecondBetweenSamples) {
    EXPECT_DOUBLE_EQ(rate_per_s(1100, 100, 3'000'000'000, 1'000'000'000), 500);
    EXPECT_DOUBLE_EQ(rate_per_s(100, 100, 1'000'000'000, 1'000'000'000), 0);  // no time passed
    EXPECT_DOUBLE_EQ(rate_per_s(100, 1100, 3'000'000'000, 1'000'000'000), 0); // never negative
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

// A snapshot as the daemon would read it: one RX and one worker lcore, one ring, rates
// over one second, latency since start and over the recent interval.
struct sample {
    stats_sample base, now;
    stats_snapshot s;
    sample() {
        latency_histogram visible, durable;
        for (int i = 0; i < 1000; ++i) {
            visible.record(uint64_t(200 * ticks_per_us));
            durable.record(uint64_t(120'000 * ticks_per_us));
        }
        base.at_ns = 1'000'000'000;
        base.rx = {{0, 0}};
        base.workers = {{0, 0}};
        base.totals.dead_letters_by_reason = {{"parse_error", 2}, {"oversize", 0}};
        now.at_ns = 2'000'000'000;
        now.rx = {{9, 100}};
        now.workers = {{4, 0}};
        now.totals.events_received = 1500;
        now.totals.rx_dropped = 2;
        now.totals.dead_letters = 3;
        now.totals.bytes_written = 4096;
        now.totals.dead_letters_by_reason = {{"parse_error", 3}, {"oversize", 0}};
        now.window_visible = visible.snapshot();
        now.durable = durable.snapshot();
        s.now = now;
        s.rate_base = &base;
        s.recent_base = &base;
        s.ticks_per_us = ticks_per_us;
        s.uptime_s = 12.5;
        s.version = "0.1.0 \"quoted\"\nline";
        s.watermark_ms = 1740755000000;
        s.watermark_delay_ms = 600000;
        s.watermark_lag_ms = 601000;
        s.max_event_time_ms = 1740755600000;
        s.totals.window_rows = 7;
        rx_core_stats rx;
        rx.lcore = 1;
        rx.input = "dpdk";
        rx.rx_packets = 5;
        rx.rx_bytes = 500;
        rx.events_received = 9;
        s.rx.push_back(rx);
        worker_core_stats w;
        w.lcore = 2;
        w.events_accepted = 6;
        w.duplicates = 1;
        w.dedup_horizon_ms = 3600000;
        w.dedup_capacity = 1048576;
        s.workers.push_back(w);
        s.rings.push_back({0, 0, 12, 4095});
        s.control.requests = 40;
        s.control.refused_peers = 1;
        s.control.rate_limited = 2;
        s.control_up = true;
    }
};

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
    sample smp;
    std::string text = prometheus_text(smp.s);
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
    EXPECT_EQ(p.samples["sluice_events_received_per_second"], 1500);
    EXPECT_EQ(p.samples["sluice_core_events_per_second{lcore=\"1\",role=\"rx\"}"], 9);
    EXPECT_EQ(p.samples["sluice_ring_occupancy{rx=\"0\",worker=\"0\"}"], 12);
    EXPECT_EQ(p.samples["sluice_watermark_lag_seconds"], 601);
    EXPECT_EQ(p.samples["sluice_dedup_horizon_seconds{lcore=\"2\",worker=\"0\"}"], 3600);
    EXPECT_EQ(p.samples["sluice_dedup_capacity{lcore=\"2\",worker=\"0\"}"], 1048576);
    EXPECT_EQ(p.samples["sluice_control_refusals_total{reason=\"refused_peers\"}"], 1);
    EXPECT_EQ(p.samples["sluice_rx_dropped_total"], 2);
    EXPECT_EQ(p.samples["sluice_window_rows_total"], 7);
    EXPECT_EQ(p.samples["sluice_bytes_written_all_total"], 4096);
    // Latency: a histogram since start and a summary of the recent quantiles.
    EXPECT_EQ(p.types["sluice_latency_seconds"], "histogram");
    EXPECT_EQ(p.samples["sluice_latency_seconds_count{stage=\"window_visible\"}"], 1000);
    EXPECT_EQ(p.samples["sluice_latency_seconds_bucket{stage=\"window_visible\",le=\"0.0001\"}"],
              0);
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

// Both renderings walk the same counter tables: what `metrics` shows, `stats` has under
// the JSON key the table names.
TEST(Observability, StatsJsonAndMetricsComeFromOneSnapshot) {
    sample smp;
    json j = stats_json(smp.s);
    EXPECT_EQ(j["ok"], true);
    const json& rx = j["per_core"][0];
    EXPECT_EQ(rx["role"], "rx");
    EXPECT_EQ(rx["rx_packets"], 5);
    EXPECT_EQ(rx["events_per_s"], 9);
    const json& w = j["per_core"][1];
    EXPECT_EQ(w["role"], "worker");
    EXPECT_EQ(w["dedup_horizon_ms"], 3600000);
    EXPECT_EQ(j["totals"]["rx_dropped"], 2);
    EXPECT_EQ(j["totals"]["window_rows"], 7);
    EXPECT_EQ(j["totals"]["dead_letters_by_reason"]["parse_error"], 3);
    EXPECT_EQ(j["rates"]["events_received_per_s"], 1500);
    EXPECT_EQ(j["rates"]["dead_letters_by_reason_per_s"]["parse_error"], 1);
    EXPECT_EQ(j["rings"][0]["occupancy"], 12);
    EXPECT_EQ(j["lag"]["ring_occupancy_total"], 12);
    EXPECT_EQ(j["lag"]["watermark_lag_ms"], 601000);
    EXPECT_EQ(j["control"]["refused_peers"], 1);
    EXPECT_EQ(j["latency"]["window_visible"]["count"], 1000);
    EXPECT_TRUE(j["latency"].contains("recent"));
    EXPECT_TRUE(j["kafka"].is_null());
}

// The Kafka listener's produce-ack latency per acks mode (typed samples, as the daemon
// reads them) becomes one histogram family and one summary family labelled by acks,
// shaped like sluice_latency_*, and the same numbers are in stats.kafka.ack_latency; its
// request and record rates are gauges and stats.kafka.rates.
TEST(Observability, KafkaAckLatencyPerAcksModeInStatsAndMetrics) {
    sample smp;
    latency_histogram acks1, all;
    for (int i = 0; i < 10; ++i)
        acks1.record(uint64_t(40 * ticks_per_us));
    for (int i = 0; i < 4; ++i)
        all.record(uint64_t(150'000 * ticks_per_us));
    smp.base.kafka.present = true;
    smp.base.kafka.requests = 100;
    smp.base.kafka.records = 1000;
    smp.s.now.kafka.present = true;
    smp.s.now.kafka.requests = 112;
    smp.s.now.kafka.records = 1900;
    smp.s.now.kafka.ack[1] = acks1.snapshot();
    smp.s.now.kafka.ack[2] = all.snapshot();
    smp.s.kafka = json{{"connections_open", 2},
                       {"connections_max", 1024},
                       {"consume", {{"fetches", 7}, {"records_sent", 4000}}}};

    parsed p = parse(prometheus_text(smp.s));
    EXPECT_EQ(p.samples["sluice_kafka_consume_fetches_total"], 7);
    EXPECT_EQ(p.samples["sluice_kafka_consume_records_sent_total"], 4000);
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
    EXPECT_NEAR(p.samples["sluice_kafka_produce_ack_latency_max_seconds{acks=\"1\"}"], 40e-6, 1e-6);
    EXPECT_EQ(p.samples["sluice_kafka_requests_per_second"], 12);
    EXPECT_EQ(p.samples["sluice_kafka_records_per_second"], 900);
    EXPECT_EQ(p.samples["sluice_kafka_connections_max"], 1024);

    json j = stats_json(smp.s);
    const json& k = j["kafka"];
    ASSERT_TRUE(k.is_object()) << j.dump();
    EXPECT_EQ(k["connections_open"], 2);
    EXPECT_EQ(k["ack_latency"]["all"]["count"], 4);
    EXPECT_EQ(k["ack_latency"]["1"]["count"], 10);
    EXPECT_EQ(k["ack_latency"]["0"]["count"], 0);
    EXPECT_NEAR(k["ack_latency"]["recent"]["all"]["p99_us"].get<double>(), 150'000, 150'000 * 0.02);
    EXPECT_EQ(k["rates"]["requests_per_s"], 12);
    EXPECT_EQ(k["rates"]["records_per_s"], 900);
}

TEST(Observability, PrometheusTextSkipsWhatIsMissing) {
    stats_snapshot s; // no rate base yet, no watermark, no control server, no Kafka
    std::string text = prometheus_text(s);
    EXPECT_EQ(text.find("per_second"), std::string::npos) << text;
    EXPECT_EQ(text.find("sluice_latency_recent"), std::string::npos) << text;
    EXPECT_EQ(text.find("sluice_watermark_seconds"), std::string::npos) << text;
    EXPECT_EQ(text.find("sluice_ring"), std::string::npos) << text;
    EXPECT_EQ(text.find("sluice_control"), std::string::npos) << text;
    EXPECT_EQ(text.find("sluice_kafka"), std::string::npos) << text;
    json j = stats_json(s);
    EXPECT_EQ(j["rates"], json({{"interval_s", 0}}));
    EXPECT_EQ(j["control"], json::object());
}

} // namespace
} // namespace sluice::control
