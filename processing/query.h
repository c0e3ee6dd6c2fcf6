#pragma once
// Continuous query definitions (§3 Windows): a name, an event-time window (tumbling,
// hopping or session), group-by fields, aggregates, an optional filter on one field's
// value and a watermark delay. This is the control-path description, parsed from the
// TOML config or a control request and validated here; compile() (query_runtime.h)
// turns it into what workers run.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/limits.h"
#include "base/result.h"

namespace sluice::processing {

enum class window_kind : uint8_t { tumbling, hopping, session };
std::string_view window_kind_name(window_kind k) noexcept;

// Windows start at multiples of the slide (tumbling: of the size) since the epoch and
// are half-open, [start, start + size). A session of one group key is the union of
// [t, t + gap) over its events, split where those intervals do not overlap.
struct window_def {
    window_kind kind = window_kind::tumbling;
    int64_t size_ms = 60'000; // tumbling, hopping
    int64_t slide_ms = 0;     // hopping
    int64_t gap_ms = 0;       // session
    friend bool operator==(const window_def&, const window_def&) = default;
};

enum class agg_kind : uint8_t { count, sum, min, max, mean, distinct, quantile };
std::string_view agg_kind_name(agg_kind k) noexcept;

struct aggregate_def {
    agg_kind kind = agg_kind::count;
    std::string field;              // empty for count
    std::vector<double> quantiles;  // quantile: one output column per value
    uint32_t precision = 14;        // distinct: HyperLogLog precision (4..16)
    std::string alias;              // output column name (single-column aggregates)
    friend bool operator==(const aggregate_def&, const aggregate_def&) = default;
};

// Events whose `field` equals (or, negated, differs from) `value` are aggregated. An
// absent field has the value "".
struct filter_def {
    std::string field;
    std::string value;
    bool negate = false;
    friend bool operator==(const filter_def&, const filter_def&) = default;
};

struct query_def {
    std::string name; // also its result table's name
    window_def window;
    std::vector<std::string> group_by; // field paths: "page", "metadata.referrer"
    std::vector<aggregate_def> aggregates;
    std::optional<filter_def> filter;
    int64_t watermark_delay_ms = limits::watermark_delay_ms_default;
    uint64_t memory_bytes = 32ull << 20; // window state per worker
    friend bool operator==(const query_def&, const query_def&) = default;
};

// The reference query of §3: tumbling 1 min by page, count, 10 min delay.
query_def reference_query();

// "250ms", "30s", "5m", "2h", "1d" or a plain integer of milliseconds.
result<int64_t> parse_duration_ms(std::string_view text);
std::string format_duration(int64_t ms);
// "count", "sum(f)", "min(f)", "max(f)", "mean(f)" (or "avg(f)"), "distinct(f)",
// "distinct(f, 12)" (HLL precision), "quantile(f, 0.5, 0.99)"; any but quantile may end
// in " as NAME".
result<aggregate_def> parse_aggregate(std::string_view text);
std::string format_aggregate(const aggregate_def& a);
// "field=value" or "field!=value".
result<filter_def> parse_filter(std::string_view text);
std::string format_filter(const filter_def& f);

// A field path: a top-level key, or a key inside a top-level object ("metadata.x").
// Checks syntax only. `timestamp` is not a field (it is the event time).
result<void> check_field_path(std::string_view path);

// Checks everything a query needs to run; messages name the key and the fix.
result<void> validate(const query_def& q);
result<void> check_query_name(std::string_view name);

// Output columns after window_start_ms and window_end_ms: one per group-by field (named
// after it, dots as underscores), then one per aggregate value.
std::vector<std::string> group_column_names(const query_def& q);
std::vector<std::string> aggregate_column_names(const aggregate_def& a);

// Windows an event time belongs to, for tumbling and hopping: starts from
// first_window_start() in steps of the slide while start <= t.
int64_t floor_div(int64_t a, int64_t b) noexcept;
inline int64_t window_slide_ms(const window_def& w) noexcept {
    return w.kind == window_kind::hopping ? w.slide_ms : w.size_ms;
}
inline int64_t first_window_start(const window_def& w, int64_t t_ms) noexcept {
    const int64_t slide = window_slide_ms(w);
    return (floor_div(t_ms - w.size_ms, slide) + 1) * slide;
}

} // namespace sluice::processing
