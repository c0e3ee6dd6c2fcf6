#include "tools/gen/timestamp.h"

#include <gtest/gtest.h>

namespace sluice::tools {
namespace {

// 2025-02-28T15:00:00Z, from `date -u -d @1740754800`.
constexpr int64_t t0 = 1740754800000;

TEST(Timestamp, ParsesUtcSecondsAndFractionsFlooredToMs) {
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T15:00:00Z"), t0);
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T15:22:31Z"), t0 + 22 * 60000 + 31000);
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T15:00:00.1Z"), t0 + 100);
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T15:00:00.12Z"), t0 + 120);
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T15:00:00.123Z"), t0 + 123);
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T15:00:00.123999999Z"), t0 + 123);
    EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
    EXPECT_EQ(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), -1);
}

TEST(Timestamp, AppliesOffsets) {
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T17:00:00+02:00"), t0);
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T09:30:00-05:30"), t0);
    EXPECT_EQ(parse_rfc3339_ms("2025-02-28T15:00:00.5+00:00"), t0 + 500);
    // Crossing midnight and a month end.
    EXPECT_EQ(parse_rfc3339_ms("2025-03-01T00:30:00+09:30"), t0);
}

TEST(Timestamp, RejectsInvalidText) {
    for (const char* bad :
         {"yesterday", "2025-13-45T99:00:00Z", "2025-02-30T10:00:00Z", "2025-02-28 15:00:00Z",
          "2025-02-28T15:00:00", "2025-02-28T15:00:60Z", "2025-02-28T24:00:00Z",
          "2025-02-28T15:00:00.Z", "2025-02-28T15:00:00.1234567890Z", "2025-02-28T15:00:00+2:00",
          "2025-02-28T15:00:00+24:00", "2025-02-28T15:00:00Zx", "2025-02-28t15:00:00z", "",
          "2025-2-28T15:00:00Z"}) {
        EXPECT_FALSE(parse_rfc3339_ms(bad).has_value()) << bad;
    }
    EXPECT_TRUE(parse_rfc3339_ms("2024-02-29T00:00:00Z").has_value()); // leap year
    EXPECT_FALSE(parse_rfc3339_ms("2100-02-29T00:00:00Z").has_value());
}

TEST(Timestamp, RenderingNamesTheInstantItsTextParsesTo) {
    const int64_t t = t0 + 7 * 60000 + 31456; // 15:07:31.456
    EXPECT_EQ(render_timestamp(t, ts_format::utc_seconds, 0, 0, 0).json,
              "\"2025-02-28T15:07:31Z\"");
    EXPECT_EQ(render_timestamp(t, ts_format::utc_seconds, 0, 0, 0).named_ms, t - 456);
    EXPECT_EQ(render_timestamp(t, ts_format::utc_fraction, 2, 0, 0).json,
              "\"2025-02-28T15:07:31.45Z\"");
    EXPECT_EQ(render_timestamp(t, ts_format::utc_fraction, 5, 98, 0).json,
              "\"2025-02-28T15:07:31.45689Z\"");
    EXPECT_EQ(render_timestamp(t, ts_format::offset, 3, 0, -330).json,
              "\"2025-02-28T09:37:31.456-05:30\"");
    EXPECT_EQ(render_timestamp(t, ts_format::epoch_ms, 0, 0, 0).json, std::to_string(t));

    for (int digits = 1; digits <= 9; digits++) {
        for (int offset : {0, 120, -330, 345}) {
            for (auto f : {ts_format::utc_seconds, ts_format::utc_fraction, ts_format::offset}) {
                const auto r = render_timestamp(t, f, digits, 123456789, offset);
                const std::string text = r.json.substr(1, r.json.size() - 2);
                ASSERT_EQ(parse_rfc3339_ms(text), r.named_ms) << r.json;
                EXPECT_LE(r.named_ms, t);
                EXPECT_GT(r.named_ms, t - 1000);
            }
        }
    }
}

TEST(Timestamp, CivilDaysRoundTrip) {
    for (int64_t days = -800000; days <= 800000; days += 997) {
        const civil_date d = civil_from_days(days);
        EXPECT_EQ(days_from_civil(d), days);
    }
    // `date -u -d 2099-01-01 +%s` = 4070908800.
    EXPECT_EQ(days_from_civil(civil_date{2099, 1, 1}) * 86400, 4070908800);
}

} // namespace
} // namespace sluice::tools
