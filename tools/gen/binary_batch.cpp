#include "tools/gen/binary_batch.h"

#include <cstring>

namespace sluice::tools {

namespace {

template <typename T> void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T> T get(std::string_view in, size_t at) {
    T v;
    std::memcpy(&v, in.data() + at, sizeof v);
    return v;
}

} // namespace

size_t bin_batch_encoder::extra_for(const std::optional<std::string>& s) const {
    if (!s || _index.count(*s)) return 0;
    return 4 + s->size(); // a string_end entry and the bytes
}

size_t bin_batch_encoder::size_with(const bin_event& e) const {
    size_t extra = bin_record_bytes;
    // Two fields with the same new string pay for it once.
    std::map<std::string, bool> seen;
    for (const auto* f : {&e.event_id, &e.user_id, &e.event_type, &e.page, &e.metadata}) {
        if (!*f || seen.count(**f)) continue;
        seen[**f] = true;
        extra += extra_for(*f);
    }
    return _size + extra;
}

uint32_t bin_batch_encoder::intern(const std::optional<std::string>& s) {
    if (!s) return bin_absent;
    auto it = _index.find(*s);
    if (it != _index.end()) return it->second;
    _strings.push_back(*s);
    _string_bytes += s->size();
    _size += 4 + s->size();
    return _index[*s] = uint32_t(_strings.size() - 1);
}

void bin_batch_encoder::add(const bin_event& e) {
    std::string r;
    put<int64_t>(r, e.timestamp_ms.value_or(0));
    put<uint32_t>(r, intern(e.event_id));
    put<uint32_t>(r, intern(e.user_id));
    put<uint32_t>(r, intern(e.event_type));
    const uint32_t page = intern(e.page);
    put<uint32_t>(r, e.bad_index ? uint32_t(_strings.size() + 1000) : page);
    put<uint32_t>(r, intern(e.metadata));
    put<uint16_t>(r, uint16_t((e.timestamp_ms ? 1 : 0) | e.extra_flags));
    put<uint16_t>(r, 0);
    _records.push_back(std::move(r));
    _size += bin_record_bytes;
}

std::string bin_batch_encoder::finish(bool corrupt_header) {
    std::string out = "\xB1SLB";
    out += char(corrupt_header ? 2 : 1);
    out += char(0);
    put<uint16_t>(out, uint16_t(_strings.size()));
    put<uint16_t>(out, uint16_t(_records.size()));
    put<uint16_t>(out, 0);
    put<uint32_t>(out, uint32_t(_string_bytes));
    uint32_t end = 0;
    for (const auto& s : _strings)
        put<uint32_t>(out, end += uint32_t(s.size()));
    for (const auto& s : _strings)
        out += s;
    for (const auto& r : _records)
        out += r;
    *this = bin_batch_encoder();
    return out;
}

std::string bin_canonical(const bin_event& e) {
    std::string out;
    out += char(0xB1);
    out += char(1);
    put<uint16_t>(out, uint16_t((e.timestamp_ms ? 1 : 0) | e.extra_flags));
    put<int64_t>(out, e.timestamp_ms.value_or(0));
    const std::optional<std::string>* fields[] = {&e.event_id, &e.user_id, &e.event_type, &e.page,
                                                  &e.metadata};
    for (const auto* f : fields)
        put<uint16_t>(out, *f ? uint16_t(std::min<size_t>((*f)->size(), 0xFFFE)) : 0xFFFF);
    for (const auto* f : fields)
        if (*f) out += **f;
    return out;
}

std::optional<std::vector<bin_record>> bin_decode(std::string_view p) {
    if (p.size() < bin_header_bytes || p.substr(0, 4) != "\xB1SLB" || p[4] != 1 || p[5] != 0 ||
        get<uint16_t>(p, 10) != 0)
        return std::nullopt;
    const size_t strings = get<uint16_t>(p, 6), events = get<uint16_t>(p, 8);
    const size_t string_bytes = get<uint32_t>(p, 12);
    if (events == 0 ||
        p.size() != bin_header_bytes + 4 * strings + string_bytes + bin_record_bytes * events)
        return std::nullopt;
    const size_t data_at = bin_header_bytes + 4 * strings;
    std::vector<std::string> table;
    size_t begin = 0;
    for (size_t i = 0; i < strings; ++i) {
        const size_t end = get<uint32_t>(p, bin_header_bytes + 4 * i);
        if (end < begin || end > string_bytes) return std::nullopt;
        table.emplace_back(p.substr(data_at + begin, end - begin));
        begin = end;
    }
    std::vector<bin_record> out;
    const size_t records_at = data_at + string_bytes;
    for (size_t i = 0; i < events; ++i) {
        const std::string_view r = p.substr(records_at + i * bin_record_bytes, bin_record_bytes);
        bin_record rec;
        rec.record = std::string(r);
        const uint16_t flags = get<uint16_t>(r, 28);
        bool readable = (flags & ~1u) == 0 && get<uint16_t>(r, 30) == 0;
        std::optional<std::string>* fields[] = {&rec.event.event_id, &rec.event.user_id,
                                                &rec.event.event_type, &rec.event.page,
                                                &rec.event.metadata};
        for (int f = 0; f < 5; ++f) {
            const uint32_t idx = get<uint32_t>(r, 8 + 4 * f);
            if (idx == bin_absent) continue;
            if (idx >= table.size() || !valid_utf8(table[idx])) {
                readable = false;
                continue;
            }
            *fields[f] = table[idx];
        }
        if (flags & 1) rec.event.timestamp_ms = get<int64_t>(r, 0);
        rec.readable = readable;
        out.push_back(std::move(rec));
    }
    return out;
}

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = uint8_t(s[i]);
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k) {
            const auto b = uint8_t(s[i + k]);
            if ((b & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3F);
        }
        static constexpr uint32_t min_for[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n;
    }
    return true;
}

} // namespace sluice::tools
