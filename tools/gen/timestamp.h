#pragma once
// Event-time text the generator writes: every rendering says which instant it names.
// Parsing is base/time_format.h's (the one RFC 3339 parser, also the model's): the
// renderings are checked against it, and it is checked against `date -u` instants in
// tests/base/time_format_test.cpp.
#include <cstdint>
#include <string>

#include "base/time_format.h"

namespace sluice::tools {

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
