#pragma once
// Event time as text: the one RFC 3339 parser (event timestamps, --from/--to arguments,
// the generator's model) and the one UTC formatter, on Hinnant's civil-date algorithms.
// No allocation in the parser: it runs once per event on the RX path.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

struct civil_date {
    int64_t year = 1970;
    int month = 1; // 1..12
    int day = 1;   // 1..31
};

/// Days since 1970-01-01 of a proleptic Gregorian date (negative before it).
int64_t days_from_civil(civil_date d) noexcept;
civil_date civil_from_days(int64_t days) noexcept;
int days_in_month(int64_t year, int month) noexcept;

/// floor(a / b) for b > 0, also for negative a.
constexpr int64_t floor_div(int64_t a, int64_t b) noexcept {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

/// RFC 3339 date-time to epoch milliseconds: `YYYY-MM-DD(T|t| )HH:MM:SS[.F+](Z|z|±HH:MM)`.
/// Every field is range-checked (day within its month, hour 0-23, minute 0-59, second
/// 0-60 — a leap second names the next minute's first second, as POSIX time does — offset
/// hours 0-23 and minutes 0-59); a fraction of any length is floored to milliseconds.
/// The space separator and lower-case letters are the ones RFC 3339 §5.6 permits.
/// `*out_ms` is written only on success.
bool parse_rfc3339_ms(std::string_view text, int64_t* out_ms) noexcept;

/// parse_rfc3339_ms for a stream of timestamps (one per event on the RX path), faster: a
/// fixed-layout fast path, and it keeps the minute (`YYYY-MM-DDTHH:MM`) of the last text
/// that path read, so a text that starts with the same 16 bytes has only its seconds,
/// fraction and offset read. Accepts exactly what parse_rfc3339_ms accepts, with the
/// same value, whatever came before (it falls back to parse_rfc3339_ms for the rest).
class rfc3339_reader {
  public:
    bool parse(std::string_view text, int64_t* out_ms) noexcept;

  private:
    // Little-endian words of "1970-01-01T00:00", which names minute 0: a correct entry
    // from the start, so no flag is needed.
    uint64_t _head[2] = {0x2d31302d30373931ULL, 0x30303a3030543130ULL};
    int64_t _minute_ms = 0;
};

/// A time argument as operators type it (`--from`, `--to`, `from_ms` in requests): epoch
/// milliseconds or an RFC 3339 date-time.
std::optional<int64_t> parse_time_arg(std::string_view text) noexcept;

/// "2025-02-28T15:22:31.123Z" (UTC, milliseconds), also before 1970.
std::string format_rfc3339_ms(int64_t ms);

} // namespace sluice
