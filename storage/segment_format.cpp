#include "storage/segment_format.h"

#include <lz4.h>
#include <xxhash.h>
// ZSTD_initStaticCCtx and ZSTD_estimateCCtxSize (exported by libzstd.so).
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <charconv>
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

constexpr size_t bitmap_bytes(uint32_t rows) noexcept { return (size_t(rows) + 7) / 8; }

// Raw-encoding bound for one column of a full batch, validity bitmap included. For
// strings it covers every candidate encoding the encoder may write into its scratch.
size_t column_bound(const column_def& c, uint32_t rows, size_t string_bytes) noexcept {
    size_t b = c.nullable ? bitmap_bytes(rows) : 0;
    switch (c.type) {
    case column_type::i64: return b + size_t(rows) * 10;
    case column_type::u64: return b + size_t(rows) * 8; // varint is chosen only when smaller
    case column_type::f64: return b + size_t(rows) * 8;
    case column_type::u8: return b + rows;
    case column_type::string:
    case column_type::bytes: return b + string_bytes + size_t(rows) * 16 + 64;
    }
    return 0;
}

inline std::string_view value_at(const column_batch::column& c, uint32_t r) noexcept {
    uint32_t begin = r == 0 ? 0 : c.offsets[r - 1];
    return {c.arena.data() + begin, c.offsets[r] - begin};
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

size_t write_plain_string(const column_batch::column& c, uint32_t rows, uint8_t* out) noexcept {
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

// suffix_number_string: a value ending in 1..18 decimal digits (no leading zero unless
// the number is "0") is its text prefix plus that number.
inline bool split_suffix_number(std::string_view s, size_t& prefix_len, uint64_t& number) noexcept {
    size_t d = 0;
    while (d < s.size() && d <= 18 && s[s.size() - 1 - d] >= '0' && s[s.size() - 1 - d] <= '9') ++d;
    prefix_len = s.size() - d;
    if (d == 0 || d > 18 || (d > 1 && s[prefix_len] == '0')) {
        prefix_len = s.size();
        return false;
    }
    number = 0;
    for (size_t i = prefix_len; i < s.size(); ++i) number = number * 10 + uint64_t(s[i] - '0');
    return true;
}

struct suffix_plan {
    size_t prefix_section = 0;
    size_t total = 0;
};

suffix_plan plan_suffix_number(const column_batch::column& c, uint32_t rows) noexcept {
    suffix_plan p;
    size_t numbers = 0;
    uint64_t prev = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        std::string_view s = value_at(c, r);
        size_t prefix;
        uint64_t v;
        bool num = split_suffix_number(s, prefix, v);
        p.prefix_section += varint_size((uint64_t(prefix) << 1) | (num ? 1 : 0)) + prefix;
        if (num) {
            numbers += varint_size(zigzag(int64_t(v - prev)));
            prev = v;
        }
    }
    p.total = varint_size(p.prefix_section) + p.prefix_section + numbers;
    return p;
}

size_t write_suffix_number(const column_batch::column& c, uint32_t rows, const suffix_plan& plan,
                           uint8_t* out) noexcept {
    size_t n = put_varint(out, plan.prefix_section);
    uint8_t* nums = out + n + plan.prefix_section;
    size_t m = 0;
    uint64_t prev = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        std::string_view s = value_at(c, r);
        size_t prefix;
        uint64_t v;
        bool num = split_suffix_number(s, prefix, v);
        n += put_varint(out + n, (uint64_t(prefix) << 1) | (num ? 1 : 0));
        if (prefix) std::memcpy(out + n, s.data(), prefix);
        n += prefix;
        if (num) {
            m += put_varint(nums + m, zigzag(int64_t(v - prev)));
            prev = v;
        }
    }
    SLUICE_DASSERT(n + m == plan.total);
    return n + m;
}

// ref_string markers are the bytes 1..refs_max; a value holding any byte <= refs_max is
// stored verbatim behind a 0 byte instead.
inline bool ref_type_ok(column_type t) noexcept {
    return t == column_type::i64 || is_variable(t);
}

