#include "storage/segment_format.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <random>

#include "base/time_format.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;
using format::block_header;
using format::codec;
using format::encoding;

constexpr format::compression no_compression{codec::none, 0};
constexpr format::compression zstd1{codec::zstd, 1};
constexpr format::compression lz4_1{codec::lz4, 1};

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

// Nullable columns of every type, and a bytes column.
table_schema nullable_schema() {
    return {"nullable",
            {{"t", column_type::i64, true},
             {"u", column_type::u64, true},
             {"b", column_type::u8, true},
             {"s", column_type::string, true},
             {"raw", column_type::bytes, true}},
            -1};
}

// A raw column that refers to the fields it contains, as the events table does.
table_schema refs_schema() {
    return {"refs",
            {{"t", column_type::i64},
             {"id", column_type::string, true},
             {"kind", column_type::string},
             {"raw", column_type::string, false, {1, 2, 0}}},
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
    uint32_t raw_len;
    uint32_t stored;
};

std::vector<chunk_info> chunks(const uint8_t* block, const block_header& h) {
    std::vector<chunk_info> out;
    const uint8_t* p = block + format::block_header_bytes;
    for (uint32_t c = 0; c < h.columns; ++c) {
        uint32_t raw, stored;
        std::memcpy(&raw, p + 4, 4);
        std::memcpy(&stored, p + 8, 4);
        out.push_back({encoding(p[0]), codec(p[1]), raw, stored});
        p += format::chunk_header_bytes + stored;
    }
    return out;
}

struct trip {
    std::vector<chunk_info> chunks;
    std::vector<format::column_stats> stats;
    std::string payload; // the block's payload bytes
};

// Where each of refs_schema's references (id, kind, t) lies in a row's raw value, for
// push_string_at(); column_batch::no_position where unknown.
using positions = std::array<uint16_t, 3>;
// The same for events_schema's raw (event_id, user_id, event_type, page, event_time_ms).
using event_positions = std::array<uint16_t, 5>;
constexpr uint16_t none = column_batch::no_position;

// Encodes rows, decodes them back, checks the model; returns the chunks and stats. With
// `at`, the column that declares references is appended with those positions.
template <typename Positions = positions>
trip round_trip(const table_schema& schema, const std::vector<row>& rows,
                size_t string_bytes = 1 << 20, format::compression comp = zstd1,
                const std::vector<Positions>* at = nullptr) {
    uint32_t cap = std::max<uint32_t>(uint32_t(rows.size()), 1);
    column_batch in(schema, cap, string_bytes, string_bytes);
    for (size_t i = 0; i < rows.size(); ++i)
        push_row(in, rows[i], at == nullptr ? nullptr : (*at)[i].data());
    format::block_encoder enc(schema, cap, string_bytes, comp);
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
    return {chunks(buf.p, h), enc.block_stats(),
            std::string(reinterpret_cast<const char*>(buf.p) + format::block_header_bytes,
                        h.payload_bytes)};
}

row make_row(int64_t t, int64_t n, uint64_t h, uint64_t small, uint64_t flag, std::string s) {
    return {t, n, h, small, flag, std::move(s)};
}

} // namespace
namespace format {
void PrintTo(const compression& c, std::ostream* os) {
    *os << (c.kind == codec::none ? "none" : c.kind == codec::zstd ? "zstd" : "lz4") << "/"
        << c.level;
}
} // namespace format
namespace {

// Every test below runs with each codec.
class SegmentFormat : public ::testing::TestWithParam<format::compression> {};

INSTANTIATE_TEST_SUITE_P(Codecs, SegmentFormat,
                         ::testing::Values(no_compression, zstd1, format::compression{codec::zstd, 9},
                                           lz4_1),
                         [](const auto& info) {
                             switch (info.param.kind) {
                             case codec::none: return std::string("none");
                             case codec::zstd: return "zstd" + std::to_string(info.param.level);
                             case codec::lz4: return std::string("lz4");
                             }
                             return std::string("unknown");
                         });

TEST_P(SegmentFormat, RoundTripsEmptyBlock) {
    for (const auto& schema : {all_types_schema(), nullable_schema(), refs_schema()}) {
        column_batch in(schema, 4, 64, 64);
        format::block_encoder enc(schema, 4, 64, GetParam());
        aligned_buf buf(enc.block_bytes_max());
        block_header h = enc.encode(in, 0, buf.p);
        EXPECT_EQ(h.rows, 0u);
        if (schema.time_column >= 0) { EXPECT_GT(h.min_time_ms, h.max_time_ms); } // the empty range
        column_batch out(schema, 1, 0, 0);
        format::block_decoder dec;
        ASSERT_TRUE(dec.decode(h, buf.p + format::block_header_bytes, out).ok());
        EXPECT_EQ(out.rows(), 0u);
        for (const auto& st : enc.block_stats()) {
            EXPECT_EQ(st.values, 0u);
            EXPECT_EQ(st.null_count, 0u);
        }
    }
}

TEST_P(SegmentFormat, RoundTripsOneRow) {
    auto t = round_trip(all_types_schema(), {make_row(-5, 42, 7, 3, 1, "x")}, 1 << 20, GetParam());
    auto& c = t.chunks;
    ASSERT_EQ(c.size(), 6u);
    EXPECT_EQ(c[0].enc, encoding::delta_bitpack_i64);
    EXPECT_EQ(c[4].enc, encoding::plain_u8);
    EXPECT_EQ(c[5].enc, encoding::plain_string); // one row: no dictionary
    // One row: tiny chunks stay uncompressed whatever the codec.
    for (const auto& ch : c) EXPECT_EQ(ch.cd, codec::none);
    round_trip(nullable_schema(), {{std::monostate{}, uint64_t(1), std::monostate{}, "s", "r"}},
               1 << 20, GetParam());
}

TEST_P(SegmentFormat, RoundTripsNegativeAndUnsortedI64) {
    std::mt19937_64 rng(1);
    std::vector<row> rows;
    const int64_t extremes[] = {std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max(), -1, 0, 1,
                                std::numeric_limits<int64_t>::min() + 1};
    for (int64_t e : extremes) rows.push_back(make_row(e, -e - 1, 0, 0, 0, ""));
    for (int i = 0; i < 500; ++i)
        rows.push_back(make_row(int64_t(rng()), -int64_t(rng() % 1000), rng(), rng() % 100,
                                rng() % 2, std::to_string(i)));
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[0].enc, encoding::delta_bitpack_i64);
    EXPECT_EQ(t.chunks[1].enc, encoding::delta_bitpack_i64);
    // Statistics compare i64 signed.
    EXPECT_EQ(int64_t(t.stats[0].min), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(int64_t(t.stats[0].max), std::numeric_limits<int64_t>::max());
}

TEST_P(SegmentFormat, PicksVarintForSmallU64AndPlainForHashes) {
    std::mt19937_64 rng(2);
    std::vector<row> rows;
    for (int i = 0; i < 300; ++i) rows.push_back(make_row(i, i, rng() | (1ull << 63), i % 7, 0, "a"));
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[2].enc, encoding::plain_u64);
    EXPECT_EQ(t.chunks[3].enc, encoding::varint_u64);
    EXPECT_EQ(t.stats[3].min, 0u);
    EXPECT_EQ(t.stats[3].max, 6u);
}

