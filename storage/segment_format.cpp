#include "storage/segment_format.h"

#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/assert.h"

namespace sluice::storage::format {
namespace {

template <typename T>
void put(uint8_t* p, T v) noexcept {
    std::memcpy(p, &v, sizeof(T));
}
template <typename T>
T get(const uint8_t* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

inline size_t put_varint(uint8_t* p, uint64_t v) noexcept {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = uint8_t(v) | 0x80;
        v >>= 7;
    }
    p[n++] = uint8_t(v);
    return n;
}

inline size_t varint_size(uint64_t v) noexcept {
    // 1 + floor(log2(v) / 7), with v|1 so that 0 takes one byte.
    return size_t(63 - std::countl_zero(v | 1)) / 7 + 1;
}

// Bounds-checked varint read: false on truncation or more than 10 bytes.
inline bool get_varint(const uint8_t*& p, const uint8_t* end, uint64_t& v) noexcept {
    v = 0;
    for (unsigned shift = 0; shift < 70 && p < end; shift += 7) {
        uint8_t b = *p++;
        v |= uint64_t(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

inline uint64_t zigzag(int64_t v) noexcept { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
inline int64_t unzigzag(uint64_t v) noexcept { return int64_t(v >> 1) ^ -int64_t(v & 1); }

error corrupt(std::string what) { return make_error(errc::corrupt, std::move(what)); }

// Raw-encoding bound for one column of a full batch.
size_t column_bound(column_type t, uint32_t rows, size_t string_bytes) noexcept {
    switch (t) {
    case column_type::i64: return size_t(rows) * 10;
    case column_type::u64: return size_t(rows) * 8; // varint is chosen only when smaller
    case column_type::f64: return size_t(rows) * 8;
    case column_type::u8: return rows;
    // Plain: varint length (<= 5) + bytes per row. A dictionary is chosen only when it
    // is smaller than plain would be, so plain bounds both.
    case column_type::string: return string_bytes + size_t(rows) * 5;
    }
    return 0;
}

size_t plain_string_bytes(const column_batch::column& c, uint32_t rows) noexcept {
    size_t n = 0;
    uint32_t begin = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        n += varint_size(c.offsets[r] - begin) + (c.offsets[r] - begin);
        begin = c.offsets[r];
    }
    return n;
}

} // namespace

uint64_t checksum(const void* data, size_t len) noexcept { return XXH3_64bits(data, len); }

void write_block_header(const block_header& h, uint8_t* out) noexcept {
    put<uint32_t>(out + 0, h.magic);
    put<uint32_t>(out + 4, uint32_t(h.kind));
    put<uint32_t>(out + 8, h.rows);
    put<uint32_t>(out + 12, h.columns);
    put<int64_t>(out + 16, h.min_time_ms);
    put<int64_t>(out + 24, h.max_time_ms);
    put<uint64_t>(out + 32, h.payload_bytes);
    put<uint64_t>(out + 40, h.payload_xxh3);
    put<uint64_t>(out + 48, h.block_index);
    put<uint64_t>(out + 56, checksum(out, 56));
}

bool read_block_header(const uint8_t* in, block_header& h) noexcept {
    if (get<uint32_t>(in) != block_magic) return false;
    if (get<uint64_t>(in + 56) != checksum(in, 56)) return false;
    h.magic = block_magic;
    h.kind = block_kind(get<uint32_t>(in + 4));
    h.rows = get<uint32_t>(in + 8);
    h.columns = get<uint32_t>(in + 12);
    h.min_time_ms = get<int64_t>(in + 16);
    h.max_time_ms = get<int64_t>(in + 24);
    h.payload_bytes = get<uint64_t>(in + 32);
    h.payload_xxh3 = get<uint64_t>(in + 40);
    h.block_index = get<uint64_t>(in + 48);
    return h.kind == block_kind::data || h.kind == block_kind::footer;
}

result<void> write_file_header(const segment_meta& meta, uint8_t* out) {
    const auto& s = meta.schema;
    std::memset(out, 0, file_header_bytes);
    if (s.name.empty() || s.name.size() > name_bytes_max || meta.writer_name.size() > name_bytes_max)
        return make_error(errc::invalid_argument,
                          "table and writer names must be 1 to 255 bytes: '" + s.name + "'");
    if (s.time_column >= int(s.columns.size()) ||
        (s.time_column >= 0 && s.columns[s.time_column].type != column_type::i64))
        return make_error(errc::invalid_argument, "table " + s.name + ": bad time column");
    size_t need = 30 + 1 + s.name.size() + 1 + meta.writer_name.size() + 8;
    for (const auto& c : s.columns) need += 2 + c.name.size();
    if (need > file_header_bytes || s.columns.size() > 0xffff)
        return make_error(errc::invalid_argument,
                          "table " + s.name + ": columns do not fit the 4096-byte header");
    std::memcpy(out, file_magic, 8);
    put<uint32_t>(out + 8, version);
    put<uint64_t>(out + 16, meta.seq);
    put<int32_t>(out + 24, s.time_column);
    put<uint16_t>(out + 28, uint16_t(s.columns.size()));
    uint8_t* p = out + 30;
    auto put_name = [&p](std::string_view n) {
        *p++ = uint8_t(n.size());
        std::memcpy(p, n.data(), n.size());
        p += n.size();
    };
    put_name(s.name);
    put_name(meta.writer_name);
    for (const auto& c : s.columns) {
        if (c.name.size() > name_bytes_max)
            return make_error(errc::invalid_argument, "column name too long: " + c.name);
        *p++ = uint8_t(c.type);
        put_name(c.name);
    }
    uint32_t content = uint32_t(p - out);
    put<uint32_t>(out + 12, content);
    put<uint64_t>(p, checksum(out, content));
    return ok_result();
}

result<segment_meta> read_file_header(const uint8_t* in, size_t len) {
    if (len < file_header_bytes) return corrupt("file shorter than its 4096-byte header");
    if (std::memcmp(in, file_magic, 8) != 0) return corrupt("not a sluice segment (bad magic)");
    uint32_t v = get<uint32_t>(in + 8);
    if (v != version)
        return make_error(errc::unsupported, "segment format version " + std::to_string(v) +
                                                 " (this build reads version 1)");
    uint32_t content = get<uint32_t>(in + 12);
    if (content < 30 || content + 8 > file_header_bytes) return corrupt("bad file header length");
    if (get<uint64_t>(in + content) != checksum(in, content))
        return corrupt("file header checksum mismatch");
    segment_meta m;
    m.seq = get<uint64_t>(in + 16);
    m.schema.time_column = get<int32_t>(in + 24);
    uint16_t ncols = get<uint16_t>(in + 28);
    const uint8_t* p = in + 30;
    const uint8_t* end = in + content;
    auto get_name = [&p, end](std::string& n) {
        if (p >= end || end - p < 1 + *p) return false;
        n.assign(reinterpret_cast<const char*>(p + 1), *p);
        p += 1 + *p;
        return true;
    };
    if (!get_name(m.schema.name) || !get_name(m.writer_name))
        return corrupt("file header names truncated");
    for (uint16_t i = 0; i < ncols; ++i) {
        if (p >= end) return corrupt("file header columns truncated");
        uint8_t t = *p++;
        if (t < uint8_t(column_type::i64) || t > uint8_t(column_type::f64) || t == 5)
            return corrupt("unknown column type " + std::to_string(t));
        column_def c{{}, column_type(t)};
        if (!get_name(c.name)) return corrupt("file header columns truncated");
        m.schema.columns.push_back(std::move(c));
    }
    if (p != end) return corrupt("file header length mismatch");
    int tc = m.schema.time_column;
    if (tc >= int(ncols) || (tc >= 0 && m.schema.columns[tc].type != column_type::i64))
        return corrupt("file header time column out of range");
    return m;
}

size_t write_footer_block(const footer& f, uint64_t block_index, uint8_t* out) noexcept {
    size_t total = block_bytes(footer_payload_bytes);
    std::memset(out, 0, total);
    uint8_t* pl = out + block_header_bytes;
    put<uint64_t>(pl + 0, f.rows);
    put<uint64_t>(pl + 8, f.data_blocks);
    put<int64_t>(pl + 16, f.min_time_ms);
    put<int64_t>(pl + 24, f.max_time_ms);
    put<uint64_t>(pl + 32, f.data_end_offset);
    block_header h;
    h.kind = block_kind::footer;
    h.min_time_ms = f.min_time_ms;
    h.max_time_ms = f.max_time_ms;
    h.payload_bytes = footer_payload_bytes;
    h.payload_xxh3 = checksum(pl, footer_payload_bytes);
    h.block_index = block_index;
    write_block_header(h, out);
    return total;
}

bool read_footer_payload(const uint8_t* payload, size_t len, footer& f) noexcept {
    if (len != footer_payload_bytes) return false;
    f.rows = get<uint64_t>(payload + 0);
    f.data_blocks = get<uint64_t>(payload + 8);
    f.min_time_ms = get<int64_t>(payload + 16);
    f.max_time_ms = get<int64_t>(payload + 24);
    f.data_end_offset = get<uint64_t>(payload + 32);
    return true;
}

// ---- encoder ----

block_encoder::block_encoder(const table_schema& schema, uint32_t rows_max,
                             size_t string_bytes_max, int zstd_level)
    : _schema(&schema), _rows_max(rows_max), _zstd_level(zstd_level) {
    SLUICE_ASSERT(rows_max > 0);
    SLUICE_ASSERT(string_bytes_max < (size_t(1) << 31));
    size_t payload = 0, scratch = 0;
    bool has_string = false;
    for (const auto& c : schema.columns) {
        size_t b = column_bound(c.type, rows_max, string_bytes_max);
        payload += chunk_header_bytes + b;
        scratch = std::max(scratch, b);
        has_string |= c.type == column_type::string;
    }
    _block_bytes_max = block_bytes(std::max<size_t>(payload, footer_payload_bytes));
    _scratch.resize(std::max<size_t>(scratch, 16));
    if (has_string) {
        uint32_t entries = std::min(rows_max / 4, dict_entries_max);
        _dict_table.resize(std::bit_ceil(std::max<uint32_t>(entries * 2, 16)));
        _dict_first_row.resize(std::max<uint32_t>(entries, 1));
        _row_ids.resize(rows_max);
    }
    if (_zstd_level > 0) {
        _cctx = ZSTD_createCCtx();
        SLUICE_ASSERT(_cctx != nullptr);
        // One compression of the largest input now makes zstd size its workspace, so
        // that encode() on the hot path never allocates.
        std::vector<uint8_t> warm(ZSTD_compressBound(_scratch.size()));
        size_t r = ZSTD_compressCCtx(_cctx, warm.data(), warm.size(), _scratch.data(),
                                     _scratch.size(), _zstd_level);
        SLUICE_ASSERT(!ZSTD_isError(r));
    }
}

block_encoder::~block_encoder() { ZSTD_freeCCtx(_cctx); }

block_header block_encoder::encode(const column_batch& batch, uint64_t block_index,
                                   uint8_t* out) noexcept {
    SLUICE_ASSERT(batch.rows() <= _rows_max);
    SLUICE_DASSERT(&batch.schema() == _schema || batch.schema().columns.size() ==
                                                     _schema->columns.size());
    block_header h;
    h.rows = batch.rows();
    h.columns = uint32_t(_schema->columns.size());
    h.block_index = block_index;
    int tc = _schema->time_column;
    if (tc < 0) {
        // No time column: never pruned by time.
        h.min_time_ms = std::numeric_limits<int64_t>::min();
        h.max_time_ms = std::numeric_limits<int64_t>::max();
    } else {
        h.min_time_ms = std::numeric_limits<int64_t>::max();
        h.max_time_ms = std::numeric_limits<int64_t>::min();
        for (uint32_t r = 0; r < h.rows; ++r) {
            int64_t t = batch.i64_at(tc, r);
            h.min_time_ms = std::min(h.min_time_ms, t);
            h.max_time_ms = std::max(h.max_time_ms, t);
        }
    }
    uint8_t* payload = out + block_header_bytes;
    uint8_t* p = payload;
    for (int c = 0; c < int(h.columns); ++c) p += encode_column(batch, c, p);
    h.payload_bytes = uint64_t(p - payload);
    h.payload_xxh3 = checksum(payload, h.payload_bytes);
    size_t total = block_bytes(h.payload_bytes);
    SLUICE_ASSERT(total <= _block_bytes_max);
    std::memset(p, 0, out + total - p);
    write_block_header(h, out);
    return h;
}

// Writes one chunk (header + bytes) at out and returns its size.
size_t block_encoder::encode_column(const column_batch& batch, int col, uint8_t* out) noexcept {
    const auto& c = batch.col(col);
    uint32_t rows = batch.rows();
    uint8_t* raw = _scratch.data();
    size_t raw_len = 0;
    encoding enc;
    switch (c.type) {
    case column_type::i64: {
        enc = encoding::delta_varint_i64;
        uint64_t prev = 0;
        for (uint32_t r = 0; r < rows; ++r) {
            // Wrapping difference: any two int64 values round-trip.
            raw_len += put_varint(raw + raw_len, zigzag(int64_t(c.fixed[r] - prev)));
            prev = c.fixed[r];
        }
        break;
    }
    case column_type::u64: {
        size_t varint_len = 0;
        for (uint32_t r = 0; r < rows; ++r) varint_len += varint_size(c.fixed[r]);
        if (varint_len < size_t(rows) * 8) {
            enc = encoding::varint_u64;
            for (uint32_t r = 0; r < rows; ++r) raw_len += put_varint(raw + raw_len, c.fixed[r]);
        } else {
            enc = encoding::plain_u64;
            for (uint32_t r = 0; r < rows; ++r) put<uint64_t>(raw + 8 * r, c.fixed[r]);
            raw_len = size_t(rows) * 8;
        }
        break;
    }
    case column_type::f64:
        // IEEE 754 bits, as plain u64.
        enc = encoding::plain_u64;
        for (uint32_t r = 0; r < rows; ++r) put<uint64_t>(raw + 8 * r, c.fixed[r]);
        raw_len = size_t(rows) * 8;
        break;
    case column_type::u8:
        enc = encoding::plain_u8;
        for (uint32_t r = 0; r < rows; ++r) raw[r] = uint8_t(c.fixed[r]);
        raw_len = rows;
        break;
    case column_type::string:
        raw_len = encode_dict(c, rows, raw);
        enc = encoding::dict_string;
        if (raw_len == 0 || raw_len >= plain_string_bytes(c, rows)) {
            raw_len = encode_string(c, rows, raw);
            enc = encoding::plain_string;
        }
        break;
    default: SLUICE_ASSERT(false);
    }
    SLUICE_DASSERT(raw_len <= _scratch.size());

    uint8_t* data = out + chunk_header_bytes;
    codec cd = codec::none;
    size_t stored = raw_len;
    // zstd only when it shrinks the chunk; tiny chunks are not worth a frame header.
    if (_cctx && raw_len >= 64) {
        size_t z = ZSTD_compressCCtx(_cctx, data, raw_len - 1, raw, raw_len, _zstd_level);
        if (!ZSTD_isError(z) && z < raw_len) {
            cd = codec::zstd;
            stored = z;
        }
    }
    if (cd == codec::none) std::memcpy(data, raw, raw_len);
    out[0] = uint8_t(enc);
    out[1] = uint8_t(cd);
    put<uint16_t>(out + 2, 0);
    put<uint32_t>(out + 4, uint32_t(raw_len));
    put<uint32_t>(out + 8, uint32_t(stored));
    put<uint32_t>(out + 12, 0);
    put<uint64_t>(out + 16, checksum(raw, raw_len));
    return chunk_header_bytes + stored;
}

size_t block_encoder::encode_string(const column_batch::column& c, uint32_t rows,
                                    uint8_t* out) noexcept {
    size_t n = 0;
    uint32_t begin = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        uint32_t end = c.offsets[r];
        n += put_varint(out + n, end - begin);
        if (end != begin) std::memcpy(out + n, c.arena.data() + begin, end - begin);
        n += end - begin;
        begin = end;
    }
    return n;
}

// Dictionary-encodes the column when it has few distinct values (<= rows/4 and
// <= 65536); returns 0 when it does not qualify.
size_t block_encoder::encode_dict(const column_batch::column& c, uint32_t rows,
                                  uint8_t* out) noexcept {
    uint32_t limit = std::min<uint32_t>(rows / 4, uint32_t(_dict_first_row.size()));
    if (limit == 0) return 0;
    if (++_generation == 0) { // wrapped: really clear once every 2^32 blocks
        for (auto& s : _dict_table) s.generation = 0;
        _generation = 1;
    }
    const size_t mask = _dict_table.size() - 1;
    const char* arena = c.arena.data();
    uint32_t count = 0;
    uint32_t begin = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        std::string_view s(arena + begin, c.offsets[r] - begin);
        begin = c.offsets[r];
        uint64_t h = XXH3_64bits(s.data(), s.size());
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            dict_slot& slot = _dict_table[i];
            if (slot.generation != _generation) {
                if (count == limit) return 0; // too many distinct values: plain
                slot = {h, _generation, count};
                _dict_first_row[count] = r;
                _row_ids[r] = count++;
                break;
            }
            if (slot.hash == h) {
                uint32_t fr = _dict_first_row[slot.id];
                uint32_t fb = fr == 0 ? 0 : c.offsets[fr - 1];
                if (std::string_view(arena + fb, c.offsets[fr] - fb) == s) {
                    _row_ids[r] = slot.id;
                    break;
                }
            }
        }
    }
    size_t n = put_varint(out, count);
    for (uint32_t id = 0; id < count; ++id) {
        uint32_t fr = _dict_first_row[id];
        uint32_t fb = fr == 0 ? 0 : c.offsets[fr - 1];
        uint32_t len = c.offsets[fr] - fb;
        n += put_varint(out + n, len);
        if (len) std::memcpy(out + n, arena + fb, len);
        n += len;
    }
    if (count <= 256) {
        for (uint32_t r = 0; r < rows; ++r) out[n++] = uint8_t(_row_ids[r]);
    } else {
        for (uint32_t r = 0; r < rows; ++r, n += 2) put<uint16_t>(out + n, uint16_t(_row_ids[r]));
    }
    return n;
}

// ---- decoder ----

block_decoder::block_decoder() : _dctx(ZSTD_createDCtx()) { SLUICE_ASSERT(_dctx != nullptr); }
block_decoder::~block_decoder() { ZSTD_freeDCtx(_dctx); }

result<void> block_decoder::decode(const block_header& h, const uint8_t* payload,
                                   column_batch& out) {
    if (h.kind != block_kind::data) return corrupt("not a data block");
    if (checksum(payload, h.payload_bytes) != h.payload_xxh3)
        return corrupt("block " + std::to_string(h.block_index) + ": payload checksum mismatch");
    const auto& schema = out.schema();
    if (h.columns != schema.columns.size())
        return corrupt("block " + std::to_string(h.block_index) + ": column count mismatch");
    out.clear();
    const uint8_t* p = payload;
    const uint8_t* end = payload + h.payload_bytes;
    for (int col = 0; col < int(h.columns); ++col) {
        if (end - p < ptrdiff_t(chunk_header_bytes)) return corrupt("chunk header truncated");
        auto enc = encoding(p[0]);
        auto cd = codec(p[1]);
        uint32_t raw_len = get<uint32_t>(p + 4);
        uint32_t stored = get<uint32_t>(p + 8);
        uint64_t sum = get<uint64_t>(p + 16);
        p += chunk_header_bytes;
        if (uint64_t(end - p) < stored) return corrupt("chunk data truncated");
        if (raw_len > chunk_raw_bytes_max) return corrupt("chunk length out of range");
        const uint8_t* raw = p;
        if (cd == codec::zstd) {
            if (_scratch.size() < raw_len) _scratch.resize(raw_len);
            size_t r = ZSTD_decompressDCtx(_dctx, _scratch.data(), raw_len, p, stored);
            if (ZSTD_isError(r) || r != raw_len)
                return corrupt(std::string("zstd chunk does not decompress: ") +
                               (ZSTD_isError(r) ? ZSTD_getErrorName(r) : "length mismatch"));
            raw = _scratch.data();
        } else if (cd != codec::none || stored != raw_len) {
            return corrupt("unknown codec " + std::to_string(unsigned(cd)));
        }
        if (checksum(raw, raw_len) != sum)
            return corrupt("column " + schema.columns[col].name + ": chunk checksum mismatch");
        SLUICE_TRY(decode_column(out.col(col), enc, raw, raw_len, h.rows));
        p += stored;
    }
    if (p != end) return corrupt("trailing bytes after the last chunk");
    out.set_rows(h.rows);
    return ok_result();
}

result<void> block_decoder::decode_column(column_batch::column& c, encoding enc,
                                          const uint8_t* p, size_t len, uint32_t rows) {
    const uint8_t* end = p + len;
    auto fixed = [&]() {
        if (c.fixed.size() < rows) c.fixed.resize(rows);
    };
    auto bad = [&](const char* what) { return corrupt(std::string("column chunk: ") + what); };
    switch (enc) {
    case encoding::delta_varint_i64: {
        if (c.type != column_type::i64) return bad("encoding does not match the column type");
        fixed();
        uint64_t prev = 0, v;
        for (uint32_t r = 0; r < rows; ++r) {
            if (!get_varint(p, end, v)) return bad("varint truncated");
            prev += uint64_t(unzigzag(v));
            c.fixed[r] = prev;
        }
        break;
    }
    case encoding::varint_u64:
    case encoding::plain_u64:
        if (c.type != column_type::u64 && !(c.type == column_type::f64 && enc == encoding::plain_u64))
            return bad("encoding does not match the column type");
        fixed();
        if (enc == encoding::plain_u64) {
            if (len != size_t(rows) * 8) return bad("plain u64 length mismatch");
            for (uint32_t r = 0; r < rows; ++r, p += 8) c.fixed[r] = get<uint64_t>(p);
        } else {
            for (uint32_t r = 0; r < rows; ++r)
                if (!get_varint(p, end, c.fixed[r])) return bad("varint truncated");
        }
        break;
    case encoding::plain_u8:
        if (c.type != column_type::u8) return bad("encoding does not match the column type");
        if (len != rows) return bad("plain u8 length mismatch");
        fixed();
        for (uint32_t r = 0; r < rows; ++r) c.fixed[r] = p[r];
        p += rows;
        break;
    case encoding::plain_string:
    case encoding::dict_string: {
        if (c.type != column_type::string) return bad("encoding does not match the column type");
        if (c.offsets.size() < rows) c.offsets.resize(rows);
        // Plain strings never expand; dictionary rows may, so size the arena as we go.
        if (c.arena.size() < len) c.arena.resize(len);
        size_t used = 0;
        auto append = [&](const uint8_t* s, size_t n) {
            if (n == 0) return true;
            if (c.arena.size() - used < n) c.arena.resize(std::max(c.arena.size() * 2, used + n));
            std::memcpy(c.arena.data() + used, s, n);
            used += n;
            return used <= std::numeric_limits<uint32_t>::max();
        };
        if (enc == encoding::plain_string) {
            for (uint32_t r = 0; r < rows; ++r) {
                uint64_t n;
                if (!get_varint(p, end, n) || uint64_t(end - p) < n) return bad("string truncated");
                if (!append(p, n)) return bad("strings exceed 4 GiB");
                p += n;
                c.offsets[r] = uint32_t(used);
            }
        } else {
            uint64_t count;
            if (!get_varint(p, end, count) || count > dict_entries_max)
                return bad("dictionary size out of range");
            std::vector<std::pair<const uint8_t*, uint32_t>> dict(count);
            for (auto& e : dict) {
                uint64_t n;
                if (!get_varint(p, end, n) || uint64_t(end - p) < n) return bad("dictionary truncated");
                e = {p, uint32_t(n)};
                p += n;
            }
            size_t width = count <= 256 ? 1 : 2;
            if (uint64_t(end - p) != uint64_t(rows) * width) return bad("dictionary index length");
            for (uint32_t r = 0; r < rows; ++r, p += width) {
                uint32_t id = width == 1 ? *p : get<uint16_t>(p);
                if (id >= count) return bad("dictionary index out of range");
                if (!append(dict[id].first, dict[id].second)) return bad("strings exceed 4 GiB");
                c.offsets[r] = uint32_t(used);
            }
        }
        c.arena_used = used;
        break;
    }
    default: return bad("unknown encoding");
    }
    if (p != end) return bad("trailing bytes");
    return ok_result();
}

} // namespace sluice::storage::format