inline bool has_marker_bytes(std::string_view s) noexcept {
    uint8_t any = 0;
    for (char ch : s) any |= uint8_t(uint8_t(ch) <= refs_max);
    return any != 0;
}

struct ref_span {
    uint32_t pos;
    uint32_t len;
    uint8_t marker;
};

inline bool overlaps(const ref_span* spans, uint32_t n, size_t pos, size_t len) noexcept {
    for (uint32_t i = 0; i < n; ++i)
        if (pos < spans[i].pos + spans[i].len && spans[i].pos < pos + len) return true;
    return false;
}

// The first occurrence of needle in s that overlaps no chosen span, preferring one
// between double quotes (a JSON string value) over a bare one; npos when none.
size_t find_ref(std::string_view s, std::string_view needle, const ref_span* spans,
                uint32_t n) noexcept {
    size_t bare = std::string_view::npos;
    for (size_t from = 0;;) {
        size_t p = s.find(needle, from);
        if (p == std::string_view::npos) return bare;
        from = p + 1;
        if (overlaps(spans, n, p, needle.size())) continue;
        if (p > 0 && s[p - 1] == '"' && p + needle.size() < s.size() && s[p + needle.size()] == '"')
            return p;
        if (bare == std::string_view::npos) bare = p;
    }
}

} // namespace

uint64_t checksum(const void* data, size_t len) noexcept { return XXH3_64bits(data, len); }

std::string_view ref_text(const column_batch& batch, int col, uint32_t row, char* buf) noexcept {
    if (batch.col(col).type == column_type::i64) {
        auto r = std::to_chars(buf, buf + 20, batch.i64_at(col, row));
        return {buf, size_t(r.ptr - buf)};
    }
    return batch.string_at(col, row);
}

void merge_stats(column_type type, column_stats& into, const column_stats& from) noexcept {
    into.null_count += from.null_count;
    into.value_bytes += from.value_bytes;
    if (from.values == 0) return;
    if (into.values == 0) {
        into.min = from.min;
        into.max = from.max;
    } else if (type == column_type::i64) {
        into.min = uint64_t(std::min(int64_t(into.min), int64_t(from.min)));
        into.max = uint64_t(std::max(int64_t(into.max), int64_t(from.max)));
    } else {
        into.min = std::min(into.min, from.min);
        into.max = std::max(into.max, from.max);
    }
    into.values += from.values;
}

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
    for (const auto& c : s.columns) need += 4 + c.name.size() + 2 * c.refs.size();
    if (need > file_header_bytes || s.columns.size() > 0xffff)
        return make_error(errc::invalid_argument,
                          "table " + s.name + ": columns do not fit the 4096-byte header");
    for (size_t i = 0; i < s.columns.size(); ++i) {
        const auto& c = s.columns[i];
        if (c.name.size() > name_bytes_max)
            return make_error(errc::invalid_argument, "column name too long: " + c.name);
        if (c.refs.size() > refs_max || (!c.refs.empty() && !is_variable(c.type)))
            return make_error(errc::invalid_argument,
                              "column " + c.name + ": refs need a string column, at most 8");
        for (int r : c.refs)
            if (r < 0 || size_t(r) >= i || !ref_type_ok(s.columns[r].type))
                return make_error(errc::invalid_argument,
                                  "column " + c.name +
                                      ": refs must name earlier i64 or string columns");
    }
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
        *p++ = uint8_t(c.type);
        *p++ = c.nullable ? column_flag_nullable : 0;
        put_name(c.name);
        *p++ = uint8_t(c.refs.size());
        for (int r : c.refs) {
            put<uint16_t>(p, uint16_t(r));
            p += 2;
        }
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
        return make_error(errc::unsupported,
                          "segment format version " + std::to_string(v) + " (this build reads version " +
                              std::to_string(version) + "; read it with the sluice that wrote it)");
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
        if (end - p < 2) return corrupt("file header columns truncated");
        uint8_t t = *p++;
        uint8_t flags = *p++;
        if (t < uint8_t(column_type::i64) || t > uint8_t(column_type::f64))
            return corrupt("unknown column type " + std::to_string(t));
        if (flags & ~column_flag_nullable) return corrupt("unknown column flags");
        column_def c{{}, column_type(t), (flags & column_flag_nullable) != 0};
        if (!get_name(c.name) || p >= end) return corrupt("file header columns truncated");
        uint8_t nrefs = *p++;
        if (nrefs > refs_max || end - p < 2 * nrefs || (nrefs && !is_variable(c.type)))
            return corrupt("file header column refs out of range");
        for (uint8_t k = 0; k < nrefs; ++k, p += 2) {
            uint16_t r = get<uint16_t>(p);
            if (r >= i || !ref_type_ok(m.schema.columns[r].type))
                return corrupt("file header column refs out of range");
            c.refs.push_back(r);
        }
        m.schema.columns.push_back(std::move(c));
    }
    if (p != end) return corrupt("file header length mismatch");
    int tc = m.schema.time_column;
    if (tc >= int(ncols) || (tc >= 0 && m.schema.columns[tc].type != column_type::i64))
        return corrupt("file header time column out of range");
    return m;
}

