// The bytes on disk, pinned: whole segment images (file header, data blocks, footer) of
// tables that use every column type and every encoding the writer picks, compared byte
// for byte with tests/storage/data/format_v4_golden.bin. A refactor of storage/format/
// must leave this test green without touching the golden file; a change that fails it
// changes the format and bumps format::version (docs/FORMAT.md, "Versioning").
// Older versions stay readable: format_v2_golden.bin and format_v3_golden.bin (written
// by those formats' writers from the rows the fillers make for that version) must
// decode to exactly those rows.
//
// Regenerate (only with a format change): SLUICE_FORMAT_GOLDEN_WRITE=1 format_golden_test
//
// Compressed images depend on the zstd and lz4 libraries as well: they are compared byte
// for byte when the libraries are the versions that wrote the golden file, otherwise by
// their chunk headers (encoding, raw length, null count, raw checksum) against the
// uncompressed image.
#include <gtest/gtest.h>
#include <lz4.h>
#include <zstd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "storage/column_batch.h"
#include "storage/schema.h"
#include "base/time_format.h"
#include "storage/segment_format.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using format::codec;
using format::encoding;
using bytes = std::vector<uint8_t>;

uint64_t next(uint64_t& s) noexcept { // splitmix64: the same stream on every platform
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Every type, nullable and not; string columns shaped so that the writer picks each
// string encoding: kind (dict_string, u8 indexes), id (suffix_number_string), blob
// (plain_string), raw (ref_escaped_string; some rows with a marker byte, escaped, some
// with an RFC 3339 time, some binary with the time's 8 bytes), name (dict_string, u16
// indexes).
table_schema wide_schema() {
    return {"wide",
            {{"t", column_type::i64},
             {"n", column_type::i64, true},
             {"small", column_type::u64},
             {"hash", column_type::u64},
             {"flag", column_type::u8, true},
             {"ratio", column_type::f64},
             {"kind", column_type::string},
             {"id", column_type::string, true},
             {"blob", column_type::bytes, true},
             {"raw", column_type::string, false, {7, 6, 0}},
             {"name", column_type::string},
             {"count", column_type::u64, true}},
            0};
}

// version: the format the rows are for (format 2's golden file has no text timestamps).
void fill_wide(column_batch& b, uint32_t rows, uint64_t seed, uint32_t version) {
    static const char* kinds[] = {"view", "click", "buy", "scroll"};
    const double ratios[] = {0.5, -0.0, std::numeric_limits<double>::infinity(), std::nan(""),
                             1e300};
    int64_t t = 1740754800000 + int64_t(seed) * 1000;
    for (uint32_t r = 0; r < rows; ++r) {
        const uint64_t x = next(seed);
        t += int64_t(x % 50) - 10; // mostly rising, sometimes back
        b.push_i64(0, t);
        if (x % 7 == 0)
            b.push_null(1);
        else
            b.push_i64(1,
                       r % 97 == 3 ? std::numeric_limits<int64_t>::min() : int64_t(x >> 40) - 8000);
        b.push_u64(2, x % 300);
        b.push_u64(3, x | (1ull << 63));
        if (x % 5 == 0)
            b.push_null(4);
        else
            b.push_u8(4, uint8_t(x >> 8));
        b.push_f64(5, r % 9 < 5 ? ratios[r % 9] : double(int64_t(x % 10000)) / 7);
        const char* kind = kinds[(x >> 12) % 4];
        b.push_string(6, kind);
        std::string id = (x >> 20) % 3 == 0   ? "order-" + std::to_string(r * 3 + 7)
                         : (x >> 20) % 3 == 1 ? std::to_string(100000 + r)
                                              : "e-0" + std::to_string(r);
        if (x % 11 == 0)
            b.push_null(7);
        else
            b.push_string(7, id);
        std::string blob(size_t(x >> 56) % 24, '\0');
        for (auto& ch : blob)
            ch = char(next(seed));
        if (x % 13 == 0)
            b.push_null(8);
        else
            b.push_string(8, blob);
        std::string raw =
            "{\"id\":\"" + id + "\",\"kind\":\"" + kind + "\",\"t\":" + std::to_string(t) + "}";
        if (version >= 3 && x % 4 == 1) // a timestamp as text, to the ms or second
            raw = "{\"id\":\"" + id + "\",\"time\":\"" +
                  format_rfc3339_ms(x % 8 == 1 ? t : t / 1000 * 1000).substr(0, x % 8 == 1 ? 23 : 19) +
                  "Z\"}";
        if (version >= 4 && x % 19 == 2) { // binary: found by the search, the time as 8 bytes
            raw = "\xB1" + std::string(reinterpret_cast<const char*>(&t), 8) + id + '\0' + kind;
        }
        if (x % 17 == 0) raw += '\x03'; // a marker byte: verbatim (format 3), escaped (4)
        b.push_string(9, raw);
        const uint64_t k =
            (r * 7 + (x >> 24) % 2) % 270; // letters only: no numeric suffix to split off
        b.push_string(10, std::string{"user-"} + char('a' + k % 26) + char('a' + k / 26));
        if (x % 3 == 0)
            b.push_null(11);
        else
            b.push_u64(11, x >> (x % 64));
        b.end_row();
    }
}

// A binary event's canonical form (docs/BINARY.md) and where the worker says its fields
// and time are (processing/event_row.h's order: event_id, user_id, event_type, page, time).
std::string canonical_raw(int64_t t, const std::string* id, const std::string& user,
                          const std::string& type, const std::string& page, uint16_t* at) {
    std::string raw = "\xB1\x01";
    raw += std::string("\x01\x00", 2);
    raw.append(reinterpret_cast<const char*>(&t), 8);
    const std::string* fields[] = {id, &user, &type, &page};
    for (const auto* f : fields) {
        const uint16_t n = f ? uint16_t(f->size()) : 0xFFFF;
        raw.append(reinterpret_cast<const char*>(&n), 2);
    }
    raw += std::string("\xFF\xFF", 2); // no metadata
    for (int f = 0; f < 4; ++f) {
        at[f] = fields[f] ? uint16_t(raw.size()) : column_batch::no_position;
        if (fields[f]) raw += *fields[f];
    }
    at[4] = 4;
    return raw;
}

// The events table as the worker fills it: NDJSON events and binary-batch ones (from
// format 4 on in their canonical form, with the positions of their fields).
void fill_events(column_batch& b, uint32_t rows, uint64_t seed, uint32_t version) {
    namespace ev = events_col;
    static const char* pages[] = {"/", "/cart", "/p/17", "/search?q=a"};
    int64_t t = 1740754800000;
    for (uint32_t r = 0; r < rows; ++r) {
        const uint64_t x = next(seed);
        t += int64_t(x % 20);
        const std::string user = "u" + std::to_string(x % 40);
        const std::string type = (x >> 8) % 2 ? "page_view" : "click";
        const std::string page = pages[(x >> 16) % 4];
        const std::string id = "0193f6c2-6d1e-7" + std::to_string(100 + r % 900) +
                               "-8000-00000000" + std::to_string(1000 + r);
        const bool has_id = (x >> 24) % 2;
        b.push_i64(ev::event_time_ms, t);
        if (has_id)
            b.push_string(ev::event_id, id);
        else
            b.push_null(ev::event_id);
        b.push_string(ev::user_id, user);
        b.push_string(ev::event_type, type);
        b.push_string(ev::page, page);
        b.push_u8(ev::late, uint8_t(x % 29 == 0));
        std::string raw;
        uint16_t at[5];
        if (r % 10 == 9 && version >= 4) {
            raw = canonical_raw(t, has_id ? &id : nullptr, user, type, page, at);
            b.push_string_at(ev::raw, raw, at);
            b.push_i64(ev::max_time_ms, t + int64_t(x % 3));
            b.end_row();
            continue;
        }
        if (r % 10 == 9) {
            raw = "\xB1\x01" + user + '\0' + type + '\0' + page; // format 3's stand-in
        } else {
            raw = std::string("{") + (has_id ? "\"event_id\":\"" + id + "\"," : "") +
                  "\"user_id\":\"" + user + "\",\"event_type\":\"" + type + "\",\"page\":\"" +
                  page + "\",\"ts\":" + std::to_string(t) + "}";
        }
        b.push_string(ev::raw, raw);
        b.push_i64(ev::max_time_ms, t + int64_t(x % 3));
        b.end_row();
    }
}

using filler = void (*)(column_batch&, uint32_t, uint64_t, uint32_t);

// A whole segment, built as segment_writer builds it: header, blocks, footer.
bytes segment_image(const table_schema& schema, filler fill, const std::vector<uint32_t>& blocks,
                    format::compression comp) {
    const uint32_t rows_max = 1200;
    const size_t string_bytes_max = 1 << 20;
    bytes img(format::file_header_bytes);
    EXPECT_TRUE(format::write_file_header({schema, "w0", 42}, img.data()).ok());
    column_batch batch(schema, rows_max, string_bytes_max, 4096);
    format::block_encoder enc(schema, rows_max, string_bytes_max, comp);
    bytes block(enc.block_bytes_max());
    format::footer f;
    f.columns.resize(schema.columns.size());
    f.min_time_ms = std::numeric_limits<int64_t>::max();
    f.max_time_ms = std::numeric_limits<int64_t>::min();
    for (size_t i = 0; i < blocks.size(); ++i) {
        batch.clear();
        fill(batch, blocks[i], i + 1, format::version);
        const auto h = enc.encode(batch, i, block.data());
        img.insert(img.end(), block.begin(), block.begin() + format::block_bytes(h.payload_bytes));
        for (size_t c = 0; c < f.columns.size(); ++c)
            format::merge_stats(schema.columns[c].type, f.columns[c], enc.block_stats()[c]);
        f.rows += h.rows;
        f.min_time_ms = std::min(f.min_time_ms, h.min_time_ms);
        f.max_time_ms = std::max(f.max_time_ms, h.max_time_ms);
    }
    f.data_blocks = blocks.size();
    f.data_end_offset = img.size();
    bytes footer(format::block_bytes(format::footer_payload_bytes(f.columns.size())));
    format::write_footer_block(f, blocks.size(), footer.data());
    img.insert(img.end(), footer.begin(), footer.end());
    return img;
}

struct codec_case {
    const char* name;
    format::compression comp;
};
const codec_case codecs[] = {
    {"none", {codec::none, 0}}, {"zstd1", {codec::zstd, 1}}, {"lz4", {codec::lz4, 1}}};

// The golden tables: schema, filler and block sizes. wide: 1100 rows (`name` gets > 256
// distinct values, still <= rows / 4: u16 indexes), then a small block, an empty one and
// a one-row one.
struct golden_table {
    const char* name;
    table_schema (*schema)();
    filler fill;
    std::vector<uint32_t> blocks;
};
const golden_table tables[] = {{"wide", wide_schema, fill_wide, {1100, 40, 0, 1}},
                               {"events", events_schema, fill_events, {300, 7}}};

// name -> image, plus the library versions under "versions".
std::map<std::string, bytes> all_images() {
    std::map<std::string, bytes> out;
    for (const auto& cc : codecs)
        for (const auto& t : tables)
            out[std::string(t.name) + "/" + cc.name] =
                segment_image(t.schema(), t.fill, t.blocks, cc.comp);
    const uint32_t v[2] = {ZSTD_versionNumber(), uint32_t(LZ4_versionNumber())};
    out["versions"] =
        bytes(reinterpret_cast<const uint8_t*>(v), reinterpret_cast<const uint8_t*>(v + 2));
    return out;
}

std::string golden_path(uint32_t version = format::version) {
    const std::string file = "format_v" + std::to_string(version) + "_golden.bin";
    if (const char* d = std::getenv("SLUICE_TEST_DATA")) return std::string(d) + "/" + file;
    return (std::filesystem::path(__FILE__).parent_path() / "data" / file).string();
}

// The file: per image, u32 name length, name, u64 length, bytes.
void write_golden(const std::map<std::string, bytes>& images, const std::string& path) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (const auto& [name, img] : images) {
        const uint32_t n = uint32_t(name.size());
        const uint64_t len = img.size();
        out.write(reinterpret_cast<const char*>(&n), 4).write(name.data(), n);
        out.write(reinterpret_cast<const char*>(&len), 8);
        out.write(reinterpret_cast<const char*>(img.data()), std::streamsize(len));
    }
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::map<std::string, bytes> read_golden(const std::string& path) {
    std::map<std::string, bytes> images;
    std::ifstream in(path, std::ios::binary);
    uint32_t n;
    while (in.read(reinterpret_cast<char*>(&n), 4)) {
        std::string name(n, '\0');
        uint64_t len = 0;
        in.read(name.data(), n).read(reinterpret_cast<char*>(&len), 8);
        bytes img(len);
        in.read(reinterpret_cast<char*>(img.data()), std::streamsize(len));
        images[name] = std::move(img);
    }
    return images;
}

// Calls fn(rows, chunk) for each chunk (header + stored bytes) of every data block.
template <typename Fn> void for_each_chunk(const bytes& img, Fn fn) {
    size_t off = format::file_header_bytes;
    format::block_header h;
    while (off < img.size() && format::read_block_header(img.data() + off, h) &&
           h.kind == format::block_kind::data) {
        const uint8_t* p = img.data() + off + format::block_header_bytes;
        for (uint32_t c = 0; c < h.columns; ++c) {
            uint32_t stored;
            std::memcpy(&stored, p + 8, 4);
            fn(h.rows, p);
            p += format::chunk_header_bytes + stored;
        }
        off += format::block_bytes(h.payload_bytes);
    }
}

// The chunk headers of every data block, compression fields left out.
std::vector<std::string> raw_chunk_headers(const bytes& img) {
    std::vector<std::string> out;
    for_each_chunk(img, [&out](uint32_t, const uint8_t* p) {
        std::string k(reinterpret_cast<const char*>(p), format::chunk_header_bytes);
        k[1] = 0;                        // codec
        std::memset(k.data() + 8, 0, 4); // stored length
        out.push_back(k);
    });
    return out;
}

size_t first_difference(const bytes& a, const bytes& b) {
    size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i])
        ++i;
    return i;
}

