#pragma once
// The segment format's constants and ids, version 4 (docs/FORMAT.md describes it byte
// by byte). A segment = a 4096-byte file header, then blocks, each a 64-byte block
// header plus a payload of one chunk per column, padded to a multiple of 4096 bytes so
// that every block can be written with O_DIRECT from an aligned buffer. A cleanly
// closed segment ends with a footer block. All integers are little-endian.
#include <bit>
#include <cstddef>
#include <cstdint>

namespace sluice::storage::format {

static_assert(std::endian::native == std::endian::little, "the format is little-endian");

inline constexpr uint32_t version = 4;           // the version this build writes
inline constexpr uint32_t version_read_min = 2; // the oldest it reads
inline constexpr char file_magic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'S', 'G'};
inline constexpr uint32_t block_magic = 0x4b424c53; // "SLBK" read as little-endian bytes
inline constexpr size_t page_bytes = 4096;          // block alignment (O_DIRECT)
inline constexpr size_t file_header_bytes = 4096;
inline constexpr size_t block_header_bytes = 64;
inline constexpr size_t chunk_header_bytes = 24;
inline constexpr size_t footer_fixed_bytes = 48;    // footer payload before the column stats
inline constexpr size_t footer_column_bytes = 32;   // per column
inline constexpr size_t name_bytes_max = 255;       // table, column and writer names
inline constexpr uint32_t dict_entries_max = 65536; // distinct strings in a dictionary chunk
inline constexpr uint32_t refs_max = 8;             // columns one ref_string chunk refers to
inline constexpr uint32_t ref_value_bytes_min = 2;  // shorter values are not worth a marker
// In a format 4 skeleton: this byte, then a literal byte 0..refs_max (bytes 1..k refer).
inline constexpr uint8_t skeleton_escape = 0;
// A decoder refuses chunks larger than this (a corrupt length must not allocate GiBs).
inline constexpr uint64_t chunk_raw_bytes_max = 1ull << 31;
inline constexpr uint8_t column_flag_nullable = 1; // file header, per column
inline constexpr uint8_t chunk_flag_validity = 1;  // chunk header: a validity bitmap leads

enum class block_kind : uint32_t { data = 1, footer = 2 };

// One file per encoding holds its plan, encode and decode: storage/format/encoding_<name>.cpp.
enum class encoding : uint8_t {
    plain_u64 = 1,            // 8 bytes per row
    delta_varint_i64 = 2,     // zigzag(v[0]), zigzag(v[i] - v[i-1])... as varints (read only)
    varint_u64 = 3,           // LEB128 varint per row
    plain_u8 = 4,             // 1 byte per row
    plain_string = 5,         // per row: varint length, bytes
    dict_string = 6,          // varint n, n x (varint length, bytes), rows x index (u8 or u16)
    ref_string = 7,           // skeletons that refer to other columns of the row (read only)
    suffix_number_string = 8, // text prefixes + trailing decimal numbers, delta-coded
    delta_bitpack_i64 = 9,    // format 3: zigzag(v[0]), deltas bit-packed in blocks of 64
    ref_packed_string = 10,   // format 3: skeletons with time renderings, packed lengths (read only)
    ref_escaped_string = 11,  // format 4: ref_packed_string with escaped literal markers and
                              // a binary (8-byte little-endian) time rendering
};

enum class codec : uint8_t { none = 0, zstd = 1, lz4 = 2 };

// How the writer compresses chunks. level: zstd's level (-7..19), lz4's acceleration
// (1..65537; 1 = best ratio).
struct compression {
    codec kind = codec::zstd;
    int level = 1;
    bool operator==(const compression&) const = default;
};

// The padded on-disk size of a block with this payload.
constexpr size_t block_bytes(uint64_t payload_bytes) noexcept {
    return (block_header_bytes + payload_bytes + page_bytes - 1) / page_bytes * page_bytes;
}

constexpr size_t footer_payload_bytes(size_t columns) noexcept {
    return footer_fixed_bytes + columns * footer_column_bytes;
}

} // namespace sluice::storage::format