size_t write_footer_block(const footer& f, uint64_t block_index, uint8_t* out) noexcept {
    const size_t payload = footer_payload_bytes(f.columns.size());
    const size_t total = block_bytes(payload);
    std::memset(out, 0, total);
    uint8_t* pl = out + block_header_bytes;
    put<uint64_t>(pl + 0, f.rows);
    put<uint64_t>(pl + 8, f.data_blocks);
    put<int64_t>(pl + 16, f.min_time_ms);
    put<int64_t>(pl + 24, f.max_time_ms);
    put<uint64_t>(pl + 32, f.data_end_offset);
    put<uint32_t>(pl + 40, uint32_t(f.columns.size()));
    uint8_t* c = pl + footer_fixed_bytes;
    for (const auto& s : f.columns) {
        put<uint64_t>(c + 0, s.null_count);
        put<uint64_t>(c + 8, s.values ? s.min : 0);
        put<uint64_t>(c + 16, s.values ? s.max : 0);
        put<uint64_t>(c + 24, s.value_bytes);
        c += footer_column_bytes;
    }
    block_header h;
    h.kind = block_kind::footer;
    h.min_time_ms = f.min_time_ms;
    h.max_time_ms = f.max_time_ms;
    h.payload_bytes = payload;
    h.payload_xxh3 = checksum(pl, payload);
    h.block_index = block_index;
    write_block_header(h, out);
    return total;
}

bool read_footer_payload(const uint8_t* payload, size_t len, footer& f) {
    if (len < footer_fixed_bytes) return false;
    f.rows = get<uint64_t>(payload + 0);
    f.data_blocks = get<uint64_t>(payload + 8);
    f.min_time_ms = get<int64_t>(payload + 16);
    f.max_time_ms = get<int64_t>(payload + 24);
    f.data_end_offset = get<uint64_t>(payload + 32);
    uint32_t n = get<uint32_t>(payload + 40);
    if (get<uint32_t>(payload + 44) != 0 || len != footer_payload_bytes(n)) return false;
    f.columns.assign(n, {});
    const uint8_t* c = payload + footer_fixed_bytes;
    for (auto& s : f.columns) {
        s.null_count = get<uint64_t>(c + 0);
        s.min = get<uint64_t>(c + 8);
        s.max = get<uint64_t>(c + 16);
        s.value_bytes = get<uint64_t>(c + 24);
        if (s.null_count > f.rows) return false;
        s.values = f.rows - s.null_count;
        c += footer_column_bytes;
    }
    return true;
}

// ---- encoder ----

