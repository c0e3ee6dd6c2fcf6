#pragma once
// Event-time text <-> epoch milliseconds, written for the reference model and the
// generator only (sluice's own parser lives in dataplane/; the two are kept apart on
// purpose so that one checks the other).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::tools {

struct civil_date {
    int64_t year = 1970;
    int month = 1; // 1..12
    int day = 1;   // 1..31
};

// Days since 1970-01-01 of a proleptic Gregorian date (negative before it).
int64_t days_from_civil(civil_date d) noexcept;
civil_date civil_from_days(int64_t days) noexcept;
int days_in_month(int64_t year, int month) noexcept;

// floor(a / b) for b > 0, also for negative a.
constexpr int64_t floor_div(int64_t a, int64_t b) noexcept {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

// Parses `YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM)`: upper-case `T` and `Z`, every
// field range-checked (month 1-12, day within the month, hour 0-23, minute and second
// 0-59, offset hours 0-23 and minutes 0-59). The fraction is floored to milliseconds.
// Anything else (other separators, leap second 60, missing offset) is nullopt.
std::optional<int64_t> parse_rfc3339_ms(std::string_view text) noexcept;

// Timestamp renderings the generator mixes; each says exactly which instant it names.
enum class ts_format : uint8_t {
    utc_seconds,  // "2025-02-28T15:22:31Z"          names floor(t / 1000) * 1000
    utc_fraction, // "2025-02-28T15:22:31.1234Z"     1..9 digits, names the floor to ms
    offset,       // "2025-02-28T17:22:31.123+02:00" a local time and its offset
    epoch_ms,     // 1740755000123                   a JSON integer
};

struct rendered_timestamp {
    std::string json;     // the JSON value, quotes included for strings
    int64_t named_ms = 0; // the instant the text names
};

// `fraction_digits` (1..9) is used by utc_fraction; `extra_digits` supplies digits
// beyond milliseconds; `offset_minutes` by offset (e.g. 120, -330).
rendered_timestamp render_timestamp(int64_t t_ms, ts_format format, int fraction_digits,
                                    uint64_t extra_digits, int offset_minutes);

} // namespace sluice::tools
