#include "storage/format/headers.h"

#include <xxhash.h>

#include <cstring>

#include "storage/format/bytes.h"

namespace sluice::storage::format {
namespace {

error corrupt(std::string what) {
    return make_error(errc::corrupt, std::move(what));
}

} // namespace

uint64_t checksum(const void* data, size_t len) noexcept {
    return XXH3_64bits(data, len);
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
    if (s.name.empty() || s.name.size() > name_bytes_max ||
        meta.writer_name.size() > name_bytes_max)
        return make_error(errc::invalid_argument,
                          "table and writer names must be 1 to 255 bytes: '" + s.name + "'");
    if (s.time_column >= int(s.columns.size()) ||
        (s.time_column >= 0 && s.columns[s.time_column].type != column_type::i64))
        return make_error(errc::invalid_argument, "table " + s.name + ": bad time column");
    size_t need = 30 + 1 + s.name.size() + 1 + meta.writer_name.size() + 8 +
                  (meta.first_row_offset ? row_offset_extension_bytes : 0);
    for (const auto& c : s.columns)
        need += 4 + c.name.size() + 2 * c.refs.size();
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
    if (meta.first_row_offset) {
        uint8_t* e = p + 8;
        put<uint32_t>(e, row_offset_magic);
        put<uint32_t>(e + 4, 8);
        put<uint64_t>(e + 8, *meta.first_row_offset);
        put<uint64_t>(e + 16, checksum(e, 16));
    }
    return ok_result();
}

result<segment_meta> read_file_header(const uint8_t* in, size_t len) {
    if (len < file_header_bytes) return corrupt("file shorter than its 4096-byte header");
    if (std::memcmp(in, file_magic, 8) != 0) return corrupt("not a sluice segment (bad magic)");
    uint32_t v = get<uint32_t>(in + 8);
    uint32_t content = get<uint32_t>(in + 12);
    const bool length_ok = content >= 30 && uint64_t(content) + 8 <= file_header_bytes; // no wrap
    const bool checksum_ok = length_ok && get<uint64_t>(in + content) == checksum(in, content);
    // Every version keeps this envelope (magic, version, content_len, checksum at
    // content_len), so a damaged version field reads as corruption, never as a file from
    // another sluice: one flipped bit must not stop recovery (and the daemon) from starting.
    const bool known = v >= version_read_min && v <= version;
    if (!known && !checksum_ok)
        return corrupt("file header checksum mismatch (version field reads " +
                       std::to_string(v) + ")");
    if (!known)
        return make_error(errc::unsupported, "segment format version " + std::to_string(v) +
                                                 " (this build reads versions " +
                                                 std::to_string(version_read_min) + " to " +
                                                 std::to_string(version) +
                                                 "; read it with the sluice that wrote it)");
    if (!length_ok) return corrupt("bad file header length");
    if (!checksum_ok) return corrupt("file header checksum mismatch");
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
    // The row-offset extension, when the writer put one after the checksum (zero padding
    // in segments written before it).
    if (content + 8 + row_offset_extension_bytes <= file_header_bytes) {
        const uint8_t* e = in + content + 8;
        if (get<uint32_t>(e) == row_offset_magic) {
            if (get<uint32_t>(e + 4) != 8 || get<uint64_t>(e + 16) != checksum(e, 16))
                return corrupt("file header row-offset extension checksum mismatch");
            m.first_row_offset = get<uint64_t>(e + 8);
        }
    }
    int tc = m.schema.time_column;
    if (tc >= int(ncols) || (tc >= 0 && m.schema.columns[tc].type != column_type::i64))
        return corrupt("file header time column out of range");
    return m;
}

} // namespace sluice::storage::format
