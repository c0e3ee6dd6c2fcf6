#include "storage/parquet_writer.h"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "base/assert.h"
#include "storage/text_format.h"
#include "storage/thrift_compact.h"

namespace sluice::storage {
namespace {

using thrift::compact_writer;

// parquet.thrift's enums, as numbers.
namespace pq {
enum type : int32_t { int32 = 1, int64 = 2, double_ = 5, byte_array = 6 };
enum repetition : int32_t { required = 0, optional = 1 };
enum converted : int32_t { utf8 = 0, uint_8 = 11, uint_64 = 14 };
enum encoding : int32_t { plain = 0, rle = 3, rle_dictionary = 8 };
enum codec : int32_t { uncompressed = 0, zstd = 6 };
enum page : int32_t { data_page = 0, dictionary_page = 2 };
} // namespace pq

constexpr char magic[4] = {'P', 'A', 'R', '1'};

pq::type physical(column_type t) {
    switch (t) {
    case column_type::i64:
    case column_type::u64: return pq::int64;
    case column_type::u8: return pq::int32;
    case column_type::f64: return pq::double_; // PLAIN: the 8 IEEE 754 bytes, as stored
    case column_type::string:
    case column_type::bytes: return pq::byte_array;
    }
    return pq::byte_array;
}

template <typename T>
void put(std::string& out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
}

void put_varint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out.push_back(char(v | 0x80));
        v >>= 7;
    }
    out.push_back(char(v));
}

// RLE/bit-packing hybrid, as RLE runs only: (run length << 1) then the value in
// ceil(width / 8) bytes. Used for definition levels (width 1).
void rle_runs(std::string& out, const uint8_t* v, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j] == v[i]) ++j;
        put_varint(out, uint64_t(j - i) << 1);
        out.push_back(char(v[i]));
        i = j;
    }
}

// RLE/bit-packing hybrid, as one bit-packed run: ((groups of 8) << 1 | 1), then the
// values packed `width` bits each, least significant bit first (dictionary indexes).
void bit_packed(std::string& out, const uint32_t* v, size_t n, int width) {
    const size_t groups = (n + 7) / 8;
    put_varint(out, (uint64_t(groups) << 1) | 1);
    const size_t start = out.size();
    out.append(groups * size_t(width), '\0');
    auto* p = reinterpret_cast<uint8_t*>(out.data() + start);
    size_t bit = 0;
    for (size_t i = 0; i < n; ++i) {
        for (int b = 0; b < width; ++b, ++bit)
            if ((v[i] >> b) & 1) p[bit >> 3] |= uint8_t(1u << (bit & 7));
    }
}

} // namespace

parquet_writer::parquet_writer(std::FILE* out, const table_schema& schema,
                               const parquet_options& options)
    : _out(out), _schema(schema), _options(options), _buffers(schema.columns.size()) {}

parquet_writer::~parquet_writer() { ZSTD_freeCCtx(_cctx); }

result<std::unique_ptr<parquet_writer>> parquet_writer::open(std::FILE* out,
                                                             const table_schema& schema,
                                                             const parquet_options& options) {
    if (schema.columns.empty())
        return make_error(errc::invalid_argument, "parquet: table " + schema.name + " has no columns");
    if (options.row_group_rows == 0 || options.page_bytes == 0)
        return make_error(errc::invalid_argument, "parquet: row group and page sizes must be > 0");
    std::unique_ptr<parquet_writer> w(new parquet_writer(out, schema, options));
    if (options.zstd) {
        w->_cctx = ZSTD_createCCtx();
        if (!w->_cctx) return make_error(errc::no_space, "parquet: cannot create a zstd context");
    }
    SLUICE_TRY(w->write(magic, sizeof magic));
    return w;
}

result<void> parquet_writer::write(const void* data, size_t len) {
    if (len && std::fwrite(data, 1, len, _out) != len)
        return make_error(errc::io_error, std::string("parquet: write failed: ") + std::strerror(errno));
    _offset += len;
    return ok_result();
}

