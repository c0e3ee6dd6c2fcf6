#include "storage/segment_format.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>

#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;
using format::block_header;
using format::codec;
using format::encoding;

table_schema all_types_schema() {
    return {"all_types",
            {{"t", column_type::i64},
             {"n", column_type::i64},
             {"h", column_type::u64},
             {"small", column_type::u64},
             {"flag", column_type::u8},
             {"s", column_type::string}},
            0};
}

struct aligned_buf {
    explicit aligned_buf(size_t n)
        : p(static_cast<uint8_t*>(std::aligned_alloc(4096, n))), size(n) {}
    ~aligned_buf() { std::free(p); }
    uint8_t* p;
    size_t size;
};

struct chunk_info {
    encoding enc;
    codec cd;
};

std::vector<chunk_info> chunks(const uint8_t* block, const block_header& h) {
    std::vector<chunk_info> out;
    const uint8_t* p = block + format::block_header_bytes;
    for (uint32_t c = 0; c < h.columns; ++c) {
        uint32_t stored;
        std::memcpy(&stored, p + 8, 4);
        out.push_back({encoding(p[0]), codec(p[1])});
        p += format::chunk_header_bytes + stored;
    }
    return out;
}

// Encodes rows, decodes them back, checks the model; returns the chunk encodings.
std::vector<chunk_info> round_trip(const table_schema& schema, const std::vector<row>& rows,
                                   size_t string_bytes = 1 << 20, int zstd_level = 1) {
    uint32_t cap = std::max<uint32_t>(uint32_t(rows.size()), 1);
    column_batch in(schema, cap, string_bytes, string_bytes);
    for (const auto& r : rows) push_row(in, r);
    format::block_encoder enc(schema, cap, string_bytes, zstd_level);
    aligned_buf buf(enc.block_bytes_max());
    block_header h = enc.encode(in, 7, buf.p);
    EXPECT_EQ(h.rows, rows.size());
    EXPECT_EQ(h.block_index, 7u);
    EXPECT_LE(format::block_bytes(h.payload_bytes), enc.block_bytes_max());
    EXPECT_EQ(format::block_bytes(h.payload_bytes) % 4096, 0u);

    block_header back;
    EXPECT_TRUE(format::read_block_header(buf.p, back));
    EXPECT_EQ(back.payload_bytes, h.payload_bytes);
    EXPECT_EQ(back.min_time_ms, h.min_time_ms);

    column_batch out(schema, 1, 0, 0);
    format::block_decoder dec;
    auto r = dec.decode(back, buf.p + format::block_header_bytes, out);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    std::vector<row> got;
    append_rows(out, got);
    EXPECT_EQ(got, rows);
    return chunks(buf.p, h);
}

row make_row(int64_t t, int64_t n, uint64_t h, uint64_t small, uint64_t flag, std::string s) {
    return {t, n, h, small, flag, std::move(s)};
}

TEST(SegmentFormat, RoundTripsEmptyBlock) {
    auto schema = all_types_schema();
    column_batch in(schema, 4, 64, 64);
    format::block_encoder enc(schema, 4, 64, 1);
    aligned_buf buf(enc.block_bytes_max());
    block_header h = enc.encode(in, 0, buf.p);
    EXPECT_EQ(h.rows, 0u);
    EXPECT_GT(h.min_time_ms, h.max_time_ms); // the empty range
    column_batch out(schema, 1, 0, 0);
    format::block_decoder dec;
    ASSERT_TRUE(dec.decode(h, buf.p + format::block_header_bytes, out).ok());
    EXPECT_EQ(out.rows(), 0u);
}

TEST(SegmentFormat, RoundTripsOneRow) {
    auto c = round_trip(all_types_schema(), {make_row(-5, 42, 7, 3, 1, "x")});
    ASSERT_EQ(c.size(), 6u);
    EXPECT_EQ(c[0].enc, encoding::delta_varint_i64);
    EXPECT_EQ(c[4].enc, encoding::plain_u8);
    EXPECT_EQ(c[5].enc, encoding::plain_string); // one row: no dictionary
}

