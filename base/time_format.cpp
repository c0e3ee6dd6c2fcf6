#include "base/time_format.h"

#include <bit>
#include <charconv>
#include <cstdio>
#include <cstring>

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

// What follows "…:SS" (from byte 19): `[.F+](Z|z|±HH:MM)` to the end; the fraction
// floored to milliseconds and the offset in minutes east of UTC.
bool parse_after_seconds(std::string_view s, int64_t* frac_out, int64_t* offset_out) noexcept {
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
    *frac_out = frac_ms;
    *offset_out = offset_min;
    return true;
}

} // namespace

bool parse_rfc3339_ms(std::string_view s, int64_t* out_ms) noexcept {
    civil_time t;
    if (!parse_date_time(s, &t)) return false;
    int64_t frac_ms, offset_min;
    if (!parse_after_seconds(s, &frac_ms, &offset_min)) return false;
    int64_t days = days_from_civil(civil_date{t.year, t.month, t.day});
    int64_t secs = days * 86400 + t.hour * 3600 + t.minute * 60 + t.second - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return true;
}

namespace {

// rfc3339_reader's fast path: a head, `YYYY-MM-DDTHH:MM` (bytes 0..15, the minute it
// reuses), checked and read eight bytes at a time (SWAR) with no branch per byte; then
// a tail: `:SS` followed by `Z`, `.mmmZ`, `±HH:MM` or `.mmm±HH:MM` (lengths 20, 24, 25
// and 29) the same way, any other tail by the general parser's code. Anything else — a
// lower-case `t` or a space, a field out of range — goes to parse_rfc3339_ms, so the
// fast path never decides a refusal and accepts only what the general parser accepts,
// with the same value (tests/base/time_format_test.cpp checks both against each other
// exhaustively; the `event` fuzz target does on every input).
static_assert(std::endian::native == std::endian::little,
              "the fast path reads words little-endian");

// An 8-byte pattern: 'd' a decimal digit, '?' any byte, any other character itself.
struct layout {
    uint64_t digit_mask = 0; // 0xff at the digit positions
    uint64_t lit_mask = 0;   // 0xff at the literal positions
    uint64_t lit = 0;        // the literals there
};

consteval layout make_layout(const char (&p)[9]) {
    layout l;
    for (int i = 0; i < 8; ++i) {
        const uint64_t at = uint64_t(0xff) << (8 * i);
        if (p[i] == 'd') {
            l.digit_mask |= at;
        } else if (p[i] != '?') {
            l.lit_mask |= at;
            l.lit |= uint64_t(uint8_t(p[i])) << (8 * i);
        }
    }
    return l;
}

uint64_t load8(const char* p) noexcept {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
}

constexpr uint64_t ascii_zeros = 0x3030303030303030ULL;

// Every digit position holds '0'..'9' and every literal position its literal
// (simdjson's eight-digit test, with the other positions set to '0').
unsigned fits(uint64_t w, const layout& l) noexcept {
    const uint64_t d = (w & l.digit_mask) | (ascii_zeros & ~l.digit_mask);
    const bool digits =
        ((d & 0xF0F0F0F0F0F0F0F0ULL) |
         (((d + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) == 0x3333333333333333ULL;
    return unsigned(digits) & unsigned((w & l.lit_mask) == l.lit);
}

// The number of the two digits at byte k of w (both known to be digits).
uint32_t two_digits(uint64_t w, int k) noexcept {
    return uint32_t((w >> (8 * k)) & 0xf) * 10 + uint32_t((w >> (8 * k + 8)) & 0xf);
}

constexpr layout date_word = make_layout("dddd-dd-");     // bytes 0..7
constexpr layout day_word = make_layout("ddTdd:dd");      // bytes 8..15
constexpr layout seconds_word = make_layout("????:dd?");  // bytes 12..19 (`:SS` at 16..18)
constexpr layout fraction_word = make_layout(":dd.ddd?"); // bytes 16..23 (`.mmm` at 19..22)
// `±HH:MM` at bytes 2..7 (the sign is checked apart).
constexpr layout offset_word = make_layout("dd?dd:dd");

// Bytes 0..15, `YYYY-MM-DDTHH:MM` (two words read by the caller), to the minute they
// name in milliseconds, local time (before any offset).
bool parse_head(uint64_t w0, uint64_t w1, int64_t* minute_ms) noexcept {
    unsigned ok = fits(w0, date_word) & fits(w1, day_word);
    const uint32_t year = two_digits(w0, 0) * 100 + two_digits(w0, 2);
    const uint32_t month = two_digits(w0, 5), mday = two_digits(w1, 0);
    const uint32_t hour = two_digits(w1, 3), minute = two_digits(w1, 6);
    static constexpr uint8_t month_days[16] = {31, 28, 31, 30, 31, 30, 31, 31,
                                               30, 31, 30, 31, 0,  0,  0,  0};
    const bool leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0);
    const uint32_t dim = month_days[(month - 1) & 15] + ((month == 2) & leap);
    ok &= (month - 1 < 12) & (mday - 1 < dim) & (hour <= 23) & (minute <= 59);
    if (!ok) return false;
    // days_from_civil for years 0..9999, shifted by 400 years (146,097 days) so that
    // every quantity is non-negative and the divisions are plain ones.
    const uint32_t y = year + 400 - (month <= 2);
    const uint32_t mp = month <= 2 ? month + 9 : month - 3;
    const uint32_t doy = (153 * mp + 2) / 5 + mday - 1;
    const int64_t days = int64_t(y * 365 + y / 4 - y / 100 + y / 400 + doy) - 719468 - 146097;
    *minute_ms = (days * 1440 + int64_t(hour * 60 + minute)) * 60000;
    return true;
}

// Bytes 16.. of a text of at least 20 bytes: `:SS` and what follows; the milliseconds
// to add to the head's minute.
bool parse_tail(std::string_view s, int64_t* add_ms) noexcept {
    const char* p = s.data();
    const size_t n = s.size();
    const uint64_t sec = load8(p + 12); // bytes 12..19: only `:SS` is read
    unsigned ok = fits(sec, seconds_word);
    const uint32_t second = two_digits(sec, 5);
    ok &= second <= 60;
    if (!ok) return false;
    uint32_t frac_ms = 0;
    int32_t offset_min = 0;
    if (n == 20) {
        ok &= p[19] == 'Z';
    } else if (n == 24 || n == 29) {
        // `.mmm` then `Z` (24) or an offset (29).
        const uint64_t f = load8(p + 16);
        ok &= fits(f, fraction_word);
        ok &= n == 29 || p[23] == 'Z';
        frac_ms = uint32_t((f >> 32) & 0xf) * 100 + two_digits(f, 5);
    } else if (n != 25) {
        ok = 0;
    }
    if (n == 25 || n == 29) {
        const uint64_t o = load8(p + n - 8);
        const char sign = p[n - 6];
        ok &= fits(o, offset_word) & ((sign == '+') | (sign == '-'));
        const uint32_t oh = two_digits(o, 3), om = two_digits(o, 6);
        ok &= (oh <= 23) & (om <= 59);
        offset_min = int32_t(oh * 60 + om);
        if (sign == '-') offset_min = -offset_min;
    }
    if (ok) [[likely]] {
        *add_ms = int64_t(second * 1000 + frac_ms) - int64_t(offset_min) * 60000;
        return true;
    }
    // Another fraction length, `z`: the general parser's code for what follows `:SS`.
    int64_t frac, offset;
    if (!parse_after_seconds(s, &frac, &offset)) return false;
    *add_ms = int64_t(second) * 1000 + frac - offset * 60000;
    return true;
}

} // namespace

bool rfc3339_reader::parse(std::string_view s, int64_t* out_ms) noexcept {
    if (s.size() >= 20) [[likely]] {
        const uint64_t w0 = load8(s.data()), w1 = load8(s.data() + 8);
        int64_t minute_ms = _minute_ms, add_ms;
        // The minute of the last head read: only the rest is new.
        bool head = w0 == _head[0] && w1 == _head[1];
        if (!head && parse_head(w0, w1, &minute_ms)) {
            _head[0] = w0;
            _head[1] = w1;
            _minute_ms = minute_ms;
            head = true;
        }
        if (head && parse_tail(s, &add_ms)) [[likely]] {
            *out_ms = minute_ms + add_ms;
            return true;
        }
    }
    return parse_rfc3339_ms(s, out_ms);
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