result<void> parquet_writer::append(const column_batch& batch) {
    if (_finished) return make_error(errc::invalid_argument, "parquet: append after finish");
    const auto& cols = batch.schema().columns;
    if (cols.size() != _schema.columns.size())
        return make_error(errc::invalid_argument, "parquet: batch has another schema");
    for (size_t c = 0; c < cols.size(); ++c)
        if (cols[c].type != _schema.columns[c].type || cols[c].nullable != _schema.columns[c].nullable)
            return make_error(errc::invalid_argument,
                              "parquet: column " + cols[c].name + " differs from the file's schema");
    for (uint32_t begin = 0; begin < batch.rows();) {
        const uint32_t n = std::min(batch.rows() - begin, _options.row_group_rows - _rows);
        for (size_t c = 0; c < cols.size(); ++c) {
            column_buffer& b = _buffers[c];
            const auto type = cols[c].type;
            for (uint32_t r = begin; r < begin + n; ++r) {
                if (cols[c].nullable) {
                    bool null = batch.is_null(int(c), r);
                    b.defined.push_back(null ? 0 : 1);
                    if (null) {
                        ++b.nulls;
                        continue;
                    }
                }
                if (!is_variable(type)) {
                    b.fixed.push_back(batch.u64_at(int(c), r));
                    _buffered_bytes += 8;
                    continue;
                }
                std::string_view s = batch.string_at(int(c), r);
                if (type == column_type::string && !text::valid_utf8(s)) {
                    ++_invalid_utf8;
                    _scratch.clear();
                    text::append_utf8(_scratch, s);
                    b.bytes.insert(b.bytes.end(), _scratch.begin(), _scratch.end());
                } else {
                    b.bytes.insert(b.bytes.end(), s.begin(), s.end());
                }
                if (b.bytes.size() > std::numeric_limits<uint32_t>::max())
                    return make_error(errc::invalid_argument,
                                      "parquet: a row group's strings exceed 4 GiB");
                b.ends.push_back(uint32_t(b.bytes.size()));
                _buffered_bytes += s.size() + 4;
            }
        }
        _rows += n;
        _rows_total += n;
        begin += n;
        if (_rows >= _options.row_group_rows || _buffered_bytes >= _options.row_group_bytes)
            SLUICE_TRY(flush_row_group());
    }
    return ok_result();
}

result<void> parquet_writer::write_page(int page_type, const std::string& body, int32_t values,
                                        int32_t encoding, chunk_meta& meta) {
    if (body.size() > size_t(std::numeric_limits<int32_t>::max()))
        return make_error(errc::invalid_argument, "parquet: page larger than 2 GiB");
    const std::string* stored = &body;
    if (_cctx) {
        _scratch.resize(ZSTD_compressBound(body.size()));
        size_t z = ZSTD_compressCCtx(_cctx, _scratch.data(), _scratch.size(), body.data(),
                                     body.size(), _options.zstd_level);
        if (ZSTD_isError(z))
            return make_error(errc::internal, std::string("parquet: zstd: ") + ZSTD_getErrorName(z));
        _scratch.resize(z);
        stored = &_scratch;
    }
    compact_writer h;
    h.begin_root();
    h.i32(1, page_type);
    h.i32(2, int32_t(body.size()));
    h.i32(3, int32_t(stored->size()));
    if (page_type == pq::data_page) {
        h.begin_struct(5);
        h.i32(1, values);
        h.i32(2, encoding);
        h.i32(3, pq::rle); // definition levels
        h.i32(4, pq::rle); // repetition levels (none: the schema is flat)
        h.end_struct();
    } else {
        h.begin_struct(7);
        h.i32(1, values);
        h.i32(2, encoding);
        h.end_struct();
    }
    h.end_struct();
    meta.uncompressed += int64_t(h.bytes().size() + body.size());
    meta.compressed += int64_t(h.bytes().size() + stored->size());
    SLUICE_TRY(write(h.bytes().data(), h.bytes().size()));
    return write(stored->data(), stored->size());
}