TEST_P(SegmentFormat, DictionaryForLowCardinalityStrings) {
    std::vector<row> rows;
    for (int i = 0; i < 1000; ++i)
        rows.push_back(make_row(1000 + i, i, 1, 1, 0, "page-" + std::string(i % 5, 'x')));
    rows.push_back(make_row(0, 0, 0, 0, 0, "")); // the empty string is a value too
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[5].enc, encoding::dict_string);
    EXPECT_EQ(t.stats[5].min, 0u); // string lengths
    EXPECT_EQ(t.stats[5].max, 9u);
}

TEST_P(SegmentFormat, DictionaryWithWideIndexes) {
    // 600 distinct values in 4000 rows: a dictionary with 16-bit indexes.
    std::vector<row> rows;
    for (int i = 0; i < 4000; ++i)
        rows.push_back(make_row(i, i, 1, 1, 0, "/products/item-" + std::to_string((i * 7) % 600) + "/x"));
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[5].enc, encoding::dict_string);
}

TEST_P(SegmentFormat, PlainForHighCardinalityText) {
    std::mt19937_64 rng(5);
    std::vector<row> rows;
    for (int i = 0; i < 1000; ++i) {
        std::string s(12, 'a');
        for (auto& ch : s) ch = char('a' + rng() % 26);
        rows.push_back(make_row(i, i, 1, 1, 0, s));
    }
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[5].enc, encoding::plain_string);
}

TEST_P(SegmentFormat, SuffixNumbersForNumberedIds) {
    std::vector<row> rows;
    for (int i = 0; i < 1000; ++i) rows.push_back(make_row(i, i, 1, 1, 0, "e-" + std::to_string(i * 3)));
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[5].enc, encoding::suffix_number_string);
    // Per row: 1 byte of prefix length, "e-", 1 byte of delta; plain takes 1 + 5..6.
    EXPECT_LE(t.chunks[5].raw_len, 1000u * 4 + 2);
}

TEST_P(SegmentFormat, SuffixNumbersKeepEveryDigitExactly) {
    // Leading zeros, "0", 18 and 19 digits, digits only, no digits, negative-looking
    // text, numbers going down: each must come back byte for byte.
    const char* tricky[] = {"0",   "00",  "007", "x0", "x00", "x010", "123456789012345678",
                            "1234567890123456789", "999999999999999999", "-5", "", "abc",
                            "a1b2", "9",   "18446744073709551615"};
    std::vector<row> rows;
    for (int i = 0; i < 400; ++i) {
        std::string s = (i % 2 ? "id" : "") + std::to_string(100000 - i * 37);
        rows.push_back(make_row(i, i, 1, 1, 0, i % 10 == 0 ? tricky[(i / 10) % 15] : s));
    }
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[5].enc, encoding::suffix_number_string);
}

TEST_P(SegmentFormat, RefStringsCutReferencedFieldsOut) {
    auto schema = refs_schema();
    std::vector<row> rows;
    for (int i = 0; i < 2000; ++i) {
        int64_t t = 1740754800000 + i;
        value id = i % 4 == 0 ? value(std::monostate{}) : value("evt-" + std::to_string(i));
        std::string kind = i % 3 ? "page_view" : "click";
        std::string raw = "{";
        if (i % 4) raw += "\"event_id\":\"" + std::get<std::string>(id) + "\",";
        raw += "\"kind\":\"" + kind + "\",\"timestamp\":" + std::to_string(t) + "}";
        rows.push_back({t, id, kind, raw});
    }
    auto t = round_trip(schema, rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[3].enc, encoding::ref_escaped_string);
    // Each skeleton is the raw text minus id, kind and timestamp (plus 3 marker bytes).
    size_t plain = 0;
    for (const auto& r : rows) plain += 1 + std::get<std::string>(r[3]).size();
    EXPECT_LT(t.chunks[3].raw_len, plain - 2000 * 20);
}

TEST_P(SegmentFormat, RefStringsAreExactInEveryCorner) {
    auto schema = refs_schema();
    std::vector<row> rows = {
        // Referenced text absent, only bare, only inside a longer word, twice.
        {int64_t(1), "abc", "kind", "{\"x\":\"nothing here\"}"},
        {int64_t(2), "abc", "kind", "abc before \"abc\" and abc"},
        {int64_t(3), "ab", "kinder", "kinder kinder \"kinder\" 3"},
        // A value that contains the other: cut spans must not overlap.
        {int64_t(44), "44", "444", "\"444\" 44 \"44\" 44"},
        // Marker bytes (0..8) in the value: stored verbatim.
        {int64_t(5), "id", "k1", std::string("\x01\"id\"\x08\"k1\"\0x", 12)},
        // References that are null, empty or one byte long are not cut.
        {int64_t(6), std::monostate{}, "", "\"6\" \"\""},
        {int64_t(-7), "z", "k", "-7 \"z\" \"k\""},
        // An empty value and a value equal to a reference.
        {int64_t(8), "q", "kk", ""},
        {int64_t(9), "abc", "kk", "abc"},
    };
    // Then ordinary rows, so that the skeletons (whose chunk header lists the references
    // and their renderings) are smaller than plain strings and the writer picks them.
    for (int i = 0; i < 20; ++i)
        rows.push_back({int64_t(1740754800000 + i), "evt-" + std::to_string(i), "page_view",
                        "{\"event_id\":\"evt-" + std::to_string(i) +
                            "\",\"kind\":\"page_view\",\"ts\":" + std::to_string(1740754800000 + i) + "}"});
    auto t = round_trip(schema, rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[3].enc, encoding::ref_escaped_string);
}

TEST_P(SegmentFormat, RoundTripsAllNullColumns) {
    std::vector<row> rows(100, row{std::monostate{}, std::monostate{}, std::monostate{},
                                   std::monostate{}, std::monostate{}});
    auto t = round_trip(nullable_schema(), rows, 1 << 20, GetParam());
    for (const auto& st : t.stats) {
        EXPECT_EQ(st.null_count, 100u);
        EXPECT_EQ(st.values, 0u);
        EXPECT_EQ(st.min, 0u);
        EXPECT_EQ(st.max, 0u);
    }
}

