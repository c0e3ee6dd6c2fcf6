#include "processing/query.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "processing/hll.h"

namespace sluice::processing {

namespace {

error bad(std::string message) { return make_error(errc::invalid_argument, std::move(message)); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

// Splits "a, b, c" at top-level commas.
std::vector<std::string_view> split_args(std::string_view s) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == ',') {
            out.push_back(trim(s.substr(start, i - start)));
            start = i + 1;
        }
    }
    return out;
}

bool parse_double(std::string_view s, double& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(out);
}

std::string column_safe(std::string_view field) {
    std::string out(field);
    std::replace(out.begin(), out.end(), '.', '_');
    return out;
}

std::string quantile_label(double q) {
    // 0.5 -> p50, 0.99 -> p99, 0.999 -> p99_9, 1 -> p100
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", q * 100);
    std::string s = buf;
    std::replace(s.begin(), s.end(), '.', '_');
    return "p" + s;
}

} // namespace

std::string_view window_kind_name(window_kind k) noexcept {
    switch (k) {
    case window_kind::tumbling: return "tumbling";
    case window_kind::hopping: return "hopping";
    case window_kind::session: return "session";
    }
    return "unknown";
}

std::string_view agg_kind_name(agg_kind k) noexcept {
    switch (k) {
    case agg_kind::count: return "count";
    case agg_kind::sum: return "sum";
    case agg_kind::min: return "min";
    case agg_kind::max: return "max";
    case agg_kind::mean: return "mean";
    case agg_kind::distinct: return "distinct";
    case agg_kind::quantile: return "quantile";
    }
    return "unknown";
}