TEST(SegmentFormat, RoundTripsNegativeAndUnsortedI64) {
    std::mt19937_64 rng(1);
    std::vector<row> rows;
    const int64_t extremes[] = {std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max(), -1, 0, 1,
                                std::numeric_limits<int64_t>::min() + 1};
    for (int64_t e : extremes) rows.push_back(make_row(e, -e - 1, 0, 0, 0, ""));
    for (int i = 0; i < 500; ++i)
        rows.push_back(make_row(int64_t(rng()), -int64_t(rng() % 1000), rng(), rng() % 100,
                                rng() % 2, std::to_string(i)));
    auto c = round_trip(all_types_schema(), rows);
    EXPECT_EQ(c[0].enc, encoding::delta_varint_i64);
    EXPECT_EQ(c[1].enc, encoding::delta_varint_i64);
}

TEST(SegmentFormat, PicksVarintForSmallU64AndPlainForHashes) {
    std::mt19937_64 rng(2);
    std::vector<row> rows;
    for (int i = 0; i < 300; ++i) rows.push_back(make_row(i, i, rng() | (1ull << 63), i % 7, 0, "a"));
    auto c = round_trip(all_types_schema(), rows, 1 << 20, 0);
    EXPECT_EQ(c[2].enc, encoding::plain_u64);
    EXPECT_EQ(c[3].enc, encoding::varint_u64);
}

TEST(SegmentFormat, DictionaryForLowCardinalityStrings) {
    std::vector<row> rows;
    for (int i = 0; i < 1000; ++i)
        rows.push_back(make_row(1000 + i, i, 1, 1, 0, "page-" + std::to_string(i % 5)));
    rows.push_back(make_row(0, 0, 0, 0, 0, "")); // the empty string is a value too
    auto c = round_trip(all_types_schema(), rows, 1 << 20, 0);
    EXPECT_EQ(c[5].enc, encoding::dict_string);
}

TEST(SegmentFormat, DictionaryWithWideIndexes) {
    // 600 distinct values in 4000 rows: a dictionary with 16-bit indexes.
    std::vector<row> rows;
    for (int i = 0; i < 4000; ++i)
        rows.push_back(make_row(i, i, 1, 1, 0, "/products/" + std::to_string((i * 7) % 600)));
    auto c = round_trip(all_types_schema(), rows, 1 << 20, 0);
    EXPECT_EQ(c[5].enc, encoding::dict_string);
}

TEST(SegmentFormat, PlainForHighCardinalityStrings) {
    std::vector<row> rows;
    for (int i = 0; i < 1000; ++i)
        rows.push_back(make_row(i, i, 1, 1, 0, "user-" + std::to_string(i * 31)));
    auto c = round_trip(all_types_schema(), rows, 1 << 20, 0);
    EXPECT_EQ(c[5].enc, encoding::plain_string);
}

TEST(SegmentFormat, RoundTripsHugeStrings) {
    std::mt19937_64 rng(3);
    std::string noise(3 << 20, '\0');
    for (auto& ch : noise) ch = char(rng());
    std::string zeros(2 << 20, 'z');
    std::string with_nul("a\0b\nc\"d", 7);
    std::vector<row> rows = {make_row(1, 1, 1, 1, 1, noise), make_row(2, 2, 2, 2, 0, zeros),
                             make_row(3, 3, 3, 3, 1, with_nul), make_row(4, 4, 4, 4, 0, "")};
    auto c = round_trip(all_types_schema(), rows, 6 << 20, 3);
    EXPECT_EQ(c[5].enc, encoding::plain_string);
}

