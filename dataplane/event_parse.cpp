#include "dataplane/event_parse.h"

#include <cstring>

#include "base/assert.h"
#include "base/time_format.h"

#include "processing/identity.h"

namespace sluice::dataplane {

using processing::dead_letter_reason;
using processing::event_slot;
using processing::field_ref;
using processing::slot_kind;

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
    auto copy_string = [&](ondemand::value& v, field_ref& out) -> error_code {
        std::string_view s;
        if (auto e = v.get_string().get(s)) return e;
        out = field_ref{slot.data_used, uint32_t(s.size())};
        std::memcpy(slot.data() + slot.data_used, s.data(), s.size());
        slot.data_used += uint32_t(s.size());
        return SUCCESS;
    };
    for (auto field_result : obj) {
        ondemand::field field;
        if (std::move(field_result).get(field)) return dead_letter_reason::parse_error;
        std::string_view key;
        if (field.unescaped_key().get(key)) return dead_letter_reason::parse_error;
        ondemand::value v = field.value();
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
            if (copy_string(v, *target)) return dead_letter_reason::parse_error;
            if (target == &slot.event_id) slot.has_event_id = 1;
        } else if (_fields != 0 && key != "timestamp") {
            if (extract_extra(key, v, type, slot)) return dead_letter_reason::parse_error;
        } else if (key == "timestamp") {
            have_ts = true;
            if (type == ondemand::json_type::string) {
                std::string_view s;
                if (v.get_string().get(s)) return dead_letter_reason::parse_error;
                ts_bad = !parse_rfc3339_ms(s, &ts);
            } else if (type == ondemand::json_type::number) {
                // Epoch milliseconds: an integer; a fraction or overflow is a bad timestamp.
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
        std::string_view s;
        if (auto e = v.get_string().get(s)) return e;
        // Unescaped copies never outgrow the raw bytes they come from (see event.h).
        slot.extra[index] = field_ref{slot.data_used, uint32_t(s.size())};
        std::memcpy(slot.data() + slot.data_used, s.data(), s.size());
        slot.data_used += uint32_t(s.size());
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
        ondemand::field field;
        if (auto e = std::move(field_result).get(field)) return e;
        std::string_view inner_key;
        if (auto e = field.unescaped_key().get(inner_key)) return e;
        ondemand::value iv = field.value();
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
