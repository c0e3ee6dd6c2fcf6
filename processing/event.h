#pragma once
// event_slot: what an RX lcore hands to a worker over an (RX, worker) rte_ring.
// Slots come from one preallocated rte_mempool; the RX lcore copies an event's bytes
// into its slot exactly once, the worker returns the slot to the pool after use.
#include <cstdint>
#include <string_view>

#include "base/limits.h"
#include "storage/event_identity.h"

namespace sluice::processing {

enum class slot_kind : uint8_t {
    event,        // a parsed event: route to dedup, windows, store
    dead_letter,  // rejected at RX: store in dead_letters with `reason`
    watermark,    // no payload: the RX's max event time advanced (idle workers learn W)
};

enum class dead_letter_reason : uint8_t {
    parse_error,
    missing_timestamp,
    bad_timestamp,
    future_timestamp,
    oversize,
    beyond_dedup_horizon,
    schema_mismatch,
    count_
};
inline constexpr int dead_letter_reason_count = int(dead_letter_reason::count_);

constexpr std::string_view reason_name(dead_letter_reason r) {
    switch (r) {
    case dead_letter_reason::parse_error: return "parse_error";
    case dead_letter_reason::missing_timestamp: return "missing_timestamp";
    case dead_letter_reason::bad_timestamp: return "bad_timestamp";
    case dead_letter_reason::future_timestamp: return "future_timestamp";
    case dead_letter_reason::oversize: return "oversize";
    case dead_letter_reason::beyond_dedup_horizon: return "beyond_dedup_horizon";
    case dead_letter_reason::schema_mismatch: return "schema_mismatch";
    case dead_letter_reason::count_: break;
    }
    return "unknown";
}

// The identity the store derives from a row is the one the pipeline dedups by: one type,
// so ingest passes the hash's result on without a copy (storage/event_identity.h).
using identity = storage::event_identity;

// A view into the slot's data area: [off, off + len).
struct field_ref {
    uint32_t off = 0;
    uint32_t len = 0;
};

// What a query-requested field held in the event (see field_catalog.h).
enum class field_kind : uint8_t {
    absent, // missing, null, or an object/array
    string, // unescaped text
    number, // the number's JSON text, as sent
    boolean // "true" / "false"
};

inline constexpr int64_t no_time = INT64_MIN;
inline constexpr uint32_t no_offset = UINT32_MAX;

struct alignas(64) event_slot {
    slot_kind kind;
    dead_letter_reason reason;  // kind == dead_letter
    uint8_t has_event_id;
    uint8_t rx_index;           // which RX lcore sent it
    uint32_t raw_len;           // bytes of the event in data() (truncated for oversize)
    uint32_t raw_len_orig;      // the event's length as received
    uint32_t data_used;         // raw bytes + unescaped fields
    identity id;
    int64_t event_time_ms;      // kind == event
    int64_t max_time_before_ms; // the RX's max event time before this event, or no_time
    int64_t received_ms;        // wall clock at RX
    int64_t rx_tsc;             // rte_rdtsc() at RX, for latency
    field_ref event_id, user_id, event_type, page;  // unescaped strings in data()
    // Where the event's timestamp text starts in raw() (past its quote; a binary event:
    // its canonical form's 8-byte timestamp_ms), no_offset when unknown (an escaped
    // string). The worker hands it and the fields' places in raw() to the store, which
    // cuts them out of `raw` without searching.
    uint32_t time_off = no_offset;
    // Fields the queries asked the RX to extract (field_catalog), valid below
    // fields_parsed; `generation` is the catalog generation the RX parsed with.
    uint32_t generation;
    uint8_t fields_parsed;
    field_kind extra_kind[limits::query_fields_max];
    field_ref extra[limits::query_fields_max];

    char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
    const char* data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
    std::string_view raw() const noexcept { return {data(), raw_len}; }
    std::string_view field(field_ref f) const noexcept { return {data() + f.off, f.len}; }
};

// The data area behind a slot holds the raw event, the zero padding the JSON parser
// may read past it, then the event's unescaped fields (never longer than the raw bytes).
inline constexpr uint32_t slot_parse_padding = 64;
constexpr uint32_t slot_data_bytes(uint32_t event_bytes_max) noexcept {
    return 2 * event_bytes_max + slot_parse_padding;
}
constexpr uint32_t slot_bytes(uint32_t event_bytes_max) noexcept {
    return uint32_t(sizeof(event_slot)) + slot_data_bytes(event_bytes_max);
}

} // namespace sluice::processing
