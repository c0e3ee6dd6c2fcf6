// delta_bitpack_i64 (id 9, format 3): varint zz(v[0]), then the rows - 1 deltas
// v[i] - v[i-1] (wrapping) bit-packed in blocks of 64 with a frame of reference
// (bitpack.h). Every i64 column: event times rise by a few ms, so a block of deltas
// packs into a few bits per row, without a branch per value.
#include "storage/format/bitpack.h"
#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format::delta_bitpack_i64 {

size_t encode(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept {
    if (rows == 0) return 0;
    const uint64_t* v = c.fixed.data();
    size_t n = put_varint(out, zigzag(int64_t(v[0])));
    return n + bitpack::pack(rows - 1, [v](size_t i) { return v[i + 1] - v[i]; }, out + n);
}

const char* decode(decode_args& a) {
    if (a.rows == 0) return nullptr;
    uint64_t* out = fixed_values(a.batch.col(a.col), a.rows);
    uint64_t first;
    if (!get_varint(a.p, a.end, first)) return "varint truncated";
    out[0] = uint64_t(unzigzag(first));
    if (const char* bad = bitpack::unpack(a.p, a.end, out + 1, a.rows - 1)) return bad;
    // Prefix sum of the deltas (wrapping).
    for (uint32_t r = 1; r < a.rows; ++r)
        out[r] += out[r - 1];
    return nullptr;
}

} // namespace sluice::storage::format::delta_bitpack_i64
