#pragma once
// The file header (schema, writer, sequence number) and the 64-byte block header.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "storage/format/layout.h"
#include "storage/schema.h"

namespace sluice::storage::format {

uint64_t checksum(const void* data, size_t len) noexcept; // XXH3-64, seed 0

struct block_header {
    uint32_t magic = block_magic;
    block_kind kind = block_kind::data;
    uint32_t rows = 0;
    uint32_t columns = 0;
    int64_t min_time_ms = 0;
    int64_t max_time_ms = 0;
    uint64_t payload_bytes = 0;
    uint64_t payload_xxh3 = 0;
    uint64_t block_index = 0; // position in the segment, from 0; the footer's is the count
    // header_xxh3 (XXH3-64 of the 56 bytes before it) is computed on write, checked on read.
};

void write_block_header(const block_header& h, uint8_t* out) noexcept;
// false when the magic or the header checksum is wrong (torn or corrupt).
bool read_block_header(const uint8_t* in, block_header& h) noexcept;

struct segment_meta {
    table_schema schema;
    std::string writer_name;
    uint64_t seq = 0;
    // The row offset of the segment's first row in its writer's log (docs/FORMAT.md "Row
    // offsets"): kept in a checksummed extension after the header's checksum, which
    // readers that predate it skip. nullopt: a segment written before it.
    std::optional<uint64_t> first_row_offset;
};

// The row-offset extension: at content_len + 8, u32 magic, u32 length (8), u64 first row
// offset, u64 XXH3-64 of the 16 bytes before it.
inline constexpr uint32_t row_offset_magic = 0x4f52534c; // "LSRO" read as little-endian
inline constexpr size_t row_offset_extension_bytes = 24;

// Fills out[0, file_header_bytes). Fails when names or columns do not fit.
result<void> write_file_header(const segment_meta& meta, uint8_t* out);
result<segment_meta> read_file_header(const uint8_t* in, size_t len);

// Column references (ref_string) name earlier i64, string or bytes columns.
constexpr bool ref_type_ok(column_type t) noexcept {
    return t == column_type::i64 || is_variable(t);
}

} // namespace sluice::storage::format