TEST(FormatGolden, SegmentBytesMatchTheGoldenFile) {
    const auto images = all_images();
    if (std::getenv("SLUICE_FORMAT_GOLDEN_WRITE")) {
        write_golden(images, golden_path());
        GTEST_SKIP() << "wrote " << golden_path();
    }
    const auto golden = read_golden(golden_path());
    ASSERT_EQ(golden.size(), images.size()) << "missing or short golden file " << golden_path();
    const bool same_libs = golden.at("versions") == images.at("versions");
    for (const auto& [name, img] : images) {
        if (name == "versions") continue;
        ASSERT_TRUE(golden.count(name)) << name;
        const bytes& want = golden.at(name);
        if (name.ends_with("/none") || same_libs) {
            EXPECT_EQ(img.size(), want.size()) << name;
            EXPECT_TRUE(img == want)
                << name << ": first difference at byte " << first_difference(img, want);
        } else {
            const std::string plain = name.substr(0, name.find('/')) + "/none";
            EXPECT_EQ(raw_chunk_headers(img), raw_chunk_headers(golden.at(plain))) << name;
        }
    }
    if (!same_libs)
        std::cout << "zstd/lz4 differ from the golden file's: compressed images compared by chunk "
                     "headers\n";
}

// The golden images use every encoding, codec and dictionary index width (else the test
// above pins less than it claims).
TEST(FormatGolden, ImagesUseEveryEncodingAndCodec) {
    std::set<int> encodings, codecs_seen;
    bool dict_u16 = false, escaped_binary = false;
    for (const auto& [name, img] : all_images()) {
        for_each_chunk(img, [&](uint32_t rows, const uint8_t* p) {
            encodings.insert(p[0]);
            codecs_seen.insert(p[1]);
            if (encoding(p[0]) == encoding::ref_escaped_string && codec(p[1]) == codec::none) {
                // A binary canonical raw's skeleton: 0xB1, its version byte 1 escaped.
                uint32_t stored;
                std::memcpy(&stored, p + 8, 4);
                const std::string_view sk(reinterpret_cast<const char*>(p) + format::chunk_header_bytes,
                                          stored);
                escaped_binary |= sk.find(std::string_view("\xB1\0\x01", 3)) != sk.npos;
            }
            if (encoding(p[0]) != encoding::dict_string || codec(p[1]) != codec::none || p[2])
                return;
            const uint8_t* d = p + format::chunk_header_bytes; // varint entry count
            const uint32_t count = d[0] & 0x80 ? (d[0] & 0x7f) | uint32_t(d[1]) << 7 : d[0];
            dict_u16 |= count > 256 && rows > 0;
        });
    }
    // Every encoding the writer picks: all but format 2's delta_varint_i64 (2) and
    // ref_string (7) and format 3's ref_packed_string (10), which only the older golden
    // files hold.
    EXPECT_EQ(encodings, (std::set<int>{1, 3, 4, 5, 6, 8, 9, 11}));
    EXPECT_EQ(codecs_seen, (std::set<int>{0, 1, 2}));
    EXPECT_TRUE(dict_u16) << "no dictionary with u16 indexes";
    EXPECT_TRUE(escaped_binary) << "no skeleton with an escaped marker byte";
}