query_def reference_query() {
    query_def q;
    q.name = "page_views_per_minute";
    q.window = window_def{window_kind::tumbling, 60'000, 0, 0};
    q.group_by = {"page"};
    q.aggregates = {aggregate_def{}};
    q.watermark_delay_ms = limits::watermark_delay_ms_default;
    return q;
}

int64_t floor_div(int64_t a, int64_t b) noexcept {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

result<int64_t> parse_duration_ms(std::string_view text) {
    std::string_view s = trim(text);
    size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + digits, v);
    if (digits == 0 || r.ec != std::errc())
        return bad("bad duration \"" + std::string(text) + "\" (use e.g. 500ms, 30s, 5m, 1h, 1d)");
    std::string_view unit = s.substr(digits);
    int64_t scale;
    if (unit.empty() || unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m" || unit == "min") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else if (unit == "d") scale = 86'400'000;
    else
        return bad("bad duration unit in \"" + std::string(text) + "\" (use ms, s, m, h or d)");
    if (v > INT64_MAX / scale / 4) return bad("duration \"" + std::string(text) + "\" is too long");
    return v * scale;
}

std::string format_duration(int64_t ms) {
    if (ms != 0 && ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

result<aggregate_def> parse_aggregate(std::string_view text) {
    std::string_view s = trim(text);
    aggregate_def a;
    size_t as = s.find(" as ");
    if (as != std::string_view::npos) {
        a.alias = std::string(trim(s.substr(as + 4)));
        s = trim(s.substr(0, as));
        if (a.alias.empty() || !std::all_of(a.alias.begin(), a.alias.end(), name_char))
            return bad("aggregate \"" + std::string(text) +
                       "\": the name after `as` must be letters, digits, _ or -");
    }
    size_t open = s.find('(');
    std::string_view fn = trim(open == std::string_view::npos ? s : s.substr(0, open));
    std::vector<std::string_view> args;
    if (open != std::string_view::npos) {
        if (s.back() != ')')
            return bad("aggregate \"" + std::string(text) + "\": missing `)`");
        args = split_args(s.substr(open + 1, s.size() - open - 2));
    }
    auto need_field = [&](size_t extra_max) -> result<void> {
        if (args.empty() || args[0].empty())
            return bad("aggregate \"" + std::string(text) + "\" needs a field: " +
                       std::string(fn) + "(FIELD)");
        if (args.size() > 1 + extra_max)
            return bad("aggregate \"" + std::string(text) + "\": too many arguments");
        a.field = std::string(args[0]);
        return check_field_path(a.field);
    };
    if (fn == "count") {
        if (!args.empty() && !(args.size() == 1 && (args[0].empty() || args[0] == "*")))
            return bad("aggregate \"" + std::string(text) + "\": count takes no field");
        a.kind = agg_kind::count;
    } else if (fn == "sum" || fn == "min" || fn == "max" || fn == "mean" || fn == "avg") {
        a.kind = fn == "sum" ? agg_kind::sum
                 : fn == "min" ? agg_kind::min
                 : fn == "max" ? agg_kind::max
                               : agg_kind::mean;
        SLUICE_TRY(need_field(0));
    } else if (fn == "distinct" || fn == "count_distinct" || fn == "hll") {
        a.kind = agg_kind::distinct;
        SLUICE_TRY(need_field(1));
        if (args.size() == 2) {
            double p;
            if (!parse_double(args[1], p) || p != std::floor(p) || p < hll::precision_min ||
                p > hll::precision_max)
                return bad("aggregate \"" + std::string(text) + "\": HyperLogLog precision must be " +
                           std::to_string(hll::precision_min) + ".." +
                           std::to_string(hll::precision_max));
            a.precision = uint32_t(p);
        }
    } else if (fn == "quantile" || fn == "quantiles" || fn == "percentile") {
        a.kind = agg_kind::quantile;
        SLUICE_TRY(need_field(16));
        if (args.size() < 2)
            return bad("aggregate \"" + std::string(text) +
                       "\" needs at least one q in [0, 1]: quantile(FIELD, 0.5, 0.99)");
        for (size_t i = 1; i < args.size(); ++i) {
            double q;
            if (!parse_double(args[i], q) || q < 0 || q > 1)
                return bad("aggregate \"" + std::string(text) + "\": \"" + std::string(args[i]) +
                           "\" is not a quantile in [0, 1]");
            a.quantiles.push_back(q);
        }
        if (!a.alias.empty())
            return bad("aggregate \"" + std::string(text) +
                       "\": quantile has one column per q; `as` is not supported");
    } else {
        return bad("unknown aggregate \"" + std::string(text) +
                   "\" (use count, sum, min, max, mean, distinct or quantile)");
    }
    return a;
}

std::string format_aggregate(const aggregate_def& a) {
    std::string s(agg_kind_name(a.kind));
    if (a.kind != agg_kind::count) {
        s += "(" + a.field;
        if (a.kind == agg_kind::distinct && a.precision != hll::precision_default)
            s += ", " + std::to_string(a.precision);
        for (double q : a.quantiles) {
            char buf[32];
            std::snprintf(buf, sizeof buf, ", %.10g", q);
            s += buf;
        }
        s += ")";
    }
    if (!a.alias.empty()) s += " as " + a.alias;
    return s;
}

result<filter_def> parse_filter(std::string_view text) {
    filter_def f;
    size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0)
        return bad("filter \"" + std::string(text) + "\": use FIELD=VALUE or FIELD!=VALUE");
    f.negate = text[eq - 1] == '!';
    f.field = std::string(trim(text.substr(0, f.negate ? eq - 1 : eq)));
    f.value = std::string(text.substr(eq + 1));
    SLUICE_TRY(check_field_path(f.field));
    return f;
}

std::string format_filter(const filter_def& f) {
    return f.field + (f.negate ? "!=" : "=") + f.value;
}

result<void> check_field_path(std::string_view path) {
    auto fail = [&](const char* why) {
        return bad("field \"" + std::string(path) + "\": " + why +
                   " (use a top-level key like page, or metadata.KEY)");
    };
    if (path.empty()) return fail("empty");
    if (path.size() > 63) return fail("longer than 63 bytes");
    size_t dot = path.find('.');
    if (dot != std::string_view::npos && path.find('.', dot + 1) != std::string_view::npos)
        return fail("at most one level of nesting");
    if (dot == 0 || dot + 1 == path.size()) return fail("empty key");
    for (char c : path)
        if (c != '.' && !name_char(c)) return fail("keys must be letters, digits, _ or -");
    if (path == "timestamp") return fail("the timestamp is the event time, not a field");
    return ok_result();
}

std::vector<std::string> group_column_names(const query_def& q) {
    std::vector<std::string> out;
    for (const auto& f : q.group_by) out.push_back(column_safe(f));
    return out;
}

std::vector<std::string> aggregate_column_names(const aggregate_def& a) {
    if (a.kind == agg_kind::quantile) {
        std::vector<std::string> out;
        for (double q : a.quantiles) out.push_back(quantile_label(q) + "_" + column_safe(a.field));
        return out;
    }
    if (!a.alias.empty()) return {a.alias};
    if (a.kind == agg_kind::count) return {"count"};
    return {std::string(agg_kind_name(a.kind)) + "_" + column_safe(a.field)};
}

result<void> check_query_name(std::string_view name) {
    const std::string n(name);
    if (n.empty() || n.size() > 64 || !std::all_of(n.begin(), n.end(), name_char))
        return bad("query name \"" + n + "\" must be 1..64 letters, digits, _ or -");
    if (n == "events" || n == "dead_letters" || n.front() == '_' || n.front() == '-')
        return bad("query name \"" + n +
                   "\" is reserved (events, dead_letters, and names starting with _ or -)");
    return ok_result();
}

result<void> validate(const query_def& q) {
    const std::string where = "query \"" + q.name + "\": ";
    SLUICE_TRY(check_query_name(q.name));
    const window_def& w = q.window;
    constexpr int64_t day_ms = 86'400'000;
    switch (w.kind) {
    case window_kind::tumbling:
        if (w.size_ms <= 0 || w.size_ms > 366 * day_ms)
            return bad(where + "window size must be within 1ms..366d");
        break;
    case window_kind::hopping:
        if (w.size_ms <= 0 || w.size_ms > 366 * day_ms)
            return bad(where + "window size must be within 1ms..366d");
        if (w.slide_ms <= 0 || w.slide_ms > w.size_ms)
            return bad(where + "a hopping window needs 0 < slide <= size");
        if ((w.size_ms + w.slide_ms - 1) / w.slide_ms > 64)
            return bad(where + "a hopping window may overlap at most 64 windows per event "
                               "(make the slide at least size / 64)");
        break;
    case window_kind::session:
        if (w.gap_ms <= 0 || w.gap_ms > 366 * day_ms)
            return bad(where + "a session window needs a gap within 1ms..366d");
        break;
    }
    if (q.group_by.size() > 8) return bad(where + "at most 8 group-by fields");
    for (const auto& f : q.group_by) {
        auto r = check_field_path(f);
        if (!r) return bad(where + "group_by: " + r.err().message);
    }
    if (q.aggregates.empty()) return bad(where + "needs at least one aggregate (e.g. count)");
    if (q.aggregates.size() > 16) return bad(where + "at most 16 aggregates");
    std::set<std::string> columns{"window_start_ms", "window_end_ms", "revision"};
    for (const auto& c : group_column_names(q))
        if (!columns.insert(c).second)
            return bad(where + "group-by column \"" + c + "\" appears twice");
    for (const auto& a : q.aggregates) {
        if (a.kind != agg_kind::count) {
            auto r = check_field_path(a.field);
            if (!r) return bad(where + r.err().message);
        }
        if (a.kind == agg_kind::distinct &&
            (a.precision < hll::precision_min || a.precision > hll::precision_max))
            return bad(where + "HyperLogLog precision must be 4..16");
        if (a.kind == agg_kind::quantile && (a.quantiles.empty() || a.quantiles.size() > 16))
            return bad(where + "a quantile aggregate needs 1..16 quantiles");
        for (const auto& c : aggregate_column_names(a))
            if (!columns.insert(c).second)
                return bad(where + "output column \"" + c +
                           "\" appears twice (name one with `as NAME`)");
    }
    if (q.filter) {
        auto r = check_field_path(q.filter->field);
        if (!r) return bad(where + "filter: " + r.err().message);
    }
    if (q.watermark_delay_ms < 0 || q.watermark_delay_ms > 30 * day_ms)
        return bad(where + "watermark delay must be within 0..30d");
    if (q.memory_bytes < (1u << 20) || q.memory_bytes > (64ull << 30))
        return bad(where + "memory must be within 1 MiB..64 GiB per worker");
    return ok_result();
}

} // namespace sluice::processing
