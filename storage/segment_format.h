#pragma once
// The on-disk segment format, version 2 (docs/FORMAT.md describes it byte by byte).
//
// A segment = a 4096-byte file header, then blocks, each a 64-byte block header plus a
// payload of one chunk per column, padded to a multiple of 4096 bytes so that every
// block can be written with O_DIRECT from an aligned buffer. A cleanly closed segment
// ends with a footer block (row count, min/max time, per-column statistics). All
// integers are little-endian.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "storage/column_batch.h"
#include "storage/schema.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace sluice::storage::format {

static_assert(std::endian::native == std::endian::little, "the format is little-endian");

inline constexpr uint32_t version = 2;
inline constexpr char file_magic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'S', 'G'};
inline constexpr uint32_t block_magic = 0x4b424c53; // "SLBK" read as little-endian bytes
inline constexpr size_t page_bytes = 4096;           // block alignment (O_DIRECT)
inline constexpr size_t file_header_bytes = 4096;
inline constexpr size_t block_header_bytes = 64;
inline constexpr size_t chunk_header_bytes = 24;
inline constexpr size_t footer_fixed_bytes = 48;      // footer payload before the column stats
inline constexpr size_t footer_column_bytes = 32;     // per column
inline constexpr size_t name_bytes_max = 255;      // table, column and writer names
inline constexpr uint32_t dict_entries_max = 65536; // distinct strings in a dictionary chunk
inline constexpr uint32_t refs_max = 8;             // columns one ref_string chunk refers to
inline constexpr uint32_t ref_value_bytes_min = 2;  // shorter values are not worth a marker
// A decoder refuses chunks larger than this (a corrupt length must not allocate GiBs).
inline constexpr uint64_t chunk_raw_bytes_max = 1ull << 31;
inline constexpr uint8_t column_flag_nullable = 1; // file header, per column
inline constexpr uint8_t chunk_flag_validity = 1;  // chunk header: a validity bitmap leads

enum class block_kind : uint32_t { data = 1, footer = 2 };

enum class encoding : uint8_t {
    plain_u64 = 1,            // 8 bytes per row
    delta_varint_i64 = 2,     // zigzag(v[0]), zigzag(v[i] - v[i-1])... as LEB128 varints
    varint_u64 = 3,           // LEB128 varint per row
    plain_u8 = 4,             // 1 byte per row
    plain_string = 5,         // per row: varint length, bytes
    dict_string = 6,          // varint n, n x (varint length, bytes), rows x index (u8 or u16)
    ref_string = 7,           // skeletons that refer to other columns of the row
    suffix_number_string = 8, // text prefixes + trailing decimal numbers, delta-coded
};

enum class codec : uint8_t { none = 0, zstd = 1, lz4 = 2 };

// How the writer compresses chunks. level: zstd's level (-7..19), lz4's acceleration
// (1..65537; 1 = best ratio).
struct compression {
    codec kind = codec::zstd;
    int level = 1;
};

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

// The padded on-disk size of a block with this payload.
constexpr size_t block_bytes(uint64_t payload_bytes) noexcept {
    return (block_header_bytes + payload_bytes + page_bytes - 1) / page_bytes * page_bytes;
}

void write_block_header(const block_header& h, uint8_t* out) noexcept;
// false when the magic or the header checksum is wrong (torn or corrupt).
bool read_block_header(const uint8_t* in, block_header& h) noexcept;

struct segment_meta {
    table_schema schema;
    std::string writer_name;
    uint64_t seq = 0;
};

// Fills out[0, file_header_bytes). Fails when names or columns do not fit.
result<void> write_file_header(const segment_meta& meta, uint8_t* out);
result<segment_meta> read_file_header(const uint8_t* in, size_t len);

// Per-column statistics over the non-null values of a block or a segment. Numbers:
// min/max of the values (i64 as two's complement bits, compared signed); strings and
// bytes: min/max length in bytes, value_bytes their total. All zero when no values.
struct column_stats {
    uint64_t null_count = 0;
    uint64_t values = 0; // non-null values
    uint64_t min = 0;
    uint64_t max = 0;
    uint64_t value_bytes = 0;
};
void merge_stats(column_type type, column_stats& into, const column_stats& from) noexcept;

