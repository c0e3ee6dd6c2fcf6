#include "base/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/time_format.h"

namespace sluice {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < s.size()) {
        size_t nl = s.find('\n', start);
        if (nl == std::string::npos) nl = s.size();
        out.push_back(s.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

class Log : public ::testing::Test {
  protected:
    void SetUp() override {
        log_set_level(log_level::info);
        log_set_format(log_format::text);
        log_set_rate_limit({});
    }
    void TearDown() override {
        SetUp();
        log_set_journal(false);
        ::unsetenv("JOURNAL_STREAM");
    }
};

// One call site, called n times.
void flood(int n, int i0 = 0) {
    for (int i = 0; i < n; ++i)
        SLUICE_LOG_WARN("bad input from peer %d", i0 + i);
}

TEST_F(Log, TextLinesAreOneLineWithLevelAndNoControlCharacters) {
    ::testing::internal::CaptureStderr();
    SLUICE_LOG_ERROR("cannot open %s: %s", "/x", "line one\nline two\x1b[31m red");
    SLUICE_LOG_DEBUG("not shown at info");
    auto out = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(lines_of(out).size(), 1u) << out;
    EXPECT_EQ(out, "sluice error: cannot open /x: line one\\nline two\\u001b[31m red\n");
}

TEST_F(Log, JsonLinesAreOneObjectWithTimeLevelAndEscapedMessage) {
    log_set_format(log_format::json);
    ::testing::internal::CaptureStderr();
    SLUICE_LOG_WARN("peer \"%s\" sent \\ and\n%s", "a", "\ttab");
    auto out = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(lines_of(out).size(), 1u) << out;
    // {"ts":"2026-...Z","level":"warn","msg":"..."}
    ASSERT_EQ(out.rfind("{\"ts\":\"", 0), 0u) << out;
    const size_t ts_end = out.find('"', 7);
    ASSERT_NE(ts_end, std::string::npos);
    int64_t ms = 0;
    EXPECT_TRUE(parse_rfc3339_ms(out.substr(7, ts_end - 7), &ms)) << out;
    EXPECT_NEAR(double(ms), double(wall_clock_ms()), 60'000.0);
    EXPECT_EQ(out.substr(ts_end + 1),
              ",\"level\":\"warn\",\"msg\":\"peer \\\"a\\\" sent \\\\ and\\n\\ttab\"}\n");
}

TEST_F(Log, UnderJournaldTextLinesCarryTheirSyslogPriority) {
    struct stat st {};
    ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
    const std::string mine =
        std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino));
    ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
    EXPECT_TRUE(log_stderr_is_journal());
    // Another stream (stdout redirected elsewhere, a file): no prefix.
    ::setenv("JOURNAL_STREAM", (std::to_string(uint64_t(st.st_dev)) + ":1").c_str(), 1);
    EXPECT_FALSE(log_stderr_is_journal());
    ::setenv("JOURNAL_STREAM", "garbage", 1);
    EXPECT_FALSE(log_stderr_is_journal());
    log_set_journal(true);
    ::testing::internal::CaptureStderr();
    SLUICE_LOG_ERROR("e");
    SLUICE_LOG_WARN("w");
    SLUICE_LOG_INFO("i");
    EXPECT_EQ(::testing::internal::GetCapturedStderr(),
              "<3>sluice error: e\n<4>sluice warn: w\n<6>sluice info: i\n");
}

TEST_F(Log, ParsesTheFormatNames) {
    log_format f = log_format::json;
    EXPECT_TRUE(parse_log_format("text", &f));
    EXPECT_EQ(f, log_format::text);
    EXPECT_TRUE(parse_log_format("json", &f));
    EXPECT_EQ(f, log_format::json);
    EXPECT_FALSE(parse_log_format("JSON", &f));
    EXPECT_FALSE(parse_log_format("", &f));
}

TEST_F(Log, AFloodFromOneSiteIsCutToTheBurstAndCounted) {
    log_set_rate_limit({5, 60'000});
    const uint64_t before = log_suppressed_total();
    ::testing::internal::CaptureStderr();
    flood(1000);
    SLUICE_LOG_INFO("another site is not limited by the first");
    auto out = lines_of(::testing::internal::GetCapturedStderr());
    ASSERT_EQ(out.size(), 6u);
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(out[size_t(i)], "sluice warn: bad input from peer " + std::to_string(i));
    EXPECT_EQ(out[5], "sluice info: another site is not limited by the first");
    EXPECT_EQ(log_suppressed_total() - before, 995u);
}

TEST_F(Log, TheSitesNextLineAfterItsIntervalSaysHowManyWereDropped) {
    log_set_rate_limit({2, 50});
    ::testing::internal::CaptureStderr();
    flood(10);
    // The interval is 50 ms: keep trying (each try within it is one more dropped) until
    // the site may write again, with a deadline.
    const uint64_t before = log_suppressed_total();
    const int64_t deadline = monotonic_ns() + 10'000'000'000;
    std::string out;
    int tries = 0;
    while (monotonic_ns() < deadline) {
        flood(1, 100 + tries);
        ++tries;
        out += ::testing::internal::GetCapturedStderr();
        if (lines_of(out).size() > 2) break;
        ::testing::internal::CaptureStderr();
    }
    auto lines = lines_of(out);
    ASSERT_EQ(lines.size(), 3u) << out;
    const uint64_t dropped = 8 + (log_suppressed_total() - before);
    EXPECT_EQ(lines[2], "sluice warn: bad input from peer " + std::to_string(100 + tries - 1) +
                            " (" + std::to_string(dropped) +
                            " more from here suppressed by the log rate limit)");
}

TEST_F(Log, JsonLinesCarryTheSuppressedCountAsAField) {
    log_set_format(log_format::json);
    log_set_rate_limit({1, 50});
    ::testing::internal::CaptureStderr();
    flood(3);
    const int64_t deadline = monotonic_ns() + 10'000'000'000;
    std::string out;
    while (monotonic_ns() < deadline) {
        flood(1, 7);
        out += ::testing::internal::GetCapturedStderr();
        if (lines_of(out).size() > 1) break;
        ::testing::internal::CaptureStderr();
    }
    auto lines = lines_of(out);
    ASSERT_EQ(lines.size(), 2u) << out;
    EXPECT_NE(lines[1].find("\"msg\":\"bad input from peer 7\",\"suppressed\":"), std::string::npos)
        << lines[1];
}

TEST_F(Log, BurstZeroTurnsTheLimitOff) {
    log_set_rate_limit({0, 1000});
    const uint64_t before = log_suppressed_total();
    ::testing::internal::CaptureStderr();
    flood(100);
    auto out = lines_of(::testing::internal::GetCapturedStderr());
    EXPECT_EQ(out.size(), 100u);
    EXPECT_EQ(log_suppressed_total(), before);
}

} // namespace
} // namespace sluice
