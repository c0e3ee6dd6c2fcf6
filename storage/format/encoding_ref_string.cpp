// ref_string (id 7): u8 k, k x u16 referenced column index, then per row a varint length
// and either 0 + the value verbatim, or a skeleton: the value with the text of up to k
// referenced columns of the same row cut out, each replaced by its marker byte (1 + its
// index in the list). events.raw refers to the event's own fields and time, so the JSON
// keeps only what no column holds. Chosen for columns whose schema declares references,
// when smaller than plain_string.
#include <charconv>

#include "storage/format/bytes.h"
#include "storage/format/encoding.h"
#include "storage/format/headers.h"

namespace sluice::storage::format::ref_string {
namespace {

// Text of a referenced value as ref_string stores it: i64 as decimal, strings as is.
// buf holds at least 20 bytes.
std::string_view ref_text(const column_batch& batch, int col, uint32_t row, char* buf) noexcept {
    if (batch.col(col).type == column_type::i64) {
        auto r = std::to_chars(buf, buf + 20, batch.i64_at(col, row));
        return {buf, size_t(r.ptr - buf)};
    }
    return batch.string_at(col, row);
}

// Markers are the bytes 1..refs_max; a value holding any byte <= refs_max is stored
// verbatim behind a 0 byte instead.
inline bool has_marker_bytes(std::string_view s) noexcept {
    uint8_t any = 0;
    for (char ch : s)
        any |= uint8_t(uint8_t(ch) <= refs_max);
    return any != 0;
}

struct ref_span {
    uint32_t pos;
    uint32_t len;
    uint8_t marker;
};

inline bool overlaps(const ref_span* spans, uint32_t n, size_t pos, size_t len) noexcept {
    for (uint32_t i = 0; i < n; ++i)
        if (pos < spans[i].pos + spans[i].len && spans[i].pos < pos + len) return true;
    return false;
}

// The first occurrence of needle in s that overlaps no chosen span, preferring one
// between double quotes (a JSON string value) over a bare one; npos when none.
size_t find_ref(std::string_view s, std::string_view needle, const ref_span* spans,
                uint32_t n) noexcept {
    size_t bare = std::string_view::npos;
    for (size_t from = 0;;) {
        size_t p = s.find(needle, from);
        if (p == std::string_view::npos) return bare;
        from = p + 1;
        if (overlaps(spans, n, p, needle.size())) continue;
        if (p > 0 && s[p - 1] == '"' && p + needle.size() < s.size() && s[p + needle.size()] == '"')
            return p;
        if (bare == std::string_view::npos) bare = p;
    }
}

// Writes row r's value s as a skeleton (varint length, bytes) and returns its size.
size_t write_skeleton(const column_batch& batch, const std::vector<int>& refs, uint32_t r,
                      std::string_view s, uint8_t* out) noexcept {
    char numbuf[32];
    ref_span spans[refs_max];
    uint32_t found = 0;
    size_t cut = 0;
    for (uint32_t k = 0; k < refs.size(); ++k) {
        if (batch.is_null(refs[k], r)) continue;
        std::string_view t = ref_text(batch, refs[k], r, numbuf);
        if (t.size() < ref_value_bytes_min) continue;
        size_t p = find_ref(s, t, spans, found);
        if (p == std::string_view::npos) continue;
        // Keep spans sorted by position (at most refs_max: insertion sort).
        uint32_t at = found++;
        while (at > 0 && spans[at - 1].pos > p) {
            spans[at] = spans[at - 1];
            --at;
        }
        spans[at] = {uint32_t(p), uint32_t(t.size()), uint8_t(k + 1)};
        cut += t.size() - 1;
    }
    size_t n = put_varint(out, s.size() - cut);
    size_t from = 0;
    for (uint32_t i = 0; i < found; ++i) {
        std::memcpy(out + n, s.data() + from, spans[i].pos - from);
        n += spans[i].pos - from;
        out[n++] = spans[i].marker;
        from = spans[i].pos + spans[i].len;
    }
    std::memcpy(out + n, s.data() + from, s.size() - from);
    return n + s.size() - from;
}

} // namespace

size_t encode(const column_batch& batch, int col, const std::vector<int>& refs,
              uint8_t* out) noexcept {
    const auto& c = batch.col(col);
    size_t n = 0;
    out[n++] = uint8_t(refs.size());
    for (int r : refs) {
        put<uint16_t>(out + n, uint16_t(r));
        n += 2;
    }
    for (uint32_t r = 0; r < batch.rows(); ++r) {
        std::string_view s = value_at(c, r);
        if (!has_marker_bytes(s)) {
            n += write_skeleton(batch, refs, r, s, out + n);
            continue;
        }
        n += put_varint(out + n, s.size() + 1);
        out[n++] = 0;
        std::memcpy(out + n, s.data(), s.size());
        n += s.size();
    }
    return n;
}

namespace {

// The header: k, then k referenced columns, each earlier than this one.
const char* read_refs(decode_args& a, int* refs, uint32_t& nrefs) {
    if (a.p >= a.end) return "ref header truncated";
    nrefs = *a.p++;
    if (nrefs == 0 || nrefs > refs_max || uint64_t(a.end - a.p) < 2 * nrefs)
        return "ref header out of range";
    for (uint32_t k = 0; k < nrefs; ++k, a.p += 2) {
        uint16_t rc = get<uint16_t>(a.p);
        if (rc >= a.col || !ref_type_ok(a.batch.col(rc).type)) return "ref to a later column";
        refs[k] = rc;
    }
    return nullptr;
}

// Appends row r's value, rebuilt from its skeleton s of n bytes.
const char* expand(decode_args& a, const int* refs, uint32_t nrefs, uint32_t r, const uint8_t* s,
                   size_t n, string_sink& out) {
    if (n > 0 && s[0] == 0) return out.append(s + 1, n - 1) ? nullptr : too_long;
    char numbuf[32];
    size_t from = 0;
    for (size_t i = 0; i < n; ++i) {
        if (s[i] > refs_max) continue;
        if (s[i] == 0 || s[i] > nrefs) return "bad marker in skeleton";
        const int rc = refs[s[i] - 1];
        if (a.batch.is_null(rc, r)) return "skeleton refers to a null";
        std::string_view t = ref_text(a.batch, rc, r, numbuf);
        if (!out.append(s + from, i - from) || !out.append(t.data(), t.size())) return too_long;
        from = i + 1;
    }
    return out.append(s + from, n - from) ? nullptr : too_long;
}

} // namespace

const char* decode(decode_args& a) {
    string_sink out(a.batch.col(a.col), a.rows, size_t(a.end - a.p));
    int refs[refs_max];
    uint32_t nrefs;
    if (const char* bad = read_refs(a, refs, nrefs)) return bad;
    const uint8_t *p = a.p, *const end = a.end; // copies: see encoding.h
    for (uint32_t r = 0; r < a.rows; ++r) {
        uint64_t n;
        if (!get_varint(p, end, n) || uint64_t(end - p) < n) return "skeleton truncated";
        const uint8_t* s = p;
        p += n;
        if (const char* bad = expand(a, refs, nrefs, r, s, n, out)) return bad;
        out.end_row(r);
    }
    a.p = p;
    return out.finish();
}

} // namespace sluice::storage::format::ref_string
