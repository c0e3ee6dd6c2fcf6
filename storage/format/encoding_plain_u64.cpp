// plain_u64 (id 1): 8 little-endian bytes per row. u64 columns whose varints would take
// 8 bytes a row or more, and f64 columns (their IEEE 754 bits).
#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format::plain_u64 {

size_t encode(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept {
    for (uint32_t r = 0; r < rows; ++r)
        put<uint64_t>(out + 8 * size_t(r), c.fixed[r]);
    return size_t(rows) * 8;
}

const char* decode(decode_args& a) {
    if (size_t(a.end - a.p) != size_t(a.rows) * 8) return "plain u64 length mismatch";
    uint64_t* v = fixed_values(a.batch.col(a.col), a.rows);
    for (uint32_t r = 0; r < a.rows; ++r, a.p += 8)
        v[r] = get<uint64_t>(a.p);
    return nullptr;
}

} // namespace sluice::storage::format::plain_u64
