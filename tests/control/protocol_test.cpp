#include "control/protocol.h"
#include "control/render_text.h"

#include <cmath>
#include <limits>

#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "tests/control/control_test_util.h"

namespace sluice::control {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

std::string line_with(const std::string& text, const std::string& needle) {
    for (const auto& l : lines_of(text))
        if (l.find(needle) != std::string::npos) return l;
    return {};
}

TEST(Protocol, EncodeReplyPutsOkAndVersionFirst) {
    EXPECT_EQ(encode_reply(json{{"a", 1}, {"b", "x"}}),
              "{\"ok\":true,\"v\":1,\"a\":1,\"b\":\"x\"}");
    EXPECT_EQ(encode_reply(json()), "{\"ok\":true,\"v\":1}");
    EXPECT_EQ(encode_reply(json::array({1, 2})), "{\"ok\":true,\"v\":1,\"result\":[1,2]}");
}

TEST(Protocol, EncodeReplyKeepsHandlerOkAndError) {
    EXPECT_EQ(encode_reply(json{{"error", "no"}, {"ok", false}, {"z", 1}}),
              "{\"ok\":false,\"error\":\"no\",\"z\":1}");
    EXPECT_EQ(encode_reply(json{{"ok", true}, {"v", 1}}), "{\"ok\":true,\"v\":1}");
}

TEST(Protocol, EncodeReplySurvivesInvalidUtf8) {
    std::string reply = encode_reply(json{{"s", std::string("bad \xff byte")}});
    EXPECT_EQ(json::parse(reply)["ok"], true);
}

TEST(Protocol, EncodeErrorEscapes) {
    EXPECT_EQ(encode_error("a \"quoted\"\nline"),
              "{\"ok\":false,\"error\":\"a \\\"quoted\\\"\\nline\"}");
}

TEST(Protocol, ParseRequestAcceptsWellFormed) {
    auto r = parse_request("{\"v\":1,\"cmd\":\"stats\",\"x\":[1]}");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value()["cmd"], "stats");
    EXPECT_TRUE(parse_request("{\"cmd\":\"stats\"}").ok()); // v is optional
}

TEST(Protocol, ParseRequestRejectsBadInput) {
    EXPECT_EQ(parse_request("{oops").err().code, errc::invalid_argument);
    EXPECT_EQ(parse_request("").err().code, errc::invalid_argument);
    EXPECT_EQ(parse_request("[]").err().code, errc::invalid_argument);
    EXPECT_EQ(parse_request("{\"cmd\":1}").err().code, errc::invalid_argument);
    EXPECT_EQ(parse_request("{\"v\":1}").err().code, errc::invalid_argument);
    EXPECT_EQ(parse_request("{\"v\":\"1\",\"cmd\":\"x\"}").err().code, errc::unsupported);
    EXPECT_EQ(parse_request("{\"v\":2,\"cmd\":\"x\"}").err().code, errc::unsupported);
}

TEST(Protocol, RequestToMissingSocketNamesCauseAndFix) {
    testing::temp_dir dir;
    std::string path = dir.file("none.sock");
    auto r = request(path, {{"cmd", "stats"}}, 1000);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message,
              "cannot connect to " + path +
                  ": No such file or directory (is sluiced running? pass --socket)");
}

TEST(Protocol, RequestRejectsOverlongPath) {
    auto r = request(std::string(200, 'x'), {{"cmd", "stats"}}, 1000);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument);
}

json sample_stats() {
    return json::parse(R"({"ok":true,"v":1,"uptime_s":12.5,"watermark_ms":1740755000000,
      "watermark_delay_ms":600000,
      "totals":{"rx_packets":1,"ignored_packets":0,"events_received":0,"events_accepted":0,
        "duplicates":0,"late_events":0,"dead_letters":0,"rx_dropped":0,"bytes_written":0,
        "watermark_ms":0,"dead_letters_by_reason":{"parse_error":3,"oversize":0}},
      "per_core":[{"lcore":1,"role":"rx","rx_packets":1,"ignored_packets":0,"events_received":0,
                   "rx_dropped":0},
                  {"lcore":2,"role":"worker","events_accepted":123456,"duplicates":0,
                   "late_events":0,"dead_letters":0,"bytes_written":0,"custom_counter":9,
                   "nested":{"a":1}}],
      "rings":[{"rx":0,"worker":0,"occupancy":1024,"capacity":4095}],
      "latency_us":{"p50":3,"p99":11}})");
}

