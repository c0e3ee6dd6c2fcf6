#pragma once
// compiled_query: a validated query_def resolved against the event slot layout (which
// slot field or catalog entry each field path reads), with its aggregate blob layout and
// the progress words its workers publish to the merger. Immutable once built and shared
// (std::shared_ptr) by the worker lcores and the merger thread; only `shared` changes.
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/limits.h"
#include "base/result.h"
#include "processing/aggregates.h"
#include "processing/event.h"
#include "processing/field_catalog.h"
#include "processing/query.h"

namespace sluice::processing {

enum class field_source : uint8_t { page, user_id, event_type, event_id, extra };

struct field_accessor {
    field_source source = field_source::page;
    uint8_t index = 0; // catalog entry, for extra
};

struct field_value {
    std::string_view text;
    field_kind kind = field_kind::absent;
};

inline field_value read_field(const event_slot& s, field_accessor a) noexcept {
    auto standard = [&](field_ref r) {
        return field_value{s.field(r), r.len ? field_kind::string : field_kind::absent};
    };
    switch (a.source) {
    case field_source::page: return standard(s.page);
    case field_source::user_id: return standard(s.user_id);
    case field_source::event_type: return standard(s.event_type);
    case field_source::event_id: return standard(s.event_id);
    case field_source::extra:
        if (a.index >= s.fields_parsed || s.extra_kind[a.index] == field_kind::absent) return {};
        return field_value{s.field(s.extra[a.index]), s.extra_kind[a.index]};
    }
    return {};
}

// Session windows: a worker reports, per bucket of group keys, the earliest start of its
// open session pieces, so that the merger never emits a session that an open piece
// elsewhere could still extend (see window_merger.h).
inline constexpr uint32_t hold_buckets = 64;
inline uint32_t hold_bucket_of(uint64_t key_hash) noexcept { return uint32_t(key_hash >> 58); }

// What one worker publishes about one query. Written by that worker only; the merger
// reads closed_until_ms (acquire) after the holds, and the batches published before.
struct alignas(64) worker_progress {
    // The worker has sent every cell ending at or before this, and the events in them are
    // durable (INT64_MAX once the worker finished).
    std::atomic<int64_t> closed_until_ms{INT64_MIN};
    // Earliest start among the worker's open cells (INT64_MAX: none), for checkpoints.
    std::atomic<int64_t> open_min_start_ms{INT64_MAX};
    std::atomic<int64_t> holds_ms[hold_buckets];
    // Set when the worker finished with its events writer failed: what it did not publish
    // counts events that are not durable, so it is never emitted (the restart rebuilds
    // it from the events stored and sent again); the merger stops waiting for it.
    std::atomic<bool> abandoned{false};
    // Counters (relaxed).
    std::atomic<uint64_t> events{0};      // events the query aggregated
    std::atomic<uint64_t> late_events{0}; // events late for this query
    std::atomic<uint64_t> overflow{0};    // events the window state had no room for
    worker_progress() {
        for (auto& h : holds_ms) h.store(INT64_MAX, std::memory_order_relaxed);
    }
};

struct query_shared {
    worker_progress workers[limits::workers_max];
};

struct compiled_query {
    query_def def;
    uint32_t uid = 0;              // unique per add (removal and re-add get a new one)
    uint32_t start_generation = 0; // counts events parsed with this catalog generation on
    std::vector<field_accessor> group;
    std::vector<field_accessor> values; // the fields aggregates read, deduplicated
    bool has_filter = false;
    field_accessor filter_field;
    std::string filter_value;
    bool filter_negate = false;
    agg_layout aggs;
    uint32_t cells_max = 0;     // window cells per worker
    uint32_t key_bytes_max = 0; // longest encoded group key
    size_t key_arena_bytes = 0; // key storage per worker
    std::vector<std::string> group_columns;
    std::vector<std::string> value_columns;
    std::unique_ptr<query_shared> shared = std::make_unique<query_shared>();

    int64_t delay_ms() const noexcept { return def.watermark_delay_ms; }
    window_kind kind() const noexcept { return def.window.kind; }

    bool matches(const event_slot& s) const noexcept {
        if (!has_filter) return true;
        bool eq = read_field(s, filter_field).text == filter_value;
        return eq != filter_negate;
    }
    // One field (group.size() == 1): the group key build_key() would encode, as a view
    // of the field's bytes in the slot (no copy; may be empty with a null data()).
    std::string_view key_in_place(const event_slot& s) const noexcept {
        return read_field(s, group[0]).text;
    }
    // Encodes the group key into out (key_bytes_max bytes); returns its length. One field:
    // its bytes; several: each as a 4-byte little-endian length, then the bytes.
    uint32_t build_key(const event_slot& s, char* out) const noexcept {
        if (group.size() == 1) {
            std::string_view v = key_in_place(s);
            if (!v.empty()) std::memcpy(out, v.data(), v.size()); // an absent field has no data
            return uint32_t(v.size());
        }
        uint32_t n = 0;
        for (const auto& g : group) {
            std::string_view v = read_field(s, g).text;
            uint32_t len = uint32_t(v.size());
            std::memcpy(out + n, &len, 4);
            if (len != 0) std::memcpy(out + n + 4, v.data(), v.size());
            n += 4 + len;
        }
        return n;
    }
    void read_inputs(const event_slot& s, agg_input* out) const noexcept {
        for (size_t i = 0; i < values.size(); ++i) {
            field_value v = read_field(s, values[i]);
            agg_input& in = out[i];
            in.text = v.text;
            in.present = v.kind != field_kind::absent;
            in.numeric = false;
            if (v.kind == field_kind::number) {
                auto r = std::from_chars(v.text.data(), v.text.data() + v.text.size(), in.number);
                in.numeric = r.ec == std::errc() && std::isfinite(in.number);
            }
        }
    }
};

// Splits an encoded group key into its fields' values, and back.
std::vector<std::string_view> split_key(const compiled_query& q, std::string_view key);
std::string encode_key(const compiled_query& q, const std::vector<std::string_view>& values);

// Resolves fields (reserving catalog entries for new ones; the caller publishes or rolls
// back the catalog) and sizes the state from def.memory_bytes.
result<std::shared_ptr<compiled_query>> compile(const query_def& def, field_catalog& catalog,
                                                uint32_t uid, uint32_t start_generation,
                                                uint32_t event_bytes_max);

} // namespace sluice::processing
