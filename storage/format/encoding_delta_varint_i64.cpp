// delta_varint_i64 (id 2): zz(v[0]), then zz(v[i] - v[i-1]) as varints. Every i64 column:
// times rise slowly, so most deltas take a byte or two.
#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format::delta_varint_i64 {

size_t encode(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept {
    size_t n = 0;
    uint64_t prev = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        // Wrapping difference: any two int64 values round-trip.
        n += put_varint(out + n, zigzag(int64_t(c.fixed[r] - prev)));
        prev = c.fixed[r];
    }
    return n;
}

const char* decode(decode_args& a) {
    uint64_t* out = fixed_values(a.batch.col(a.col), a.rows);
    uint64_t prev = 0, v;
    for (uint32_t r = 0; r < a.rows; ++r) {
        if (!get_varint(a.p, a.end, v)) return "varint truncated";
        prev += uint64_t(unzigzag(v));
        out[r] = prev;
    }
    return nullptr;
}

} // namespace sluice::storage::format::delta_varint_i64
