#include "tools/gen/model.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <xxhash.h>

namespace sluice::tools {
namespace {

constexpr int64_t t0 = 1740754800000; // 2025-02-28T15:00:00Z, a window boundary
constexpr int64_t min_ms = 60000;
constexpr int64_t hour_ms = 60 * min_ms;

reference_model make_model(uint32_t event_bytes_max = 4096) {
    model_config c;
    c.event_bytes_max = event_bytes_max;
    c.now_ms = t0 + 24 * hour_ms;
    return reference_model(c);
}

// An event line with an epoch-ms timestamp; an empty id or page leaves the field out.
std::string ev(const std::string& id, int64_t t, const std::string& page = "/p",
               const std::string& extra = "") {
    std::string s = "{";
    if (!id.empty()) s += "\"event_id\":\"" + id + "\",";
    s += "\"user_id\":\"1\",\"event_type\":\"page_view\",\"timestamp\":" + std::to_string(t);
    if (!page.empty()) s += ",\"page\":\"" + page + "\"";
    s += extra + "}";
    return s;
}

void expect_dead(reference_model& m, const std::string& line, reason why) {
    const line_outcome o = m.feed_line(line);
    EXPECT_EQ(o.kind, verdict::dead_letter) << line;
    EXPECT_EQ(reason_text(o.why), reason_text(why)) << line;
}

verdict kind(reference_model& m, const std::string& line) {
    return m.feed_line(line).kind;
}

void expect_identity(const model_counters& c) {
    EXPECT_EQ(c.events_received, c.events_accepted + c.duplicates + c.dead_letters);
    uint64_t sum = 0;
    for (uint64_t n : c.dead_letters_by_reason)
        sum += n;
    EXPECT_EQ(sum, c.dead_letters);
}

TEST(ReferenceModel, ReasonNamesMatchSpec) {
    const char* names[] = {"parse_error",      "missing_timestamp", "bad_timestamp",
                           "future_timestamp", "oversize",          "beyond_dedup_horizon",
                           "schema_mismatch"};
    for (int r = 0; r < reason_count; r++)
        EXPECT_EQ(reason_text(reason(r)), names[r]);
}

TEST(ReferenceModel, ParseErrorForAnythingButAJsonObject) {
    auto m = make_model();
    const std::string whole = ev("a", t0);
    for (const std::string& bad :
         {std::string("hello world"), whole.substr(0, whole.size() - 1), whole.substr(0, 1),
          "[" + whole + "]", std::string("[1,2,3]"), std::string("42"), std::string("\"str\""),
          std::string("{not json}"), whole + "x", std::string("null")})
        expect_dead(m, bad, reason::parse_error);
    EXPECT_EQ(m.counters().dead_letters_by_reason[size_t(reason::parse_error)], 10u);
}

TEST(ReferenceModel, SchemaMismatchForNonStringTypedFields) {
    auto m = make_model();
    expect_dead(m, R"({"user_id":12,"timestamp":1740754800000})", reason::schema_mismatch);
    expect_dead(m, R"({"page":{"path":"/x"},"timestamp":1740754800000})", reason::schema_mismatch);
    expect_dead(m, R"({"event_type":7,"timestamp":1740754800000})", reason::schema_mismatch);
    expect_dead(m, R"({"event_id":5,"timestamp":1740754800000})", reason::schema_mismatch);
    expect_dead(m, R"({"event_id":null,"timestamp":1740754800000})", reason::schema_mismatch);
    // Checked before the timestamp: a bad type wins over a missing timestamp.
    expect_dead(m, R"({"page":1})", reason::schema_mismatch);
    // Other fields may hold anything.
    EXPECT_EQ(kind(m, R"({"metadata":5,"other":[1],"timestamp":1740754800000})"),
              verdict::accepted);
}

TEST(ReferenceModel, TimestampChecks) {
    auto m = make_model();
    expect_dead(m, R"({"page":"/p"})", reason::missing_timestamp);
    expect_dead(m, R"({})", reason::missing_timestamp);
    for (const char* ts : {R"("yesterday")", R"("2025-13-45T99:00:00Z")", "true", "null", "1.5",
                           R"("")", "{}", R"("2025-02-30T10:00:00Z")"})
        expect_dead(m, std::string(R"({"timestamp":)") + ts + "}", reason::bad_timestamp);
    expect_dead(m, R"({"timestamp":"2099-01-01T00:00:00Z"})", reason::future_timestamp);
    EXPECT_EQ(kind(m, R"({"timestamp":"2025-02-28T17:00:00.5+02:00"})"), verdict::accepted);
    // The skew limit is inclusive: exactly now + 5 min passes, 1 ms more does not.
    const int64_t now = t0 + 24 * hour_ms;
    expect_dead(m, ev("", now + 5 * min_ms + 1), reason::future_timestamp);
    EXPECT_EQ(kind(m, ev("", now + 5 * min_ms)), verdict::accepted);
    expect_identity(m.counters());
}

TEST(ReferenceModel, OversizeIsCheckedFirstAndHashesThePrefix) {
    auto m = make_model(64);
    const std::string big = ev("a", t0, "/p", ",\"pad\":\"" + std::string(100, 'x') + "\"");
    const std::string not_json(65, 'x');
    expect_dead(m, big, reason::oversize);
    expect_dead(m, not_json, reason::oversize);
    const std::string exactly(64, ' '); // at the limit: judged, not oversize
    expect_dead(m, exactly, reason::parse_error);
    const auto lines = m.dead_letter_lines();
    ASSERT_EQ(lines.size(), 3u);
    const std::string big_line = "oversize " + hex16(XXH3_64bits(big.data(), 64));
    EXPECT_NE(std::find(lines.begin(), lines.end(), big_line), lines.end());
}

TEST(ReferenceModel, BeyondHorizonBoundaryIsExactlyMMinusOneHour) {
    auto m = make_model();
    // The first valid event has no M before it: never beyond, never late.
    EXPECT_EQ(kind(m, ev("old", t0 - 100 * hour_ms)), verdict::accepted);
    EXPECT_EQ(kind(m, ev("m", t0)), verdict::accepted);
    EXPECT_EQ(kind(m, ev("edge", t0 - hour_ms)), verdict::accepted_late);
    expect_dead(m, ev("past", t0 - hour_ms - 1), reason::beyond_dedup_horizon);
    // Beyond the horizon is judged before dedup: a known id is still a dead letter.
    expect_dead(m, ev("old", t0 - 100 * hour_ms), reason::beyond_dedup_horizon);
    EXPECT_EQ(m.counters().events_accepted, 3u);
    EXPECT_EQ(m.counters().late_events, 1u);
}

TEST(ReferenceModel, MaxTimeIncludesDuplicatesButNotDeadLetters) {
    auto m = make_model();
    EXPECT_EQ(kind(m, ev("a", t0)), verdict::accepted);
    // A future-stamped line fails the RX checks and so never moves M.
    expect_dead(m, ev("f", t0 + 48 * hour_ms), reason::future_timestamp);
    EXPECT_EQ(kind(m, ev("b", t0 - 59 * min_ms)), verdict::accepted_late);
    // A duplicate still raises M: its id was seen at t0 >= M - 1 h.
    EXPECT_EQ(kind(m, ev("a", t0 + 30 * min_ms, "/other")), verdict::duplicate);
    expect_dead(m, ev("c", t0 - 31 * min_ms), reason::beyond_dedup_horizon);
    EXPECT_EQ(kind(m, ev("d", t0 - 30 * min_ms)), verdict::accepted_late);
}

TEST(ReferenceModel, DuplicatesByEventIdAndByExactBytes) {
    auto m = make_model();
    const std::string no_id = ev("", t0, "/x");
    EXPECT_EQ(kind(m, no_id), verdict::accepted);
    EXPECT_EQ(kind(m, no_id), verdict::duplicate);
    // One byte different, no event_id: another identity.
    EXPECT_EQ(kind(m, ev("", t0, "/y")), verdict::accepted);
    EXPECT_EQ(kind(m, ev("id-1", t0, "/x")), verdict::accepted);
    EXPECT_EQ(kind(m, ev("id-1", t0 + 1, "/z", ",\"more\":1")), verdict::duplicate);
    // The id namespace and the bytes namespace never collide.
    const std::string id_is_bytes = "{\"event_id\":" + nlohmann::json(no_id).dump() +
                                    ",\"timestamp\":" + std::to_string(t0) + "}";
    EXPECT_EQ(kind(m, id_is_bytes), verdict::accepted);
    const auto& c = m.counters();
    EXPECT_EQ(c.duplicates, 2u);
    EXPECT_EQ(c.events_accepted, 4u);
    expect_identity(c);
    // Duplicates are not counted in windows.
    uint64_t counted = 0;
    for (const auto& row : m.windows())
        counted += row.count;
    EXPECT_EQ(counted, 4u);
}

TEST(ReferenceModel, DuplicateUntilHorizonExpiresThenAcceptedAgain) {
    auto m = make_model();
    EXPECT_EQ(kind(m, ev("a", t0)), verdict::accepted);
    EXPECT_EQ(kind(m, ev("x", t0 + hour_ms)), verdict::accepted);
    // Seen at t0 = M - 1 h exactly: still within the horizon.
    EXPECT_EQ(kind(m, ev("a", t0 + 30 * min_ms)), verdict::duplicate);
    EXPECT_EQ(kind(m, ev("y", t0 + hour_ms + 1)), verdict::accepted);
    // Now t0 < M - 1 h: the old sighting has expired, so this is a new acceptance...
    EXPECT_EQ(kind(m, ev("a", t0 + 30 * min_ms)), verdict::accepted_late);
    // ...which is remembered at its own time.
    EXPECT_EQ(kind(m, ev("a", t0 + 31 * min_ms)), verdict::duplicate);
    EXPECT_EQ(m.counters().duplicates, 2u);
}

TEST(ReferenceModel, LateBoundaryIsWindowEndAtMMinusDelay) {
    auto m = make_model();
    EXPECT_EQ(kind(m, ev("m", t0)), verdict::accepted);
    // Window [14:49, 14:50) ends at 14:50 = M - 10 min: closed, so late.
    EXPECT_EQ(kind(m, ev("a", t0 - 10 * min_ms - 1)), verdict::accepted_late);
    // Window [14:50, 14:51) ends after M - 10 min: still open.
    EXPECT_EQ(kind(m, ev("b", t0 - 10 * min_ms)), verdict::accepted);
    EXPECT_EQ(m.counters().late_events, 1u);
    const auto rows = m.windows();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].window_start_ms, t0 - 10 * min_ms);
    EXPECT_EQ(rows[0].window_end_ms, t0 - 9 * min_ms);
    EXPECT_EQ(rows[1].window_start_ms, t0);
    const auto events = m.event_lines();
    ASSERT_EQ(events.size(), 3u);
    const std::string late_line = ev("a", t0 - 10 * min_ms - 1);
    const std::string want = hex16(XXH3_64bits(late_line.data(), late_line.size())) + " 1";
    EXPECT_NE(std::find(events.begin(), events.end(), want), events.end());
    EXPECT_TRUE(std::is_sorted(events.begin(), events.end()));
}