TEST(Protocol, RenderStatsShowsEverySection) {
    std::string text = render_stats(sample_stats());
    EXPECT_NE(text.find("uptime     12.5 s"), std::string::npos) << text;
    EXPECT_NE(text.find("2025-02-28T15:03:20.000Z"), std::string::npos) << text;
    EXPECT_NE(text.find("(delay 600 s)"), std::string::npos) << text;
    EXPECT_NE(line_with(text, "parse_error").find('3'), std::string::npos) << text;
    EXPECT_NE(text.find("per core"), std::string::npos);
    EXPECT_NE(text.find("rings"), std::string::npos);
    EXPECT_NE(line_with(text, "capacity").find("fill"), std::string::npos) << text;
    EXPECT_NE(text.find("25.0%"), std::string::npos) << text; // 1024 / 4095
    EXPECT_NE(text.find("latency_us.p99: 11"), std::string::npos) << text;
    // Rings read producer, consumer, then the lag.
    std::string rings = line_with(text, "capacity");
    EXPECT_LT(rings.find("rx"), rings.find("worker"));
    EXPECT_LT(rings.find("worker"), rings.find("occupancy"));
}

TEST(Protocol, RenderStatsTotalsFollowSpecOrder) {
    std::string text = render_stats(sample_stats());
    EXPECT_LT(text.find("rx_packets"), text.find("ignored_packets"));
    EXPECT_LT(text.find("ignored_packets"), text.find("events_received"));
    EXPECT_LT(text.find("dead_letters "), text.find("rx_dropped"));
}

TEST(Protocol, RenderStatsAlignsPerCoreColumnsOneTablePerRole) {
    std::string text = render_stats(sample_stats());
    size_t rx_at = text.find("per core (rx)");
    size_t worker_at = text.find("per core (worker)");
    ASSERT_NE(rx_at, std::string::npos) << text;
    ASSERT_NE(worker_at, std::string::npos) << text;
    std::string rx_table = text.substr(rx_at, worker_at - rx_at);
    std::string worker_table = text.substr(worker_at);
    std::string header = line_with(worker_table, "lcore");
    std::string worker = line_with(worker_table, "worker ");
    ASSERT_FALSE(header.empty()) << text;
    ASSERT_FALSE(worker.empty()) << text;
    // Each value starts under its column's name.
    size_t col = header.find("events_accepted");
    ASSERT_NE(col, std::string::npos);
    EXPECT_EQ(worker.substr(col, 6), "123456") << text;
    size_t custom = header.find("custom_counter");
    ASSERT_NE(custom, std::string::npos) << text;
    EXPECT_EQ(worker.substr(custom, 1), "9") << text;
    EXPECT_EQ(header.find("nested"), std::string::npos); // not a scalar column
    // The RX table has only the RX counters.
    EXPECT_EQ(line_with(rx_table, "lcore").find("events_accepted"), std::string::npos) << text;
    EXPECT_LT(line_with(rx_table, "lcore").find("role"),
              line_with(rx_table, "lcore").find("rx_packets"));
}