TEST_P(SegmentFormat, RoundTripsMixedNulls) {
    std::mt19937_64 rng(9);
    std::vector<row> rows;
    for (int i = 0; i < 1000; ++i) {
        auto maybe = [&](value v) { return rng() % 3 == 0 ? value(std::monostate{}) : v; };
        rows.push_back({maybe(int64_t(rng() % 1000) - 500), maybe(uint64_t(rng() % 50)),
                        maybe(uint64_t(rng() % 2)), maybe("v" + std::to_string(rng() % 4)),
                        maybe(std::string(size_t(rng() % 5), char(rng())))});
    }
    auto t = round_trip(nullable_schema(), rows, 1 << 20, GetParam());
    uint64_t nulls = 0;
    for (const auto& r : rows) nulls += std::holds_alternative<std::monostate>(r[0]);
    EXPECT_EQ(t.stats[0].null_count, nulls);
    EXPECT_EQ(t.stats[0].values, 1000 - nulls);
    EXPECT_GE(int64_t(t.stats[0].min), -500);
    EXPECT_LT(int64_t(t.stats[0].min), -400);
}

TEST_P(SegmentFormat, RoundTripsHugeStrings) {
    std::mt19937_64 rng(3);
    std::string noise(3 << 20, '\0');
    for (auto& ch : noise) ch = char(rng());
    std::string zeros(2 << 20, 'z');
    std::string with_nul("a\0b\nc\"d", 7);
    std::vector<row> rows = {make_row(1, 1, 1, 1, 1, noise), make_row(2, 2, 2, 2, 0, zeros),
                             make_row(3, 3, 3, 3, 1, with_nul), make_row(4, 4, 4, 4, 0, "")};
    auto t = round_trip(all_types_schema(), rows, 6 << 20, GetParam());
    EXPECT_EQ(t.chunks[5].enc, encoding::plain_string);
    EXPECT_EQ(t.stats[5].max, noise.size());
    EXPECT_EQ(t.stats[5].value_bytes, noise.size() + zeros.size() + 7);
    // The same through a skeleton column (bytes 0..8 in the noise: escaped, or plain strings
    // when escaping would not fit the scratch).
    std::vector<row> ref_rows = {{int64_t(1), "a", "b", noise}, {int64_t(2), "zz", "b", zeros}};
    round_trip(refs_schema(), ref_rows, 6 << 20, GetParam());
}

TEST_P(SegmentFormat, CompressesOnlyWhenItShrinks) {
    std::vector<row> rows;
    for (int i = 0; i < 2000; ++i)
        rows.push_back(make_row(1700000000000 + i, 5, 9, 1, 0,
                                "{\"same\":\"payload\",\"n\":" + std::to_string(i % 50) + "}"));
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    for (const auto& c : t.chunks) {
        EXPECT_EQ(c.cd, GetParam().kind == codec::none ? codec::none : GetParam().kind);
        EXPECT_LT(c.stored, c.raw_len + (c.cd == codec::none ? 1 : 0));
    }
    // Random bytes do not compress: stored raw even with a codec.
    std::mt19937_64 rng(4);
    std::vector<row> noisy;
    for (int i = 0; i < 200; ++i) {
        std::string s(64, '\0');
        for (auto& ch : s) ch = char(rng());
        noisy.push_back(make_row(i, i, rng(), 1, 0, s));
    }
    auto n = round_trip(all_types_schema(), noisy, 1 << 20, GetParam());
    EXPECT_EQ(n.chunks[2].cd, codec::none); // random u64: plain, incompressible
}