block_encoder::block_encoder(const table_schema& schema, uint32_t rows_max,
                             size_t string_bytes_max, compression comp)
    : _schema(&schema), _rows_max(rows_max), _comp(comp) {
    SLUICE_ASSERT(rows_max > 0);
    SLUICE_ASSERT(string_bytes_max < (size_t(1) << 31));
    size_t payload = 0, scratch = 0;
    bool has_string = false;
    for (const auto& c : schema.columns) {
        size_t b = column_bound(c, rows_max, string_bytes_max);
        payload += chunk_header_bytes + b;
        scratch = std::max(scratch, b);
        has_string |= is_variable(c.type);
        SLUICE_ASSERT(c.refs.size() <= refs_max);
    }
    _block_bytes_max = block_bytes(std::max(payload, footer_payload_bytes(schema.columns.size())));
    _scratch.resize(std::max<size_t>(scratch, 16));
    _stats.resize(schema.columns.size());
    if (has_string) {
        uint32_t entries = std::min(rows_max / 4, dict_entries_max);
        _dict_table.resize(std::bit_ceil(std::max<uint32_t>(entries * 2, 16)));
        _dict_first_row.resize(std::max<uint32_t>(entries, 1));
        _row_ids.resize(rows_max);
    }
    if (_comp.kind == codec::zstd) {
        // A static context in a workspace sized once for the level's largest parameters:
        // zstd then never allocates (a dynamic context frees and regrows its workspace
        // when chunk sizes vary, which is every block here).
        _zstd_workspace.resize(ZSTD_estimateCCtxSize(_comp.level) / sizeof(uint64_t) + 1);
        _cctx = ZSTD_initStaticCCtx(_zstd_workspace.data(), _zstd_workspace.size() * sizeof(uint64_t));
        SLUICE_ASSERT(_cctx != nullptr);
    }
}

// The static context lives in _zstd_workspace: nothing to free.
block_encoder::~block_encoder() = default;

