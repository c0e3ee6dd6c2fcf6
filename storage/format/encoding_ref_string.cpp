// ref_string (id 7, format 2; read, no longer written: ref_packed_string replaced it):
// u8 k, k x u16 referenced column index, then per row a varint length and either 0 + the
// value verbatim, or a skeleton: the value with the text of up to k referenced columns of
// the same row cut out, each replaced by its marker byte (1 + its index in the list).
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

} // namespace

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