result<void> parquet_writer::write_column(int col, chunk_meta& meta) {
    const column_def& def = _schema.columns[col];
    column_buffer& b = _buffers[col];
    const bool variable = is_variable(def.type);
    const size_t values = variable ? b.ends.size() : b.fixed.size();
    meta.file_offset = int64_t(_offset);
    meta.values = _rows;
    meta.nulls = int64_t(b.nulls);
    auto str = [&b](size_t i) {
        uint32_t begin = i == 0 ? 0 : b.ends[i - 1];
        return std::string_view(b.bytes.data() + begin, b.ends[i] - begin);
    };
    // No min/max for doubles (NaN marks windows without a number; readers would need
    // the NaN-aware ordering); integers get theirs.
    if (!variable && def.type != column_type::f64 && values > 0) {
        meta.has_minmax = true;
        meta.min = meta.max = b.fixed[0];
        for (uint64_t v : b.fixed) {
            if (def.type == column_type::i64) {
                meta.min = uint64_t(std::min(int64_t(meta.min), int64_t(v)));
                meta.max = uint64_t(std::max(int64_t(meta.max), int64_t(v)));
            } else {
                meta.min = std::min(meta.min, v);
                meta.max = std::max(meta.max, v);
            }
        }
    }

    // A dictionary when the strings repeat: the distinct values once, then bit-packed
    // indexes in the data pages.
    std::vector<uint32_t> ids;
    int width = 0;
    if (variable && _options.dictionary && values >= 2) {
        std::unordered_map<std::string_view, uint32_t> dict;
        std::string page;
        ids.reserve(values);
        for (size_t i = 0; i < values; ++i) {
            auto [it, fresh] = dict.try_emplace(str(i), uint32_t(dict.size()));
            if (fresh) {
                put<uint32_t>(page, uint32_t(it->first.size()));
                page.append(it->first);
                if (dict.size() > 65536 || dict.size() > values / 2 || page.size() > _options.page_bytes * 4)
                    break;
                // Mostly distinct so far (e.g. raw events): give up early, not at values / 2.
                if (i >= 1024 && dict.size() > (i + 1) / 2) break;
            }
            ids.push_back(it->second);
        }
        if (ids.size() == values) {
            meta.dictionary = true;
            meta.dictionary_page_offset = int64_t(_offset);
            width = std::max(1, int(std::bit_width(uint32_t(dict.size() - 1))));
            SLUICE_TRY(write_page(pq::dictionary_page, page, int32_t(dict.size()), pq::plain, meta));
        } else {
            ids.clear();
        }
    }

    // Data pages of about page_bytes of values each.
    size_t value = 0; // index of the next non-null value
    std::string& body = _body;
    body.reserve(_options.page_bytes + (64 << 10));
    for (uint32_t row = 0; row < _rows;) {
        uint32_t end = row;
        size_t first_value = value, bytes = 0;
        while (end < _rows && bytes < _options.page_bytes) {
            bool has = !def.nullable || b.defined[end];
            if (has) {
                bytes += meta.dictionary ? 2 : variable ? 4 + str(value).size() : 8;
                ++value;
            }
            ++end;
        }
        body.clear();
        if (def.nullable) {
            std::string levels;
            rle_runs(levels, b.defined.data() + row, end - row);
            put<uint32_t>(body, uint32_t(levels.size()));
            body += levels;
        }
        if (meta.dictionary) {
            body.push_back(char(width));
            if (value > first_value) bit_packed(body, ids.data() + first_value, value - first_value, width);
        } else {
            for (size_t v = first_value; v < value; ++v) {
                if (variable) {
                    put<uint32_t>(body, uint32_t(str(v).size()));
                    body.append(str(v));
                } else if (physical(def.type) == pq::int32) {
                    put<uint32_t>(body, uint32_t(b.fixed[v]));
                } else {
                    put<uint64_t>(body, b.fixed[v]);
                }
            }
        }
        if (meta.data_page_offset == 0) meta.data_page_offset = int64_t(_offset);
        SLUICE_TRY(write_page(pq::data_page, body, int32_t(end - row),
                              meta.dictionary ? pq::rle_dictionary : pq::plain, meta));
        row = end;
    }
    // Keep the capacity for the next row group: regrowing faults pages in again.
    b.fixed.clear();
    b.bytes.clear();
    b.ends.clear();
    b.defined.clear();
    b.nulls = 0;
    return ok_result();
}

result<void> parquet_writer::flush_row_group() {
    if (_rows == 0) return ok_result();
    row_group_meta g;
    g.rows = _rows;
    g.file_offset = int64_t(_offset);
    g.columns.resize(_schema.columns.size());
    for (int c = 0; c < int(_schema.columns.size()); ++c) {
        SLUICE_TRY(write_column(c, g.columns[c]));
        g.uncompressed += g.columns[c].uncompressed;
        g.compressed += g.columns[c].compressed;
    }
    _row_groups.push_back(std::move(g));
    _rows = 0;
    _buffered_bytes = 0;
    return ok_result();
}