block_header block_encoder::encode(const column_batch& batch, uint64_t block_index,
                                   uint8_t* out) noexcept {
    SLUICE_ASSERT(batch.rows() <= _rows_max);
    SLUICE_DASSERT(batch.schema().columns.size() == _schema->columns.size());
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

size_t block_encoder::compress(const uint8_t* raw, size_t raw_len, uint8_t* out,
                               codec& cd) noexcept {
    // Only when it shrinks the chunk; tiny chunks are not worth a frame header.
    cd = codec::none;
    if (raw_len >= 64 && _comp.kind == codec::zstd) {
        size_t z = ZSTD_compressCCtx(_cctx, out, raw_len - 1, raw, raw_len, _comp.level);
        if (!ZSTD_isError(z) && z < raw_len) {
            cd = codec::zstd;
            return z;
        }
    } else if (raw_len >= 64 && _comp.kind == codec::lz4) {
        int z = LZ4_compress_fast(reinterpret_cast<const char*>(raw), reinterpret_cast<char*>(out),
                                  int(raw_len), int(raw_len - 1), _comp.level);
        if (z > 0) {
            cd = codec::lz4;
            return size_t(z);
        }
    }
    std::memcpy(out, raw, raw_len);
    return raw_len;
}

// Writes one chunk (header + bytes) at out and returns its size.
size_t block_encoder::encode_column(const column_batch& batch, int col, uint8_t* out) noexcept {
    const auto& c = batch.col(col);
    const uint32_t rows = batch.rows();
    column_stats& st = _stats[col];
    st = {};
    uint8_t* raw = _scratch.data();
    size_t raw_len = 0;
    if (c.nullable) {
        // Validity bitmap first: bit r % 8 of byte r / 8 is set when row r has a value.
        const size_t nb = bitmap_bytes(rows);
        std::memset(raw, 0, nb);
        for (uint32_t r = 0; r < rows; ++r) {
            raw[r >> 3] |= uint8_t(c.valid[r] << (r & 7));
            st.null_count += c.valid[r] ^ 1;
        }
        raw_len = nb;
    }
    st.values = rows - st.null_count;
    auto valid = [&c](uint32_t r) { return !c.nullable || c.valid[r]; };
    encoding enc = encoding::plain_u8;
    switch (c.type) {
    case column_type::i64: {
        enc = encoding::delta_varint_i64;
        int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
        uint64_t prev = 0;
        for (uint32_t r = 0; r < rows; ++r) {
            // Wrapping difference: any two int64 values round-trip.
            raw_len += put_varint(raw + raw_len, zigzag(int64_t(c.fixed[r] - prev)));
            prev = c.fixed[r];
            if (valid(r)) {
                lo = std::min(lo, int64_t(c.fixed[r]));
                hi = std::max(hi, int64_t(c.fixed[r]));
            }
        }
        st.min = uint64_t(lo);
        st.max = uint64_t(hi);
        break;
    }
    case column_type::u64:
    case column_type::u8: {
        size_t varint_len = 0;
        uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0;
        for (uint32_t r = 0; r < rows; ++r) {
            varint_len += varint_size(c.fixed[r]);
            if (valid(r)) {
                lo = std::min(lo, c.fixed[r]);
                hi = std::max(hi, c.fixed[r]);
            }
        }
        st.min = lo;
        st.max = hi;
        if (c.type == column_type::u8) {
            enc = encoding::plain_u8;
            for (uint32_t r = 0; r < rows; ++r) raw[raw_len + r] = uint8_t(c.fixed[r]);
            raw_len += rows;
        } else if (varint_len < size_t(rows) * 8) {
            enc = encoding::varint_u64;
            for (uint32_t r = 0; r < rows; ++r) raw_len += put_varint(raw + raw_len, c.fixed[r]);
        } else {
            enc = encoding::plain_u64;
            for (uint32_t r = 0; r < rows; ++r) put<uint64_t>(raw + raw_len + 8 * size_t(r), c.fixed[r]);
            raw_len += size_t(rows) * 8;
        }
        break;
    }
    case column_type::f64:
        // IEEE 754 bits, plain; no min/max statistics (they are kept for integers and
        // lengths).
        enc = encoding::plain_u64;
        for (uint32_t r = 0; r < rows; ++r) put<uint64_t>(raw + raw_len + 8 * size_t(r), c.fixed[r]);
        raw_len += size_t(rows) * 8;
        st.min = st.max = 0;
        break;
    case column_type::string:
    case column_type::bytes: {
        uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0;
        for (uint32_t r = 0; r < rows; ++r) {
            if (!valid(r)) continue;
            uint64_t len = value_at(c, r).size();
            lo = std::min(lo, len);
            hi = std::max(hi, len);
            st.value_bytes += len;
        }
        st.min = lo;
        st.max = hi;
        raw_len += encode_variable(batch, col, raw + raw_len, enc);
        break;
    }
    }
    if (st.values == 0) st.min = st.max = 0;
    SLUICE_DASSERT(raw_len <= _scratch.size());

    codec cd;
    size_t stored = compress(raw, raw_len, out + chunk_header_bytes, cd);
    out[0] = uint8_t(enc);
    out[1] = uint8_t(cd);
    out[2] = c.nullable ? chunk_flag_validity : 0;
    out[3] = 0;
    put<uint32_t>(out + 4, uint32_t(raw_len));
    put<uint32_t>(out + 8, uint32_t(stored));
    put<uint32_t>(out + 12, uint32_t(st.null_count));
    put<uint64_t>(out + 16, checksum(raw, raw_len));
    return chunk_header_bytes + stored;
}

// Picks the smallest of the encodings that apply, by their raw size: ref_string for
// columns that declare refs, else dict_string, suffix_number_string or plain_string.
size_t block_encoder::encode_variable(const column_batch& batch, int col, uint8_t* out,
                                      encoding& enc) noexcept {
    const auto& c = batch.col(col);
    const uint32_t rows = batch.rows();
    const size_t plain = plain_string_bytes(c, rows);
    if (!_schema->columns[col].refs.empty()) {
        size_t n = write_refs(batch, col, out);
        if (n < plain) {
            enc = encoding::ref_string;
            return n;
        }
    } else {
        size_t dict = plan_dict(c, rows);
        suffix_plan suffix = plan_suffix_number(c, rows);
        if (dict != 0 && dict < plain && dict <= suffix.total) {
            enc = encoding::dict_string;
            return write_dict(c, rows, out);
        }
        if (suffix.total < plain) {
            enc = encoding::suffix_number_string;
            return write_suffix_number(c, rows, suffix, out);
        }
    }
    enc = encoding::plain_string;
    return write_plain_string(c, rows, out);
}

// Builds the dictionary of the column (ids per row) when it has few distinct values
// (<= rows/4 and <= 65536); returns the encoded size, or 0 when it does not qualify.
size_t block_encoder::plan_dict(const column_batch::column& c, uint32_t rows) noexcept {
    _dict_count = 0;
    uint32_t limit = std::min<uint32_t>(rows / 4, uint32_t(_dict_first_row.size()));
    if (limit == 0) return 0;
    if (++_generation == 0) { // wrapped: really clear once every 2^32 blocks
        for (auto& s : _dict_table) s.generation = 0;
        _generation = 1;
    }
    const size_t mask = _dict_table.size() - 1;
    uint32_t count = 0;
    size_t bytes = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        std::string_view s = value_at(c, r);
        uint64_t h = XXH3_64bits(s.data(), s.size());
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            dict_slot& slot = _dict_table[i];
            if (slot.generation != _generation) {
                if (count == limit) return 0; // too many distinct values
                slot = {h, _generation, count};
                _dict_first_row[count] = r;
                _row_ids[r] = count++;
                bytes += varint_size(s.size()) + s.size();
                break;
            }
            if (slot.hash == h && value_at(c, _dict_first_row[slot.id]) == s) {
                _row_ids[r] = slot.id;
                break;
            }
        }
    }
    _dict_count = count;
    return varint_size(count) + bytes + size_t(rows) * (count <= 256 ? 1 : 2);
}

