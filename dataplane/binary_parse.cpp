#include "dataplane/binary_parse.h"

#include <algorithm>
#include <cstring>

#include <simdjson.h>

#include "processing/identity.h"

namespace sluice::dataplane {

using processing::dead_letter_reason;
using processing::event_slot;
using processing::field_ref;
using processing::slot_kind;

namespace {

// Little-endian loads with no alignment assumption (memcpy compiles to one mov).
inline uint16_t load16(const uint8_t* p) noexcept {
    uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline uint32_t load32(const uint8_t* p) noexcept {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline int64_t load64(const uint8_t* p) noexcept {
    int64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store16(char* p, uint16_t v) noexcept {
    std::memcpy(p, &v, sizeof v);
}

inline bool utf8_continuation(char c) noexcept {
    return (uint8_t(c) & 0xC0) == 0x80;
}

constexpr int fields = 5; // event_id, user_id, event_type, page, metadata
constexpr uint16_t canonical_absent = 0xFFFF;
constexpr uint16_t canonical_len_max = 0xFFFE;

void dead_letter(event_slot& slot, dead_letter_reason why) noexcept {
    slot.kind = slot_kind::dead_letter;
    slot.reason = why;
}

} // namespace

bool binary_batch::open(std::string_view payload) noexcept {
    const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
    const uint64_t size = payload.size();
    if (size < binary_header_bytes) return false;
    if (std::memcmp(p, binary_batch_magic, sizeof binary_batch_magic) != 0) return false;
    if (p[4] != binary_version || p[5] != 0 || load16(p + 10) != 0) return false;
    _strings = load16(p + 6);
    _events = load16(p + 8);
    _string_bytes = load32(p + 12);
    if (_events == 0) return false;
    const uint64_t want = uint64_t(binary_header_bytes) + 4ull * _strings + _string_bytes +
                          uint64_t(binary_record_bytes) * _events;
    if (want != size) return false;
    _string_end = p + binary_header_bytes;
    _data = reinterpret_cast<const char*>(_string_end + 4ull * _strings);
    _records = reinterpret_cast<const uint8_t*>(_data) + _string_bytes;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < _strings; ++i) {
        const uint32_t end = load32(_string_end + 4ull * i);
        if (end < prev || end > _string_bytes) return false;
        prev = end;
    }
    // One pass over all strings; a string is then valid UTF-8 unless its boundaries split
    // a character (string_ok). Only a batch with some invalid text pays per string.
    _data_utf8 = simdjson::validate_utf8(_data, _string_bytes);
    return true;
}

bool binary_batch::string_ok(uint32_t begin, uint32_t end) const noexcept {
    if (begin == end) return true;
    if (!_data_utf8) [[unlikely]]
        return simdjson::validate_utf8(_data + begin, end - begin);
    return !utf8_continuation(_data[begin]) &&
           (end == _string_bytes || !utf8_continuation(_data[end]));
}

void binary_batch::fill_invalid_batch(std::string_view payload, const parse_config& config,
                                      event_slot& slot) noexcept {
    const uint32_t n = uint32_t(std::min<size_t>(payload.size(), config.event_bytes_max));
    if (n > 0) std::memcpy(slot.data(), payload.data(), n); // an empty view's data() may be null
    slot.raw_len = slot.data_used = n;
    slot.raw_len_orig = uint32_t(std::min<size_t>(payload.size(), UINT32_MAX));
    slot.event_id = slot.user_id = slot.event_type = slot.page = field_ref{};
    slot.time_off = processing::no_offset;
    slot.has_event_id = 0;
    slot.event_time_ms = processing::no_time;
    dead_letter(slot, dead_letter_reason::parse_error);
}

void binary_batch::parse_event(uint32_t i, const parse_config& config, int64_t now_ms,
                               event_slot& slot) const noexcept {
    const uint8_t* rec = _records + uint64_t(i) * binary_record_bytes;
    const int64_t ts = load64(rec);
    const uint16_t flags = load16(rec + 28);
    slot.event_id = slot.user_id = slot.event_type = slot.page = field_ref{};
    slot.time_off = processing::no_offset;
    slot.has_event_id = 0;
    slot.event_time_ms = processing::no_time;

    uint32_t begin[fields], len[fields];
    bool present[fields];
    bool bad = (flags & ~binary_flag_timestamp) != 0 || load16(rec + 30) != 0;
    uint64_t canonical = binary_canonical_header_bytes;
    for (int f = 0; f < fields; ++f) {
        const uint32_t idx = load32(rec + 8 + 4 * f);
        present[f] = idx != binary_absent;
        begin[f] = len[f] = 0;
        if (!present[f]) continue;
        if (idx >= _strings) [[unlikely]] {
            bad = true;
            continue;
        }
        const uint32_t end = load32(_string_end + 4ull * idx);
        begin[f] = idx == 0 ? 0 : load32(_string_end + 4ull * (idx - 1));
        len[f] = end - begin[f];
        bad = bad || !string_ok(begin[f], end);
        canonical += len[f];
    }
    char* d = slot.data();
    if (bad) [[unlikely]] {
        // No canonical form without valid fields: keep the record as received.
        std::memcpy(d, rec, binary_record_bytes);
        slot.raw_len = slot.raw_len_orig = slot.data_used = binary_record_bytes;
        dead_letter(slot, dead_letter_reason::parse_error);
        return;
    }

    // The canonical form, cut at event_bytes_max (only an oversize event is cut).
    const uint32_t limit = config.event_bytes_max;
    const bool oversize = canonical > limit;
    char header[binary_canonical_header_bytes];
    header[0] = char(binary_batch_magic[0]);
    header[1] = char(binary_version);
    store16(header + 2, flags);
    std::memcpy(header + 4, &ts, sizeof ts);
    for (int f = 0; f < fields; ++f)
        store16(header + 12 + 2 * f, present[f]
                                         ? uint16_t(std::min<uint32_t>(len[f], canonical_len_max))
                                         : canonical_absent);
    uint32_t off = std::min<uint32_t>(binary_canonical_header_bytes, limit);
    std::memcpy(d, header, off);
    field_ref refs[fields];
    for (int f = 0; f < fields; ++f) {
        refs[f] = field_ref{off, len[f]};
        const uint32_t n = std::min<uint32_t>(len[f], limit - off);
        std::memcpy(d + off, _data + begin[f], n);
        off += n;
    }
    slot.raw_len = slot.data_used = off;
    slot.raw_len_orig = uint32_t(std::min<uint64_t>(canonical, UINT32_MAX));
    if (oversize) [[unlikely]] {
        dead_letter(slot, dead_letter_reason::oversize);
        return;
    }
    slot.event_id = refs[0];
    slot.user_id = refs[1];
    slot.event_type = refs[2];
    slot.page = refs[3];
    slot.has_event_id = present[0];
    if (!(flags & binary_flag_timestamp)) [[unlikely]]
        return dead_letter(slot, dead_letter_reason::missing_timestamp);
    if (ts < binary_time_min_ms || ts > binary_time_max_ms) [[unlikely]]
        return dead_letter(slot, dead_letter_reason::bad_timestamp);
    if (ts > now_ms + config.max_future_skew_ms) [[unlikely]]
        return dead_letter(slot, dead_letter_reason::future_timestamp);
    slot.kind = slot_kind::event;
    slot.event_time_ms = ts;
    // The canonical form's timestamp_ms: the store cuts it out of `raw` there.
    slot.time_off = binary_canonical_time_offset;
    slot.id = slot.has_event_id ? processing::identity_of_event_id(slot.field(slot.event_id))
                                : processing::identity_of_bytes(slot.raw());
}

} // namespace sluice::dataplane
