#include "base/time_format.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

// 2025-02-28T15:00:00Z, from `date -u -d @1740754800`.
constexpr int64_t t0 = 1740754800000;

int64_t ms(std::string_view text) {
    int64_t v = 0;
    EXPECT_TRUE(parse_rfc3339_ms(text, &v)) << text;
    return v;
}

TEST(TimeFormat, ParsesUtcSecondsAndFractionsFlooredToMs) {
    EXPECT_EQ(ms("2025-02-28T15:00:00Z"), t0);
    EXPECT_EQ(ms("2025-02-28T15:22:31Z"), t0 + 22 * 60000 + 31000);
    EXPECT_EQ(ms("2025-02-28T15:00:00.1Z"), t0 + 100);
    EXPECT_EQ(ms("2025-02-28T15:00:00.12Z"), t0 + 120);
    EXPECT_EQ(ms("2025-02-28T15:00:00.123Z"), t0 + 123);
    EXPECT_EQ(ms("2025-02-28T15:00:00.123999999Z"), t0 + 123);
    EXPECT_EQ(ms("2025-02-28T15:00:00.1239999999999Z"), t0 + 123); // any length
    EXPECT_EQ(ms("1970-01-01T00:00:00Z"), 0);
    EXPECT_EQ(ms("1969-12-31T23:59:59.999Z"), -1);
    EXPECT_EQ(ms("2024-02-29T00:00:00Z"), 1709164800000); // leap day
}

TEST(TimeFormat, AppliesOffsets) {
    EXPECT_EQ(ms("2025-02-28T17:00:00+02:00"), t0);
    EXPECT_EQ(ms("2025-02-28T09:30:00-05:30"), t0);
    EXPECT_EQ(ms("2025-02-28T15:00:00.5+00:00"), t0 + 500);
    // Crossing midnight and a month end.
    EXPECT_EQ(ms("2025-03-01T00:30:00+09:30"), t0);
}

// RFC 3339 §5.6 permits lower-case t and z and a space for T; a leap second names the
// first second of the next minute (POSIX time has no leap seconds).
TEST(TimeFormat, AcceptsWhatRfc3339Permits) {
    EXPECT_EQ(ms("2025-02-28t15:00:00z"), t0);
    EXPECT_EQ(ms("2025-02-28 15:00:00Z"), t0);
    EXPECT_EQ(ms("2025-02-28T14:59:60Z"), t0);
}

TEST(TimeFormat, RejectsMalformed) {
    int64_t v = 0;
    for (const char* bad :
         {"yesterday", "2025-13-45T99:00:00Z", "2025-02-30T10:00:00Z", "2025-02-29T00:00:00Z",
          "2100-02-29T00:00:00Z", "2025-02-28T15:00:00", "2025-02-28T15:00:61Z",
          "2025-02-28T24:00:00Z", "2025-02-28T15:60:00Z", "2025-02-28T15:00:00.Z",
          "2025-02-28T15:00:00+2:00", "2025-02-28T15:00:00+0200", "2025-02-28T15:00:00+24:00",
          "2025-02-28T15:00:00+02:60", "2025-02-28T15:00:00Zx", "2025-02-28 15:22Z",
          "2025-02-28_15:00:00Z", "2025-2-28T15:00:00Z", "+2025-02-28T15:00:00Z", ""})
        EXPECT_FALSE(parse_rfc3339_ms(bad, &v)) << bad;
}

TEST(TimeFormat, TimeArgumentsAreEpochMsOrRfc3339) {
    EXPECT_EQ(parse_time_arg("1740754800000"), t0);
    EXPECT_EQ(parse_time_arg("-1"), -1);
    EXPECT_EQ(parse_time_arg("2025-02-28T15:00:00Z"), t0);
    EXPECT_FALSE(parse_time_arg("").has_value());
    EXPECT_FALSE(parse_time_arg("12ab").has_value());
    EXPECT_FALSE(parse_time_arg(" 12").has_value());
}

TEST(TimeFormat, FormatsUtcMillisecondsAndParsesBack) {
    EXPECT_EQ(format_rfc3339_ms(t0 + 22 * 60000 + 31123), "2025-02-28T15:22:31.123Z");
    EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    for (int64_t t = -86400000LL * 800; t < 86400000LL * 40000; t += 86399999LL * 7 + 13) {
        int64_t back = 0;
        ASSERT_TRUE(parse_rfc3339_ms(format_rfc3339_ms(t), &back)) << t;
        EXPECT_EQ(back, t);
    }
}

TEST(TimeFormat, CivilDaysRoundTrip) {
    for (int64_t days = -800000; days <= 800000; days += 997) {
        const civil_date d = civil_from_days(days);
        EXPECT_EQ(days_from_civil(d), days);
    }
    // `date -u -d 2099-01-01 +%s` = 4070908800.
    EXPECT_EQ(days_from_civil(civil_date{2099, 1, 1}) * 86400, 4070908800);
}

} // namespace
} // namespace sluice
