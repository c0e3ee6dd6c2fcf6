#pragma once
// An accepted event as one row of the events table: the one place that says which slot
// field goes to which column of storage::events_schema(), and where in `raw` the fields it
// refers to are (the worker's store and the encode benchmarks both append rows this way).
#include <cstdint>

#include "processing/event.h"
#include "storage/column_batch.h"
#include "storage/schema.h"

namespace sluice::processing {

// Appends the row and ends it; the caller commits it to its writer. `max_time_ms` is the
// worker's M when it stored the event (restart reads it back), `late` its late flag.
inline void append_event_row(storage::column_batch& b, const event_slot& s, bool late,
                             int64_t max_time_ms) noexcept {
    namespace ev = storage::events_col;
    b.push_i64(ev::event_time_ms, s.event_time_ms);
    // The identity is not stored: the store derives it from event_id (null when the
    // event had none) or raw (storage/event_identity.h).
    if (s.has_event_id) {
        b.push_string(ev::event_id, s.field(s.event_id));
    } else {
        b.push_null(ev::event_id);
    }
    b.push_string(ev::user_id, s.field(s.user_id));
    b.push_string(ev::event_type, s.field(s.event_type));
    b.push_string(ev::page, s.field(s.page));
    b.push_u8(ev::late, late ? 1 : 0);
    // Where raw() holds the fields `raw` refers to, in events_schema's order of raw's refs
    // (the worker checks that order when it opens its writer): the RX took a string in
    // place when it held no escape, and noted where the timestamp's text starts. The
    // skeleton writer cuts there without searching.
    constexpr uint16_t none = storage::column_batch::no_position;
    auto at = [&s](field_ref f) -> uint16_t {
        return f.off + f.len <= s.raw_len && f.off < none ? uint16_t(f.off) : none;
    };
    const uint16_t positions[] = {s.has_event_id ? at(s.event_id) : none, at(s.user_id),
                                  at(s.event_type), at(s.page),
                                  s.time_off < s.raw_len && s.time_off < none ? uint16_t(s.time_off)
                                                                              : none};
    b.push_string_at(ev::raw, s.raw(), positions);
    b.push_i64(ev::max_time_ms, max_time_ms);
    b.end_row();
}

} // namespace sluice::processing
