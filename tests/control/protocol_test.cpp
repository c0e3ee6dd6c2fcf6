#include "control/protocol.h"

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

TEST(Protocol, RenderStatsAlignsPerCoreColumns) {
    std::string text = render_stats(sample_stats());
    std::string header = line_with(text, "lcore");
    std::string worker = line_with(text, "worker");
    std::string rx = line_with(text, " rx ");
    ASSERT_FALSE(header.empty()) << text;
    ASSERT_FALSE(worker.empty()) << text;
    ASSERT_FALSE(rx.empty()) << text;
    // Each value starts under its column's name; missing cells are "-".
    size_t col = header.find("events_accepted");
    ASSERT_NE(col, std::string::npos);
    EXPECT_EQ(worker.substr(col, 6), "123456") << text;
    EXPECT_EQ(rx.substr(col, 1), "-") << text;
    size_t custom = header.find("custom_counter");
    ASSERT_NE(custom, std::string::npos) << text;
    EXPECT_EQ(worker.substr(custom, 1), "9") << text;
    EXPECT_EQ(header.find("nested"), std::string::npos); // not a scalar column
    EXPECT_LT(header.find("lcore"), header.find("role"));
    EXPECT_LT(header.find("role"), header.find("rx_packets"));
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
