#include "dataplane/event_parse.h"

#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base/assert.h"
#include "base/time_format.h"

#include "processing/identity.h"

namespace sluice::dataplane {

using processing::dead_letter_reason;
using processing::event_slot;
using processing::field_ref;
using processing::slot_kind;

namespace {

// A JSON string's text when it holds no escape: the bytes between its quotes, which are
// then its value (stage 1 has validated the UTF-8 and the quotes). `p` points just past
// the opening quote. False when a backslash comes first (or no quote before `end`): the
// caller unescapes through simdjson. In place, this skips simdjson's unescape (a virtual
// call into the library and a copy) for every key and nearly every value.
bool plain_string(const char* p, const char* end, std::string_view* out) noexcept {
#ifdef __SSE2__
    // 16 bytes at a time (SSE2: every x86-64), without a branch per byte: a mispredicted
    // exit from a byte loop costs more than the unescape it replaces. Reading past `end`
    // stays inside the zero padding behind the raw bytes.
    static_assert(processing::slot_parse_padding >= 16);
    for (const char* q = p; q < end; q += 16) {
        const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
        const uint32_t quote =
            uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, _mm_set1_epi8('"'))));
        const uint32_t backslash =
            uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, _mm_set1_epi8('\\'))));
        if ((quote | backslash) == 0) continue;
        // Whichever comes first decides: a quote ends a plain string, a backslash starts
        // an escape (with no quote in the chunk, the mask below the quote is all ones).
        const uint32_t before_quote = (quote & -quote) - 1;
        if ((backslash & before_quote) != 0) [[unlikely]]
            return false;
        const char* close = q + __builtin_ctz(quote);
        if (close >= end) [[unlikely]]
            return false;
        *out = std::string_view(p, size_t(close - p));
        return true;
    }
    return false;
#else
    const char* q = p;
    while (q < end && *q != '"' && *q != '\\') ++q;
    if (q == end || *q != '"') return false;
    *out = std::string_view(p, size_t(q - p));
    return true;
#endif
}

} // namespace

event_parser::event_parser(const parse_config& config) : _config(config) {
    // Size the parser once, here: no allocation on the hot path.
    auto err = _parser.allocate(config.event_bytes_max + processing::slot_parse_padding);
    SLUICE_ASSERT(err == simdjson::SUCCESS);
}

void event_parser::parse(std::string_view line, int64_t now_ms, event_slot& slot) noexcept {
    if (_config.fields != nullptr) {
        // One acquire load per event; the catalog changes only when a query is added.
        uint32_t g = _config.fields->generation();
        if (g != _generation) [[unlikely]] {
            _generation = g;
            _fields = _config.fields->count();
        }
    }
    slot.generation = _generation;
    slot.fields_parsed = uint8_t(_fields);
    std::memset(slot.extra_kind, 0, _fields);
    slot.raw_len_orig = uint32_t(line.size());
    slot.event_id = slot.user_id = slot.event_type = slot.page = field_ref{};
    slot.time_off = processing::no_offset;
    slot.has_event_id = 0;
    slot.event_time_ms = processing::no_time;
    char* data = slot.data();
    if (line.size() > _config.event_bytes_max) [[unlikely]] {
        // Kept as a dead letter with its first event_bytes_max bytes; raw_len_orig says
        // how long it really was.
        std::memcpy(data, line.data(), _config.event_bytes_max);
        slot.raw_len = _config.event_bytes_max;
        slot.data_used = slot.raw_len;
        slot.kind = slot_kind::dead_letter;
        slot.reason = dead_letter_reason::oversize;
        return;
    }
    std::memcpy(data, line.data(), line.size());
    std::memset(data + line.size(), 0, processing::slot_parse_padding);
    slot.raw_len = uint32_t(line.size());
    slot.data_used = slot.raw_len + processing::slot_parse_padding;

    dead_letter_reason reason = parse_fields(slot, now_ms);
    if (reason != dead_letter_reason::count_) [[unlikely]] {
        slot.kind = slot_kind::dead_letter;
        slot.reason = reason;
        return;
    }
    slot.kind = slot_kind::event;
    slot.id = slot.has_event_id ? processing::identity_of_event_id(slot.field(slot.event_id))
                                : processing::identity_of_bytes(slot.raw());
}

// A string value into `out`: in place in the raw bytes when it holds no escape (it is
// then left for the object iterator to step over), else unescaped by simdjson and copied
// behind the raw bytes; unescaped copies never outgrow the raw bytes they come from
// (see event.h).
simdjson::error_code event_parser::string_field(simdjson::ondemand::value& v, event_slot& slot,
                                                field_ref& out) noexcept {
    const char* base = slot.data();
    std::string_view s;
    if (plain_string(v.raw_json_token().data() + 1, base + slot.raw_len, &s)) [[likely]] {
        out = field_ref{uint32_t(s.data() - base), uint32_t(s.size())};
        return simdjson::SUCCESS;
    }
    if (auto e = v.get_string().get(s)) return e;
    out = field_ref{slot.data_used, uint32_t(s.size())};
    std::memcpy(slot.data() + slot.data_used, s.data(), s.size());
    slot.data_used += uint32_t(s.size());
    return simdjson::SUCCESS;
}