json observed_stats() {
    json s = sample_stats();
    s["version"] = "0.1.0";
    s["rates"] = json::parse(R"({"interval_s":1.0,"events_received_per_s":1234567,
        "events_accepted_per_s":1200000,"duplicates_per_s":34567,"late_events_per_s":0,
        "dead_letters_per_s":2,"rx_bytes_per_s":250000000,"bytes_written_per_s":30000000,
        "rx_dropped_per_s":0,"dead_letters_by_reason_per_s":{"parse_error":2,"oversize":0}})");
    s["latency"] = json::parse(R"({"unit":"us",
        "window_visible":{"count":5000,"p50_us":120,"p99_us":950,"p999_us":1500,"max_us":2500000,"mean_us":130},
        "durable":{"count":0},
        "recent":{"interval_s":10,"window_visible":{"count":100,"p50_us":110,"p99_us":900,
                  "p999_us":1400,"max_us":1450,"mean_us":115},"durable":{"count":0}}})");
    s["lag"] = json::parse(R"({"watermark_lag_ms":601500,"ring_occupancy_total":1024,
        "ring_occupancy_max":1024})");
    s["per_core"][0]["events_per_s"] = 1234567;
    s["per_core"][1]["worker"] = 0;
    s["per_core"][1]["events_per_s"] = 1200000;
    s["control"] = json::parse(R"({"requests":10,"refused_peers":1,"rate_limited":0,"connections_open":2})");
    return s;
}

TEST(Protocol, RenderStatsShowsLatencyRatesAndLag) {
    std::string text = render_stats(observed_stats());
    EXPECT_NE(text.find("10m01s behind the wall clock"), std::string::npos) << text;
    json replayed = observed_stats();
    replayed["lag"]["watermark_lag_ms"] = int64_t(400) * 86'400'000 + 5 * 3'600'000;
    EXPECT_NE(render_stats(replayed).find("400d05h behind"), std::string::npos);
    std::string recent = line_with(text, "window-visible (last 10 s)");
    EXPECT_NE(recent.find("110 us"), std::string::npos) << text;
    EXPECT_NE(recent.find("1.40 ms"), std::string::npos) << text;
    std::string total = line_with(text, "window-visible (since start)");
    EXPECT_NE(total.find("2.50 s"), std::string::npos) << text;
    EXPECT_NE(line_with(text, "durable (since start)").find(" - "), std::string::npos) << text;
    EXPECT_NE(line_with(text, "events_received_per_s").find("1234567"), std::string::npos) << text;
    EXPECT_NE(line_with(text, "refused_peers").find('1'), std::string::npos) << text;
}

TEST(Protocol, RenderWatchIsACompactView) {
    std::string text = render_watch(observed_stats(), 1740755000000);
    EXPECT_NE(text.find("sluiced 0.1.0"), std::string::npos) << text;
    EXPECT_NE(text.find("2025-02-28T15:03:20.000Z"), std::string::npos) << text;
    std::string all = line_with(text, "all cores");
    EXPECT_NE(all.find("1.23M"), std::string::npos) << text;   // received/s
    EXPECT_NE(all.find("1.20M"), std::string::npos) << text;   // accepted/s
    EXPECT_NE(all.find("250 MB"), std::string::npos) << text;  // rx bytes/s
    EXPECT_NE(line_with(text, "dead letters/s").find("parse_error 2"), std::string::npos) << text;
    EXPECT_EQ(line_with(text, "dead letters/s").find("oversize"), std::string::npos) << text;
    EXPECT_NE(line_with(text, "window-visible (last 10 s)").find("900 us"), std::string::npos)
        << text;
    // Per core: the worker's ring lag is the occupancy of the rings feeding it.
    std::string worker = line_with(text, "worker");
    EXPECT_NE(worker.find("1.20M"), std::string::npos) << text;
    EXPECT_NE(worker.find("1.02k"), std::string::npos) << text;
    EXPECT_NE(text.find("1 peers refused"), std::string::npos) << text;
    EXPECT_NO_THROW(render_watch(json::parse(R"({"ok":true,"per_core":[1,{"role":3}],"rates":5})"), 0));
}

// The Kafka object (stats.kafka): `watch` gets one line with connections, rates and the
// ack p99 per acks mode (recent); `stats` a latency table instead of the buckets.
json kafka_stats() {
    json s = observed_stats();
    s["kafka"] = json::parse(R"({"connections_open":3,"records":10,
        "rates":{"interval_s":1.0,"requests_per_s":1500,"records_per_s":250000,"errors_per_s":2},
        "ack_latency":{"unit":"us",
          "0":{"count":0},
          "1":{"count":40,"p50_us":30,"p99_us":45,"p999_us":50,"max_us":52,"mean_us":31,
               "le_us":[10,25],"cumulative":[0,0,40]},
          "all":{"count":7,"p50_us":110000,"p99_us":190000,"p999_us":195000,"max_us":196000,
                 "mean_us":120000,"le_us":[10,25],"cumulative":[0,0,7]},
          "recent":{"interval_s":10,"0":{"count":0},
            "1":{"count":20,"p50_us":31,"p99_us":44,"p999_us":49,"max_us":49,"mean_us":32},
            "all":{"count":3,"p50_us":105000,"p99_us":180000,"p999_us":181000,"max_us":181000,
                   "mean_us":115000}}}})");
    return s;
}

