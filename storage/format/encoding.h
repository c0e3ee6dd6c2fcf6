#pragma once
// The encodings, one file each (encoding_<name>.cpp), each holding its plan (the size it
// would take, so the block encoder can pick the smallest), its encode and its decode.
// The block encoder picks and calls them by column type; the block decoder looks them
// up by id with find_encoding() (the table in encodings.cpp). Internal to storage/format/.
//
// Encoders write the raw bytes of every row (a null row holds 0 or "") and never
// allocate. Decoders read from [p, end), advance p past what they used, and return
// nullptr or what is wrong (the block decoder names the column and checks that nothing
// is left over). String decoders walk a local copy of p: the appends' memcpy may alias
// decode_args, which would make the compiler reload a.p every row.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "storage/column_batch.h"
#include "storage/format/layout.h"

namespace sluice::storage::format {

inline std::string_view value_at(const column_batch::column& c, uint32_t r) noexcept {
    uint32_t begin = r == 0 ? 0 : c.offsets[r - 1];
    return {c.arena.data() + begin, c.offsets[r] - begin};
}

struct decode_args {
    const uint8_t* p;
    const uint8_t* end;
    uint32_t rows;
    column_batch& batch; // columns before `col` are decoded (ref_string reads them)
    int col;
};

// The shapes the encodings' functions share (each file defines the ones it needs).
using plan_fn = size_t(const column_batch::column& c, uint32_t rows) noexcept;
using encode_fn = size_t(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept;
using decode_fn = const char*(decode_args& a);

// What the block decoder knows of each encoding.
struct encoding_ops {
    const char* name;
    bool (*fits)(column_type t); // the column types it may encode
    decode_fn* decode;
};
// The encoding with this id, or nullptr for an unknown one.
const encoding_ops* find_encoding(encoding e) noexcept;

// Fixed-width values: c.fixed sized for `rows` values.
inline uint64_t* fixed_values(column_batch::column& c, uint32_t rows) {
    if (c.fixed.size() < rows) c.fixed.resize(rows);
    return c.fixed.data();
}

// Appends decoded strings to a column's arena, growing it as needed (only plain strings
// never expand, so the arena starts at the chunk's size).
class string_sink {
  public:
    string_sink(column_batch::column& c, uint32_t rows, size_t chunk_len) : _c(c) {
        if (c.offsets.size() < rows) c.offsets.resize(rows);
        if (c.arena.size() < chunk_len) c.arena.resize(chunk_len);
    }
    // false when the column would exceed 4 GiB of strings.
    bool append(const void* s, size_t n) {
        if (n == 0) return true;
        if (_c.arena.size() - _used < n) _c.arena.resize(std::max(_c.arena.size() * 2, _used + n));
        std::memcpy(_c.arena.data() + _used, s, n);
        _used += n;
        return _used <= std::numeric_limits<uint32_t>::max();
    }
    void end_row(uint32_t r) noexcept { _c.offsets[r] = uint32_t(_used); }
    const char* finish() noexcept {
        _c.arena_used = _used;
        return nullptr;
    }

  private:
    column_batch::column& _c;
    size_t _used = 0;
};
inline constexpr const char* too_long = "strings exceed 4 GiB";

namespace plain_u64 { // u64 values that do not shrink as varints; f64 bits
encode_fn encode;
decode_fn decode;
} // namespace plain_u64
namespace delta_varint_i64 { // format 2's i64 encoding: read, no longer written
decode_fn decode;
} // namespace delta_varint_i64
namespace delta_bitpack_i64 {
encode_fn encode;
decode_fn decode;
} // namespace delta_bitpack_i64
namespace varint_u64 {
plan_fn plan;
encode_fn encode;
decode_fn decode;
} // namespace varint_u64
namespace plain_u8 {
encode_fn encode;
decode_fn decode;
} // namespace plain_u8
namespace plain_string {
plan_fn plan;
encode_fn encode;
decode_fn decode;
} // namespace plain_string

namespace dict_string {
// The dictionary of one column: plan() builds it (ids per row) in buffers sized at
// construction, encode() writes it. No allocation per block.
class dictionary {
  public:
    explicit dictionary(uint32_t rows_max);
    // The encoded size, or 0 when the column has more than min(rows / 4, 65536) distinct
    // values.
    size_t plan(const column_batch::column& c, uint32_t rows) noexcept;
    // Writes the dictionary that the last plan() built, of the same column.
    size_t encode(const column_batch::column& c, uint32_t rows, uint8_t* out) const noexcept;

  private:
    struct slot {
        uint64_t hash;
        uint32_t generation; // slots of older generations are empty: no clearing per block
        uint32_t id;
    };
    std::vector<slot> _table;         // open addressing, power-of-two size
    std::vector<uint32_t> _first_row; // id -> first row holding that string
    std::vector<uint32_t> _row_ids;   // row -> id
    uint32_t _count = 0;
    uint32_t _generation = 0;
};
decode_fn decode;
} // namespace dict_string

namespace ref_string { // format 2's skeletons: read, no longer written
decode_fn decode;
} // namespace ref_string

// ref_packed_string (format 3, read only) and its format 4 successor ref_escaped_string
// share one file, encoding_ref_packed_string.cpp: the writer writes ref_escaped_string.
namespace ref_packed_string {
// How a reference's value becomes text: as is (strings; an i64 in decimal), an i64 of
// epoch milliseconds as an RFC 3339 UTC date-time to the second or to the millisecond,
// or (format 4) an i64's 8 bytes little-endian, as a binary event's canonical raw holds
// its timestamp_ms (docs/BINARY.md).
enum class rendering : uint8_t { as_is = 0, rfc3339_seconds = 1, rfc3339_millis = 2, le64 = 3 };
struct ref {
    int col;
    rendering how;
};
// Where a chunk's reference list holds the time renderings of each schema reference j
// (the list starts with the schema's references, as is), -1 for none.
struct renderings_of {
    uint32_t schema_refs = 0;
    int8_t seconds[refs_max] = {};
    int8_t millis[refs_max] = {};
    int8_t le64[refs_max] = {};
};
// Encodes a column as ref_escaped_string skeletons referring to other columns of the
// same row. Owns the lengths of a block's skeletons, sized at construction: no allocation
// per block.
class skeleton_writer {
  public:
    static constexpr size_t not_written = SIZE_MAX;
    explicit skeleton_writer(uint32_t rows_max);
    // refs: the schema's references of column `col`; room: the bytes out holds. Returns
    // the chunk's length, or not_written when it might not fit in room (escaped marker
    // bytes can make a skeleton longer than its value).
    size_t encode(const column_batch& batch, int col, const std::vector<int>& refs, uint8_t* out,
                  size_t room) noexcept;

  private:
    // The chunk's references: the schema's, then each i64 one's time renderings.
    void plan_refs(const column_batch& batch, const std::vector<int>& refs) noexcept;
    std::vector<ref> _refs;
    renderings_of _renderings;
    std::vector<uint32_t> _lengths;
};
decode_fn decode;         // id 10, format 3
decode_fn decode_escaped; // id 11, format 4
} // namespace ref_packed_string

namespace suffix_number_string {
struct plan_t {
    size_t prefix_section = 0;
    size_t total = 0;
};
plan_t plan(const column_batch::column& c, uint32_t rows) noexcept;
size_t encode(const column_batch::column& c, uint32_t rows, const plan_t& plan,
              uint8_t* out) noexcept;
decode_fn decode;
} // namespace suffix_number_string

} // namespace sluice::storage::format