TEST(SegmentFormatCorruption, DetectsCorruptPayloadAndHeader) {
    auto schema = all_types_schema();
    column_batch in(schema, 100, 4096, 64);
    for (int i = 0; i < 100; ++i) push_row(in, make_row(i, i, i, i, 0, "v" + std::to_string(i)));
    format::block_encoder enc(schema, 100, 4096, zstd1);
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

TEST_P(SegmentFormat, RefStringsCutTextTimestamps) {
    // RFC 3339 times in the raw text: to the millisecond, to the second, with a longer
    // fraction, with an offset (not UTC: left in place), before 1970, at the ends of
    // years 0000..9999 and outside them (no rendering: left in place). Every row comes
    // back exactly.
    auto schema = refs_schema();
    const int64_t times[] = {1740754800123, 1740754800000, 1740754800123, 1740754800123,
                             -1, -62167219200000, 253402300799999, 253402300800000,
                             std::numeric_limits<int64_t>::min(), 0};
    const std::string texts[] = {"2025-02-28T15:00:00.123Z", "2025-02-28T15:00:00Z",
                                 "2025-02-28T15:00:00.123456Z", "2025-02-28T16:00:00.123+01:00",
                                 "1969-12-31T23:59:59.999Z", "0000-01-01T00:00:00.000Z",
                                 "9999-12-31T23:59:59.999Z", "+10000-01-01T00:00:00.000Z",
                                 "-292275055-05-16T16:47:04.192Z", "1970-01-01T00:00:00Z"};
    std::vector<row> rows;
    size_t plain = 0;
    for (int i = 0; i < 1000; ++i) {
        const size_t k = i % std::size(times);
        const std::string kind = i % 3 ? "page_view" : "click";
        std::string raw = "{\"kind\":\"" + kind + "\",\"timestamp\":\"" + texts[k] + "\"}";
        plain += 1 + raw.size();
        rows.push_back({times[k], std::monostate{}, kind, raw});
    }
    auto t = round_trip(schema, rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[3].enc, encoding::ref_escaped_string);
    // Cut: 19 or 23 bytes from the 7 renderable UTC texts of every 10 rows, the kind
    // from all. Without the time renderings the chunk would be larger than this.
    EXPECT_LT(t.chunks[3].raw_len, plain - 1000 * 4 - 100 * (23 + 19 + 23 + 23 + 23 + 23 + 19 - 7));
}

TEST_P(SegmentFormat, RefStringsAreExactOnRandomText) {
    // Values made of quotes, backslashes, digits and the referenced texts themselves
    // (whole, quoted, cut short, next to each other), long enough to cross the writer's
    // 32-byte vector steps: whatever it cuts, every value comes back byte for byte.
    std::mt19937_64 rng(12);
    auto schema = refs_schema();
    std::vector<row> rows;
    for (int i = 0; i < 3000; ++i) {
        const int64_t t = i % 7 == 0 ? int64_t(rng() % 100) : 1740754800000 + int64_t(rng() % 100000);
        const std::string id = i % 5 == 0 ? "" : "e" + std::to_string(rng() % 50);
        const std::string kind = i % 3 == 0 ? "\"" : "k" + std::to_string(rng() % 20);
        const std::string pieces[] = {"\"", "\\", "\\\"", ":", std::to_string(t), id, kind,
                                      "\"" + id + "\"", "\"" + kind + "\"", format_rfc3339_ms(t),
                                      "\"" + format_rfc3339_ms(t) + "\"", "1", " ", "{\"a\":"};
        std::string raw;
        const size_t n = rng() % 24;
        for (size_t j = 0; j < n; ++j) raw += pieces[rng() % std::size(pieces)];
        rows.push_back({t, id.empty() ? value(std::monostate{}) : value(id), kind, raw});
    }
    auto r = round_trip(schema, rows, 1 << 20, GetParam());
    EXPECT_EQ(r.chunks[3].enc, encoding::ref_escaped_string); // the cuts were taken
}

TEST_P(SegmentFormat, RefStringsCutWhereTheWriterSaysTheFieldsAre) {
    // The kind's text also appears earlier, as a key: the search cuts the first quoted
    // occurrence (the key), a given position cuts the value there. Times at their
    // positions cut as the millisecond rendering, the second one, or decimal.
    auto schema = refs_schema();
    std::vector<row> rows;
    std::vector<positions> at;
    for (int i = 0; i < 300; ++i) {
        const int64_t t = 1740754800000 + i * 1001;
        const std::string id = "evt-" + std::to_string(i);
        std::string time;
        switch (i % 3) {
        case 0: time = "\"" + format_rfc3339_ms(t) + "\""; break;                 // .mmmZ
        case 1: time = "\"" + format_rfc3339_ms(t).substr(0, 19) + ".5Z\""; break; // seconds
        case 2: time = std::to_string(t); break;
        }
        std::string raw = "{\"page\":\"" + id + "\",\"kind\":\"page\",\"timestamp\":";
        const uint16_t t_at = uint16_t(raw.size() + (i % 3 == 2 ? 0 : 1));
        raw += time + "}";
        const row r = {i % 3 == 1 ? t - t % 1000 : t, id, "page", raw};
        rows.push_back(r);
        at.push_back({uint16_t(raw.find(id)), uint16_t(raw.find("\"page\",") + 1), t_at});
    }
    auto given = round_trip(schema, rows, 1 << 20, no_compression, &at);
    EXPECT_EQ(given.chunks[3].enc, encoding::ref_escaped_string);
    // Every row's key "page" stays in its skeleton, its value and id were cut.
    EXPECT_NE(given.payload.find("{\"page\":\"\x01\",\"kind\":\"\x02\""), std::string::npos);
    EXPECT_EQ(given.payload.find("\":\"evt-"), std::string::npos);
    EXPECT_EQ(given.payload.find("2025-"), std::string::npos); // every time was cut
    EXPECT_EQ(given.payload.find("\"timestamp\":17"), std::string::npos);
    // The search cuts the same number of bytes, but the key instead of the value.
    auto searched = round_trip(schema, rows, 1 << 20, no_compression);
    EXPECT_EQ(searched.chunks[3].raw_len, given.chunks[3].raw_len);
    EXPECT_EQ(searched.payload.find("{\"page\":\"\x01\",\"kind\""), std::string::npos);
}

TEST_P(SegmentFormat, RefStringsStayExactAtWrongPositions) {
    // Positions that point elsewhere, past the end, into the middle of a match, at
    // overlapping texts or into a value with marker bytes: only the bytes that hold the
    // reference's text are cut, and every value comes back byte for byte.
    std::mt19937_64 rng(21);
    auto schema = refs_schema();
    std::vector<row> rows;
    std::vector<positions> at;
    for (int i = 0; i < 3000; ++i) {
        const int64_t t = i % 7 == 0 ? int64_t(rng() % 100) : 1740754800000 + int64_t(rng() % 100000);
        const std::string id = i % 5 == 0 ? "" : "e" + std::to_string(rng() % 50);
        const std::string kind = i % 3 == 0 ? "e1" : "k" + std::to_string(rng() % 20);
        const std::string pieces[] = {"\"", "\\", ":", std::to_string(t), id, kind,
                                      "\"" + id + "\"", format_rfc3339_ms(t),
                                      format_rfc3339_ms(t).substr(0, 19), "1", " ",
                                      std::string("\x03", 1), "{\"a\":"};
        std::string raw;
        const size_t n = rng() % 24;
        for (size_t j = 0; j < n; ++j) raw += pieces[rng() % std::size(pieces)];
        auto pick = [&](const std::string& text) -> uint16_t {
            switch (rng() % 4) {
            case 0: return none;
            case 1: return uint16_t(rng() % (raw.size() + 3)); // anywhere, or past the end
            default: {
                const size_t p = text.empty() ? std::string::npos : raw.find(text, rng() % (raw.size() + 1));
                return p == std::string::npos ? uint16_t(rng() % 65536) : uint16_t(p);
            }
            }
        };
        const std::string times[] = {format_rfc3339_ms(t), std::to_string(t)};
        at.push_back({pick(id), pick(kind), pick(times[rng() % 2])});
        rows.push_back({t, id.empty() ? value(std::monostate{}) : value(id), kind, raw});
    }
    round_trip(schema, rows, 1 << 20, GetParam(), &at);
}

// The stored bytes of chunk `col` of a round trip (its raw bytes under codec none).
std::string chunk_bytes(const trip& t, size_t col) {
    size_t at = 0;
    for (size_t c = 0; c < col; ++c) at += format::chunk_header_bytes + t.chunks[c].stored;
    return t.payload.substr(at + format::chunk_header_bytes, t.chunks[col].stored);
}

// s with each byte 0..refs_max escaped, as a format 4 skeleton writes a literal span.
std::string escaped(std::string_view s) {
    std::string out;
    for (char ch : s) {
        if (uint8_t(ch) <= format::refs_max) out += char(format::skeleton_escape);
        out += ch;
    }
    return out;
}

std::string le64(int64_t v) {
    std::string out(8, '\0');
    std::memcpy(out.data(), &v, 8);
    return out;
}

TEST_P(SegmentFormat, RefStringsEscapeMarkerBytesAtEveryPosition) {
    // A value holding its references (id, kind, the time as 8 bytes and in decimal) with
    // one byte 0..8 inserted at every position: the references that stay whole are cut
    // all the same (format 3 stored such a value verbatim), and every value comes back
    // byte for byte. Then the corners: empty values, values that are all markers or all
    // escapes, references at the start and end and next to each other.
    auto schema = refs_schema();
    const int64_t t = 1740754800123;
    const std::string base = "evt-12\"click\"" + le64(t) + " " + std::to_string(t) + "!";
    std::vector<row> rows;
    std::vector<positions> at;
    auto add = [&](const std::string& v) {
        rows.push_back({t, "evt-12", "click", v});
        // The writer's positions where the value holds the text (else none).
        auto where = [&v](const std::string& text) -> uint16_t {
            const size_t q = v.find(text);
            return q == std::string::npos ? none : uint16_t(q);
        };
        at.push_back({where("evt-12"), where("click"), where(le64(t))});
    };
    for (int b = 0; b <= int(format::refs_max); ++b)
        for (size_t p = 0; p <= base.size(); ++p) {
            std::string v = base;
            v.insert(p, 1, char(b));
            add(v);
        }
    const std::string markers("\0\1\2\3\4\5\6\7\x08", 9);
    const std::vector<std::string> corners = {
        "", std::string(1, '\0'), std::string(2, '\0'), markers, markers + markers,
        std::string(40, '\0'), std::string(40, '\x08'),
        "evt-12\x03", "evt-12click" + markers.substr(0, 1), "\x05" "clickevt-12", le64(t),
        le64(t) + "evt-12" + markers,
        markers + "evt-12" + le64(t) + "click", "evt-12" + std::string(1, '\0') + "click",
        std::string(1, '\0') + "evt-12" + std::string(1, '\1'), "\"click\"" + markers.substr(0, 1),
        // Longer than the writer's 32-byte vector steps, markers across a step.
        std::string(31, 'x') + markers + "evt-12" + std::string(30, 'y') + markers + le64(t)};
    for (const auto& v : corners) add(v);
    for (const format::compression comp : {GetParam(), no_compression}) {
        auto searched = round_trip(schema, rows, 1 << 20, comp);
        auto given = round_trip(schema, rows, 1 << 20, comp, &at);
        EXPECT_EQ(searched.chunks[3].enc, encoding::ref_escaped_string);
        EXPECT_EQ(given.chunks[3].enc, encoding::ref_escaped_string);
        if (comp.kind != codec::none) continue;
        // No whole id, kind or 8-byte time is left in the skeletons.
        for (const auto* r : {&searched, &given}) {
            const std::string sk = chunk_bytes(*r, 3);
            EXPECT_EQ(sk.find("evt-12"), std::string::npos);
            EXPECT_EQ(sk.find("click"), std::string::npos);
            EXPECT_EQ(sk.find(escaped(le64(t))), std::string::npos);
        }
        // A literal 1 escaped before the id's marker (1); a literal 0 escaped after it.
        EXPECT_NE(chunk_bytes(given, 3).find(std::string("\0\1\1\"\2\"", 6)), std::string::npos);
        EXPECT_NE(chunk_bytes(given, 3).find(std::string("\1\0\0\"\2\"", 6)), std::string::npos);
    }
}

// A binary event's canonical raw (docs/BINARY.md): 0xB1, version 1, flags, timestamp_ms,
// 5 u16 lengths (0xFFFF: absent), the present strings. Positions as binary_parse gives
// them: each string where it lies, the time at offset 4.
struct canonical_event {
    std::string raw;
    event_positions at;
};
canonical_event canonical(int64_t ms, const std::optional<std::string>& id, const std::string& user,
                          const std::string& type, const std::string& page,
                          const std::optional<std::string>& metadata) {
    const std::optional<std::string> fields[] = {id, user, type, page, metadata};
    canonical_event e;
    e.raw = "\xB1\x01";
    e.raw += std::string("\x01\x00", 2); // flags: timestamp present
    e.raw += le64(ms);
    for (const auto& f : fields) {
        const uint16_t n = f ? uint16_t(f->size()) : 0xFFFF;
        e.raw.append(reinterpret_cast<const char*>(&n), 2);
    }
    for (int f = 0; f < 5; ++f) {
        if (f < 4) e.at[f] = fields[f] ? uint16_t(e.raw.size()) : none;
        if (fields[f]) e.raw += *fields[f];
    }
    e.at[4] = 4;
    return e;
}

row event_of(int64_t ms, const std::optional<std::string>& id, const std::string& user,
             const std::string& type, const std::string& page, const std::string& raw) {
    return {ms, id ? value(*id) : value(std::monostate{}), user, type, page, uint64_t(0), raw, ms};
}

TEST_P(SegmentFormat, RefStringsThatEscapingWouldOverflowArePlain) {
    // Values of marker bytes only, as large as the batch's strings may be: escaped, their
    // skeletons would be twice the scratch the encoder sized for them. The writer stops
    // and stores plain strings; every value comes back.
    const size_t string_bytes = 1 << 16;
    std::vector<row> rows = {{int64_t(1), "ab", "cd", std::string(string_bytes - 100, '\0')},
                             {int64_t(2), "ab", "cd", std::string(50, '\x08') + "ab"}};
    auto t = round_trip(refs_schema(), rows, string_bytes, GetParam());
    EXPECT_EQ(t.chunks[3].enc, encoding::plain_string);
    // Half as many still fit (and are larger than plain: plain as well).
    rows[0][3] = std::string(string_bytes / 4, '\x01');
    t = round_trip(refs_schema(), rows, string_bytes, GetParam());
    EXPECT_EQ(t.chunks[3].enc, encoding::plain_string);
}

TEST_P(SegmentFormat, BinaryCanonicalRawsCutEveryFieldAndTheTime) {
    // Binary events as the worker stores them: their strings and the 8-byte time are cut
    // at the positions the parser gave, and found by the search without them; the rest
    // of the header is escaped. Lengths and times whose bytes are 0..8 included.
    const auto schema = events_schema();
    std::vector<row> rows;
    std::vector<event_positions> at;
    std::vector<std::string> skeletons;
    for (int i = 0; i < 600; ++i) {
        const int64_t ms = i % 50 == 7 ? int64_t(0x0102030405060708) : 1740754800000 + i * 37;
        std::optional<std::string> id;
        if (i % 3) id = "0f8fad5b-d9cb-469f-a165-70867728" + std::to_string(1000 + i);
        const std::string user = "user-" + std::to_string(10000 + i % 97);
        const std::string type = i % 4 ? "page_view" : "click";
        const std::string page = "/products/" + std::string(size_t(i % 9), 'p') + std::to_string(i % 13);
        std::optional<std::string> meta;
        if (i % 5) meta = "{\"ua\":\"Mozilla/5.0\",\"n\":" + std::to_string(i) + "}";
        const canonical_event e = canonical(ms, id, user, type, page, meta);
        rows.push_back(event_of(ms, id, user, type, page, e.raw));
        at.push_back(e.at);
        // What the writer should write: the header escaped, the time as marker 8 (the
        // chunk's references: the 4 strings, the time in decimal, seconds, millis, le64),
        // each string as its marker, the metadata as is.
        std::string sk = e.raw.substr(0, 4);
        sk = escaped(sk) + "\x08" + escaped(e.raw.substr(12, 10));
        for (int f = 0; f < 4; ++f)
            if (e.at[f] != none) sk += char(f + 1);
        if (meta) sk += *meta;
        skeletons.push_back(sk);
    }
    auto given = round_trip(schema, rows, 1 << 20, GetParam(), &at);
    auto searched = round_trip(schema, rows, 1 << 20, GetParam());
    EXPECT_EQ(given.chunks[6].enc, encoding::ref_escaped_string);
    EXPECT_EQ(searched.chunks[6].enc, encoding::ref_escaped_string);
    if (GetParam().kind != codec::none) return;
    // Both write exactly those skeletons, back to back after the chunk's header.
    std::string all;
    for (const auto& sk : skeletons) all += sk;
    for (const auto* r : {&given, &searched}) {
        const std::string chunk = chunk_bytes(*r, 6);
        const size_t header = 1 + 8 * 3 + 4;
        ASSERT_GT(chunk.size(), header + all.size());
        EXPECT_EQ(uint8_t(chunk[0]), 8u);
        EXPECT_EQ(chunk.substr(header, all.size()), all);
    }
}

TEST_P(SegmentFormat, RefStringsRoundTripMutatedBinaryAndJsonRaws) {
    // Fuzz-style, seeded: binary canonical raws and JSON texts, mutated (bytes overwritten
    // with markers or anything, bytes inserted and removed, referenced texts pasted in,
    // cut short), with positions right, off, random or none, in blocks of random sizes:
    // decode(encode(x)) == x every time.
    std::mt19937_64 rng(0x5eed + uint64_t(GetParam().kind) * 7 + uint64_t(GetParam().level));
    const auto schema = events_schema();
    auto pick = [&rng](auto&&... v) {
        const std::string all[] = {std::string(v)...};
        return all[rng() % sizeof...(v)];
    };
    for (int block = 0; block < 300; ++block) {
        std::vector<row> rows;
        std::vector<event_positions> at;
        const size_t n = 1 + rng() % 120;
        for (size_t i = 0; i < n; ++i) {
            const int64_t ms = rng() % 4 == 0 ? int64_t(rng()) : 1740754800000 + int64_t(rng() % 100000);
            std::optional<std::string> id;
            if (rng() % 3) id = pick("e-1", "0f8fad5b-d9cb", std::string("\0\1", 2), "", "x") +
                                std::to_string(rng() % 100);
            const std::string user = pick("u", "user-", std::string(1, char(rng() % 9))) +
                                     std::to_string(rng() % 50);
            const std::string type = pick("click", "page_view", "", std::string(3, '\0'));
            const std::string page = pick("/", "/home", "/products/") + std::to_string(rng() % 7);
            std::string raw;
            event_positions pos;
            if (rng() % 2) {
                const canonical_event e =
                    canonical(ms, id, user, type, page,
                              rng() % 2 ? std::optional<std::string>("{\"k\":" + std::to_string(rng()) + "}")
                                        : std::nullopt);
                raw = e.raw;
                pos = e.at;
            } else {
                raw = "{";
                if (id) raw += "\"event_id\":\"" + *id + "\",";
                raw += "\"user_id\":\"" + user + "\",\"event_type\":\"" + type + "\",\"page\":\"" +
                       page + "\",\"timestamp\":";
                const std::string time = rng() % 2 ? std::to_string(ms) : "\"" + format_rfc3339_ms(ms) + "\"";
                raw += time + "}";
                auto where = [&raw](const std::string& text) -> uint16_t {
                    const size_t q = text.empty() ? std::string::npos : raw.find(text);
                    return q == std::string::npos ? none : uint16_t(q);
                };
                pos = {id ? where(*id) : none, where(user), where(type), where(page),
                       where(time[0] == '"' ? time.substr(1) : time)};
            }
            // Mutations.
            const std::string pieces[] = {std::string(1, char(rng() % 9)), le64(ms), std::to_string(ms),
                                          id.value_or("id"), user, type, page, "\"",
                                          std::string(1, char(rng()))};
            for (size_t k = rng() % 6; k > 0 && !raw.empty(); --k) {
                const size_t p = rng() % raw.size();
                switch (rng() % 4) {
                case 0: raw[p] = char(rng() % 3 ? rng() % 9 : rng()); break;
                case 1: raw.insert(p, pieces[rng() % std::size(pieces)]); break;
                case 2: raw.erase(p, rng() % 4); break;
                case 3: raw.resize(p); break;
                }
            }
            for (auto& q : pos)
                switch (rng() % 6) {
                case 0: q = none; break;
                case 1: q = uint16_t(rng() % (raw.size() + 3)); break;
                case 2: q = uint16_t(q + rng() % 3 - 1); break;
                default: break;
                }
            rows.push_back(event_of(ms, id, user, type, page, raw));
            at.push_back(pos);
        }
        if (block % 2) round_trip(schema, rows, 1 << 20, GetParam(), &at);
        else round_trip(schema, rows, 1 << 20, GetParam());
        if (HasFailure()) {
            ADD_FAILURE() << "block " << block;
            return;
        }
    }
}

TEST_P(SegmentFormat, BitPacksDeltasOfEveryWidth) {
    // Block b of 64 deltas spans b bits (b = 0..64), the last block is short; then a
    // column of one constant step, which packs into 2 bytes per 64 rows.
    std::mt19937_64 rng(11);
    std::vector<row> rows;
    int64_t v = 1740754800000;
    for (uint32_t i = 0; i < 65 * 64 + 17; ++i) {
        const uint32_t b = std::min<uint32_t>(i / 64, 64);
        const uint64_t d = b == 0 ? 0 : b == 64 ? rng() : rng() & ((uint64_t(1) << b) - 1);
        v = int64_t(uint64_t(v) + d);
        rows.push_back(make_row(v, 1000 + int64_t(i) * 7, 1, 1, 0, ""));
    }
    auto t = round_trip(all_types_schema(), rows, 1 << 20, GetParam());
    EXPECT_EQ(t.chunks[0].enc, encoding::delta_bitpack_i64);
    EXPECT_EQ(t.chunks[1].enc, encoding::delta_bitpack_i64);
    EXPECT_LE(t.chunks[1].raw_len, 2u + (rows.size() / 64 + 1) * 2);
}

// Bytes a writer would never produce, with valid checksums: the decoders refuse them.
class MalformedChunk : public ::testing::Test {
  protected:
    // Encodes rows (no codec), applies edit to the raw bytes of chunk `col`, fixes the
    // checksums and returns the decoder's verdict.
    static result<void> decode_edited(const table_schema& schema, const std::vector<row>& rows,
                                      uint32_t col, void (*edit)(uint8_t* raw, uint32_t len)) {
        column_batch in(schema, uint32_t(rows.size()), 1 << 16, 1 << 12);
        for (const auto& r : rows) push_row(in, r);
        format::block_encoder enc(schema, uint32_t(rows.size()), 1 << 16, no_compression);
        aligned_buf buf(enc.block_bytes_max());
        block_header h = enc.encode(in, 0, buf.p);
        uint8_t* p = buf.p + format::block_header_bytes;
        for (uint32_t c = 0; c < col; ++c) {
            uint32_t stored;
            std::memcpy(&stored, p + 8, 4);
            p += format::chunk_header_bytes + stored;
        }
        uint32_t raw_len;
        std::memcpy(&raw_len, p + 4, 4);
        EXPECT_EQ(p[1], uint8_t(codec::none));
        edit(p + format::chunk_header_bytes, raw_len);
        const uint64_t sum = format::checksum(p + format::chunk_header_bytes, raw_len);
        std::memcpy(p + 16, &sum, 8);
        h.payload_xxh3 = format::checksum(buf.p + format::block_header_bytes, h.payload_bytes);
        column_batch out(schema, 1, 0, 0);
        format::block_decoder dec;
        return dec.decode(h, buf.p + format::block_header_bytes, out);
    }
};

TEST_F(MalformedChunk, BitWidthOver64) {
    std::vector<row> rows;
    for (int i = 0; i < 10; ++i) rows.push_back(make_row(i * 3, i, 1, 1, 0, "a"));
    // delta_bitpack_i64: varint zz(v[0]) = 0, varint zz(base) = 6, then the width.
    auto r = decode_edited(all_types_schema(), rows, 0, [](uint8_t* raw, uint32_t) { raw[2] = 65; });
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::corrupt);
    EXPECT_NE(r.err().message.find("bit width"), std::string::npos) << r.err().message;
    // A width the bytes do not hold.
    r = decode_edited(all_types_schema(), rows, 0, [](uint8_t* raw, uint32_t) { raw[2] = 64; });
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("truncated"), std::string::npos) << r.err().message;
}