TEST(Protocol, RenderWatchHasAKafkaLine) {
    std::string line = line_with(render_watch(kafka_stats(), 1740755000000), "kafka:");
    ASSERT_FALSE(line.empty());
    EXPECT_NE(line.find("3 connected"), std::string::npos) << line;
    EXPECT_NE(line.find("1.50k requests/s"), std::string::npos) << line;
    EXPECT_NE(line.find("250k records/s"), std::string::npos) << line;
    EXPECT_NE(line.find("2 errors/s"), std::string::npos) << line;
    EXPECT_NE(line.find("ack p99 (last 10 s): 0 - 1 44 us all 180.00 ms"), std::string::npos)
        << line;
    // No Kafka listener (kafka null): no line.
    EXPECT_EQ(render_watch(observed_stats(), 0).find("kafka:"), std::string::npos);
}

TEST(Protocol, RenderStatsShowsKafkaAckLatencyAsATable) {
    std::string text = render_stats(kafka_stats());
    EXPECT_NE(line_with(text, "acks all (last 10 s)").find("180.00 ms"), std::string::npos) << text;
    EXPECT_NE(line_with(text, "acks all (since start)").find("190.00 ms"), std::string::npos)
        << text;
    EXPECT_NE(line_with(text, "acks 1 (since start)").find("45 us"), std::string::npos) << text;
    EXPECT_EQ(text.find("cumulative"), std::string::npos) << text;
}

TEST(Protocol, RenderStatsToleratesOddShapes) {
    EXPECT_NO_THROW(render_stats(json::parse(R"({"ok":true})")));
    EXPECT_NO_THROW(render_stats(json::parse(
        R"({"ok":true,"totals":[1],"per_core":{"x":1},"rings":[1,"a",{"occupancy":"x"}],
            "uptime_s":"soon","watermark_ms":null})")));
    std::string text = render_stats(json::parse(R"({"ok":true,"per_core":[5,{"lcore":3}]})"));
    EXPECT_NE(text.find("lcore"), std::string::npos) << text;
}

TEST(Protocol, RenderFieldsFlattens) {
    EXPECT_EQ(
        render_fields(json::parse(R"({"ok":true,"v":1,"state":"running","cfg":{"workers":2}})")),
        "cfg.workers: 2\nstate: running\n");
    EXPECT_EQ(render_fields(json::parse(R"({"ok":true,"v":1})")), "");
}

} // namespace
} // namespace sluice::control

// A reply's durations come from the socket: one no integer holds (found by fuzz_protocol:
// "uptime_s": 5.7e80) must be printed, not converted to an integer (undefined behaviour;
// on x86 it printed a negative day count).
TEST(RenderText, DurationsBeyondAnyIntegerAreNotConverted) {
    EXPECT_EQ(sluice::control::text::format_duration_s(5.7e80), "5.7e+80 s");
    EXPECT_EQ(sluice::control::text::format_duration_s(std::numeric_limits<double>::infinity()), "inf s");
    EXPECT_EQ(sluice::control::text::format_duration_s(std::nan("")), "nan s");
    EXPECT_EQ(sluice::control::text::format_duration_s(3 * 86400.0 + 5 * 3600.0), "3d05h");
    // Hours beyond an int below the 1e15 cut (fuzz_protocol, fresh-clone smoke run,
    // 2026-12-04: 1.6e11 hours): printed as days and hours, no integer overflow.
    EXPECT_EQ(sluice::control::text::format_duration_s(5.777784e14 + 7200.0), "6687250000d02h");
}
