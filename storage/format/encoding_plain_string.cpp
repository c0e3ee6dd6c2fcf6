// plain_string (id 5): per row a varint length and the bytes. The fallback of string and
// bytes columns, and the size every other string encoding must beat.
#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format::plain_string {

size_t plan(const column_batch::column& c, uint32_t rows) noexcept {
    size_t n = 0;
    uint32_t begin = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        n += varint_size(c.offsets[r] - begin) + (c.offsets[r] - begin);
        begin = c.offsets[r];
    }
    return n;
}

size_t encode(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept {
    size_t n = 0;
    uint32_t begin = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        uint32_t end = c.offsets[r];
        n += put_varint(out + n, end - begin);
        if (end != begin) std::memcpy(out + n, c.arena.data() + begin, end - begin);
        n += end - begin;
        begin = end;
    }
    return n;
}

const char* decode(decode_args& a) {
    const uint8_t *p = a.p, *const end = a.end; // copies: see encoding.h
    string_sink out(a.batch.col(a.col), a.rows, size_t(end - p));
    for (uint32_t r = 0; r < a.rows; ++r) {
        uint64_t n;
        if (!get_varint(p, end, n) || uint64_t(end - p) < n) return "string truncated";
        if (!out.append(p, n)) return too_long;
        p += n;
        out.end_row(r);
    }
    a.p = p;
    return out.finish();
}

} // namespace sluice::storage::format::plain_string
