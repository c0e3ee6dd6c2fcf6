#include "storage/format/block_encoder.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/assert.h"
#include "storage/format/bitpack.h"
#include "storage/format/bytes.h"

namespace sluice::storage::format {
namespace {

// Raw-chunk bound for one column of a full batch, validity bitmap included. For strings
// it covers every candidate encoding the encoder may write into its scratch.
size_t column_bound(const column_def& c, uint32_t rows, size_t string_bytes) noexcept {
    size_t b = c.nullable ? bitmap_bytes(rows) : 0;
    switch (c.type) {
    case column_type::i64: return b + 10 + bitpack::bytes_max(rows);
    case column_type::u64: return b + size_t(rows) * 8; // varint is chosen only when smaller
    case column_type::f64: return b + size_t(rows) * 8;
    case column_type::u8: return b + rows;
    case column_type::string:
    case column_type::bytes:
        return b + string_bytes + size_t(rows) * 16 + 64 + bitpack::bytes_max(rows);
    }
    return 0;
}

bool has_strings(const table_schema& schema) noexcept {
    return std::any_of(schema.columns.begin(), schema.columns.end(),
                       [](const column_def& c) { return is_variable(c.type); });
}

bool has_refs(const table_schema& schema) noexcept {
    return std::any_of(schema.columns.begin(), schema.columns.end(),
                       [](const column_def& c) { return !c.refs.empty(); });
}

size_t write_validity(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept {
    if (!c.nullable) return 0;
    const size_t nb = bitmap_bytes(rows);
    std::memset(out, 0, nb);
    for (uint32_t r = 0; r < rows; ++r)
        out[r >> 3] |= uint8_t(c.valid[r] << (r & 7));
    return nb;
}

void set_time_range(const column_batch& batch, int tc, block_header& h) noexcept {
    if (tc < 0) {
        // No time column: never pruned by time.
        h.min_time_ms = std::numeric_limits<int64_t>::min();
        h.max_time_ms = std::numeric_limits<int64_t>::max();
        return;
    }
    h.min_time_ms = std::numeric_limits<int64_t>::max();
    h.max_time_ms = std::numeric_limits<int64_t>::min();
    for (uint32_t r = 0; r < h.rows; ++r) {
        int64_t t = batch.i64_at(tc, r);
        h.min_time_ms = std::min(h.min_time_ms, t);
        h.max_time_ms = std::max(h.max_time_ms, t);
    }
}

} // namespace

block_encoder::block_encoder(const table_schema& schema, uint32_t rows_max, size_t string_bytes_max,
                             compression comp)
    : _schema(&schema), _rows_max(rows_max), _dict(has_strings(schema) ? rows_max : 0),
      _skeletons(has_refs(schema) ? rows_max : 0), _compressor(comp) {
    SLUICE_ASSERT(rows_max > 0);
    SLUICE_ASSERT(string_bytes_max < (size_t(1) << 31));
    size_t payload = 0, scratch = 0;
    for (const auto& c : schema.columns) {
        size_t b = column_bound(c, rows_max, string_bytes_max);
        payload += chunk_header_bytes + b;
        scratch = std::max(scratch, b);
        SLUICE_ASSERT(c.refs.size() <= refs_max);
    }
    _block_bytes_max = block_bytes(std::max(payload, footer_payload_bytes(schema.columns.size())));
    _scratch.resize(std::max<size_t>(scratch, 16));
    _stats.resize(schema.columns.size());
}

block_header block_encoder::encode(const column_batch& batch, uint64_t block_index,
                                   uint8_t* out) noexcept {
    SLUICE_ASSERT(batch.rows() <= _rows_max);
    SLUICE_DASSERT(batch.schema().columns.size() == _schema->columns.size());
    block_header h;
    h.rows = batch.rows();
    h.columns = uint32_t(_schema->columns.size());
    h.block_index = block_index;
    set_time_range(batch, _schema->time_column, h);
    uint8_t* payload = out + block_header_bytes;
    uint8_t* p = payload;
    for (int c = 0; c < int(h.columns); ++c)
        p += encode_column(batch, c, p);
    h.payload_bytes = uint64_t(p - payload);
    h.payload_xxh3 = checksum(payload, h.payload_bytes);
    size_t total = block_bytes(h.payload_bytes);
    SLUICE_ASSERT(total <= _block_bytes_max);
    std::memset(p, 0, out + total - p);
    write_block_header(h, out);
    return h;
}

// Writes one chunk (header + stored bytes) at out and returns its size.
size_t block_encoder::encode_column(const column_batch& batch, int col, uint8_t* out) noexcept {
    const auto& c = batch.col(col);
    const uint32_t rows = batch.rows();
    _stats[col] = stats_of(c, rows);
    uint8_t* raw = _scratch.data();
    size_t raw_len = write_validity(c, rows, raw);
    encoding enc;
    raw_len += encode_values(batch, col, raw + raw_len, enc);
    SLUICE_DASSERT(raw_len <= _scratch.size());
    chunk_header ch{enc,
                    codec::none,
                    c.nullable ? chunk_flag_validity : uint8_t(0),
                    0,
                    uint32_t(raw_len),
                    0,
                    uint32_t(_stats[col].null_count),
                    checksum(raw, raw_len)};
    ch.stored_len = uint32_t(_compressor.compress(raw, raw_len, out + chunk_header_bytes, ch.cd));
    write_chunk_header(ch, out);
    return chunk_header_bytes + ch.stored_len;
}

// The writer's choice of encoding by column type (docs/FORMAT.md, "Writer choices").
size_t block_encoder::encode_values(const column_batch& batch, int col, uint8_t* out,
                                    encoding& enc) noexcept {
    const auto& c = batch.col(col);
    const uint32_t rows = batch.rows();
    switch (c.type) {
    case column_type::i64:
        enc = encoding::delta_bitpack_i64;
        return delta_bitpack_i64::encode(c, rows, out);
    case column_type::u8: enc = encoding::plain_u8; return plain_u8::encode(c, rows, out);
    case column_type::u64:
        if (varint_u64::plan(c, rows) < size_t(rows) * 8) {
            enc = encoding::varint_u64;
            return varint_u64::encode(c, rows, out);
        }
        [[fallthrough]];
    case column_type::f64: enc = encoding::plain_u64; return plain_u64::encode(c, rows, out);
    case column_type::string:
    case column_type::bytes: return encode_strings(batch, col, out, enc);
    }
    SLUICE_ASSERT(false);
    return 0;
}

// Picks the smallest of the encodings that apply, by their raw size: ref_escaped_string for
// columns that declare refs, else dict_string, suffix_number_string or plain_string.
size_t block_encoder::encode_strings(const column_batch& batch, int col, uint8_t* out,
                                     encoding& enc) noexcept {
    const auto& c = batch.col(col);
    const uint32_t rows = batch.rows();
    const size_t plain = plain_string::plan(c, rows);
    const auto& refs = _schema->columns[col].refs;
    if (!refs.empty()) {
        // out lies in _scratch: the skeletons may use the rest of it.
        const size_t room = size_t(_scratch.data() + _scratch.size() - out);
        size_t n = _skeletons.encode(batch, col, refs, out, room);
        if (n < plain) { // not_written is never smaller
            enc = encoding::ref_escaped_string;
            return n;
        }
    } else {
        size_t dict = _dict.plan(c, rows);
        auto suffix = suffix_number_string::plan(c, rows);
        if (dict != 0 && dict < plain && dict <= suffix.total) {
            enc = encoding::dict_string;
            return _dict.encode(c, rows, out);
        }
        if (suffix.total < plain) {
            enc = encoding::suffix_number_string;
            return suffix_number_string::encode(c, rows, suffix, out);
        }
    }
    enc = encoding::plain_string;
    return plain_string::encode(c, rows, out);
}

} // namespace sluice::storage::format