TEST(ReferenceModel, WindowsGroupByUnescapedPageSorted) {
    auto m = make_model();
    EXPECT_EQ(kind(m, ev("1", t0, "/a")), verdict::accepted);
    EXPECT_EQ(kind(m, ev("2", t0 + 59999, "\\/a")), verdict::accepted); // "\/a" is "/a"
    EXPECT_EQ(kind(m, ev("3", t0 + 60000, "/a")), verdict::accepted);   // next window
    EXPECT_EQ(kind(m, ev("4", t0 + 1, "")), verdict::accepted);         // no page: ""
    EXPECT_EQ(kind(m, ev("5", t0 + 2, "/q=\\\"x\\\",y")), verdict::accepted);
    const auto rows = m.windows();
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0].page, "");
    EXPECT_EQ(rows[1].page, "/a");
    EXPECT_EQ(rows[1].count, 2u);
    EXPECT_EQ(rows[2].page, "/q=\"x\",y");
    EXPECT_EQ(rows[3].window_start_ms, t0 + 60000);
    EXPECT_EQ(rows[3].count, 1u);
}

TEST(ReferenceModel, DatagramsSplitIntoNonEmptyLines) {
    auto m = make_model();
    m.feed_datagram(ev("1", t0) + "\n" + ev("2", t0) + "\n\n" + ev("3", t0) + "\n");
    m.feed_datagram("\n");
    m.feed_datagram(ev("1", t0));
    m.feed_ignored_frame();
    const auto& c = m.counters();
    EXPECT_EQ(c.rx_packets, 4u);
    EXPECT_EQ(c.datagrams, 3u);
    EXPECT_EQ(c.ignored_packets, 1u);
    EXPECT_EQ(c.events_received, 4u);
    EXPECT_EQ(c.events_accepted, 3u);
    EXPECT_EQ(c.duplicates, 1u);
}