// Returns count_ when the event is good. Every field is visited so that a structural
// error anywhere makes the whole line a parse_error, ahead of any other reason.
dead_letter_reason event_parser::parse_fields(event_slot& slot, int64_t now_ms) noexcept {
    using namespace simdjson;
    ondemand::document doc;
    if (_parser.iterate(slot.data(), slot.raw_len, slot.raw_len + processing::slot_parse_padding)
            .get(doc))
        return dead_letter_reason::parse_error;
    ondemand::object obj;
    if (doc.get_object().get(obj)) return dead_letter_reason::parse_error;

    bool schema_bad = false;
    bool have_ts = false;
    bool ts_bad = false;
    int64_t ts = 0;
    const char* const raw_end = slot.data() + slot.raw_len;
    for (auto field_result : obj) {
        // By reference, not by copy: each copy of simdjson's small iterator structs is
        // stored in halves and reloaded whole, a store-forwarding stall per field.
        if (field_result.error()) return dead_letter_reason::parse_error;
        ondemand::field& field = field_result.value_unsafe();
        std::string_view key;
        if (!plain_string(field.key().raw(), raw_end, &key)) [[unlikely]] {
            if (field.unescaped_key().get(key)) return dead_letter_reason::parse_error;
        }
        ondemand::value& v = field.value();
        ondemand::json_type type;
        if (v.type().get(type)) return dead_letter_reason::parse_error;

        field_ref* target = nullptr;
        if (key == "page") target = &slot.page;
        else if (key == "user_id") target = &slot.user_id;
        else if (key == "event_type") target = &slot.event_type;
        else if (key == "event_id") target = &slot.event_id;
        if (target != nullptr) {
            if (type != ondemand::json_type::string) {
                schema_bad = true;
                continue; // the iterator skips (and validates) the unread value
            }
            if (string_field(v, slot, *target)) return dead_letter_reason::parse_error;
            if (target == &slot.event_id) slot.has_event_id = 1;
        } else if (_fields != 0 && key != "timestamp") {
            if (extract_extra(key, v, type, slot)) return dead_letter_reason::parse_error;
        } else if (key == "timestamp") {
            have_ts = true;
            if (type == ondemand::json_type::string) {
                std::string_view s;
                if (plain_string(v.raw_json_token().data() + 1, raw_end, &s)) [[likely]] {
                    slot.time_off = uint32_t(s.data() - slot.data());
                } else {
                    if (v.get_string().get(s)) return dead_letter_reason::parse_error;
                }
                ts_bad = !_time.parse(s, &ts);
            } else if (type == ondemand::json_type::number) {
                // Epoch milliseconds: an integer; a fraction or overflow is a bad timestamp.
                slot.time_off = uint32_t(v.raw_json_token().data() - slot.data());
                ts_bad = v.get_int64().get(ts) != SUCCESS;
            } else {
                ts_bad = true;
            }
        }
    }
    // Anything after the object ("{...} x", "{...}{...}") leaves the iterator in bounds.
    if (doc.current_location().error() == SUCCESS) return dead_letter_reason::parse_error;
    if (schema_bad) return dead_letter_reason::schema_mismatch;
    if (!have_ts) return dead_letter_reason::missing_timestamp;
    if (ts_bad) return dead_letter_reason::bad_timestamp;
    if (ts > now_ms + _config.max_future_skew_ms) return dead_letter_reason::future_timestamp;
    slot.event_time_ms = ts;
    return dead_letter_reason::count_;
}

simdjson::error_code event_parser::store_extra(uint32_t index, simdjson::ondemand::value& v,
                                               simdjson::ondemand::json_type type,
                                               event_slot& slot) noexcept {
    using namespace simdjson;
    using processing::field_kind;
    switch (type) {
    case ondemand::json_type::string: {
        if (auto e = string_field(v, slot, slot.extra[index])) return e;
        slot.extra_kind[index] = field_kind::string;
        return SUCCESS;
    }
    case ondemand::json_type::number:
    case ondemand::json_type::boolean: {
        // The token as sent, in place: it lies inside the raw bytes of the slot.
        std::string_view t = v.raw_json_token();
        while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' ||
                              t.back() == '\r'))
            t.remove_suffix(1);
        const char* base = slot.data();
        if (t.data() < base || t.data() + t.size() > base + slot.raw_len) return SUCCESS;
        slot.extra[index] = field_ref{uint32_t(t.data() - base), uint32_t(t.size())};
        slot.extra_kind[index] =
            type == ondemand::json_type::number ? field_kind::number : field_kind::boolean;
        return SUCCESS;
    }
    default: return SUCCESS; // null, object, array: absent
    }
}

simdjson::error_code event_parser::extract_extra(std::string_view key,
                                                 simdjson::ondemand::value& v,
                                                 simdjson::ondemand::json_type type,
                                                 event_slot& slot) noexcept {
    using namespace simdjson;
    const processing::field_catalog& cat = *_config.fields;
    bool nested = false;
    for (uint32_t i = 0; i < _fields; ++i) {
        if (cat.head_of(i) != key) continue;
        if (cat.tail_of(i).empty()) return store_extra(i, v, type, slot);
        nested = true;
    }
    if (!nested || type != ondemand::json_type::object) return SUCCESS;
    ondemand::object inner;
    if (auto e = v.get_object().get(inner)) return e;
    for (auto field_result : inner) {
        if (auto e = field_result.error()) return e;
        ondemand::field& field = field_result.value_unsafe();
        std::string_view inner_key;
        if (!plain_string(field.key().raw(), slot.data() + slot.raw_len, &inner_key)) [[unlikely]] {
            if (auto e = field.unescaped_key().get(inner_key)) return e;
        }
        ondemand::value& iv = field.value();
        ondemand::json_type it;
        if (auto e = iv.type().get(it)) return e;
        for (uint32_t i = 0; i < _fields; ++i) {
            if (cat.tail_of(i) == inner_key && cat.head_of(i) == key) {
                if (auto e = store_extra(i, iv, it, slot)) return e;
                break;
            }
        }
    }
    return SUCCESS;
}

} // namespace sluice::dataplane