TEST(SegmentFormat, CompressesWithZstdOnlyWhenItShrinks) {
    std::vector<row> rows;
    for (int i = 0; i < 2000; ++i)
        rows.push_back(make_row(1700000000000 + i, 5, 9, 1, 0,
                                "{\"same\":\"payload\",\"n\":" + std::to_string(i % 50) + "}"));
    auto z = round_trip(all_types_schema(), rows, 1 << 20, 1);
    EXPECT_EQ(z[0].cd, codec::zstd); // 2000 deltas of 1
    auto none = round_trip(all_types_schema(), rows, 1 << 20, 0);
    for (const auto& c : none) EXPECT_EQ(c.cd, codec::none);
    // One row: tiny chunks stay uncompressed.
    auto one = round_trip(all_types_schema(), {rows[0]}, 1 << 20, 1);
    for (const auto& c : one) EXPECT_EQ(c.cd, codec::none);
}

TEST(SegmentFormat, DetectsCorruptPayloadAndHeader) {
    auto schema = all_types_schema();
    column_batch in(schema, 100, 4096, 64);
    for (int i = 0; i < 100; ++i) push_row(in, make_row(i, i, i, i, 0, "v" + std::to_string(i)));
    format::block_encoder enc(schema, 100, 4096, 1);
    aligned_buf buf(enc.block_bytes_max());
    block_header h = enc.encode(in, 0, buf.p);
    column_batch out(schema, 1, 0, 0);
    format::block_decoder dec;

    buf.p[format::block_header_bytes + h.payload_bytes / 2] ^= 0x10;
    auto r = dec.decode(h, buf.p + format::block_header_bytes, out);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::corrupt);
    EXPECT_EQ(out.rows(), 0u);

    block_header back;
    buf.p[20] ^= 1; // min_time_ms
    EXPECT_FALSE(format::read_block_header(buf.p, back));
}

TEST(SegmentFormat, FileHeaderRoundTripAndChecksum) {
    format::segment_meta m{events_schema(), "w3", 42};
    std::vector<uint8_t> buf(format::file_header_bytes);
    ASSERT_TRUE(format::write_file_header(m, buf.data()).ok());
    auto back = format::read_file_header(buf.data(), buf.size());
    ASSERT_TRUE(back.ok()) << back.err().message;
    EXPECT_EQ(back->schema.name, "events");
    EXPECT_EQ(back->writer_name, "w3");
    EXPECT_EQ(back->seq, 42u);
    EXPECT_EQ(back->schema.time_column, m.schema.time_column);
    ASSERT_EQ(back->schema.columns.size(), m.schema.columns.size());
    for (size_t i = 0; i < m.schema.columns.size(); ++i) {
        EXPECT_EQ(back->schema.columns[i].name, m.schema.columns[i].name);
        EXPECT_EQ(back->schema.columns[i].type, m.schema.columns[i].type);
    }
    buf[40] ^= 1;
    auto bad = format::read_file_header(buf.data(), buf.size());
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.err().code, errc::corrupt);
    EXPECT_FALSE(format::read_file_header(buf.data(), 100).ok());
}

TEST(SegmentFormat, FooterRoundTrip) {
    aligned_buf buf(4096);
    format::footer f{123, 4, -10, 99, 8192};
    EXPECT_EQ(format::write_footer_block(f, 4, buf.p), 4096u);
    block_header h;
    ASSERT_TRUE(format::read_block_header(buf.p, h));
    EXPECT_EQ(h.kind, format::block_kind::footer);
    format::footer back;
    ASSERT_TRUE(format::read_footer_payload(buf.p + 64, h.payload_bytes, back));
    EXPECT_EQ(back.rows, 123u);
    EXPECT_EQ(back.data_blocks, 4u);
    EXPECT_EQ(back.min_time_ms, -10);
    EXPECT_EQ(back.max_time_ms, 99);
    EXPECT_EQ(back.data_end_offset, 8192u);
}

} // namespace
} // namespace sluice::storage