TEST_F(MalformedChunk, TimeRenderingOfAStringColumn) {
    std::vector<row> rows;
    for (int i = 0; i < 40; ++i)
        rows.push_back({int64_t(1740754800000 + i), "evt-" + std::to_string(i), "page_view",
                        "{\"id\":\"evt-" + std::to_string(i) + "\",\"kind\":\"page_view\"}"});
    // ref_packed_string's header: k, then (u16 column, u8 rendering) per reference; the
    // first names column 1 (a string): give it an RFC 3339 rendering.
    auto r = decode_edited(refs_schema(), rows, 3, [](uint8_t* raw, uint32_t) { raw[3] = 2; });
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("not i64"), std::string::npos) << r.err().message;
    r = decode_edited(refs_schema(), rows, 3, [](uint8_t* raw, uint32_t) { raw[3] = 9; });
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("unknown rendering"), std::string::npos) << r.err().message;
}

TEST_F(MalformedChunk, TimeOutsideItsRendering) {
    // A skeleton marker for an RFC 3339 rendering of a time past year 9999.
    std::vector<row> rows;
    for (int i = 0; i < 40; ++i)
        rows.push_back({int64_t(253402300800000), "evt-" + std::to_string(i), "page_view",
                        "{\"id\":\"evt-" + std::to_string(i) + "\",\"kind\":\"page_view\"}"});
    // References: id (1), kind (2), t decimal (3), t seconds (4), t millis (5). Point the
    // first skeleton's id marker (byte 1) at the seconds rendering.
    auto r = decode_edited(refs_schema(), rows, 3, [](uint8_t* raw, uint32_t len) {
        const uint8_t* hit = static_cast<const uint8_t*>(std::memchr(raw + 20, 1, len - 20));
        ASSERT_NE(hit, nullptr);
        raw[hit - raw] = 4;
    });
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("out of range"), std::string::npos) << r.err().message;
}

