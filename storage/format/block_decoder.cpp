#include "storage/format/block_decoder.h"

#include <string>

#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format {
namespace {

error corrupt(std::string what) {
    return make_error(errc::corrupt, std::move(what));
}

error bad_column(const column_def& def, const char* what) {
    return corrupt("column " + def.name + ": " + what);
}

// Reads a nullable column's validity bitmap; returns its size, or 0 with `bad` set.
size_t read_validity(const uint8_t* raw, uint32_t rows, uint32_t nulls, column_batch::column& c,
                     const char*& bad) {
    if (c.valid.size() < rows) c.valid.resize(rows);
    uint32_t counted = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        c.valid[r] = (raw[r >> 3] >> (r & 7)) & 1;
        counted += c.valid[r] ^ 1;
    }
    if (counted != nulls) bad = "null count mismatch";
    return bitmap_bytes(rows);
}

} // namespace

result<void> block_decoder::decode(const block_header& h, const uint8_t* payload,
                                   column_batch& out) {
    if (h.kind != block_kind::data) return corrupt("not a data block");
    if (checksum(payload, h.payload_bytes) != h.payload_xxh3)
        return corrupt("block " + std::to_string(h.block_index) + ": payload checksum mismatch");
    if (h.columns != out.schema().columns.size())
        return corrupt("block " + std::to_string(h.block_index) + ": column count mismatch");
    out.clear();
    const uint8_t* p = payload;
    const uint8_t* end = payload + h.payload_bytes;
    for (int col = 0; col < int(h.columns); ++col) {
        if (end - p < ptrdiff_t(chunk_header_bytes)) return corrupt("chunk header truncated");
        const chunk_header ch = read_chunk_header(p);
        p += chunk_header_bytes;
        if (uint64_t(end - p) < ch.stored_len) return corrupt("chunk data truncated");
        SLUICE_TRY(decode_chunk(ch, p, h.rows, out, col));
        p += ch.stored_len;
    }
    if (p != end) return corrupt("trailing bytes after the last chunk");
    out.set_rows(h.rows);
    return ok_result();
}

// Checks the chunk against its column, decompresses it, checks its raw checksum, then
// reads the validity bitmap and hands the rest to the encoding's decoder.
result<void> block_decoder::decode_chunk(const chunk_header& ch, const uint8_t* stored,
                                         uint32_t rows, column_batch& out, int col) {
    const auto& def = out.schema().columns[col];
    if (ch.raw_len > chunk_raw_bytes_max) return corrupt("chunk length out of range");
    if (ch.flags != (def.nullable ? chunk_flag_validity : 0) || ch.reserved != 0)
        return corrupt("column " + def.name + ": chunk flags do not match the column");
    // Every encoding spends some raw bytes per row: the densest, a constant column in
    // delta_bitpack_i64, 2 bytes (a bit-packed block's base and width) per 64 rows. A row
    // count beyond 64 per raw byte is refused before the columns grow to it.
    if (uint64_t(rows) > uint64_t(ch.raw_len) * 64)
        return bad_column(def, "more rows than the chunk can hold");
    auto raw_or = _decompressor.raw(ch, stored);
    if (!raw_or) return raw_or.err();
    const uint8_t* raw = *raw_or;
    if (checksum(raw, ch.raw_len) != ch.raw_xxh3) return bad_column(def, "chunk checksum mismatch");
    auto& c = out.col(col);
    const char* bad = nullptr;
    size_t skip = 0;
    if (def.nullable) {
        if (ch.raw_len < bitmap_bytes(rows)) return bad_column(def, "validity truncated");
        skip = read_validity(raw, rows, ch.null_count, c, bad);
    } else if (ch.null_count != 0) {
        bad = "nulls in a column that has none";
    }
    if (bad) return bad_column(def, bad);
    // The ref_string decoder reads earlier columns of this row: the rows are set.
    out.set_rows(rows);
    const encoding_ops* ops = find_encoding(ch.enc);
    if (!ops) return bad_column(def, "unknown encoding");
    if (!ops->fits(c.type)) return bad_column(def, "encoding does not match the column type");
    decode_args a{raw + skip, raw + ch.raw_len, rows, out, col};
    if ((bad = ops->decode(a))) return bad_column(def, bad);
    if (a.p != a.end) return bad_column(def, "trailing bytes");
    return ok_result();
}

} // namespace sluice::storage::format
