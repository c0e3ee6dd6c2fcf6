#include "tools/gen/timestamp.h"

#include <gtest/gtest.h>

namespace sluice::tools {
namespace {

// 2025-02-28T15:00:00Z, from `date -u -d @1740754800`.
constexpr int64_t t0 = 1740754800000;

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
                int64_t parsed = 0;
                ASSERT_TRUE(parse_rfc3339_ms(text, &parsed)) << r.json;
                ASSERT_EQ(parsed, r.named_ms) << r.json;
                EXPECT_LE(r.named_ms, t);
                EXPECT_GT(r.named_ms, t - 1000);
            }
        }
    }
}

} // namespace
} // namespace sluice::tools
