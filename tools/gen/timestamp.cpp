#include "tools/gen/timestamp.h"

#include <cstdio>

namespace sluice::tools {

// Howard Hinnant's civil-date algorithms (public domain, "chrono-Compatible Low-Level
// Date Algorithms"): exact for every proleptic Gregorian date.
int64_t days_from_civil(civil_date d) noexcept {
    const int64_t y = d.year - (d.month <= 2 ? 1 : 0);
    const int64_t era = floor_div(y, 400);
    const int64_t yoe = y - era * 400;
    const int64_t mp = (d.month + 9) % 12;
    const int64_t doy = (153 * mp + 2) / 5 + d.day - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

civil_date civil_from_days(int64_t z) noexcept {
    z += 719468;
    const int64_t era = floor_div(z, 146097);
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int day = int(doy - (153 * mp + 2) / 5 + 1);
    const int month = int(mp < 10 ? mp + 3 : mp - 9);
    return civil_date{yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

int days_in_month(int64_t year, int month) noexcept {
    static constexpr int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

namespace {

// Reads exactly `n` decimal digits at `pos`.
bool read_digits(std::string_view s, size_t pos, size_t n, int64_t& out) noexcept {
    if (pos + n > s.size()) return false;
    int64_t v = 0;
    for (size_t i = pos; i < pos + n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    return true;
}

bool expect(std::string_view s, size_t pos, char c) noexcept {
    return pos < s.size() && s[pos] == c;
}

} // namespace

std::optional<int64_t> parse_rfc3339_ms(std::string_view s) noexcept {
    int64_t year, month, day, hour, minute, second;
    if (!read_digits(s, 0, 4, year) || !expect(s, 4, '-') || !read_digits(s, 5, 2, month) ||
        !expect(s, 7, '-') || !read_digits(s, 8, 2, day) || !expect(s, 10, 'T') ||
        !read_digits(s, 11, 2, hour) || !expect(s, 13, ':') || !read_digits(s, 14, 2, minute) ||
        !expect(s, 16, ':') || !read_digits(s, 17, 2, second))
        return std::nullopt;
    if (month < 1 || month > 12) return std::nullopt;
    if (day < 1 || day > days_in_month(year, int(month))) return std::nullopt;
    if (hour > 23 || minute > 59 || second > 59) return std::nullopt;

    size_t pos = 19;
    int64_t ms = 0;
    if (expect(s, pos, '.')) {
        pos++;
        size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            // Only the first three digits matter: the fraction is floored to ms.
            if (digits < 3) ms = ms * 10 + (s[pos] - '0');
            digits++;
            pos++;
        }
        if (digits < 1 || digits > 9) return std::nullopt;
        for (size_t d = digits; d < 3; d++)
            ms *= 10;
    }

    int64_t offset_min = 0;
    if (expect(s, pos, 'Z')) {
        pos++;
    } else if (expect(s, pos, '+') || expect(s, pos, '-')) {
        const bool negative = s[pos] == '-';
        int64_t oh, om;
        if (!read_digits(s, pos + 1, 2, oh) || !expect(s, pos + 3, ':') ||
            !read_digits(s, pos + 4, 2, om))
            return std::nullopt;
        if (oh > 23 || om > 59) return std::nullopt;
        offset_min = (negative ? -1 : 1) * (oh * 60 + om);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;

    const int64_t days = days_from_civil(civil_date{year, int(month), int(day)});
    const int64_t local_ms = days * 86400000 + hour * 3600000 + minute * 60000 + second * 1000 + ms;
    return local_ms - offset_min * 60000;
}

namespace {

// "YYYY-MM-DDTHH:MM:SS" of the instant `t_ms` (any sub-second part ignored).
std::string format_civil_seconds(int64_t t_ms) {
    const int64_t days = floor_div(t_ms, 86400000);
    const int64_t in_day = t_ms - days * 86400000;
    const civil_date d = civil_from_days(days);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02lld:%02lld:%02lld", (long long)d.year,
                  d.month, d.day, (long long)(in_day / 3600000), (long long)(in_day / 60000 % 60),
                  (long long)(in_day / 1000 % 60));
    return buf;
}

// Appends ".F" with `digits` digits for the ms part of `t_ms`; returns the ms it names
// (the fraction floored to ms).
int64_t append_fraction(std::string& out, int64_t t_ms, int digits, uint64_t extra_digits) {
    const int64_t ms = t_ms - floor_div(t_ms, 1000) * 1000;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%03lld", (long long)ms);
    out += '.';
    if (digits <= 3) {
        out.append(buf, size_t(digits));
        int64_t scale = 1;
        for (int i = digits; i < 3; i++)
            scale *= 10;
        return ms / scale * scale;
    }
    out.append(buf, 3);
    for (int i = 3; i < digits; i++) {
        out += char('0' + extra_digits % 10);
        extra_digits /= 10;
    }
    return ms;
}

} // namespace

rendered_timestamp render_timestamp(int64_t t_ms, ts_format format, int fraction_digits,
                                    uint64_t extra_digits, int offset_minutes) {
    rendered_timestamp r;
    const int64_t second_ms = floor_div(t_ms, 1000) * 1000;
    switch (format) {
    case ts_format::epoch_ms:
        r.json = std::to_string(t_ms);
        r.named_ms = t_ms;
        return r;
    case ts_format::utc_seconds:
        r.json = "\"" + format_civil_seconds(t_ms) + "Z\"";
        r.named_ms = second_ms;
        return r;
    case ts_format::utc_fraction: {
        std::string text = "\"" + format_civil_seconds(t_ms);
        r.named_ms = second_ms + append_fraction(text, t_ms, fraction_digits, extra_digits);
        r.json = text + "Z\"";
        return r;
    }
    case ts_format::offset: {
        const int64_t local_ms = t_ms + int64_t(offset_minutes) * 60000;
        std::string text = "\"" + format_civil_seconds(local_ms);
        int64_t local_named = floor_div(local_ms, 1000) * 1000;
        if (fraction_digits > 0)
            local_named += append_fraction(text, local_ms, fraction_digits, extra_digits);
        const int abs_min = offset_minutes < 0 ? -offset_minutes : offset_minutes;
        char buf[16];
        std::snprintf(buf, sizeof buf, "%c%02d:%02d\"", offset_minutes < 0 ? '-' : '+',
                      abs_min / 60, abs_min % 60);
        r.json = text + buf;
        r.named_ms = local_named - int64_t(offset_minutes) * 60000;
        return r;
    }
    }
    return r;
}

} // namespace sluice::tools
