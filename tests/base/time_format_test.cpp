#include "base/time_format.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace sluice {
namespace {

// 2025-02-28T15:00:00Z, from `date -u -d @1740754800`.
constexpr int64_t t0 = 1740754800000;

// The general parser's value, which the RX reader (fresh, and after another text)
// must give too.
int64_t ms(std::string_view text) {
    int64_t v = 0, fresh = 1, after = 2;
    EXPECT_TRUE(parse_rfc3339_ms(text, &v)) << text;
    rfc3339_reader r;
    EXPECT_TRUE(r.parse(text, &fresh)) << text;
    EXPECT_TRUE(r.parse(text, &after)) << text;
    EXPECT_EQ(fresh, v) << text;
    EXPECT_EQ(after, v) << text;
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
    for (const char* bad : {"yesterday",
                            "2025-13-45T99:00:00Z",
                            "2025-02-30T10:00:00Z",
                            "2025-02-29T00:00:00Z",
                            "2100-02-29T00:00:00Z",
                            "2025-02-28T15:00:00",
                            "2025-02-28T15:00:61Z",
                            "2025-02-28T24:00:00Z",
                            "2025-02-28T15:60:00Z",
                            "2025-02-28T15:00:00.Z",
                            "2025-02-28T15:00:00+2:00",
                            "2025-02-28T15:00:00+0200",
                            "2025-02-28T15:00:00+24:00",
                            "2025-02-28T15:00:00+02:60",
                            "2025-02-28T15:00:00Zx",
                            "2025-02-28 15:22Z",
                            "2025-02-28_15:00:00Z",
                            "2025-2-28T15:00:00Z",
                            "+2025-02-28T15:00:00Z",
                            ""})
        EXPECT_FALSE(parse_rfc3339_ms(bad, &v)) << bad;
    rfc3339_reader r;
    for (const char* bad : {"2025-02-30T10:00:00Z", "2025-02-28T15:00:61Z", "2025-02-28T15:00:00.Z",
                            "2025-02-28T15:00:00+24:00", "2025-02-28T15:00:00Zx"}) {
        EXPECT_TRUE(r.parse("2025-02-28T15:00:00Z", &v));
        EXPECT_FALSE(r.parse(bad, &v)) << bad;
    }
}

// rfc3339_reader (fast path for the usual layouts, reusing the last minute it read:
// here whatever text came before, and after `primed` when given) against
// parse_rfc3339_ms, the general parser: the same verdict and the same value. Counts the
// disagreements, reports the first few.
struct differential {
    int checked = 0, accepted = 0, failures = 0;
    rfc3339_reader reader, primed_reader;
    void check(std::string_view text, std::string_view primed = {}) {
        ++checked;
        int64_t general = 123456789, streamed = 123456789, after = 123456789;
        const bool g = parse_rfc3339_ms(text, &general);
        const bool r = reader.parse(text, &streamed);
        bool p = r;
        if (!primed.empty()) {
            int64_t ignored;
            primed_reader.parse(primed, &ignored);
            p = primed_reader.parse(text, &after);
        } else {
            after = streamed;
        }
        accepted += g;
        if (r == g && p == g && streamed == general && after == general) return;
        if (++failures <= 10)
            ADD_FAILURE() << "\"" << text << "\": reader " << r << " " << streamed << ", after \""
                          << primed << "\" " << p << " " << after << ", general " << g << " "
                          << general;
    }
};

std::string stamp(int year, int month, int day, int h, int m, int s, const char* tail) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%s", year, month, day, h, m, s,
                  tail);
    return buf;
}

// The four layouts of the fast path's own tail, and near misses of them.
constexpr const char* tails[] = {"Z",      ".123Z",     "+05:30",    ".999-11:45", "z",
                                 ".1234Z", "+05:30:00", ".12+01:00", ".123456789Z"};

TEST(TimeFormat, FastPathAgreesOnEveryDateOfYears0To9999) {
    differential d;
    for (int year = 0; year <= 9999; ++year)
        for (int month = 1; month <= 12; ++month)
            for (int day = 1; day <= days_in_month(year, month); ++day)
                d.check(stamp(year, month, day, 23, 59, 59, ".999Z"));
    EXPECT_EQ(d.failures, 0);
    EXPECT_EQ(d.accepted, 3652425); // every day of 10,000 Gregorian years
}

TEST(TimeFormat, FastPathAgreesOnDaysAndMonthsOutOfRange) {
    differential d;
    for (int year : {0, 1, 3, 4, 100, 399, 400, 1900, 1969, 1970, 2000, 2024, 2025, 2100, 9999})
        for (int month = 0; month <= 19; ++month)
            for (int day = 0; day <= 39; ++day)
                for (const char* tail : tails)
                    d.check(stamp(year, month, day, 0, 0, 0, tail));
    EXPECT_EQ(d.failures, 0);
    EXPECT_GT(d.accepted, 0);
}

TEST(TimeFormat, FastPathAgreesOnEveryTimeOfDay) {
    differential d;
    for (int h = 0; h <= 29; ++h)
        for (int m = 0; m <= 69; ++m)
            for (int s = 0; s <= 69; ++s)
                for (const char* tail : {"Z", ".000Z", "-00:00", ".500+23:59"})
                    d.check(stamp(2024, 2, 29, h, m, s, tail));
    EXPECT_EQ(d.failures, 0);
    EXPECT_EQ(d.accepted, 24 * 60 * 61 * 4);
}