TEST_F(MalformedChunk, BadEscapeInASkeleton) {
    // Values with marker bytes: their skeletons escape them (0, then the byte). An escape
    // followed by a byte above refs_max, or at a skeleton's end, is refused.
    std::vector<row> rows;
    for (int i = 0; i < 40; ++i)
        rows.push_back({int64_t(1740754800000 + i), "evt-" + std::to_string(i), "page_view",
                        "{\"id\":\"evt-" + std::to_string(i) + "\",\"kind\":\"page_view\"}\x01"});
    // Header: k = 6 references, 3 bytes each, u32 S; the first skeleton is then
    // {"id":"\1","kind":"\2"}\0\1 (23 bytes): its last byte is the escaped 1.
    auto r = decode_edited(refs_schema(), rows, 3, [](uint8_t* raw, uint32_t) {
        ASSERT_EQ(raw[0], 6);
        ASSERT_EQ(raw[1 + 18 + 4 + 21], format::skeleton_escape);
        ASSERT_EQ(raw[1 + 18 + 4 + 22], 1);
        raw[1 + 18 + 4 + 22] = 9;
    });
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("bad escape"), std::string::npos) << r.err().message;
    // The escape as the skeleton's last byte: its literal byte is missing (the next
    // skeleton's first byte, '{', is not part of it).
    r = decode_edited(refs_schema(), rows, 3, [](uint8_t* raw, uint32_t) {
        raw[1 + 18 + 4 + 22] = format::skeleton_escape;
        raw[1 + 18 + 4 + 21] = 'x';
    });
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("bad escape"), std::string::npos) << r.err().message;
}

