// delta_varint_i64 (id 2, format 2; read, no longer written: delta_bitpack_i64 replaced it):
// zz(v[0]), then zz(v[i] - v[i-1]) as varints.
#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format::delta_varint_i64 {

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