TEST(TimeFormat, FastPathAgreesOnEveryOffsetAndFraction) {
    differential d;
    char tail[32];
    for (char sign : {'+', '-', ' ', '/', ')', '*', ',', '.', 'Z'})
        for (int oh = 0; oh <= 29; ++oh)
            for (int om = 0; om <= 69; ++om) {
                std::snprintf(tail, sizeof tail, "%c%02d:%02d", sign, oh, om);
                d.check(stamp(1970, 1, 1, 0, 0, 0, tail));
                std::snprintf(tail, sizeof tail, ".042%c%02d:%02d", sign, oh, om);
                d.check(stamp(1969, 12, 31, 23, 59, 59, tail));
            }
    for (int ms = 0; ms <= 999; ++ms)
        for (const char* fmt : {".%03dZ", ".%03d+14:00", ".%03d-14:00", ".%dZ", ".%03d0Z"}) {
            std::snprintf(tail, sizeof tail, fmt, ms);
            d.check(stamp(2025, 12, 31, 23, 59, 60, tail));
        }
    EXPECT_EQ(d.failures, 0);
    EXPECT_EQ(d.accepted, 2 * 2 * 24 * 60 + 5 * 1000);
}

// Every byte at every position, and pairs of likely bytes at every two positions, of
// one text of each layout; every prefix, and each text with a byte more.
TEST(TimeFormat, FastPathAgreesOnEveryMutation) {
    differential d;
    const std::string bases[] = {"2025-02-28T15:22:31Z",      "2025-02-28T15:22:31.123Z",
                                 "2025-02-28T15:22:31+02:00", "2025-02-28T15:22:31.123-02:00",
                                 "2024-02-29t00:00:60z",      "2025-02-28 15:22:31.1234Z"};
    const unsigned char likely[] = {'0', '1', '2', '5', '9', '/', ':', ';', '-',  '+',
                                    ',', '.', 'T', 't', 'Z', 'z', ' ', 0,   0x80, 0xff};
    for (const std::string& base : bases) {
        for (size_t i = 0; i < base.size(); ++i) {
            for (int b = 0; b < 256; ++b) {
                std::string t = base;
                t[i] = char(b);
                d.check(t, base);
            }
            for (size_t j = i + 1; j < base.size(); ++j)
                for (unsigned char x : likely)
                    for (unsigned char y : likely) {
                        std::string t = base;
                        t[i] = char(x);
                        t[j] = char(y);
                        d.check(t, base);
                    }
        }
        for (size_t n = 0; n <= base.size(); ++n)
            d.check(std::string_view(base).substr(0, n), base);
        for (int b = 0; b < 256; ++b)
            d.check(base + char(b), base);
    }
    EXPECT_EQ(d.failures, 0);
    EXPECT_GT(d.accepted, 1000);
}

// A stream of times as events carry them: the minute changes in its first word only
// (same day and time, another month: "2025-02-" / "2025-03-"), in its second only
// ("28T15:00" / "28T15:01"), in both, or not at all.
TEST(TimeFormat, ReaderFollowsAStreamOfTimes) {
    differential d;
    for (int64_t t = t0 - 86400000LL * 400; t < t0 + 86400000LL * 400; t += 86400000LL * 3 + 7001) {
        const std::string a = format_rfc3339_ms(t);
        for (int month = 1; month <= 12; ++month) {
            std::string b = a;
            b[5] = char('0' + month / 10);
            b[6] = char('0' + month % 10);
            d.check(b);
            d.check(a);
            std::string c = a;
            c[15] = char('0' + (c[15] - '0' + month) % 10);
            d.check(c);
            d.check(c.substr(0, 19) + "+01:00");
            d.check(a.substr(0, 19) + "Z");
        }
    }
    EXPECT_EQ(d.failures, 0);
    EXPECT_GT(d.accepted, 10000);
}

// The reader's first text is read whole: nothing it has not read decides a minute.
TEST(TimeFormat, ReaderReusesOnlyMinutesItRead) {
    rfc3339_reader fresh;
    int64_t v = 7;
    EXPECT_FALSE(fresh.parse(std::string(16, '\0') + ":00Z", &v));
    EXPECT_FALSE(fresh.parse(std::string(16, 'x') + ":00.000Z", &v));
    EXPECT_EQ(v, 7);
    EXPECT_TRUE(fresh.parse("1970-01-01T00:00:01Z", &v));
    EXPECT_EQ(v, 1000);
    rfc3339_reader r;
    EXPECT_TRUE(r.parse("2025-02-28T15:00:00.250Z", &v));
    EXPECT_EQ(v, t0 + 250);
    EXPECT_TRUE(r.parse("2025-02-28T15:00:59+01:00", &v)); // same head, other tail
    EXPECT_EQ(v, t0 + 59000 - 3600000);
    EXPECT_FALSE(r.parse("2025-02-28T15:00:61Z", &v));     // same head, bad tail
    EXPECT_FALSE(r.parse("2025-02-30T15:00:00Z", &v));     // bad head
    EXPECT_TRUE(r.parse("2025-02-28T15:00:00.1Z", &v));    // same head, general layout
    EXPECT_EQ(v, t0 + 100);
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