size_t block_encoder::write_dict(const column_batch::column& c, uint32_t rows,
                                 uint8_t* out) noexcept {
    const uint32_t count = _dict_count;
    size_t n = put_varint(out, count);
    for (uint32_t id = 0; id < count; ++id) {
        std::string_view s = value_at(c, _dict_first_row[id]);
        n += put_varint(out + n, s.size());
        if (!s.empty()) std::memcpy(out + n, s.data(), s.size());
        n += s.size();
    }
    if (count <= 256) {
        for (uint32_t r = 0; r < rows; ++r) out[n++] = uint8_t(_row_ids[r]);
    } else {
        for (uint32_t r = 0; r < rows; ++r, n += 2) put<uint16_t>(out + n, uint16_t(_row_ids[r]));
    }
    return n;
}

// ref_string: u8 count, count x u16 column index, then per row a varint length and
// either 0 + the value verbatim or a skeleton: the value with the text of up to
// `count` referenced columns cut out, each replaced by its marker byte (1 + its index).
size_t block_encoder::write_refs(const column_batch& batch, int col, uint8_t* out) noexcept {
    const auto& refs = _schema->columns[col].refs;
    const auto& c = batch.col(col);
    const uint32_t rows = batch.rows();
    const uint32_t nrefs = uint32_t(refs.size());
    size_t n = 0;
    out[n++] = uint8_t(nrefs);
    for (int r : refs) {
        put<uint16_t>(out + n, uint16_t(r));
        n += 2;
    }
    char numbuf[32];
    ref_span spans[refs_max];
    for (uint32_t r = 0; r < rows; ++r) {
        std::string_view s = value_at(c, r);
        if (has_marker_bytes(s)) {
            n += put_varint(out + n, s.size() + 1);
            out[n++] = 0;
            std::memcpy(out + n, s.data(), s.size());
            n += s.size();
            continue;
        }
        uint32_t found = 0;
        size_t cut = 0;
        for (uint32_t k = 0; k < nrefs; ++k) {
            if (batch.is_null(refs[k], r)) continue;
            std::string_view t = ref_text(batch, refs[k], r, numbuf);
            if (t.size() < ref_value_bytes_min) continue;
            size_t p = find_ref(s, t, spans, found);
            if (p == std::string_view::npos) continue;
            // Keep spans sorted by position (at most refs_max: insertion sort).
            uint32_t at = found++;
            while (at > 0 && spans[at - 1].pos > p) {
                spans[at] = spans[at - 1];
                --at;
            }
            spans[at] = {uint32_t(p), uint32_t(t.size()), uint8_t(k + 1)};
            cut += t.size() - 1;
        }
        n += put_varint(out + n, s.size() - cut);
        size_t from = 0;
        for (uint32_t i = 0; i < found; ++i) {
            std::memcpy(out + n, s.data() + from, spans[i].pos - from);
            n += spans[i].pos - from;
            out[n++] = spans[i].marker;
            from = spans[i].pos + spans[i].len;
        }
        std::memcpy(out + n, s.data() + from, s.size() - from);
        n += s.size() - from;
    }
    return n;
}