std::string parquet_writer::footer() const {
    compact_writer f;
    f.begin_root();
    f.i32(1, 1); // version
    f.begin_list(2, compact_writer::t_struct, _schema.columns.size() + 1);
    f.begin_element(); // the root of the (flat) schema
    f.binary(4, _schema.name);
    f.i32(5, int32_t(_schema.columns.size()));
    f.end_struct();
    for (const auto& c : _schema.columns) {
        f.begin_element();
        f.i32(1, physical(c.type));
        f.i32(3, c.nullable ? pq::optional : pq::required);
        f.binary(4, c.name);
        switch (c.type) {
        case column_type::string:
            f.i32(6, pq::utf8);
            f.begin_struct(10);
            f.begin_struct(1); // STRING
            f.end_struct();
            f.end_struct();
            break;
        case column_type::u64:
        case column_type::u8:
            f.i32(6, c.type == column_type::u64 ? pq::uint_64 : pq::uint_8);
            f.begin_struct(10);
            f.begin_struct(10); // INTEGER
            f.i8(1, c.type == column_type::u64 ? 64 : 8);
            f.boolean(2, false);
            f.end_struct();
            f.end_struct();
            break;
        case column_type::i64:
        case column_type::f64:
        case column_type::bytes: break;
        }
        f.end_struct();
    }
    f.i64(3, int64_t(_rows_total));
    f.begin_list(4, compact_writer::t_struct, _row_groups.size());
    for (const auto& g : _row_groups) {
        f.begin_element();
        f.begin_list(1, compact_writer::t_struct, g.columns.size());
        for (size_t c = 0; c < g.columns.size(); ++c) {
            const chunk_meta& m = g.columns[c];
            const column_def& def = _schema.columns[c];
            f.begin_element();
            f.i64(2, m.file_offset);
            f.begin_struct(3);
            f.i32(1, physical(def.type));
            f.begin_list(2, compact_writer::t_i32, m.dictionary ? 3 : 2);
            f.list_i32(pq::plain);
            f.list_i32(pq::rle);
            if (m.dictionary) f.list_i32(pq::rle_dictionary);
            f.begin_list(3, compact_writer::t_binary, 1);
            f.list_binary(def.name);
            f.i32(4, _cctx ? pq::zstd : pq::uncompressed);
            f.i64(5, m.values);
            f.i64(6, m.uncompressed);
            f.i64(7, m.compressed);
            f.i64(9, m.data_page_offset);
            if (m.dictionary) f.i64(11, m.dictionary_page_offset);
            f.begin_struct(12); // statistics
            f.i64(3, m.nulls);
            if (m.has_minmax) {
                std::string lo, hi;
                if (physical(def.type) == pq::int32) {
                    put<uint32_t>(lo, uint32_t(m.min));
                    put<uint32_t>(hi, uint32_t(m.max));
                } else {
                    put<uint64_t>(lo, m.min);
                    put<uint64_t>(hi, m.max);
                }
                f.binary(5, hi);
                f.binary(6, lo);
            }
            f.end_struct();
            f.end_struct(); // meta_data
            f.end_struct(); // ColumnChunk
        }
        f.i64(2, g.uncompressed);
        f.i64(3, g.rows);
        f.i64(5, g.file_offset);
        f.i64(6, g.compressed);
        f.end_struct();
    }
    f.binary(6, "sluice version " SLUICE_VERSION);
    // Statistics min/max follow each column's logical type (unsigned for UINT).
    f.begin_list(7, compact_writer::t_struct, _schema.columns.size());
    for (size_t c = 0; c < _schema.columns.size(); ++c) {
        f.begin_element();
        f.begin_struct(1); // TYPE_ORDER
        f.end_struct();
        f.end_struct();
    }
    f.end_struct();
    return std::move(f.bytes());
}

result<void> parquet_writer::finish() {
    if (_finished) return ok_result();
    SLUICE_TRY(flush_row_group());
    std::string meta = footer();
    SLUICE_TRY(write(meta.data(), meta.size()));
    uint32_t len = uint32_t(meta.size());
    SLUICE_TRY(write(&len, 4));
    SLUICE_TRY(write(magic, sizeof magic));
    _finished = true;
    if (std::fflush(_out) != 0)
        return make_error(errc::io_error, std::string("parquet: write failed: ") + std::strerror(errno));
    return ok_result();
}

} // namespace sluice::storage