TEST(SegmentFormatCorruption, RejectsChunksThatDoNotMatchTheSchema) {
    // A block written for one schema and read as another (e.g. a nullable column read
    // as not nullable) is corrupt, not misread.
    auto schema = nullable_schema();
    column_batch in(schema, 10, 4096, 64);
    for (int i = 0; i < 10; ++i)
        push_row(in, {int64_t(i), uint64_t(i), uint64_t(1), "s", std::monostate{}});
    format::block_encoder enc(schema, 10, 4096, zstd1);
    aligned_buf buf(enc.block_bytes_max());
    block_header h = enc.encode(in, 0, buf.p);
    auto other = schema;
    other.columns[0].nullable = false;
    column_batch out(other, 1, 0, 0);
    format::block_decoder dec;
    auto r = dec.decode(h, buf.p + format::block_header_bytes, out);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::corrupt);
}

// A compressed chunk whose raw length its stored bytes cannot produce is refused before
// the decoder's buffer grows to it (found by fuzz_segment: a 2 GiB raw_len under a valid
// checksum made every read allocate 2 GiB).
TEST(SegmentFormatCorruption, RefusesRawLengthsTheStoredBytesCannotHold) {
    format::chunk_decompressor d;
    std::vector<uint8_t> raw(100, 'x'), stored(ZSTD_compressBound(raw.size()));
    const size_t z = ZSTD_compress(stored.data(), stored.size(), raw.data(), raw.size(), 1);
    ASSERT_FALSE(ZSTD_isError(z));
    format::chunk_header h{format::encoding::plain_u8, format::codec::zstd, 0, 0, 1u << 30,
                           uint32_t(z), 0, 0};
    auto r = d.raw(h, stored.data());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, "zstd chunk length does not match its frame");
    h.raw_len = 100; // the right length still decompresses
    auto ok = d.raw(h, stored.data());
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(std::memcmp(ok.value(), raw.data(), raw.size()), 0);

    // A frame that does not name its content size (sluice never writes one) is refused
    // too: nothing bounds what it claims.
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    const size_t z2 = ZSTD_compress2(cctx, stored.data(), stored.size(), raw.data(), raw.size());
    ZSTD_freeCCtx(cctx);
    ASSERT_FALSE(ZSTD_isError(z2));
    h.stored_len = uint32_t(z2);
    h.raw_len = 1u << 30;
    r = d.raw(h, stored.data());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, "zstd chunk length does not match its frame");

    h.cd = format::codec::lz4;
    h.stored_len = 16;
    h.raw_len = 16 * 255 + 17;
    r = d.raw(h, stored.data());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().message, "lz4 chunk length out of range");
}