result<std::vector<chunk_info>> read_chunk_infos(const block_header& h, const uint8_t* payload) {
    std::vector<chunk_info> out;
    const uint8_t* p = payload;
    const uint8_t* end = payload + h.payload_bytes;
    for (uint32_t c = 0; c < h.columns; ++c) {
        if (end - p < ptrdiff_t(chunk_header_bytes)) return corrupt("chunk header truncated");
        chunk_info ci{encoding(p[0]), codec(p[1]), get<uint32_t>(p + 4), get<uint32_t>(p + 8),
                      get<uint32_t>(p + 12)};
        p += chunk_header_bytes;
        if (uint64_t(end - p) < ci.stored_len) return corrupt("chunk data truncated");
        p += ci.stored_len;
        out.push_back(ci);
    }
    return out;
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
        uint8_t flags = p[2];
        uint8_t reserved = p[3];
        uint32_t raw_len = get<uint32_t>(p + 4);
        uint32_t stored = get<uint32_t>(p + 8);
        uint32_t nulls = get<uint32_t>(p + 12);
        uint64_t sum = get<uint64_t>(p + 16);
        p += chunk_header_bytes;
        if (uint64_t(end - p) < stored) return corrupt("chunk data truncated");
        if (raw_len > chunk_raw_bytes_max) return corrupt("chunk length out of range");
        const auto& def = schema.columns[col];
        if (flags != (def.nullable ? chunk_flag_validity : 0) || reserved != 0)
            return corrupt("column " + def.name + ": chunk flags do not match the column");
        const uint8_t* raw = p;
        if (cd == codec::zstd || cd == codec::lz4) {
            if (_scratch.size() < raw_len) _scratch.resize(raw_len);
            if (cd == codec::zstd) {
                size_t r = ZSTD_decompressDCtx(_dctx, _scratch.data(), raw_len, p, stored);
                if (ZSTD_isError(r) || r != raw_len)
                    return corrupt(std::string("zstd chunk does not decompress: ") +
                                   (ZSTD_isError(r) ? ZSTD_getErrorName(r) : "length mismatch"));
            } else {
                int r = LZ4_decompress_safe(reinterpret_cast<const char*>(p),
                                            reinterpret_cast<char*>(_scratch.data()), int(stored),
                                            int(raw_len));
                if (r < 0 || uint32_t(r) != raw_len)
                    return corrupt("lz4 chunk does not decompress");
            }
            raw = _scratch.data();
        } else if (cd != codec::none || stored != raw_len) {
            return corrupt("unknown codec " + std::to_string(unsigned(cd)));
        }
        if (checksum(raw, raw_len) != sum)
            return corrupt("column " + def.name + ": chunk checksum mismatch");
        auto& c = out.col(col);
        size_t skip = 0;
        if (def.nullable) {
            skip = bitmap_bytes(h.rows);
            if (raw_len < skip) return corrupt("column " + def.name + ": validity truncated");
            if (c.valid.size() < h.rows) c.valid.resize(h.rows);
            uint32_t counted = 0;
            for (uint32_t r = 0; r < h.rows; ++r) {
                c.valid[r] = (raw[r >> 3] >> (r & 7)) & 1;
                counted += c.valid[r] ^ 1;
            }
            if (counted != nulls) return corrupt("column " + def.name + ": null count mismatch");
        } else if (nulls != 0) {
            return corrupt("column " + def.name + ": nulls in a column that has none");
        }
        // The ref_string decoder reads earlier columns of this row: the rows are set.
        out.set_rows(h.rows);
        SLUICE_TRY(decode_column(out, col, enc, raw + skip, raw_len - skip, h.rows));
        p += stored;
    }
    if (p != end) return corrupt("trailing bytes after the last chunk");
    out.set_rows(h.rows);
    return ok_result();
}