// Every image of format_v<version>_golden.bin (written by that format's writer) decodes,
// block by block, to exactly the rows the fillers make for that version: older segments
// stay readable. Returns the encodings its chunks use.
std::set<int> check_golden_rows(uint32_t version) {
    const auto golden = read_golden(golden_path(version));
    EXPECT_FALSE(golden.empty()) << "missing golden file " << golden_path(version);
    std::set<int> encodings;
    for (const auto& t : tables) {
        const table_schema schema = t.schema();
        for (const auto& cc : codecs) {
            const std::string name = std::string(t.name) + "/" + cc.name;
            EXPECT_TRUE(golden.count(name)) << name;
            if (!golden.count(name)) continue;
            const bytes& img = golden.at(name);
            auto meta = format::read_file_header(img.data(), img.size());
            EXPECT_TRUE(meta.ok()) << name << ": " << meta.err().message;
            if (!meta.ok() || meta->schema.columns.size() != schema.columns.size()) {
                ADD_FAILURE() << name << ": header";
                continue;
            }
            EXPECT_EQ(img[8], version) << name << ": not a format " << version << " image";
            size_t off = format::file_header_bytes;
            format::block_decoder dec;
            column_batch got(meta->schema, 1, 0, 0);
            column_batch want(schema, 1200, 1 << 20, 4096);
            for (size_t i = 0; i < t.blocks.size(); ++i) {
                format::block_header h;
                if (!format::read_block_header(img.data() + off, h) ||
                    h.kind != format::block_kind::data) {
                    ADD_FAILURE() << name << " block " << i << ": no data block";
                    break;
                }
                const uint8_t* payload = img.data() + off + format::block_header_bytes;
                auto r = dec.decode(h, payload, got);
                if (!r.ok()) {
                    ADD_FAILURE() << name << " block " << i << ": " << r.err().message;
                    break;
                }
                want.clear();
                t.fill(want, t.blocks[i], i + 1, version);
                EXPECT_EQ(got.rows(), want.rows()) << name << " block " << i;
                for (uint32_t row = 0; row < want.rows() && row < got.rows(); ++row)
                    if (test::row_at(got, row) != test::row_at(want, row)) {
                        ADD_FAILURE() << name << " block " << i << " row " << row;
                        break;
                    }
                auto infos = format::read_chunk_infos(h, payload);
                EXPECT_TRUE(infos.ok());
                if (infos.ok())
                    for (const auto& ch : *infos)
                        encodings.insert(int(ch.enc));
                off += format::block_bytes(h.payload_bytes);
            }
        }
    }
    return encodings;
}

TEST(FormatGolden, Version4SegmentsDecodeToTheirRows) {
    const auto encodings = check_golden_rows(4);
    EXPECT_TRUE(encodings.count(int(encoding::ref_escaped_string)));
}

TEST(FormatGolden, Version2SegmentsDecodeToTheirRows) {
    // The format 2 writer's integer and skeleton encodings, which later formats only read.
    const auto encodings = check_golden_rows(2);
    EXPECT_TRUE(encodings.count(int(encoding::delta_varint_i64)));
    EXPECT_TRUE(encodings.count(int(encoding::ref_string)));
}

TEST(FormatGolden, Version3SegmentsDecodeToTheirRows) {
    // Format 3's skeletons (some verbatim: values with a marker byte), which format 4
    // only reads.
    const auto encodings = check_golden_rows(3);
    EXPECT_TRUE(encodings.count(int(encoding::ref_packed_string)));
    EXPECT_FALSE(encodings.count(int(encoding::ref_escaped_string)));
}

} // namespace
} // namespace sluice::storage
