// plain_u8 (id 4): one byte per row. Every u8 column.
#include "storage/format/encoding.h"

namespace sluice::storage::format::plain_u8 {

size_t encode(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept {
    for (uint32_t r = 0; r < rows; ++r)
        out[r] = uint8_t(c.fixed[r]);
    return rows;
}

const char* decode(decode_args& a) {
    if (size_t(a.end - a.p) != a.rows) return "plain u8 length mismatch";
    uint64_t* v = fixed_values(a.batch.col(a.col), a.rows);
    for (uint32_t r = 0; r < a.rows; ++r)
        v[r] = a.p[r];
    a.p += a.rows;
    return nullptr;
}

} // namespace sluice::storage::format::plain_u8
