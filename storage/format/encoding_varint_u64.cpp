// varint_u64 (id 3): one varint per row. Chosen for u64 columns when the varints take
// fewer than 8 bytes a row (counts, lengths, small ids).
#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format::varint_u64 {

size_t plan(const column_batch::column& c, uint32_t rows) noexcept {
    size_t n = 0;
    for (uint32_t r = 0; r < rows; ++r)
        n += varint_size(c.fixed[r]);
    return n;
}

size_t encode(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept {
    size_t n = 0;
    for (uint32_t r = 0; r < rows; ++r)
        n += put_varint(out + n, c.fixed[r]);
    return n;
}

const char* decode(decode_args& a) {
    uint64_t* v = fixed_values(a.batch.col(a.col), a.rows);
    for (uint32_t r = 0; r < a.rows; ++r)
        if (!get_varint(a.p, a.end, v[r])) return "varint truncated";
    return nullptr;
}

} // namespace sluice::storage::format::varint_u64