TEST(ReferenceModel, CsvFieldQuotesPerRfc4180) {
    EXPECT_EQ(csv_field("/plain"), "/plain");
    EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
    EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    EXPECT_EQ(csv_field("line\nbreak"), "\"line\nbreak\"");
    EXPECT_EQ(csv_field(""), "");
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(ReferenceModel, WritesExpectedFiles) {
    auto m = make_model();
    m.feed_datagram(ev("1", t0, "a,b") + "\n" + ev("1", t0) + "\nnope");
    const auto dir =
        std::filesystem::temp_directory_path() / ("model_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    ASSERT_TRUE(m.write_expected(dir.string()).ok());

    const auto counters = nlohmann::json::parse(slurp(dir / "counters.json"));
    EXPECT_EQ(counters["events_received"], 3);
    EXPECT_EQ(counters["events_accepted"], 1);
    EXPECT_EQ(counters["duplicates"], 1);
    EXPECT_EQ(counters["dead_letters"], 1);
    EXPECT_EQ(counters["datagrams"], 1);
    EXPECT_EQ(counters["dead_letters_by_reason"].size(), 7u);
    EXPECT_EQ(counters["dead_letters_by_reason"]["parse_error"], 1);
    EXPECT_EQ(counters["dead_letters_by_reason"]["oversize"], 0);

    EXPECT_EQ(slurp(dir / "windows.csv"),
              "window_start_ms,window_end_ms,page,count\n1740754800000,1740754860000,\"a,b\",1\n");
    const std::string first = ev("1", t0, "a,b");
    EXPECT_EQ(slurp(dir / "events.txt"), hex16(XXH3_64bits(first.data(), first.size())) + " 0\n");
    EXPECT_EQ(slurp(dir / "dead_letters.txt"),
              "parse_error " + hex16(XXH3_64bits("nope", 4)) + "\n");
    std::filesystem::remove_all(dir);
}

} // namespace
} // namespace sluice::tools