result<void> block_decoder::decode_column(column_batch& out, int col, encoding enc,
                                          const uint8_t* p, size_t len, uint32_t rows) {
    auto& c = out.col(col);
    const uint8_t* end = p + len;
    auto fixed = [&]() {
        if (c.fixed.size() < rows) c.fixed.resize(rows);
    };
    auto bad = [&](const char* what) {
        return corrupt("column " + out.schema().columns[col].name + ": " + what);
    };
    const bool variable = is_variable(c.type);
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
    case encoding::dict_string:
    case encoding::ref_string:
    case encoding::suffix_number_string: {
        if (!variable) return bad("encoding does not match the column type");
        if (c.offsets.size() < rows) c.offsets.resize(rows);
        // Plain strings never expand; the others may, so size the arena as we go.
        if (c.arena.size() < len) c.arena.resize(len);
        size_t used = 0;
        auto append = [&](const void* s, size_t n) {
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
        } else if (enc == encoding::dict_string) {
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
        } else if (enc == encoding::suffix_number_string) {
            uint64_t section;
            if (!get_varint(p, end, section) || uint64_t(end - p) < section)
                return bad("prefix section truncated");
            const uint8_t* nums = p + section;
            const uint8_t* prefix_end = nums;
            uint64_t prev = 0;
            char digits[24];
            for (uint32_t r = 0; r < rows; ++r) {
                uint64_t h;
                if (!get_varint(p, prefix_end, h) || uint64_t(prefix_end - p) < (h >> 1))
                    return bad("prefix truncated");
                if (!append(p, h >> 1)) return bad("strings exceed 4 GiB");
                p += h >> 1;
                if (h & 1) {
                    uint64_t d;
                    if (!get_varint(nums, end, d)) return bad("numbers truncated");
                    prev += uint64_t(unzigzag(d));
                    if (prev >= 1000000000000000000ull) return bad("number out of range");
                    auto tc = std::to_chars(digits, digits + sizeof digits, prev);
                    if (!append(digits, size_t(tc.ptr - digits))) return bad("strings exceed 4 GiB");
                }
                c.offsets[r] = uint32_t(used);
            }
            if (p != prefix_end) return bad("prefix section length mismatch");
            p = nums;
        } else {
            if (p >= end) return bad("ref header truncated");
            const uint32_t nrefs = *p++;
            if (nrefs == 0 || nrefs > refs_max || uint64_t(end - p) < 2 * nrefs)
                return bad("ref header out of range");
            int refs[refs_max];
            for (uint32_t k = 0; k < nrefs; ++k, p += 2) {
                uint16_t rc = get<uint16_t>(p);
                if (rc >= col || !ref_type_ok(out.col(rc).type)) return bad("ref to a later column");
                refs[k] = rc;
            }
            char numbuf[32];
            for (uint32_t r = 0; r < rows; ++r) {
                uint64_t n;
                if (!get_varint(p, end, n) || uint64_t(end - p) < n) return bad("skeleton truncated");
                const uint8_t* s = p;
                p += n;
                if (n > 0 && s[0] == 0) {
                    if (!append(s + 1, n - 1)) return bad("strings exceed 4 GiB");
                    c.offsets[r] = uint32_t(used);
                    continue;
                }
                size_t from = 0;
                for (size_t i = 0; i < n; ++i) {
                    if (s[i] > refs_max) continue;
                    if (s[i] == 0 || s[i] > nrefs) return bad("bad marker in skeleton");
                    const int rc = refs[s[i] - 1];
                    if (out.is_null(rc, r)) return bad("skeleton refers to a null");
                    std::string_view t = ref_text(out, rc, r, numbuf);
                    if (!append(s + from, i - from) || !append(t.data(), t.size()))
                        return bad("strings exceed 4 GiB");
                    from = i + 1;
                }
                if (!append(s + from, n - from)) return bad("strings exceed 4 GiB");
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