struct footer {
    uint64_t rows = 0;
    uint64_t data_blocks = 0;
    int64_t min_time_ms = 0;
    int64_t max_time_ms = 0;
    uint64_t data_end_offset = 0;     // where the footer block starts
    std::vector<column_stats> columns; // one per schema column
};
constexpr size_t footer_payload_bytes(size_t columns) noexcept {
    return footer_fixed_bytes + columns * footer_column_bytes;
}
// Writes a whole footer block (header + payload + zero padding) into out, which must
// hold block_bytes(footer_payload_bytes(f.columns.size())) bytes; returns its size.
size_t write_footer_block(const footer& f, uint64_t block_index, uint8_t* out) noexcept;
bool read_footer_payload(const uint8_t* payload, size_t len, footer& f);

// Encodes column_batches into blocks. Owns every buffer it needs, sized at construction
// for the largest batch it will see, so encode() never allocates (hot path).
class block_encoder {
  public:
    block_encoder(const table_schema& schema, uint32_t rows_max, size_t string_bytes_max,
                  compression comp);
    ~block_encoder();
    block_encoder(const block_encoder&) = delete;
    block_encoder& operator=(const block_encoder&) = delete;

    // Bytes a block of a full batch may take, padded: size the output buffer to this.
    size_t block_bytes_max() const noexcept { return _block_bytes_max; }

    // Encodes the batch into out (block header, chunks, zero padding) and returns the
    // header it wrote; block_bytes(h.payload_bytes) bytes of out are used.
    block_header encode(const column_batch& batch, uint64_t block_index, uint8_t* out) noexcept;
    // The statistics of the last encoded block, one per column.
    const std::vector<column_stats>& block_stats() const noexcept { return _stats; }

  private:
    size_t encode_column(const column_batch& batch, int col, uint8_t* out) noexcept;
    size_t encode_variable(const column_batch& batch, int col, uint8_t* out,
                           encoding& enc) noexcept;
    size_t plan_dict(const column_batch::column& c, uint32_t rows) noexcept;
    size_t write_dict(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept;
    size_t write_refs(const column_batch& batch, int col, uint8_t* out) noexcept;
    size_t compress(const uint8_t* raw, size_t raw_len, uint8_t* out, codec& cd) noexcept;

    struct dict_slot {
        uint64_t hash;
        uint32_t generation; // slots of older generations are empty: no clearing per block
        uint32_t id;
    };

    const table_schema* _schema;
    uint32_t _rows_max;
    compression _comp;
    size_t _block_bytes_max = 0;
    std::vector<uint8_t> _scratch;     // one column's raw (uncompressed) encoding
    std::vector<dict_slot> _dict_table; // open addressing, power-of-two size
    std::vector<uint32_t> _dict_first_row; // id -> first row holding that string
    std::vector<uint32_t> _row_ids;        // row -> dictionary id
    uint32_t _dict_count = 0;
    uint32_t _generation = 0;
    std::vector<column_stats> _stats;
    std::vector<uint64_t> _zstd_workspace; // 8-byte aligned, as zstd requires
    ZSTD_CCtx_s* _cctx = nullptr;
};

// Verifies and decodes blocks. Control path: it grows its buffers and the batch's
// vectors as needed (a decoded batch may hold more rows than its rows_max()).
class block_decoder {
  public:
    block_decoder();
    ~block_decoder();
    block_decoder(const block_decoder&) = delete;
    block_decoder& operator=(const block_decoder&) = delete;

    // payload = the payload_bytes bytes after the block header. Verifies the payload
    // checksum and each chunk's checksum before anything lands in out.
    result<void> decode(const block_header& h, const uint8_t* payload, column_batch& out);

  private:
    result<void> decode_column(column_batch& out, int col, encoding enc, const uint8_t* p,
                               size_t len, uint32_t rows);

    std::vector<uint8_t> _scratch;
    ZSTD_DCtx_s* _dctx = nullptr;
};

uint64_t checksum(const void* data, size_t len) noexcept; // XXH3-64, seed 0

// The chunk headers of a data block's payload (for inspection: sluice-read --layout).
struct chunk_info {
    encoding enc;
    codec cd;
    uint32_t raw_len;
    uint32_t stored_len;
    uint32_t null_count;
};
result<std::vector<chunk_info>> read_chunk_infos(const block_header& h, const uint8_t* payload);

// Text of a referenced value as ref_string stores it: i64 as decimal, strings as is.
// Returns the length written to buf (>= 20 bytes) or a view of the string.
std::string_view ref_text(const column_batch& batch, int col, uint32_t row, char* buf) noexcept;

} // namespace sluice::storage::format