// A block header claiming more rows than its chunks can hold (under a valid checksum)
// made the decoder grow every column to that count: 117 M rows, 940 MB, in 31 s (found
// by fuzz_segment). It is corrupt before anything grows.
TEST(SegmentFormatCorruption, RefusesMoreRowsThanTheChunksHold) {
    auto schema = nullable_schema();
    column_batch in(schema, 10, 4096, 64);
    for (int i = 0; i < 10; ++i)
        push_row(in, {int64_t(i), uint64_t(i), uint64_t(1), "s", std::monostate{}});
    format::block_encoder enc(schema, 10, 4096, zstd1);
    aligned_buf buf(enc.block_bytes_max());
    block_header h = enc.encode(in, 0, buf.p);
    column_batch out(schema, 1, 0, 0);
    format::block_decoder dec;
    ASSERT_TRUE(dec.decode(h, buf.p + format::block_header_bytes, out).ok());
    h.rows = 1u << 30;
    auto r = dec.decode(h, buf.p + format::block_header_bytes, out);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("more rows than the chunk can hold"), std::string::npos)
        << r.err().message;
}

TEST(SegmentFormatHeader, FileHeaderRoundTripAndChecksum) {
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
        EXPECT_EQ(back->schema.columns[i].nullable, m.schema.columns[i].nullable);
        EXPECT_EQ(back->schema.columns[i].refs, m.schema.columns[i].refs);
    }
    buf[40] ^= 1;
    auto bad = format::read_file_header(buf.data(), buf.size());
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.err().code, errc::corrupt);
    EXPECT_FALSE(format::read_file_header(buf.data(), 100).ok());
}

// A content length near 4 GiB wrapped in the bounds check and the checksum was read
// 4 GiB past the header (SEGV in recovery, so the daemon could not start; found by
// fuzz_segment).
TEST(SegmentFormatHeader, RefusesAContentLengthThatWrapsAround) {
    std::vector<uint8_t> buf(format::file_header_bytes);
    ASSERT_TRUE(format::write_file_header({events_schema(), "w0", 1}, buf.data()).ok());
    for (uint32_t content : {0xFFFFFFF8u, 0xFFFFFFFFu, 4089u}) {
        std::memcpy(buf.data() + 12, &content, 4);
        auto r = format::read_file_header(buf.data(), buf.size());
        ASSERT_FALSE(r.ok()) << content;
        EXPECT_EQ(r.err().code, errc::corrupt) << content;
    }
}

TEST(SegmentFormatHeader, RefusesOtherVersionsAndBadRefs) {
    std::vector<uint8_t> buf(format::file_header_bytes);
    ASSERT_TRUE(format::write_file_header({events_schema(), "w0", 1}, buf.data()).ok());
    // A file of another version: its header is whole (checksum valid), so refused, not
    // taken for corruption.
    uint32_t content;
    std::memcpy(&content, buf.data() + 12, 4);
    const auto pristine = buf;
    buf[8] = 1; // version 1
    uint64_t sum = format::checksum(buf.data(), content);
    std::memcpy(buf.data() + content, &sum, 8);
    auto r = format::read_file_header(buf.data(), buf.size());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::unsupported);
    EXPECT_NE(r.err().message.find("version 1"), std::string::npos);
    // A flipped bit in the version field of a v2 file (checksum no longer matches) is
    // corruption: recovery moves the file aside instead of refusing to start (found by
    // corruption_test's bit-flip walk, issue 15).
    buf = pristine;
    buf[8] ^= 0x08;
    auto flipped = format::read_file_header(buf.data(), buf.size());
    ASSERT_FALSE(flipped.ok());
    EXPECT_EQ(flipped.err().code, errc::corrupt) << flipped.err().message;
    buf = pristine;

    auto schema = refs_schema();
    schema.columns[3].refs = {3}; // itself: not an earlier column
    EXPECT_FALSE(format::write_file_header({schema, "w0", 1}, buf.data()).ok());
    schema.columns[3].refs = {0, 1, 2, 0, 1, 2, 0, 1, 2}; // more than 8
    EXPECT_FALSE(format::write_file_header({schema, "w0", 1}, buf.data()).ok());
}

TEST(SegmentFormatFooter, FooterRoundTripWithColumnStats) {
    format::footer f{123, 4, -10, 99, 8192, {}};
    f.columns = {{0, 123, uint64_t(-10), 99, 0}, {23, 100, 1, 500, 7777}};
    aligned_buf buf(4096);
    EXPECT_EQ(format::write_footer_block(f, 4, buf.p), 4096u);
    block_header h;
    ASSERT_TRUE(format::read_block_header(buf.p, h));
    EXPECT_EQ(h.kind, format::block_kind::footer);
    EXPECT_EQ(h.payload_bytes, format::footer_payload_bytes(2));
    format::footer back;
    ASSERT_TRUE(format::read_footer_payload(buf.p + 64, h.payload_bytes, back));
    EXPECT_EQ(back.rows, 123u);
    EXPECT_EQ(back.data_blocks, 4u);
    EXPECT_EQ(back.min_time_ms, -10);
    EXPECT_EQ(back.max_time_ms, 99);
    EXPECT_EQ(back.data_end_offset, 8192u);
    ASSERT_EQ(back.columns.size(), 2u);
    EXPECT_EQ(int64_t(back.columns[0].min), -10);
    EXPECT_EQ(back.columns[1].null_count, 23u);
    EXPECT_EQ(back.columns[1].values, 100u);
    EXPECT_EQ(back.columns[1].value_bytes, 7777u);
    // A payload length that does not match the column count is refused.
    EXPECT_FALSE(format::read_footer_payload(buf.p + 64, h.payload_bytes - 32, back));
}

TEST(SegmentFormatFooter, MergesStatsByType) {
    format::column_stats a{1, 2, uint64_t(-5), 3, 0}, b{0, 1, uint64_t(-9), uint64_t(-9), 0};
    format::merge_stats(column_type::i64, a, b);
    EXPECT_EQ(int64_t(a.min), -9);
    EXPECT_EQ(int64_t(a.max), 3);
    EXPECT_EQ(a.values, 3u);
    EXPECT_EQ(a.null_count, 1u);
    format::column_stats u{0, 1, 5, 5, 0}, v{0, 1, uint64_t(-1), uint64_t(-1), 0};
    format::merge_stats(column_type::u64, u, v);
    EXPECT_EQ(u.min, 5u);
    EXPECT_EQ(u.max, uint64_t(-1)); // unsigned
    format::column_stats empty{4, 0, 0, 0, 0};
    format::merge_stats(column_type::u64, empty, u);
    EXPECT_EQ(empty.min, 5u);
    EXPECT_EQ(empty.null_count, 4u);
}

} // namespace
} // namespace sluice::storage
