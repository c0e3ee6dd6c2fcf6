#include "base/time_format.h"

#include <charconv>
#include <cstdio>

namespace sluice {

// Howard Hinnant's civil-date algorithms ("chrono-Compatible Low-Level Date Algorithms"):
// exact for every proleptic Gregorian date.
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
bool digits(std::string_view s, size_t pos, size_t n, int* out) noexcept {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
        unsigned d = unsigned(s[i]) - '0';
        if (d > 9) return false;
        v = v * 10 + int(d);
    }
    *out = v;
    return true;
}

struct civil_time {
    int year, month, day, hour, minute, second;
};

// "YYYY-MM-DD?HH:MM:SS" at the start of `s`, every field range-checked.
bool parse_date_time(std::string_view s, civil_time* t) noexcept {
    if (s.size() < 19) return false;
    if (!digits(s, 0, 4, &t->year) || s[4] != '-' || !digits(s, 5, 2, &t->month) ||
        s[7] != '-' || !digits(s, 8, 2, &t->day))
        return false;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return false;
    if (!digits(s, 11, 2, &t->hour) || s[13] != ':' || !digits(s, 14, 2, &t->minute) ||
        s[16] != ':' || !digits(s, 17, 2, &t->second))
        return false;
    if (t->month < 1 || t->month > 12) return false;
    if (t->day < 1 || t->day > days_in_month(t->year, t->month)) return false;
    return t->hour <= 23 && t->minute <= 59 && t->second <= 60; // 60: a leap second
}

// The offset at `pos` ("Z", "z" or "±HH:MM") in minutes east of UTC; advances `pos`.
bool parse_offset(std::string_view s, size_t* pos, int64_t* offset_min) noexcept {
    size_t p = *pos;
    if (p >= s.size()) return false;
    if (s[p] == 'Z' || s[p] == 'z') {
        *offset_min = 0;
        *pos = p + 1;
        return true;
    }
    if (s[p] != '+' && s[p] != '-') return false;
    int oh, om;
    if (!digits(s, p + 1, 2, &oh) || p + 3 >= s.size() || s[p + 3] != ':' ||
        !digits(s, p + 4, 2, &om))
        return false;
    if (oh > 23 || om > 59) return false;
    *offset_min = (oh * 60 + om) * (s[p] == '-' ? -1 : 1);
    *pos = p + 6;
    return true;
}

} // namespace

bool parse_rfc3339_ms(std::string_view s, int64_t* out_ms) noexcept {
    civil_time t;
    if (!parse_date_time(s, &t)) return false;
    size_t pos = 19;
    int64_t frac_ms = 0;
    if (pos < s.size() && s[pos] == '.') {
        size_t begin = ++pos;
        while (pos < s.size() && unsigned(s[pos]) - '0' <= 9) {
            // Only the first three digits matter: the fraction is floored to ms.
            if (pos - begin < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
            ++pos;
        }
        size_t n = pos - begin;
        if (n == 0) return false;
        for (size_t i = n; i < 3; ++i) frac_ms *= 10;
    }
    int64_t offset_min = 0;
    if (!parse_offset(s, &pos, &offset_min) || pos != s.size()) return false;
    int64_t days = days_from_civil(civil_date{t.year, t.month, t.day});
    int64_t secs = days * 86400 + t.hour * 3600 + t.minute * 60 + t.second - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return true;
}

std::optional<int64_t> parse_time_arg(std::string_view s) noexcept {
    int64_t ms = 0;
    if (parse_rfc3339_ms(s, &ms)) return ms;
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, ms);
    if (s.empty() || ec != std::errc() || p != end) return std::nullopt;
    return ms;
}

std::string format_rfc3339_ms(int64_t ms) {
    const int64_t days = floor_div(ms, 86400000);
    const int64_t in_day = ms - days * 86400000;
    const civil_date d = civil_from_days(days);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02lld:%02lld:%02lld.%03lldZ",
                  (long long)d.year, d.month, d.day, (long long)(in_day / 3600000),
                  (long long)(in_day / 60000 % 60), (long long)(in_day / 1000 % 60),
                  (long long)(in_day % 1000));
    return buf;
}

} // namespace sluice
