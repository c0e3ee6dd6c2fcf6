#include "tools/gen/timestamp.h"

#include <cstdio>

namespace sluice::tools {

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
