// kafka_codec: frames and batches built here byte by byte (an encoder written from
// shared/kafka-protocol.md, independent of the codec), golden batches from kafka-python's
// own builder, and every codec compressed with its library.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <xxhash.h>
#include <zstd.h>

#include "dataplane/kafka/kafka_codec.h"
#include "tests/dataplane/kafka_codec_fuzz.h"
#include "tests/dataplane/kafka_wire.h"

namespace sluice::dataplane::kafka {
namespace {

using namespace test;

bytes from_hex(std::string_view h) {
    bytes out;
    std::string digits;
    for (char c : h)
        if (std::isxdigit(uint8_t(c))) digits += c;
    for (size_t i = 0; i + 1 < digits.size(); i += 2)
        out.push_back(uint8_t(std::stoi(digits.substr(i, 2), nullptr, 16)));
    return out;
}

struct test_record {
    std::optional<std::string> key;
    std::optional<std::string> value = std::string("v");
    std::vector<std::pair<std::string, std::optional<std::string>>> headers;
    int64_t timestamp_delta = 0;
    int32_t offset_delta = -1; // -1: its index
};

bytes encode_records(const std::vector<test_record>& records) {
    wire out;
    for (size_t i = 0; i < records.size(); i++) {
        const auto& r = records[i];
        wire body;
        body.u8(0).var(r.timestamp_delta).var(r.offset_delta < 0 ? int64_t(i) : r.offset_delta);
        body.varbytes(r.key).varbytes(r.value).var(int64_t(r.headers.size()));
        for (const auto& [k, v] : r.headers)
            body.varbytes(k).varbytes(v);
        out.var(int64_t(body.b.size())).raw(body.b);
    }
    return out.b;
}

struct batch_spec {
    int64_t base_timestamp = 1'740'754'951'000;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    int32_t base_sequence = -1;
    int16_t attributes = 0;
    std::optional<int32_t> records_count; // default: the records encoded
};

// A RecordBatch v2 around `payload` (the record bytes, compressed or not).
bytes encode_batch(const bytes& payload, int32_t count, const batch_spec& s = {}) {
    wire tail; // from attributes on: what the CRC covers
    tail.i16(s.attributes).i32(count - 1).i64(s.base_timestamp);
    tail.i64(int64_t(uint64_t(s.base_timestamp) + 5)); // max_timestamp, wrapping
    tail.i64(s.producer_id).i16(s.producer_epoch).i32(s.base_sequence);
    tail.i32(s.records_count.value_or(count)).raw(payload);
    wire w;
    w.i64(0).i32(int32_t(4 + 1 + 4 + tail.b.size())).i32(0).u8(2);
    w.i32(int32_t(crc32c_reference(tail.b.data(), tail.b.size()))).raw(tail.b);
    return w.b;
}

bytes batch_of(const std::vector<test_record>& records, const batch_spec& s = {}) {
    return encode_batch(encode_records(records), int32_t(records.size()), s);
}

std::vector<record> read_all(const record_batch& batch, bytes_view records,
                             parse_error expect = parse_error::none) {
    std::vector<record> out;
    record_reader rr(batch, records);
    record r;
    while (rr.next(r))
        out.push_back(r);
    EXPECT_EQ(rr.error(), expect) << parse_error_name(rr.error());
    return out;
}

// ---------------------------------------------------------------------------------------

TEST(KafkaCodec, Crc32cCheckValue) {
    const std::string s = "123456789";
    EXPECT_EQ(crc32c({reinterpret_cast<const uint8_t*>(s.data()), s.size()}), 0xE3069283u);
    EXPECT_EQ(crc32c({}), 0u);
    // Every length and alignment against the bitwise reference.
    bytes data(300);
    for (size_t i = 0; i < data.size(); i++)
        data[i] = uint8_t(i * 7 + 3);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; off + n <= data.size(); n += 13)
            EXPECT_EQ(crc32c({data.data() + off, n}), crc32c_reference(data.data() + off, n));
}

TEST(KafkaCodec, PeekFrame) {
    uint32_t n = 0;
    EXPECT_EQ(peek_frame(bytes{0, 0, 0}, 1024, n), frame_status::need_more);
    bytes f = wire().i32(12).b;
    EXPECT_EQ(peek_frame(f, 1024, n), frame_status::need_more);
    EXPECT_EQ(n, 12u);
    f.resize(4 + 12);
    EXPECT_EQ(peek_frame(f, 1024, n), frame_status::ready);
    EXPECT_EQ(peek_frame(wire().i32(2000).b, 1024, n), frame_status::too_large);
    EXPECT_EQ(peek_frame(wire().i32(-1).b, 1024, n), frame_status::bad_size);
    EXPECT_EQ(peek_frame(wire().i32(3).b, 1024, n), frame_status::bad_size);
}

TEST(KafkaCodec, FlexibleVersions) {
    EXPECT_FALSE(is_flexible(api_key::api_versions, 2));
    EXPECT_TRUE(is_flexible(api_key::api_versions, 3));
    EXPECT_FALSE(is_flexible(api_key::metadata, 8));
    EXPECT_TRUE(is_flexible(api_key::metadata, 9));
    EXPECT_FALSE(is_flexible(api_key::produce, 8));
    EXPECT_TRUE(is_flexible(api_key::produce, 9));
    EXPECT_FALSE(is_flexible(api_key::init_producer_id, 1));
    EXPECT_TRUE(is_flexible(api_key::init_producer_id, 2));
    EXPECT_TRUE(is_flexible(api_key::offset_fetch, 7));
    EXPECT_FALSE(is_flexible(17, 1)); // SaslHandshake never
    EXPECT_FALSE(is_flexible(-1, 0));
    EXPECT_FALSE(is_flexible(1000, 0));
    EXPECT_FALSE(response_header_tagged(api_key::api_versions, 3));
    EXPECT_TRUE(response_header_tagged(api_key::metadata, 9));
}

TEST(KafkaCodec, RequestHeaderV1) {
    const bytes f = request(api_key::metadata, 1, 0x01020304, {0xAB}, false, "rdkafka");
    request_header h;
    ASSERT_EQ(parse_request_header(f, h), parse_error::none);
    EXPECT_EQ(h.api_key, api_key::metadata);
    EXPECT_EQ(h.api_version, 1);
    EXPECT_EQ(h.correlation_id, 0x01020304);
    ASSERT_TRUE(h.client_id);
    EXPECT_EQ(*h.client_id, "rdkafka");
    EXPECT_FALSE(h.flexible);
    ASSERT_EQ(h.body.size(), 1u);
    EXPECT_EQ(h.body[0], 0xAB);

    const bytes n = request(api_key::produce, 5, 7, {}, false, std::nullopt);
    ASSERT_EQ(parse_request_header(n, h), parse_error::none);
    EXPECT_FALSE(h.client_id);
    EXPECT_TRUE(h.body.empty());
}

TEST(KafkaCodec, RequestHeaderV2SkipsTags) {
    // ApiVersions v3: client_id stays an i16 string, then a tag buffer with one field.
    wire w;
    w.i16(18).i16(3).i32(9).str("rdkafka").uvar(1).uvar(5).uvar(3).raw("abc", 3).u8(0x77);
    request_header h;
    ASSERT_EQ(parse_request_header(w.b, h), parse_error::none);
    EXPECT_TRUE(h.flexible);
    ASSERT_EQ(h.body.size(), 1u);
    EXPECT_EQ(h.body[0], 0x77);
    // A tag whose size runs past the frame.
    wire bad;
    bad.i16(18).i16(3).i32(9).str("x").uvar(1).uvar(5).uvar(30).raw("abc", 3);
    EXPECT_EQ(parse_request_header(bad.b, h), parse_error::truncated);
    EXPECT_EQ(h.correlation_id, 9); // still addressable
    // An overlong uvarint.
    wire ov;
    ov.i16(18).i16(3).i32(9).str("x").raw("\xff\xff\xff\xff\xff\x01", 6);
    EXPECT_EQ(parse_request_header(ov.b, h), parse_error::bad_varint);
}

TEST(KafkaCodec, RequestHeaderBadLengths) {
    request_header h;
    EXPECT_EQ(parse_request_header(wire().i16(3).i16(1).i32(1).i16(-2).b, h),
              parse_error::bad_length);
    EXPECT_EQ(parse_request_header(wire().i16(3).i16(1).i32(1).i16(50).raw("ab", 2).b, h),
              parse_error::truncated);
}

TEST(KafkaCodec, ApiVersionsRequests) {
    api_versions_request req;
    EXPECT_EQ(parse_api_versions_request(header_of(request(18, 0, 1, {})), req), parse_error::none);
    wire v3;
    v3.cstr("librdkafka").cstr("2.0.2").u8(0);
    ASSERT_EQ(parse_api_versions_request(header_of(request(18, 3, 1, v3.b, true)), req),
              parse_error::none);
    EXPECT_EQ(req.client_software_name, "librdkafka");
    EXPECT_EQ(req.client_software_version, "2.0.2");
    EXPECT_EQ(parse_api_versions_request(header_of(request(18, 2, 1, {0})), req),
              parse_error::trailing_bytes);
    EXPECT_EQ(parse_api_versions_request(header_of(request(18, 4, 1, v3.b, true)), req),
              parse_error::unsupported_version);
    EXPECT_EQ(parse_api_versions_request(header_of(request(3, 0, 1, {})), req),
              parse_error::unsupported_version); // not an ApiVersions header
}

TEST(KafkaCodec, ApiVersionsV3MatchesProtocolDoc) {
    const request_header h = header_of(request(18, 3, 1, wire().cstr("a").cstr("1").u8(0).b, true));
    bytes out;
    response_writer w(out);
    // The table the doc's example was measured with (the minimal, non-flexible one).
    const api_version_range doc_table[] = {
        {0, 3, 5}, {1, 4, 7}, {3, 0, 1}, {18, 0, 3}, {22, 0, 1}};
    write_api_versions_response(w, h, doc_table);
    // shared/kafka-protocol.md's example, after the size prefix.
    const bytes doc = from_hex("00000001 0000 06 0000 0003 0005 00 0001 0004 0007 00 0003 0000 "
                               "0001 00 0012 0000 0003 00 0016 0000 0001 00 00000000 00");
    ASSERT_EQ(out.size(), 4 + doc.size());
    EXPECT_EQ(bytes(out.begin(), out.begin() + 4), wire().i32(int32_t(doc.size())).b);
    EXPECT_EQ(bytes(out.begin() + 4, out.end()), doc);
}

TEST(KafkaCodec, ApiVersionsV0V1AndUnsupported) {
    const api_version_range table[] = {{0, 3, 5}, {18, 0, 2}};
    for (int16_t v : {0, 1, 2}) {
        bytes out;
        response_writer w(out);
        write_api_versions_response(w, header_of(request(18, v, 42, {})), table);
        wire e;
        e.i32(42).i16(0).i32(2).i16(0).i16(3).i16(5).i16(18).i16(0).i16(2);
        if (v >= 1) e.i32(0);
        wire framed;
        framed.i32(int32_t(e.b.size())).raw(e.b);
        EXPECT_EQ(out, framed.b) << "v" << v;
    }
    // A v3 request when only 0-2 are advertised: error 35, v0 layout, plain header.
    bytes out;
    response_writer w(out);
    write_api_versions_response(
        w, header_of(request(18, 3, 5, wire().cstr("a").cstr("1").u8(0).b, true)), table);
    wire e;
    e.i32(5).i16(35).i32(2).i16(0).i16(3).i16(5).i16(18).i16(0).i16(2);
    EXPECT_EQ(bytes(out.begin() + 4, out.end()), e.b);
    // Two frames back to back in one buffer, each with its own size.
    write_api_versions_response(w, header_of(request(18, 0, 6, {})), table);
    EXPECT_EQ(out.size(), 2 * (4 + e.b.size()));
    EXPECT_EQ(bytes(out.begin() + 4 + e.b.size(), out.begin() + 8 + e.b.size()),
              wire().i32(int32_t(e.b.size())).b);
}

TEST(KafkaCodec, MetadataRequests) {
    metadata_request m;
    std::string_view name;
    ASSERT_EQ(parse_metadata_request(header_of(request(3, 0, 1, wire().i32(0).b)), m),
              parse_error::none);
    EXPECT_TRUE(m.all_topics());
    EXPECT_FALSE(m.next_topic(name));
    ASSERT_EQ(parse_metadata_request(header_of(request(3, 1, 1, wire().i32(-1).b)), m),
              parse_error::none);
    EXPECT_TRUE(m.all_topics());
    ASSERT_EQ(parse_metadata_request(header_of(request(3, 1, 1, wire().i32(0).b)), m),
              parse_error::none);
    EXPECT_FALSE(m.all_topics());
    EXPECT_EQ(m.topic_count(), 0);
    const bytes two = wire().i32(2).str("events-topic").str("other").b;
    ASSERT_EQ(parse_metadata_request(header_of(request(3, 1, 1, two)), m), parse_error::none);
    EXPECT_EQ(m.topic_count(), 2);
    ASSERT_TRUE(m.next_topic(name));
    EXPECT_EQ(name, "events-topic");
    ASSERT_TRUE(m.next_topic(name));
    EXPECT_EQ(name, "other");
    EXPECT_FALSE(m.next_topic(name));
    // Lying count, negative string length, version 2.
    EXPECT_EQ(parse_metadata_request(header_of(request(3, 1, 1, wire().i32(1000).str("a").b)), m),
              parse_error::bad_length);
    EXPECT_EQ(parse_metadata_request(header_of(request(3, 1, 1, wire().i32(1).i16(-5).b)), m),
              parse_error::bad_length);
    // v4 adds allow_auto_topic_creation, v8 two authorized-operations flags.
    bytes v4 = two;
    v4.push_back(0);
    ASSERT_EQ(parse_metadata_request(header_of(request(3, 4, 1, v4)), m), parse_error::none);
    EXPECT_FALSE(m.allow_auto_topic_creation());
    ASSERT_TRUE(m.next_topic(name));
    ASSERT_TRUE(m.next_topic(name));
    EXPECT_EQ(name, "other");
    EXPECT_FALSE(m.next_topic(name));
    EXPECT_EQ(parse_metadata_request(header_of(request(3, 4, 1, two)), m), parse_error::truncated);
    EXPECT_EQ(m.topic_count(), 0); // nothing half-parsed after a refusal
    bytes v8 = v4;
    v8.push_back(0);
    v8.push_back(1);
    ASSERT_EQ(parse_metadata_request(header_of(request(3, 8, 1, v8)), m), parse_error::none);
    EXPECT_EQ(parse_metadata_request(header_of(request(3, 1, 1, v4)), m),
              parse_error::trailing_bytes);
    EXPECT_EQ(parse_metadata_request(header_of(request(3, 13, 1, v8, true)), m),
              parse_error::unsupported_version);
}

TEST(KafkaCodec, MetadataResponsesV2ToV8) {
    const metadata_topic topics[] = {{"events-topic", 0, 1}};
    const metadata_node node{3, "h", 9093, "r1", "cid"};
    for (int16_t v = 2; v <= 8; v++) {
        bytes out;
        response_writer w(out);
        write_metadata_response(w, header_of(request(3, v, 9, wire().i32(-1).b)), node, topics);
        wire e;
        e.i32(9);
        if (v >= 3) e.i32(0);
        e.i32(1).i32(3).str("h").i32(9093).str("r1").str("cid").i32(3);
        e.i32(1).i16(0).str("events-topic").u8(0).i32(1);
        e.i16(0).i32(0).i32(3);
        if (v >= 7) e.i32(0);
        e.i32(1).i32(3).i32(1).i32(3);
        if (v >= 5) e.i32(0);
        if (v >= 8) e.i32(INT32_MIN).i32(INT32_MIN);
        EXPECT_EQ(bytes(out.begin() + 4, out.end()), e.b) << "v" << v;
    }
}

TEST(KafkaCodec, MetadataResponses) {
    const metadata_topic topics[] = {{"events-topic", 0, 2}, {"bad", 3, 0}};
    const metadata_node node{0, "127.0.0.1", 9092, std::nullopt};
    for (int16_t v : {0, 1}) {
        bytes out;
        response_writer w(out);
        write_metadata_response(w, header_of(request(3, v, 77, wire().i32(0).b)), node, topics);
        wire e;
        e.i32(77).i32(1).i32(0).str("127.0.0.1").i32(9092);
        if (v >= 1) e.null_str().i32(0);
        e.i32(2);
        e.i16(0).str("events-topic");
        if (v >= 1) e.u8(0);
        e.i32(2);
        for (int p = 0; p < 2; p++)
            e.i16(0).i32(p).i32(0).i32(1).i32(0).i32(1).i32(0);
        e.i16(3).str("bad");
        if (v >= 1) e.u8(0);
        e.i32(0);
        EXPECT_EQ(bytes(out.begin() + 4, out.end()), e.b) << "v" << v;
        EXPECT_EQ(bytes(out.begin(), out.begin() + 4), wire().i32(int32_t(e.b.size())).b);
    }
}

TEST(KafkaCodec, InitProducerId) {
    init_producer_id_request req;
    for (int16_t v : {0, 1}) {
        ASSERT_EQ(parse_init_producer_id_request(
                      header_of(request(22, v, 3, wire().null_str().i32(60000).b)), req),
                  parse_error::none);
        EXPECT_FALSE(req.transactional_id);
        EXPECT_EQ(req.transaction_timeout_ms, 60000);
    }
    ASSERT_EQ(parse_init_producer_id_request(
                  header_of(request(22, 1, 3, wire().str("tx").i32(5).b)), req),
              parse_error::none);
    EXPECT_EQ(req.transactional_id, "tx");
    EXPECT_EQ(
        parse_init_producer_id_request(header_of(request(22, 1, 3, wire().null_str().b)), req),
        parse_error::truncated);
    EXPECT_EQ(parse_init_producer_id_request(
                  header_of(request(22, 5, 3, wire().u8(0).i32(1).i64(-1).i16(-1).u8(0).b, true)),
                  req),
              parse_error::unsupported_version);
    bytes out;
    response_writer w(out);
    write_init_producer_id_response(w, header_of(request(22, 1, 3, {})), 0, 0x0102030405, 0);
    EXPECT_EQ(bytes(out.begin() + 4, out.end()),
              wire().i32(3).i32(0).i16(0).i64(0x0102030405).i16(0).b);
}

// ---------------------------------------------------------------------------------------
// Flexible versions (KIP-482), encoded as librdkafka 2.1+ and the Java client send them:
// request header v2 (client_id still an i16 string, then a tag buffer), compact strings and
// arrays (uvarint N+1, 0 = null), a tag buffer closing every struct; unknown tagged fields
// are skipped. Expected answers are written field by field from apache/kafka's message
// schemas (MetadataResponse.json, InitProducerIdResponse.json, ApiVersionsResponse.json).

const uint8_t some_topic_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
const uint8_t zero_topic_id[16] = {};

// An unknown tagged field: tag 7, two bytes.
wire& unknown_tag(wire& w) { return w.uvar(1).uvar(7).uvar(2).u8(0xAB).u8(0xCD); }

// A Metadata v9-v12 body asking for `names` by name.
bytes metadata_body_flexible(int16_t v, const std::vector<std::string>& names, bool auto_create,
                             bool tags) {
    wire w;
    w.uvar(names.size() + 1);
    for (const auto& n : names) {
        if (v >= 10) w.raw(zero_topic_id, 16);
        w.cstr(n);
        if (tags)
            unknown_tag(w);
        else
            w.u8(0);
    }
    w.u8(auto_create ? 1 : 0);
    if (v <= 10) w.u8(0); // include_cluster_authorized_operations (v8-v10)
    w.u8(0);              // include_topic_authorized_operations
    if (tags)
        unknown_tag(w);
    else
        w.u8(0);
    return w.b;
}

TEST(KafkaCodec, MetadataRequestsV9ToV12Flexible) {
    for (int16_t v = 9; v <= 12; v++) {
        for (bool tags : {false, true}) {
            const bytes frame =
                request(3, v, 5, metadata_body_flexible(v, {"events-topic", "other"}, false, tags),
                        true, "rdkafka");
            const request_header h = header_of(frame);
            EXPECT_TRUE(h.flexible);
            metadata_request m;
            ASSERT_EQ(parse_metadata_request(h, m), parse_error::none) << "v" << v;
            EXPECT_FALSE(m.all_topics());
            EXPECT_FALSE(m.allow_auto_topic_creation());
            EXPECT_EQ(m.topic_count(), 2);
            metadata_request_topic t;
            ASSERT_TRUE(m.next_topic(t));
            EXPECT_EQ(t.name, "events-topic");
            EXPECT_EQ(t.topic_id, uuid{});
            ASSERT_TRUE(m.next_topic(t));
            EXPECT_EQ(t.name, "other");
            EXPECT_FALSE(m.next_topic(t));
            // Cut anywhere: refused, never half-read.
            for (size_t n = 0; n < frame.size(); n++) {
                request_header cut;
                if (parse_request_header(bytes_view(frame.data(), n), cut) != parse_error::none)
                    continue;
                EXPECT_NE(parse_metadata_request(cut, m), parse_error::none) << "v" << v << " " << n;
                EXPECT_EQ(m.topic_count(), 0);
            }
        }
        // Null topics: all of them; an empty array: brokers only.
        metadata_request m;
        bytes all = metadata_body_flexible(v, {}, true, false);
        all[0] = 0;
        ASSERT_EQ(parse_metadata_request(header_of(request(3, v, 5, all, true)), m),
                  parse_error::none);
        EXPECT_TRUE(m.all_topics());
        EXPECT_TRUE(m.allow_auto_topic_creation());
        ASSERT_EQ(parse_metadata_request(
                      header_of(request(3, v, 5, metadata_body_flexible(v, {}, true, false), true)),
                      m),
                  parse_error::none);
        EXPECT_FALSE(m.all_topics());
        EXPECT_EQ(m.topic_count(), 0);
        // A lying compact count.
        bytes lie = metadata_body_flexible(v, {"a"}, true, false);
        lie[0] = 0x7F;
        EXPECT_EQ(parse_metadata_request(header_of(request(3, v, 5, lie, true)), m),
                  parse_error::bad_length);
    }
    metadata_request m;
    // The cluster-operations flag exists in v8-v10 only: a v10 body is one byte long for v11.
    EXPECT_EQ(parse_metadata_request(
                  header_of(request(3, 11, 5, metadata_body_flexible(10, {"a"}, true, false), true)),
                  m),
              parse_error::trailing_bytes);
    EXPECT_EQ(parse_metadata_request(
                  header_of(request(3, 10, 5, metadata_body_flexible(11, {"a"}, true, false), true)),
                  m),
              parse_error::truncated);
    // v12 by topic id alone (a null name); a null name before v10 is a lie.
    wire by_id;
    by_id.uvar(2).raw(some_topic_id, 16).uvar(0).u8(0).u8(1).u8(0).u8(0);
    ASSERT_EQ(parse_metadata_request(header_of(request(3, 12, 5, by_id.b, true)), m),
              parse_error::none);
    metadata_request_topic t;
    ASSERT_TRUE(m.next_topic(t));
    EXPECT_FALSE(t.name);
    EXPECT_EQ(0, std::memcmp(t.topic_id.data(), some_topic_id, 16));
    wire null_v9;
    null_v9.uvar(2).uvar(0).u8(0).u8(1).u8(0).u8(0).u8(0);
    EXPECT_EQ(parse_metadata_request(header_of(request(3, 9, 5, null_v9.b, true)), m),
              parse_error::bad_length);
    // A non-flexible body under a flexible version: refused, not misread.
    EXPECT_NE(parse_metadata_request(
                  header_of(request(3, 9, 5, wire().i32(1).str("events-topic").u8(1).u8(0).u8(0).b,
                                    true)),
                  m),
              parse_error::none);
}

TEST(KafkaCodec, MetadataResponsesV9ToV12Flexible) {
    uuid id;
    std::memcpy(id.data(), some_topic_id, 16);
    const metadata_topic topics[] = {{"events-topic", 0, 2},
                                     {std::nullopt, error_code::unknown_topic_id, 0, false, id}};
    const metadata_node node{0, "127.0.0.1", 9092, std::nullopt, std::nullopt};
    for (int16_t v = 9; v <= 12; v++) {
        bytes out;
        response_writer w(out);
        write_metadata_response(
            w, header_of(request(3, v, 77, metadata_body_flexible(v, {}, true, false), true)), node,
            topics);
        wire e;
        e.i32(77).u8(0); // response header v1: correlation id, tag buffer
        e.i32(0);        // throttle_time_ms
        e.uvar(2).i32(0).cstr("127.0.0.1").i32(9092).uvar(0).u8(0); // brokers, rack null
        e.uvar(0);                                                  // cluster_id null
        e.i32(0);                                                   // controller_id
        e.uvar(3);                                                  // topics
        e.i16(0).cstr("events-topic");
        if (v >= 10) e.raw(zero_topic_id, 16);
        e.u8(0).uvar(3); // is_internal, partitions
        for (int p = 0; p < 2; p++) {
            e.i16(0).i32(p).i32(0).i32(0); // error, index, leader, leader_epoch
            e.uvar(2).i32(0).uvar(2).i32(0).uvar(1); // replicas, isr, offline
            e.u8(0);
        }
        e.i32(INT32_MIN).u8(0); // topic_authorized_operations, tags
        e.i16(100);
        if (v >= 12)
            e.uvar(0); // a null name
        else
            e.cstr("");
        if (v >= 10) e.raw(some_topic_id, 16);
        e.u8(0).uvar(1).i32(INT32_MIN).u8(0);
        if (v <= 10) e.i32(INT32_MIN); // cluster_authorized_operations (v8-v10)
        e.u8(0);
        EXPECT_EQ(bytes(out.begin() + 4, out.end()), e.b) << "v" << v;
        EXPECT_EQ(bytes(out.begin(), out.begin() + 4), wire().i32(int32_t(e.b.size())).b);
    }
}

TEST(KafkaCodec, InitProducerIdV2ToV4Flexible) {
    for (int16_t v = 2; v <= 4; v++) {
        for (bool tags : {false, true}) {
            wire b;
            b.uvar(0).i32(60000); // transactional_id null (compact), timeout
            if (v >= 3) b.i64(-1).i16(-1);
            if (tags)
                unknown_tag(b);
            else
                b.u8(0);
            const bytes frame = request(22, v, 3, b.b, true, "rdkafka");
            init_producer_id_request req;
            ASSERT_EQ(parse_init_producer_id_request(header_of(frame), req), parse_error::none)
                << "v" << v;
            EXPECT_FALSE(req.transactional_id);
            EXPECT_EQ(req.transaction_timeout_ms, 60000);
            EXPECT_EQ(req.producer_id, -1);
            EXPECT_EQ(req.producer_epoch, -1);
            for (size_t n = 0; n < frame.size(); n++) {
                request_header cut;
                if (parse_request_header(bytes_view(frame.data(), n), cut) != parse_error::none)
                    continue;
                EXPECT_NE(parse_init_producer_id_request(cut, req), parse_error::none) << n;
            }
        }
        bytes out;
        response_writer w(out);
        write_init_producer_id_response(w, header_of(request(22, v, 3, {}, true)), 0, 0x0102030405,
                                        0);
        // Header v1 (tags), throttle, error, producer id, epoch, tags.
        EXPECT_EQ(bytes(out.begin() + 4, out.end()),
                  wire().i32(3).u8(0).i32(0).i16(0).i64(0x0102030405).i16(0).u8(0).b)
            << "v" << v;
    }
    init_producer_id_request req;
    ASSERT_EQ(parse_init_producer_id_request(
                  header_of(request(22, 3, 3, wire().cstr("tx").i32(5).i64(42).i16(3).u8(0).b, true)),
                  req),
              parse_error::none);
    EXPECT_EQ(req.transactional_id, "tx");
    EXPECT_EQ(req.producer_id, 42);
    EXPECT_EQ(req.producer_epoch, 3);
    // v3's fields under v2 are trailing bytes; v2's body under v3 is truncated.
    EXPECT_EQ(parse_init_producer_id_request(
                  header_of(request(22, 2, 3, wire().uvar(0).i32(5).i64(42).i16(3).u8(0).b, true)),
                  req),
              parse_error::trailing_bytes);
    EXPECT_EQ(parse_init_producer_id_request(
                  header_of(request(22, 3, 3, wire().uvar(0).i32(5).u8(0).b, true)), req),
              parse_error::truncated);
}

// What a modern client reads back from sluice's ApiVersions v3 answer, decoded by the
// schema: no tag buffer in the response header (ApiVersions is the exception), error, a
// compact array of {key, min, max, tags}, throttle, tags.
TEST(KafkaCodec, ApiVersionsV3AdvertisesTheFlexibleVersions) {
    api_versions_request req;
    const request_header h =
        header_of(request(18, 3, 4, wire().cstr("librdkafka").cstr("2.3.0").u8(0).b, true));
    ASSERT_EQ(parse_api_versions_request(h, req), parse_error::none);
    EXPECT_TRUE(req.valid(3));
    bytes out;
    response_writer w(out);
    write_api_versions_response(w, h, default_api_versions);
    byte_reader r(out);
    EXPECT_EQ(r.i32(), int32_t(out.size() - 4));
    EXPECT_EQ(r.i32(), 4);
    EXPECT_EQ(r.i16(), 0);
    const int32_t n = r.compact_array_count();
    std::map<int16_t, std::pair<int16_t, int16_t>> got;
    for (int32_t i = 0; i < n && r.ok(); i++) {
        const int16_t key = r.i16(), lo = r.i16(), hi = r.i16();
        got[key] = {lo, hi};
        EXPECT_EQ(r.i8(), 0); // no tagged fields
    }
    EXPECT_EQ(r.i32(), 0); // throttle
    EXPECT_EQ(r.i8(), 0);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
    const std::map<int16_t, std::pair<int16_t, int16_t>> want = {
        {0, {0, 9}},  {1, {4, 10}}, {2, {0, 5}},  {3, {0, 12}}, {8, {0, 7}},  {9, {0, 5}},
        {10, {0, 2}}, {11, {0, 5}}, {12, {0, 3}}, {13, {0, 3}}, {14, {0, 3}}, {18, {0, 3}},
        {22, {0, 4}}, {23, {0, 4}}, {32, {0, 4}}};
    EXPECT_EQ(got, want);
    // Every version advertised is one the codec parses (Fetch and ListOffsets: fetch_codec.h).
    for (const auto& e : default_api_versions) {
        for (int16_t v = e.min_version; v <= e.max_version; v++)
            EXPECT_TRUE(version_supported(codec_api_versions, e.api_key, v)) << e.api_key << " v" << v;
    }
    // Kafka's rule for the client software name and version (v3+ only).
    auto valid = [](std::string_view name, std::string_view version, int16_t v = 3) {
        return api_versions_request{name, version}.valid(v);
    };
    EXPECT_TRUE(valid("confluent-kafka-python", "1.7.0-rdkafka-2.0.2"));
    EXPECT_TRUE(valid("apache-kafka-java", "3.7.0"));
    EXPECT_FALSE(valid("", "1"));
    EXPECT_FALSE(valid("a", ""));
    EXPECT_FALSE(valid("-a", "1"));
    EXPECT_FALSE(valid("a", "1."));
    EXPECT_FALSE(valid("a b", "1"));
    EXPECT_TRUE(valid("", "", 2)); // not carried before v3
}

// Produce v9 with a record set longer than 127 bytes (a two-byte compact length) and an
// unknown tagged field in every struct, as a future client may send.
TEST(KafkaCodec, ProduceRequestV9TaggedFieldsEverywhere) {
    test_record big;
    big.value = std::string(300, 'x');
    const bytes a = batch_of({big, big});
    ASSERT_GT(a.size(), 127u);
    wire b;
    b.cstr("txn").i16(-1).i32(30000).uvar(2);
    b.cstr("events-topic").uvar(2).i32(0).uvar(a.size() + 1).raw(a);
    unknown_tag(b); // partition
    unknown_tag(b); // topic
    unknown_tag(b); // request
    produce_request_reader pr;
    const request_header h = header_of(request(0, 9, 12, b.b, true, "rdkafka"));
    ASSERT_EQ(pr.open(h), parse_error::none);
    EXPECT_EQ(pr.transactional_id(), "txn");
    EXPECT_EQ(pr.acks(), -1);
    produce_topic t;
    produce_partition p;
    ASSERT_TRUE(pr.next_topic(t));
    EXPECT_EQ(t.name, "events-topic");
    ASSERT_TRUE(pr.next_partition(p));
    ASSERT_TRUE(p.records);
    EXPECT_EQ(bytes(p.records->begin(), p.records->end()), a);
    record_batch_reader br(*p.records);
    record_batch batch;
    ASSERT_TRUE(br.next(batch));
    EXPECT_EQ(read_all(batch, batch.records).size(), 2u);
    EXPECT_FALSE(pr.next_partition(p));
    EXPECT_FALSE(pr.next_topic(t));
    // The same body with its last tag buffer cut: refused.
    bytes cut = b.b;
    cut.resize(cut.size() - 1);
    EXPECT_NE(pr.open(header_of(request(0, 9, 12, cut, true))), parse_error::none);
}

// Produce body: one or two topics, several partitions, one null record set.
bytes produce_body(const bytes& batch_a, const bytes& batch_b, int16_t acks = -1) {
    wire w;
    w.null_str().i16(acks).i32(30000).i32(2);
    w.str("events-topic").i32(2).i32(0).blob(batch_a).i32(1).blob(batch_b);
    w.str("other").i32(1).i32(7).i32(-1);
    return w.b;
}

TEST(KafkaCodec, ProduceRequestAllVersions) {
    const bytes a = batch_of({{}, {}}), b = batch_of({{}});
    for (int16_t v = 3; v <= 8; v++) {
        produce_request_reader pr;
        ASSERT_EQ(pr.open(header_of(request(0, v, 11, produce_body(a, b)))), parse_error::none)
            << "v" << v;
        EXPECT_FALSE(pr.transactional_id());
        EXPECT_EQ(pr.acks(), -1);
        EXPECT_EQ(pr.timeout_ms(), 30000);
        EXPECT_EQ(pr.topic_count(), 2);
        EXPECT_EQ(pr.partition_count_total(), 3);
        produce_topic t;
        produce_partition p;
        ASSERT_TRUE(pr.next_topic(t));
        EXPECT_EQ(t.name, "events-topic");
        EXPECT_EQ(t.partition_count, 2);
        ASSERT_TRUE(pr.next_partition(p));
        EXPECT_EQ(p.index, 0);
        ASSERT_TRUE(p.records);
        EXPECT_EQ(bytes(p.records->begin(), p.records->end()), a);
        // Skipping partition 1: next_topic moves past it.
        ASSERT_TRUE(pr.next_topic(t));
        EXPECT_EQ(t.name, "other");
        ASSERT_TRUE(pr.next_partition(p));
        EXPECT_EQ(p.index, 7);
        EXPECT_FALSE(p.records);
        EXPECT_FALSE(pr.next_partition(p));
        EXPECT_FALSE(pr.next_topic(t));
        pr.rewind();
        ASSERT_TRUE(pr.next_topic(t));
        ASSERT_TRUE(pr.next_partition(p));
        ASSERT_TRUE(pr.next_partition(p));
        EXPECT_EQ(p.index, 1);
        EXPECT_EQ(bytes(p.records->begin(), p.records->end()), b);
    }
    // v0-v2: the same without transactional_id.
    for (int16_t v = 0; v <= 2; v++) {
        produce_request_reader pr;
        const bytes body = produce_body(a, b);
        const bytes no_txn(body.begin() + 2, body.end()); // drop the null string
        ASSERT_EQ(pr.open(header_of(request(0, v, 11, no_txn))), parse_error::none) << "v" << v;
        EXPECT_FALSE(pr.transactional_id());
        EXPECT_EQ(pr.acks(), -1);
        EXPECT_EQ(pr.timeout_ms(), 30000);
        EXPECT_EQ(pr.partition_count_total(), 3);
        produce_topic t;
        produce_partition p;
        ASSERT_TRUE(pr.next_topic(t));
        ASSERT_TRUE(pr.next_partition(p));
        EXPECT_EQ(bytes(p.records->begin(), p.records->end()), a);
        // A v3 body (transactional_id first) does not parse as v0-v2.
        EXPECT_NE(pr.open(header_of(request(0, v, 11, body))), parse_error::none);
    }
    produce_request_reader pr;
    EXPECT_EQ(pr.open(header_of(request(0, 10, 1, produce_body(a, b), true))),
              parse_error::unsupported_version);
    bytes trailing = produce_body(a, b);
    trailing.push_back(0);
    EXPECT_EQ(pr.open(header_of(request(0, 5, 1, trailing))), parse_error::trailing_bytes);
    EXPECT_EQ(pr.topic_count(), 0); // nothing half-open after a refusal
    produce_topic t;
    EXPECT_FALSE(pr.next_topic(t));
}

// v9: the same fields in the flexible encoding (compact strings, arrays and bytes, a tag
// buffer closing every struct).
bytes produce_body_v9(const bytes& batch_a, const bytes& batch_b) {
    wire w;
    w.uvar(0).i16(1).i32(1500).uvar(3);
    w.cstr("events-topic").uvar(3);
    w.i32(0).uvar(batch_a.size() + 1).raw(batch_a).u8(0);
    // A partition carrying one unknown tagged field, which is skipped.
    w.i32(1).uvar(batch_b.size() + 1).raw(batch_b).uvar(1).uvar(9).uvar(2).u8(0xAA).u8(0xBB);
    w.u8(0);
    w.cstr("other").uvar(2).i32(7).uvar(0).u8(0).u8(0);
    w.u8(0);
    return w.b;
}

TEST(KafkaCodec, ProduceRequestV9Flexible) {
    const bytes a = batch_of({{}, {}}), b = batch_of({{}});
    const bytes frame = request(0, 9, 12, produce_body_v9(a, b), true);
    produce_request_reader pr;
    const request_header h = header_of(frame);
    EXPECT_TRUE(h.flexible);
    ASSERT_EQ(pr.open(h), parse_error::none);
    EXPECT_FALSE(pr.transactional_id());
    EXPECT_EQ(pr.acks(), 1);
    EXPECT_EQ(pr.timeout_ms(), 1500);
    EXPECT_EQ(pr.topic_count(), 2);
    EXPECT_EQ(pr.partition_count_total(), 3);
    produce_topic t;
    produce_partition p;
    for (int pass = 0; pass < 2; pass++) {
        ASSERT_TRUE(pr.next_topic(t));
        EXPECT_EQ(t.name, "events-topic");
        EXPECT_EQ(t.partition_count, 2);
        ASSERT_TRUE(pr.next_partition(p));
        EXPECT_EQ(bytes(p.records->begin(), p.records->end()), a);
        if (pass == 0) {
            ASSERT_TRUE(pr.next_partition(p));
            EXPECT_EQ(p.index, 1);
            EXPECT_EQ(bytes(p.records->begin(), p.records->end()), b);
        } // pass 1 leaves partition 1 for next_topic to skip
        ASSERT_TRUE(pr.next_topic(t));
        EXPECT_EQ(t.name, "other");
        ASSERT_TRUE(pr.next_partition(p));
        EXPECT_EQ(p.index, 7);
        EXPECT_FALSE(p.records);
        EXPECT_FALSE(pr.next_topic(t));
        pr.rewind();
    }
    for (size_t n = 0; n < frame.size(); n++) {
        request_header cut;
        if (parse_request_header(bytes_view(frame.data(), n), cut) != parse_error::none) continue;
        EXPECT_NE(pr.open(cut), parse_error::none) << n;
    }
}

TEST(KafkaCodec, ProduceResponseV9Flexible) {
    bytes out;
    response_writer w(out);
    produce_response_writer pw(w, header_of(request(0, 9, 21, {}, true)), 2);
    pw.begin_topic("events-topic", 1);
    pw.partition({0, 0, 100, -1, 0, std::nullopt});
    pw.begin_topic("other", 1);
    pw.partition({7, 3, -1, -1, -1, "unknown"});
    pw.finish(0);
    wire e;
    e.i32(21).u8(0); // the flexible response header's tags
    e.uvar(3).cstr("events-topic").uvar(2);
    e.i32(0).i16(0).i64(100).i64(-1).i64(0).uvar(1).uvar(0).u8(0);
    e.u8(0);
    e.cstr("other").uvar(2);
    e.i32(7).i16(3).i64(-1).i64(-1).i64(-1).uvar(1).cstr("unknown").u8(0);
    e.u8(0);
    e.i32(0).u8(0);
    EXPECT_EQ(bytes(out.begin() + 4, out.end()), e.b);
}

TEST(KafkaCodec, ProduceRequestLyingLengths) {
    const bytes a = batch_of({{}});
    produce_request_reader pr;
    // A record set length past the end of the frame.
    wire w;
    w.null_str().i16(1).i32(1000).i32(1).str("t").i32(1).i32(0).i32(int32_t(a.size() + 1)).raw(a);
    EXPECT_EQ(pr.open(header_of(request(0, 5, 1, w.b))), parse_error::truncated);
    // Topic and partition counts far beyond the bytes.
    wire t;
    t.null_str().i16(1).i32(1000).i32(0x7FFFFFFF).str("t");
    EXPECT_EQ(pr.open(header_of(request(0, 5, 1, t.b))), parse_error::bad_length);
    wire p;
    p.null_str().i16(1).i32(1000).i32(1).str("t").i32(-1);
    EXPECT_EQ(pr.open(header_of(request(0, 5, 1, p.b))), parse_error::bad_length);
    wire r;
    r.null_str().i16(1).i32(1000).i32(1).str("t").i32(1).i32(0).i32(-7);
    EXPECT_EQ(pr.open(header_of(request(0, 5, 1, r.b))), parse_error::bad_length);
}

TEST(KafkaCodec, ProduceResponses) {
    for (int16_t v : {0, 1, 2, 3, 5, 8}) {
        bytes out;
        response_writer w(out);
        const request_header h = header_of(request(0, v, 21, {}));
        produce_response_writer pw(w, h, 2);
        pw.begin_topic("events-topic", 2);
        pw.partition({0, 0, 100, -1, 0, std::nullopt});
        pw.partition({1, error_code::corrupt_message, -1, -1, 0, std::nullopt});
        pw.begin_topic("other", 1);
        pw.partition({7, error_code::unknown_topic_or_partition, -1, -1, -1, std::nullopt});
        const size_t n = pw.finish(0);
        EXPECT_EQ(n, out.size());
        wire e;
        auto part = [&](int32_t i, int16_t err, int64_t off, int64_t lso) {
            e.i32(i).i16(err).i64(off);
            if (v >= 2) e.i64(-1); // log_append_time
            if (v >= 5) e.i64(lso);
            if (v >= 8) e.i32(0).null_str();
        };
        e.i32(21).i32(2).str("events-topic").i32(2);
        part(0, 0, 100, 0);
        part(1, 2, -1, 0);
        e.str("other").i32(1);
        part(7, 3, -1, -1);
        if (v >= 1) e.i32(0); // throttle_time_ms
        EXPECT_EQ(bytes(out.begin() + 4, out.end()), e.b) << "v" << v;
    }
}

// An acks=-1 answer written before its records were durable, whose store then failed: the
// partitions answered 0 become KAFKA_STORAGE_ERROR with base offset -1, the others keep their
// own error, byte for byte what the writer writes for those results, in every version.
TEST(KafkaCodec, ProduceAnswersRewrittenToStorageErrorInEveryVersion) {
    for (int16_t v : {0, 1, 2, 3, 5, 7, 8, 9}) {
        const request_header h = header_of(request(0, v, 21, {}, v >= 9));
        auto answer = [&](int16_t ok_error, int64_t offset0, int64_t offset7) {
            bytes out;
            response_writer w(out);
            produce_response_writer pw(w, h, 2);
            pw.begin_topic("events-topic", 2);
            pw.partition({0, ok_error, offset0, -1, 0, std::nullopt});
            pw.partition({1, error_code::corrupt_message, -1, -1, 0, "bad crc"});
            pw.begin_topic("other", 1);
            pw.partition({7, ok_error, offset7, -1, 0, std::nullopt});
            pw.finish(0);
            return out;
        };
        bytes got = answer(error_code::none, 100, 200);
        EXPECT_EQ(rewrite_produce_errors(got, v, error_code::none, error_code::kafka_storage_error), 2)
            << "v" << v;
        EXPECT_EQ(got, answer(error_code::kafka_storage_error, -1, -1)) << "v" << v;
        // Nothing left to change.
        EXPECT_EQ(rewrite_produce_errors(got, v, error_code::none, error_code::kafka_storage_error), 0);
        // Not such a frame: -1, nothing changed (a cut frame, a prefix that lies).
        bytes cut = answer(error_code::none, 100, 200);
        cut.pop_back();
        const bytes before = cut;
        EXPECT_EQ(rewrite_produce_errors(cut, v, error_code::none, error_code::kafka_storage_error), -1);
        EXPECT_EQ(cut, before);
        bytes lying = answer(error_code::none, 100, 200);
        lying[3] ^= 1;
        EXPECT_EQ(rewrite_produce_errors(lying, v, error_code::none, error_code::kafka_storage_error), -1);
    }
}

// FindCoordinator v0-v2 as apache/kafka's schema has them: key, v1+ key type; the answer
// v1+ throttle, error, v1+ error message, node, host, port.
TEST(KafkaCodec, FindCoordinatorEveryVersion) {
    for (int16_t v = 0; v <= 2; ++v) {
        wire body;
        body.str("my-group");
        if (v >= 1) body.u8(0);
        const request_header h = header_of(request(10, v, 70 + v, body.b));
        find_coordinator_request req;
        ASSERT_EQ(parse_find_coordinator_request(h, req), parse_error::none) << v;
        EXPECT_EQ(req.key, "my-group");
        EXPECT_EQ(req.key_type, 0);
        bytes out;
        response_writer w(out);
        write_find_coordinator_response(w, h, error_code::none, 0, "127.0.0.1", 9092);
        wire e;
        e.i32(70 + v);
        if (v >= 1) e.i32(0);
        e.i16(0);
        if (v >= 1) e.null_str();
        e.i32(0).str("127.0.0.1").i32(9092);
        EXPECT_EQ(bytes(out.begin() + 4, out.end()), e.b) << "v" << v;
        // Without a coordinator (or for a transaction): 15, node -1, no host.
        bytes none;
        response_writer wn(none);
        write_find_coordinator_response(wn, h, error_code::coordinator_not_available, 0, "h", 1);
        byte_reader r(none);
        r.skip(8);
        if (v >= 1) r.skip(4);
        EXPECT_EQ(r.i16(), error_code::coordinator_not_available);
        if (v >= 1) { EXPECT_TRUE(r.nullable_string().has_value()); }
        EXPECT_EQ(r.i32(), -1);
        EXPECT_EQ(r.string(), "");
        EXPECT_EQ(r.i32(), -1);
        EXPECT_EQ(r.remaining(), 0u);
    }
    wire trailing;
    trailing.str("g").u8(0);
    find_coordinator_request req;
    EXPECT_EQ(parse_find_coordinator_request(header_of(request(10, 0, 1, trailing.b)), req),
              parse_error::trailing_bytes);
    EXPECT_EQ(parse_find_coordinator_request(header_of(request(10, 3, 1, trailing.b, true)), req),
              parse_error::unsupported_version);
}

TEST(KafkaCodec, FixedBufferOverflowIsReported) {
    uint8_t buf[16];
    response_writer w(std::span<uint8_t>(buf, sizeof buf));
    write_api_versions_response(w, header_of(request(18, 0, 1, {})), default_api_versions);
    EXPECT_TRUE(w.overflow());
    uint8_t big[256];
    response_writer ok(std::span<uint8_t>(big, sizeof big));
    write_api_versions_response(ok, header_of(request(18, 0, 1, {})), default_api_versions);
    EXPECT_FALSE(ok.overflow());
    EXPECT_EQ(ok.position(), 4u + 4 + 2 + 4 + 6 * std::size(default_api_versions));
}

TEST(KafkaCodec, WriterPrimitives) {
    bytes out;
    response_writer w(out);
    w.uvarint(300);
    w.varint(-1);
    w.varlong(-65);
    w.compact_string("ab");
    w.compact_nullable_string(std::nullopt);
    w.bytes(std::nullopt);
    w.nullable_string(std::nullopt);
    w.compact_array_count(2);
    EXPECT_EQ(out, wire().uvar(300).var(-1).var(-65).cstr("ab").u8(0).i32(-1).i16(-1).u8(3).b);
    byte_reader r(out);
    EXPECT_EQ(r.uvarint(), 300u);
    EXPECT_EQ(r.varint(), -1);
    EXPECT_EQ(r.varlong(), -65);
    EXPECT_EQ(r.compact_string(), "ab");
    EXPECT_FALSE(r.compact_nullable_string());
    EXPECT_FALSE(r.nullable_bytes());
    EXPECT_FALSE(r.nullable_string());
    EXPECT_EQ(r.uvarint(), 3u);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
    (void)r.i8();
    EXPECT_EQ(r.error(), parse_error::truncated);
    // Extreme varints round-trip.
    bytes ext;
    response_writer x(ext);
    x.varint(INT32_MIN);
    x.varint(INT32_MAX);
    x.varlong(INT64_MIN);
    x.varlong(INT64_MAX);
    byte_reader xr(ext);
    EXPECT_EQ(xr.varint(), INT32_MIN);
    EXPECT_EQ(xr.varint(), INT32_MAX);
    EXPECT_EQ(xr.varlong(), INT64_MIN);
    EXPECT_EQ(xr.varlong(), INT64_MAX);
    EXPECT_TRUE(xr.ok());
}

// Every request kind, cut at every length: an error, never a crash or a success.
TEST(KafkaCodec, TruncatedRequestsAtEveryLength) {
    const bytes a = batch_of({{}, {}});
    const std::vector<bytes> frames = {
        request(18, 3, 1, wire().cstr("librdkafka").cstr("2.0.2").u8(0).b, true),
        request(18, 0, 1, {}),
        request(3, 0, 1, wire().i32(1).str("events-topic").b),
        request(3, 1, 1, wire().i32(2).str("events-topic").str("x").b),
        request(3, 8, 1, wire().i32(1).str("events-topic").u8(1).u8(0).u8(0).b),
        request(22, 0, 1, wire().str("tx").i32(60000).b),
        request(22, 1, 1, wire().null_str().i32(60000).b),
        request(0, 3, 1, produce_body(a, a)),
        request(0, 5, 1, produce_body(a, a)),
        request(0, 8, 1, produce_body(a, a)),
        request(3, 9, 1, metadata_body_flexible(9, {"events-topic"}, true, true), true),
        request(3, 12, 1, metadata_body_flexible(12, {"events-topic", "x"}, true, false), true),
        request(22, 2, 1, wire().uvar(0).i32(60000).u8(0).b, true),
        request(22, 4, 1, wire().cstr("tx").i32(60000).i64(-1).i16(-1).u8(0).b, true),
        request(0, 9, 1, produce_body_v9(a, a), true),
    };
    for (const bytes& full : frames) {
        for (size_t n = 0; n < full.size(); n++) {
            const bytes cut(full.begin(), full.begin() + n);
            request_header h;
            if (parse_request_header(cut, h) != parse_error::none) continue;
            parse_error e = parse_error::none;
            switch (h.api_key) {
            case 18: {
                api_versions_request r;
                e = parse_api_versions_request(h, r);
                break;
            }
            case 3: {
                metadata_request r;
                e = parse_metadata_request(h, r);
                break;
            }
            case 22: {
                init_producer_id_request r;
                e = parse_init_producer_id_request(h, r);
                break;
            }
            case 0: {
                produce_request_reader r;
                e = r.open(h);
                break;
            }
            }
            EXPECT_NE(e, parse_error::none) << "key " << h.api_key << " cut at " << n;
        }
    }
}

// ---------------------------------------------------------------------------------------
// RecordBatch and records

TEST(KafkaCodec, RecordsNullKeysValuesHeaders) {
    batch_spec s;
    s.producer_id = 1000;
    s.producer_epoch = 0;
    s.base_sequence = 5;
    const bytes batch = batch_of({{std::nullopt, "v0", {}, 0},
                                  {"k1", std::nullopt, {{"h1", "x"}, {"h2", std::nullopt}}, 7},
                                  {"", "", {}, -3}},
                                 s);
    record_batch_reader br(batch);
    record_batch b;
    ASSERT_TRUE(br.next(b));
    EXPECT_EQ(b.magic, 2);
    EXPECT_EQ(b.records_count, 3);
    EXPECT_EQ(b.last_offset_delta, 2);
    EXPECT_EQ(b.producer_id, 1000);
    EXPECT_EQ(b.producer_epoch, 0);
    EXPECT_EQ(b.base_sequence, 5);
    EXPECT_EQ(b.codec(), compression::none);
    EXPECT_EQ(b.bytes.size(), batch.size());
    EXPECT_FALSE(br.next(b));
    EXPECT_EQ(br.error(), parse_error::none);

    const auto recs = read_all(b, b.records);
    ASSERT_EQ(recs.size(), 3u);
    EXPECT_FALSE(recs[0].key);
    EXPECT_EQ(to_string(*recs[0].value), "v0");
    EXPECT_EQ(recs[0].timestamp_ms, s.base_timestamp);
    EXPECT_EQ(recs[0].offset_delta, 0);
    EXPECT_EQ(recs[0].header_count, 0);
    EXPECT_EQ(to_string(*recs[1].key), "k1");
    EXPECT_FALSE(recs[1].value);
    EXPECT_EQ(recs[1].timestamp_ms, s.base_timestamp + 7);
    EXPECT_EQ(recs[1].offset_delta, 1);
    auto hr = recs[1].headers();
    record_header hd;
    ASSERT_TRUE(hr.next(hd));
    EXPECT_EQ(hd.key, "h1");
    ASSERT_TRUE(hd.value);
    EXPECT_EQ(to_string(*hd.value), "x");
    ASSERT_TRUE(hr.next(hd));
    EXPECT_EQ(hd.key, "h2");
    EXPECT_FALSE(hd.value);
    EXPECT_FALSE(hr.next(hd));
    ASSERT_TRUE(recs[2].key);
    EXPECT_TRUE(recs[2].key->empty());
    EXPECT_EQ(recs[2].timestamp_ms, s.base_timestamp - 3);
    EXPECT_EQ(check_records(b, b.records), parse_error::none);
}

TEST(KafkaCodec, SeveralBatchesInOneRecordSet) {
    bytes set = batch_of({{}, {}});
    const bytes second = batch_of({{"k", "v"}});
    set.insert(set.end(), second.begin(), second.end());
    record_batch_reader br(set);
    record_batch b;
    int batches = 0, records = 0;
    while (br.next(b)) {
        batches++;
        records += int(read_all(b, b.records).size());
    }
    EXPECT_EQ(br.error(), parse_error::none);
    EXPECT_EQ(batches, 2);
    EXPECT_EQ(records, 3);
}

TEST(KafkaCodec, BadCrcAndMagic) {
    bytes batch = batch_of({{"k", "value"}});
    record_batch b;
    ASSERT_EQ(parse_record_batch(batch, b), parse_error::none);
    for (size_t i : {size_t(21), size_t(40), batch.size() - 1}) {
        bytes bad = batch;
        bad[i] ^= 0x01;
        EXPECT_EQ(parse_record_batch(bad, b), parse_error::bad_crc) << i;
    }
    bytes crc = batch;
    crc[17] ^= 0x80;
    EXPECT_EQ(parse_record_batch(crc, b), parse_error::bad_crc);
    EXPECT_EQ(kafka_error_for(parse_error::bad_crc), error_code::corrupt_message);
    for (uint8_t m : {0, 1}) {
        bytes legacy = batch;
        legacy[16] = m;
        EXPECT_EQ(parse_record_batch(legacy, b), parse_error::legacy_magic);
    }
    EXPECT_EQ(kafka_error_for(parse_error::legacy_magic), error_code::invalid_record);
    bytes m3 = batch;
    m3[16] = 3;
    EXPECT_EQ(parse_record_batch(m3, b), parse_error::bad_magic);
    // A legacy magic-1 message set as a v2 client would never send it: offset, size, crc,
    // magic 1, attributes, timestamp, key, value.
    const bytes legacy = wire().i64(0).i32(22).i32(0).u8(1).u8(0).i64(0).i32(-1).i32(0).b;
    record_batch_reader lr(legacy);
    EXPECT_FALSE(lr.next(b));
    EXPECT_EQ(lr.error(), parse_error::legacy_magic);
}

TEST(KafkaCodec, BatchLyingLengths) {
    const bytes batch = batch_of({{"k", "value"}});
    record_batch b;
    // batchLength past the end, and below the header's size.
    bytes longer = batch;
    longer[11] += 1;
    EXPECT_EQ(parse_record_batch(longer, b), parse_error::truncated);
    bytes shorter = batch;
    std::memcpy(shorter.data() + 8, "\0\0\0\x10", 4);
    EXPECT_EQ(parse_record_batch(shorter, b), parse_error::bad_length);
    bytes negative = batch;
    std::memcpy(negative.data() + 8, "\xff\xff\xff\xf0", 4);
    EXPECT_EQ(parse_record_batch(negative, b), parse_error::bad_length);
    // Unknown codec 5 (CRC valid).
    batch_spec s;
    s.attributes = 5;
    EXPECT_EQ(parse_record_batch(batch_of({{}}, s), b), parse_error::unsupported_compression);
    EXPECT_EQ(kafka_error_for(parse_error::unsupported_compression),
              error_code::unsupported_compression_type);
    // Negative record count.
    s = {};
    s.records_count = -1;
    EXPECT_EQ(parse_record_batch(batch_of({{}}, s), b), parse_error::bad_length);
}

TEST(KafkaCodec, RecordCountMismatch) {
    record_batch b;
    batch_spec more;
    more.records_count = 3; // claims 3, holds 2
    bytes batch = batch_of({{}, {}}, more);
    ASSERT_EQ(parse_record_batch(batch, b), parse_error::none);
    EXPECT_EQ(read_all(b, b.records, parse_error::record_count).size(), 2u);
    EXPECT_EQ(check_records(b, b.records), parse_error::record_count);
    batch_spec fewer;
    fewer.records_count = 1; // claims 1, holds 2
    batch = batch_of({{}, {}}, fewer);
    ASSERT_EQ(parse_record_batch(batch, b), parse_error::none);
    EXPECT_EQ(read_all(b, b.records, parse_error::trailing_bytes).size(), 1u);
}

// Record-level lies, each in an otherwise valid batch (correct CRC).
TEST(KafkaCodec, RecordLyingLengths) {
    auto run = [](const bytes& records, int32_t count) {
        const bytes batch = encode_batch(records, count);
        record_batch b;
        EXPECT_EQ(parse_record_batch(batch, b), parse_error::none);
        return check_records(b, b.records);
    };
    auto rec = [](const wire& body) { return wire().var(int64_t(body.b.size())).raw(body.b).b; };
    // Record length longer than the bytes.
    EXPECT_EQ(run(wire().var(50).u8(0).var(0).var(0).var(-1).var(1).u8('v').var(0).b, 1),
              parse_error::truncated);
    // Negative record length.
    EXPECT_EQ(run(wire().var(-5).b, 1), parse_error::bad_length);
    // Key length past the record's end (but inside the batch).
    bytes tail = rec(wire().u8(0).var(0).var(0).var(40).u8('k').var(1).u8('v').var(0));
    tail.resize(tail.size() + 60, 0);
    EXPECT_EQ(run(tail, 1), parse_error::truncated);
    // Key length -2.
    EXPECT_EQ(run(rec(wire().u8(0).var(0).var(0).var(-2).var(1).u8('v').var(0)), 1),
              parse_error::bad_length);
    // Header count far beyond the record.
    EXPECT_EQ(run(rec(wire().u8(0).var(0).var(0).var(-1).var(1).u8('v').var(1000000)), 1),
              parse_error::bad_length);
    // A null header key.
    EXPECT_EQ(run(rec(wire().u8(0).var(0).var(0).var(-1).var(1).u8('v').var(1).var(-1).var(-1)), 1),
              parse_error::bad_length);
    // A record longer than its fields (a spare byte inside it).
    EXPECT_EQ(run(rec(wire().u8(0).var(0).var(0).var(-1).var(1).u8('v').var(0).u8(0)), 1),
              parse_error::trailing_bytes);
    // An overlong varint.
    EXPECT_EQ(run(rec(wire().u8(0).raw("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)), 1),
              parse_error::bad_varint);
    // Hostile timestamp delta: wraps, no UB.
    batch_spec s;
    s.base_timestamp = INT64_MAX;
    const bytes wrap = batch_of({{std::nullopt, "v", {}, INT64_MAX}}, s);
    record_batch b;
    ASSERT_EQ(parse_record_batch(wrap, b), parse_error::none);
    EXPECT_EQ(read_all(b, b.records).size(), 1u);
}

TEST(KafkaCodec, TruncatedRecordSetAtEveryLength) {
    bytes set = batch_of({{"k", "v", {{"h", "x"}}}, {std::nullopt, "w"}});
    const bytes second = batch_of({{"a", "b"}});
    set.insert(set.end(), second.begin(), second.end());
    const size_t first_size = set.size() - second.size();
    for (size_t n = 0; n < set.size(); n++) {
        const bytes cut(set.begin(), set.begin() + n);
        record_batch_reader br(cut);
        record_batch b;
        int got = 0;
        while (br.next(b))
            got++;
        if (n == 0 || n == first_size) {
            EXPECT_EQ(br.error(), parse_error::none) << n;
        } else {
            EXPECT_NE(br.error(), parse_error::none) << n;
        }
        EXPECT_EQ(got, n < first_size ? 0 : 1) << n;
    }
    // Records cut at every length inside a batch whose CRC is recomputed (so only the
    // record walk can notice).
    const bytes records = encode_records({{"k", "v", {{"h", "x"}}}, {std::nullopt, "w"}});
    for (size_t n = 0; n < records.size(); n++) {
        const bytes batch = encode_batch(bytes(records.begin(), records.begin() + n), 2);
        record_batch b;
        ASSERT_EQ(parse_record_batch(batch, b), parse_error::none);
        EXPECT_NE(check_records(b, b.records), parse_error::none) << n;
    }
}

// kafka-python 2.0.2's DefaultRecordBatchBuilder (magic 2), generated offline:
//   append(0, ts=1740754951000, key=None, value=b'{"user_id":"1","event_type":"page_view"}')
//   append(1, ts=1740754951005, key=b'k2', value=b'v2', headers=[("h1", b"x"), ("h2", None)])
//   append(2, ts=1740754950990, key=b'', value=None)
constexpr std::string_view kafka_python_batch =
    "00000000000000000000007b00000000026510af21000000000002000001954d149b58000001954d149b5dff"
    "ffffffffffffffffffffffffff000000035c00000001507b22757365725f6964223a2231222c226576656e74"
    "5f74797065223a22706167655f76696577227d0026000a02046b32047632040468310278046832010c001304"
    "000100";

// The same builder with gzip: 4 records, value b'{"user_id":"%d","event_type":"page_view",
// "page":"/products/1234"}' % i, ts 1740754951000 + i.
constexpr std::string_view kafka_python_gzip_batch =
    "0000000000000000000000a20000000002c7fe225b000100000003000001954d149b58000001954d149b5bff"
    "ffffffffffffffffffffffffff000000041f8b08007e6e116b02ffeb63646060606c60ac562a2d4e2d8acf4c"
    "51b2523250d2514a2d4bcd2b892fa92c48050a1424a6a7c69765a6960325406ca0907e41517e4a697249b1be"
    "a191b189522d431f230313139a4186641ac4c2826690119906b1b1a119644c8e4100ff54db6f24010000";

TEST(KafkaCodec, KafkaPythonGoldenBatch) {
    const bytes batch = from_hex(kafka_python_batch);
    record_batch b;
    ASSERT_EQ(parse_record_batch(batch, b), parse_error::none);
    EXPECT_EQ(b.records_count, 3);
    EXPECT_EQ(b.producer_id, -1);
    EXPECT_EQ(b.base_sequence, -1);
    const auto recs = read_all(b, b.records);
    ASSERT_EQ(recs.size(), 3u);
    EXPECT_FALSE(recs[0].key);
    EXPECT_EQ(to_string(*recs[0].value), R"({"user_id":"1","event_type":"page_view"})");
    EXPECT_EQ(recs[0].timestamp_ms, 1740754951000);
    EXPECT_EQ(to_string(*recs[1].key), "k2");
    EXPECT_EQ(recs[1].timestamp_ms, 1740754951005);
    EXPECT_EQ(recs[1].header_count, 2);
    EXPECT_EQ(recs[2].timestamp_ms, 1740754950990);
    EXPECT_EQ(recs[2].offset_delta, 2);
    EXPECT_FALSE(recs[2].value);
}

TEST(KafkaCodec, KafkaPythonGoldenGzipBatch) {
    const bytes batch = from_hex(kafka_python_gzip_batch);
    record_batch b;
    ASSERT_EQ(parse_record_batch(batch, b), parse_error::none);
    EXPECT_EQ(b.codec(), compression::gzip);
    decompressor d;
    ASSERT_TRUE(d.ok());
    bytes scratch(64 << 10);
    bytes_view records;
    ASSERT_EQ(batch_records(b, d, scratch, records), parse_error::none);
    const auto recs = read_all(b, records);
    ASSERT_EQ(recs.size(), 4u);
    for (int i = 0; i < 4; i++) {
        EXPECT_EQ(to_string(*recs[i].value),
                  R"({"user_id":")" + std::to_string(i) +
                      R"(","event_type":"page_view","page":"/products/1234"})");
        EXPECT_EQ(recs[i].timestamp_ms, 1740754951000 + i);
    }
}

// ---------------------------------------------------------------------------------------
// Compression

bytes gzip_compress(const bytes& in) {
    z_stream zs{};
    EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    bytes out(deflateBound(&zs, uLong(in.size())) + 32);
    zs.next_in = const_cast<Bytef*>(in.data());
    zs.avail_in = uInt(in.size());
    zs.next_out = out.data();
    zs.avail_out = uInt(out.size());
    EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

bytes snappy_compress_raw(const bytes& in) {
    size_t n = snappy_max_compressed_length(in.size());
    bytes out(n);
    EXPECT_EQ(snappy_compress(reinterpret_cast<const char*>(in.data()), in.size(),
                              reinterpret_cast<char*>(out.data()), &n),
              SNAPPY_OK);
    out.resize(n);
    return out;
}

// snappy-java's SnappyOutputStream framing, as kafka-python's snappy_encode writes it.
bytes snappy_compress_xerial(const bytes& in, size_t chunk) {
    wire w;
    w.raw("\x82SNAPPY\0", 8).i32(1).i32(1);
    for (size_t pos = 0; pos < in.size(); pos += chunk) {
        const bytes part(in.begin() + pos, in.begin() + std::min(in.size(), pos + chunk));
        w.blob(snappy_compress_raw(part));
    }
    return w.b;
}

bytes lz4_compress(const bytes& in) {
    bytes out(LZ4F_compressFrameBound(in.size(), nullptr));
    const size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), nullptr);
    EXPECT_FALSE(LZ4F_isError(n));
    out.resize(n);
    return out;
}

bytes zstd_compress(const bytes& in) {
    bytes out(ZSTD_compressBound(in.size()));
    const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

// Streamed with no pledged size: the frame does not declare its content size.
bytes zstd_compress_stream(const bytes& in, size_t repeat = 1) {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    bytes out;
    bytes buf(ZSTD_CStreamOutSize());
    for (size_t i = 0; i < repeat; i++) {
        ZSTD_inBuffer src{in.data(), in.size(), 0};
        const ZSTD_EndDirective mode = i + 1 == repeat ? ZSTD_e_end : ZSTD_e_continue;
        for (;;) {
            ZSTD_outBuffer dst{buf.data(), buf.size(), 0};
            const size_t left = ZSTD_compressStream2(c, &dst, &src, mode);
            EXPECT_FALSE(ZSTD_isError(left));
            out.insert(out.end(), buf.begin(), buf.begin() + dst.pos);
            if (mode == ZSTD_e_end ? left == 0 : src.pos == src.size) break;
        }
    }
    ZSTD_freeCCtx(c);
    return out;
}

std::vector<test_record> sample_records(int n) {
    std::vector<test_record> out;
    for (int i = 0; i < n; i++)
        out.push_back({i % 3 ? std::optional<std::string>("key" + std::to_string(i)) : std::nullopt,
                       R"({"user_id":")" + std::to_string(i) +
                           R"(","event_type":"page_view","page":"/products/1234"})",
                       {{"trace", std::to_string(i)}},
                       i});
    return out;
}

struct codec_case {
    const char* name;
    compression codec;
    bytes (*compress)(const bytes&);
};

bytes xerial_small_chunks(const bytes& in) {
    return snappy_compress_xerial(in, 100);
}
bytes zstd_stream_once(const bytes& in) {
    return zstd_compress_stream(in);
}

const codec_case codec_cases[] = {
    {"gzip", compression::gzip, gzip_compress},
    {"snappy_raw", compression::snappy, snappy_compress_raw},
    {"snappy_xerial", compression::snappy, xerial_small_chunks},
    {"lz4_frame", compression::lz4, lz4_compress},
    {"zstd", compression::zstd, zstd_compress},
    {"zstd_stream", compression::zstd, zstd_stream_once},
};

TEST(KafkaCodec, CompressedBatchesRoundTrip) {
    const auto recs = sample_records(50);
    const bytes plain = encode_records(recs);
    decompressor d;
    ASSERT_TRUE(d.ok());
    bytes scratch(1 << 20);
    for (const auto& c : codec_cases) {
        batch_spec s;
        s.attributes = int16_t(c.codec);
        const bytes batch = encode_batch(c.compress(plain), 50, s);
        record_batch b;
        ASSERT_EQ(parse_record_batch(batch, b), parse_error::none) << c.name;
        EXPECT_EQ(b.codec(), c.codec);
        bytes_view records;
        ASSERT_EQ(batch_records(b, d, scratch, records), parse_error::none) << c.name;
        EXPECT_EQ(bytes(records.begin(), records.end()), plain) << c.name;
        const auto got = read_all(b, records);
        ASSERT_EQ(got.size(), 50u) << c.name;
        EXPECT_EQ(to_string(*got[49].value), *recs[49].value);
        EXPECT_EQ(got[49].timestamp_ms, s.base_timestamp + 49);
        record_header h;
        auto hr = got[7].headers();
        ASSERT_TRUE(hr.next(h));
        EXPECT_EQ(to_string(*h.value), "7");
    }
}

TEST(KafkaCodec, DecompressExactCapAndOneByteLess) {
    const bytes plain = encode_records(sample_records(20));
    decompressor d;
    for (const auto& c : codec_cases) {
        const bytes z = c.compress(plain);
        bytes out(plain.size());
        size_t n = 0;
        EXPECT_EQ(d.decompress(c.codec, z, out, n), parse_error::none) << c.name;
        EXPECT_EQ(n, plain.size()) << c.name;
        EXPECT_EQ(out, plain) << c.name;
        bytes small(plain.size() - 1);
        EXPECT_EQ(d.decompress(c.codec, z, small, n), parse_error::too_large) << c.name;
        EXPECT_LE(n, small.size());
        // The context is reusable after a refusal.
        EXPECT_EQ(d.decompress(c.codec, z, out, n), parse_error::none) << c.name;
    }
}

TEST(KafkaCodec, CorruptOrTruncatedCompressedData) {
    const bytes plain = encode_records(sample_records(20));
    decompressor d;
    bytes out(1 << 20);
    for (const auto& c : codec_cases) {
        const bytes z = c.compress(plain);
        size_t n = 0;
        for (size_t cut : {size_t(0), size_t(1), z.size() / 2, z.size() - 1}) {
            const bytes part(z.begin(), z.begin() + cut);
            const parse_error e = d.decompress(c.codec, part, out, n);
            // A cut snappy block may still decode as a shorter valid one only if its
            // length says so; every codec here must notice.
            EXPECT_NE(e, parse_error::none) << c.name << " cut " << cut;
        }
        bytes garbage = z;
        for (size_t i = z.size() / 3; i < z.size(); i += 5)
            garbage[i] ^= 0x5A;
        (void)d.decompress(c.codec, garbage, out, n); // any answer, no crash
        EXPECT_LE(n, out.size());
        EXPECT_EQ(d.decompress(c.codec, z, out, n), parse_error::none) << c.name;
    }
    size_t n = 0;
    EXPECT_EQ(d.decompress(compression(6), plain, out, n), parse_error::unsupported_compression);
}

TEST(KafkaCodec, CompressionBombsHitTheCap) {
    decompressor d;
    const size_t cap = 1 << 20;
    bytes out(cap);
    size_t n = 0;
    const bytes zeros(1 << 20, 0);
    // 100 MiB of zeros, zstd-streamed without a declared size.
    const bytes z = zstd_compress_stream(zeros, 100);
    EXPECT_LT(z.size(), 64u << 10);
    EXPECT_EQ(d.decompress(compression::zstd, z, out, n), parse_error::too_large);
    EXPECT_LE(n, cap);
    // 100 MiB through gzip (streamed), lz4 and snappy (from 16 MiB, enough past the cap).
    z_stream zs{};
    ASSERT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    bytes gz(1 << 20);
    zs.next_out = gz.data();
    zs.avail_out = uInt(gz.size());
    for (int i = 0; i < 100; i++) {
        zs.next_in = const_cast<Bytef*>(zeros.data());
        zs.avail_in = uInt(zeros.size());
        ASSERT_NE(deflate(&zs, i == 99 ? Z_FINISH : Z_NO_FLUSH), Z_STREAM_ERROR);
    }
    gz.resize(zs.total_out);
    deflateEnd(&zs);
    EXPECT_EQ(d.decompress(compression::gzip, gz, out, n), parse_error::too_large);
    const bytes big(16 << 20, 0);
    EXPECT_EQ(d.decompress(compression::lz4, lz4_compress(big), out, n), parse_error::too_large);
    EXPECT_EQ(d.decompress(compression::snappy, snappy_compress_raw(big), out, n),
              parse_error::too_large);
    EXPECT_EQ(d.decompress(compression::snappy, snappy_compress_xerial(big, 32 << 10), out, n),
              parse_error::too_large);
    EXPECT_EQ(kafka_error_for(parse_error::too_large), error_code::message_too_large);
}

TEST(KafkaCodec, ConcatenatedFrames) {
    const bytes a = encode_records(sample_records(3));
    decompressor d;
    bytes out(1 << 16);
    size_t n = 0;
    bytes two = gzip_compress(a);
    const bytes g2 = gzip_compress(a);
    two.insert(two.end(), g2.begin(), g2.end());
    ASSERT_EQ(d.decompress(compression::gzip, two, out, n), parse_error::none);
    EXPECT_EQ(n, 2 * a.size());
    bytes zz = zstd_compress(a);
    const bytes z2 = zstd_compress(a);
    zz.insert(zz.end(), z2.begin(), z2.end());
    ASSERT_EQ(d.decompress(compression::zstd, zz, out, n), parse_error::none);
    EXPECT_EQ(n, 2 * a.size());
    bytes ll = lz4_compress(a);
    const bytes l2 = lz4_compress(a);
    ll.insert(ll.end(), l2.begin(), l2.end());
    ASSERT_EQ(d.decompress(compression::lz4, ll, out, n), parse_error::none);
    EXPECT_EQ(n, 2 * a.size());
}

// Random corruption of a whole produce frame and its compressed batch: whatever the
// bytes, the codec answers with a value (the ASan/UBSan build is the real judge).
TEST(KafkaCodec, MutatedFramesNeverCrash) {
    const bytes plain = encode_records(sample_records(10));
    batch_spec s;
    s.attributes = int16_t(compression::zstd);
    const bytes zbatch = encode_batch(zstd_compress(plain), 10, s);
    const bytes frame = request(0, 5, 1, produce_body(batch_of(sample_records(4)), zbatch));
    std::mt19937 rng(12345);
    decompressor d;
    bytes scratch(1 << 16);
    int accepted = 0;
    for (int iter = 0; iter < 4000; iter++) {
        bytes f = frame;
        const int flips = 1 + int(rng() % 4);
        for (int k = 0; k < flips; k++)
            f[rng() % f.size()] = uint8_t(rng());
        if (rng() % 4 == 0) f.resize(rng() % f.size());
        request_header h;
        if (parse_request_header(f, h) != parse_error::none) continue;
        produce_request_reader pr;
        if (pr.open(h) != parse_error::none) continue;
        produce_topic t;
        produce_partition p;
        while (pr.next_topic(t)) {
            while (pr.next_partition(p)) {
                if (!p.records) continue;
                record_batch_reader br(*p.records);
                record_batch b;
                while (br.next(b)) {
                    bytes_view records;
                    if (batch_records(b, d, scratch, records) != parse_error::none) continue;
                    record_reader rr(b, records);
                    record r;
                    while (rr.next(r)) {
                        auto hr = r.headers();
                        record_header hd;
                        while (hr.next(hd)) {
                        }
                    }
                    accepted += rr.error() == parse_error::none;
                }
            }
        }
    }
    EXPECT_GT(accepted, 0); // some mutations miss the batches (client_id, timeout bytes)
}

// The record bytes corrupted under a valid CRC, for every codec: the decompressors and
// the record walk see hostile bytes, not just the CRC check.
TEST(KafkaCodec, MutatedRecordsUnderValidCrc) {
    const bytes plain = encode_records(sample_records(10));
    std::mt19937 rng(777);
    decompressor d;
    bytes scratch(1 << 16);
    auto run = [&](compression codec, const bytes& payload) {
        for (int iter = 0; iter < 1500; iter++) {
            bytes p = payload;
            const int flips = 1 + int(rng() % 3);
            for (int k = 0; k < flips; k++)
                p[rng() % p.size()] = uint8_t(rng());
            if (rng() % 4 == 0) p.resize(rng() % p.size());
            batch_spec s;
            s.attributes = int16_t(codec);
            const bytes batch = encode_batch(p, 10, s);
            record_batch b;
            ASSERT_EQ(parse_record_batch(batch, b), parse_error::none);
            bytes_view records;
            if (batch_records(b, d, scratch, records) != parse_error::none) continue;
            ASSERT_LE(records.size(), scratch.size());
            record_reader rr(b, records);
            record r;
            while (rr.next(r)) {
                auto hr = r.headers();
                record_header hd;
                while (hr.next(hd)) {
                }
            }
        }
    };
    run(compression::none, plain);
    for (const auto& c : codec_cases)
        run(c.codec, c.compress(plain));
}

// The libFuzzer target's body in every build: seeds of each kind, mutated.
TEST(KafkaCodec, FuzzBodyOnMutatedSeeds) {
    const bytes plain = encode_records(sample_records(5));
    std::vector<bytes> seeds = {
        request(18, 3, 1, wire().cstr("librdkafka").cstr("2.0.2").u8(0).b, true),
        request(3, 1, 1, wire().i32(2).str("events-topic").str("x").b),
        request(3, 8, 1, wire().i32(-1).u8(1).u8(0).u8(0).b),
        request(22, 1, 1, wire().null_str().i32(60000).b),
        request(0, 8, 1, produce_body(batch_of(sample_records(3)), batch_of({{}}))),
        request(0, 9, 1, produce_body_v9(batch_of(sample_records(3)), batch_of({{}})), true),
        request(3, 12, 1, metadata_body_flexible(12, {"events-topic", "x"}, true, true), true),
        request(22, 4, 1, wire().uvar(0).i32(60000).i64(-1).i16(-1).u8(0).b, true),
        batch_of(sample_records(4)),
        wire().u8(5).raw(plain).b,
    };
    for (const auto& c : codec_cases)
        seeds.push_back(c.compress(plain));
    std::mt19937 rng(99);
    for (const bytes& seed : seeds) {
        fuzz::one_input(seed.data(), seed.size());
        for (int iter = 0; iter < 500; iter++) {
            bytes f = seed;
            for (int k = int(rng() % 4); k >= 0; k--)
                f[rng() % f.size()] = uint8_t(rng());
            if (rng() % 3 == 0) f.resize(rng() % f.size());
            fuzz::one_input(f.data(), f.size());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Legacy message sets (magic 0 and 1), what Produce v0-v2 carry.

// One legacy message, as kafka-python's LegacyRecordBatchBuilder writes it.
bytes legacy_msg(int8_t magic, int8_t attributes, const std::optional<std::string>& key,
                     const std::optional<bytes>& value, int64_t offset = 0,
                     int64_t timestamp = 1'740'754'951'000) {
    wire body; // from magic on: what the CRC covers
    body.u8(uint8_t(magic)).u8(uint8_t(attributes));
    if (magic == 1) body.i64(timestamp);
    if (key)
        body.i32(int32_t(key->size())).raw(key->data(), key->size());
    else
        body.i32(-1);
    if (value)
        body.blob(*value);
    else
        body.i32(-1);
    const uint32_t crc = uint32_t(::crc32(0, body.b.data(), uInt(body.b.size())));
    wire w;
    w.i64(offset).i32(int32_t(4 + body.b.size())).i32(int32_t(crc)).raw(body.b);
    return w.b;
}

bytes as_bytes(std::string_view s) {
    return bytes(s.begin(), s.end());
}

// Uncompressed messages with offsets 0..n-1 (a wrapper's nested set, or a plain set).
bytes legacy_set(int8_t magic, const std::vector<std::string>& values) {
    bytes out;
    for (size_t i = 0; i < values.size(); i++) {
        const bytes m = legacy_msg(magic, 0, i % 2 ? std::optional<std::string>("k") : std::nullopt,
                                       as_bytes(values[i]), int64_t(i));
        out.insert(out.end(), m.begin(), m.end());
    }
    return out;
}

// Every value of a legacy set, decompressing wrappers; "<null>" for a null value.
std::vector<std::string> legacy_values(bytes_view set, parse_error expect = parse_error::none,
                                       size_t cap = 1 << 20) {
    static decompressor d;
    bytes scratch(cap);
    std::vector<std::string> out;
    legacy_message_reader r(set);
    legacy_message m;
    parse_error e = parse_error::none;
    while (e == parse_error::none && r.next(m)) {
        if (m.codec() == compression::none) {
            out.push_back(m.value ? to_string(*m.value) : "<null>");
            continue;
        }
        bytes_view inner;
        e = legacy_wrapper_records(m, d, scratch, inner);
        if (e == parse_error::none) e = check_legacy_message_set(inner, true);
        legacy_message_reader ir(inner, true);
        legacy_message im;
        while (e == parse_error::none && ir.next(im))
            out.push_back(im.value ? to_string(*im.value) : "<null>");
    }
    if (e == parse_error::none) e = r.error();
    EXPECT_EQ(e, expect) << parse_error_name(e);
    return out;
}

// librdkafka's and kafka-python's magic 0 lz4 frame (KAFKA-3160): the header checksum
// hashed from the frame magic on, not from FLG.
bytes lz4_compress_kafka_3160(const bytes& in) {
    bytes z = lz4_compress(in);
    const size_t header = 7 + ((z[4] & 0x08) ? 8 : 0) + ((z[4] & 0x01) ? 4 : 0);
    const uint8_t wrong = uint8_t(XXH32(z.data(), header - 1, 0) >> 8);
    EXPECT_NE(wrong, z[header - 1]); // (true for this input; the test relies on it)
    z[header - 1] = wrong;
    return z;
}

TEST(KafkaCodec, Crc32IeeeCheckValue) {
    const std::string s = "123456789";
    EXPECT_EQ(crc32_ieee(bytes_view(reinterpret_cast<const uint8_t*>(s.data()), s.size())),
              0xCBF43926u);
}

TEST(KafkaCodec, LegacyPlainMessagesMagic0And1) {
    for (int8_t magic : {0, 1}) {
        bytes set = legacy_set(magic, {R"({"a":1})", "", R"({"b":2})"});
        const bytes tomb = legacy_msg(magic, 0, std::string("key"), std::nullopt, 3, 42);
        set.insert(set.end(), tomb.begin(), tomb.end());
        EXPECT_TRUE(is_legacy_message_set(set));
        record_batch b;
        EXPECT_EQ(parse_record_batch(set, b), parse_error::legacy_magic); // v3+'s answer: 87
        legacy_message_reader r(set);
        legacy_message m;
        std::vector<legacy_message> got;
        while (r.next(m))
            got.push_back(m);
        EXPECT_EQ(r.error(), parse_error::none);
        EXPECT_EQ(r.partial_bytes(), 0u);
        ASSERT_EQ(got.size(), 4u) << int(magic);
        EXPECT_EQ(got[0].magic, magic);
        EXPECT_EQ(got[0].codec(), compression::none);
        EXPECT_FALSE(got[0].key);
        EXPECT_EQ(to_string(*got[0].value), R"({"a":1})");
        EXPECT_EQ(to_string(*got[1].key), "k");
        EXPECT_EQ(to_string(*got[1].value), "");
        EXPECT_EQ(got[2].offset, 2);
        EXPECT_EQ(got[3].timestamp_ms, magic == 1 ? 42 : -1);
        EXPECT_FALSE(got[3].value);
        EXPECT_EQ(legacy_values(set),
                  (std::vector<std::string>{R"({"a":1})", "", R"({"b":2})", "<null>"}));
    }
    EXPECT_FALSE(is_legacy_message_set(batch_of({{}})));
}

TEST(KafkaCodec, LegacyCompressedWrappersEachCodec) {
    std::vector<std::string> values;
    for (int i = 0; i < 40; i++)
        values.push_back(R"({"user_id":")" + std::to_string(i) + R"(","page":"/products/1"})");
    const struct {
        const char* name;
        compression codec;
        bytes (*compress)(const bytes&);
        int8_t magic;
    } cases[] = {
        {"gzip", compression::gzip, gzip_compress, 0},
        {"gzip", compression::gzip, gzip_compress, 1},
        {"snappy_raw", compression::snappy, snappy_compress_raw, 1},
        {"snappy_xerial", compression::snappy, xerial_small_chunks, 0},
        {"snappy_xerial", compression::snappy, xerial_small_chunks, 1},
        {"lz4", compression::lz4, lz4_compress, 1},
        {"lz4_kafka_3160", compression::lz4, lz4_compress_kafka_3160, 0},
        {"lz4_correct_hc", compression::lz4, lz4_compress, 0}, // HC ignored for magic 0
    };
    for (const auto& c : cases) {
        // Two wrappers and a plain message between them: every value, in order.
        const bytes inner_a = legacy_set(c.magic, std::vector<std::string>(values.begin(), values.begin() + 25));
        const bytes inner_b = legacy_set(c.magic, std::vector<std::string>(values.begin() + 26, values.end()));
        wire set;
        set.raw(legacy_msg(c.magic, int8_t(c.codec), std::nullopt, c.compress(inner_a), 24));
        set.raw(legacy_msg(c.magic, 0, std::nullopt, as_bytes(values[25]), 25));
        set.raw(legacy_msg(c.magic, int8_t(c.codec), std::nullopt, c.compress(inner_b), 39));
        EXPECT_EQ(check_legacy_message_set(set.b), parse_error::none) << c.name;
        EXPECT_EQ(legacy_values(set.b), values) << c.name << " magic " << int(c.magic);
    }
    // Magic 1 lz4 frames carry a correct header checksum: a wrong one is corrupt.
    const bytes inner = legacy_set(1, {"x"});
    EXPECT_TRUE(legacy_values(legacy_msg(1, 3, std::nullopt, lz4_compress_kafka_3160(inner)),
                              parse_error::corrupt_compressed)
                    .empty());
    // zstd needs RecordBatch v2 (magic 2); codecs 5-7 do not exist.
    EXPECT_EQ(check_legacy_message_set(legacy_msg(1, 4, std::nullopt, zstd_compress(inner))),
              parse_error::unsupported_compression);
    EXPECT_EQ(kafka_error_for(parse_error::unsupported_compression), 76);
    EXPECT_EQ(check_legacy_message_set(legacy_msg(0, 6, std::nullopt, inner)),
              parse_error::unsupported_compression);
    // A wrapper without a value has no nested set.
    EXPECT_EQ(check_legacy_message_set(legacy_msg(1, 1, std::nullopt, std::nullopt)),
              parse_error::corrupt_compressed);
}

TEST(KafkaCodec, LegacyBadCrcAndMagic) {
    for (int8_t magic : {0, 1}) {
        bytes set = legacy_set(magic, {"one", "two"});
        bytes bad = set;
        bad.back() ^= 0x01; // the second message's value
        EXPECT_EQ(check_legacy_message_set(bad), parse_error::bad_crc);
        EXPECT_EQ(kafka_error_for(parse_error::bad_crc), error_code::corrupt_message);
        bad = set;
        bad[12] ^= 0x80; // the first message's CRC itself
        EXPECT_EQ(check_legacy_message_set(bad), parse_error::bad_crc);
        bad = set;
        bad[16] = 3; // magic
        EXPECT_EQ(check_legacy_message_set(bad), parse_error::bad_magic);
        // A bad CRC inside a wrapper's nested set: the whole wrapper is refused.
        bytes inner = legacy_set(magic, {"a", "b"});
        inner.back() ^= 0x01;
        EXPECT_TRUE(legacy_values(legacy_msg(magic, 1, std::nullopt, gzip_compress(inner)),
                                  parse_error::bad_crc)
                        .empty());
    }
}

TEST(KafkaCodec, LegacyLyingLengths) {
    // message_size below the smallest message (14 bytes for magic 0, 22 for magic 1).
    wire small;
    small.i64(0).i32(13).raw(bytes(13, 0));
    EXPECT_EQ(check_legacy_message_set(small.b), parse_error::bad_length);
    bytes m1 = legacy_msg(1, 0, std::nullopt, as_bytes("x"));
    // A key length past the message's end, under a valid CRC.
    for (int8_t magic : {0, 1}) {
        wire body;
        body.u8(uint8_t(magic)).u8(0);
        if (magic == 1) body.i64(0);
        body.i32(100).i32(-1);
        wire w;
        w.i64(0).i32(int32_t(4 + body.b.size()));
        w.i32(int32_t(::crc32(0, body.b.data(), uInt(body.b.size())))).raw(body.b);
        EXPECT_EQ(check_legacy_message_set(w.b), parse_error::bad_length) << int(magic);
        // Bytes left over after the value.
        wire body2 = body;
        body2.b.resize(body2.b.size() - 8);
        body2.i32(-1).i32(-1).u8(0);
        wire w2;
        w2.i64(0).i32(int32_t(4 + body2.b.size()));
        w2.i32(int32_t(::crc32(0, body2.b.data(), uInt(body2.b.size())))).raw(body2.b);
        EXPECT_EQ(check_legacy_message_set(w2.b), parse_error::trailing_bytes) << int(magic);
    }
    // Magic 1 with a size that only fits magic 0's fields.
    bytes m0 = legacy_msg(0, 0, std::nullopt, std::nullopt);
    m0[16] = 1;
    EXPECT_EQ(check_legacy_message_set(m0), parse_error::bad_length);
    (void)m1;
}

TEST(KafkaCodec, LegacyPartialTrailingMessageIsIgnored) {
    for (int8_t magic : {0, 1}) {
        const bytes set = legacy_set(magic, {"first", "second", "third"});
        const size_t one = legacy_msg(magic, 0, std::nullopt, as_bytes("first")).size();
        const size_t two = one + legacy_msg(magic, 0, std::string("k"), as_bytes("second")).size();
        for (size_t cut = 0; cut <= set.size(); cut++) {
            const bytes part(set.begin(), set.begin() + cut);
            const size_t whole = cut == set.size() ? 3 : cut >= two ? 2 : cut >= one ? 1 : 0;
            legacy_message_reader r(part);
            legacy_message m;
            size_t n = 0;
            while (r.next(m))
                n++;
            EXPECT_EQ(r.error(), parse_error::none) << "cut " << cut;
            EXPECT_EQ(n, whole) << "cut " << cut;
            const size_t used = whole == 3 ? set.size() : whole == 2 ? two : whole == 1 ? one : 0;
            EXPECT_EQ(r.partial_bytes(), cut - used) << "cut " << cut;
            // Inside a wrapper the nested set must end exactly.
            if (cut != used) {
                EXPECT_EQ(check_legacy_message_set(part, true), parse_error::truncated) << cut;
            }
        }
    }
}

TEST(KafkaCodec, LegacyNestedTooLargeAndNestedCompression) {
    // A nested set that decompresses past the cap: MESSAGE_TOO_LARGE, nothing read.
    const bytes inner = legacy_set(1, std::vector<std::string>(2000, std::string(500, 'x')));
    const bytes wrapper = legacy_msg(1, 1, std::nullopt, gzip_compress(inner));
    EXPECT_LT(wrapper.size(), inner.size() / 50);
    EXPECT_TRUE(legacy_values(wrapper, parse_error::too_large, inner.size() - 1).empty());
    EXPECT_EQ(kafka_error_for(parse_error::too_large), error_code::message_too_large);
    EXPECT_EQ(legacy_values(wrapper, parse_error::none, inner.size()).size(), 2000u);
    for (const auto& c : codec_cases) {
        if (c.codec == compression::zstd) continue;
        EXPECT_TRUE(legacy_values(legacy_msg(0, int8_t(c.codec), std::nullopt,
                                                 c.compress(inner)),
                                  parse_error::too_large, 1 << 16)
                        .empty())
            << c.name;
    }
    // A compressed message inside a wrapper (brokers allow one level only).
    const bytes deep = legacy_msg(1, 1, std::nullopt, gzip_compress(legacy_set(1, {"a"})));
    EXPECT_TRUE(legacy_values(legacy_msg(1, 1, std::nullopt, gzip_compress(deep)),
                              parse_error::nested_compression)
                    .empty());
    EXPECT_EQ(kafka_error_for(parse_error::nested_compression), error_code::corrupt_message);
}

TEST(KafkaCodec, LegacyProduceV0ToV2Frames) {
    const bytes set = legacy_set(0, {"a", "b"});
    for (int16_t v = 0; v <= 2; v++) {
        wire body;
        body.i16(1).i32(1000).i32(1).str("events-topic").i32(1).i32(0).blob(set);
        const request_header h = header_of(request(0, v, 5, body.b));
        produce_request_reader pr;
        ASSERT_EQ(pr.open(h), parse_error::none);
        produce_topic t;
        produce_partition p;
        ASSERT_TRUE(pr.next_topic(t));
        ASSERT_TRUE(pr.next_partition(p));
        ASSERT_TRUE(p.records);
        EXPECT_TRUE(is_legacy_message_set(*p.records));
        EXPECT_EQ(legacy_values(*p.records), (std::vector<std::string>{"a", "b"}));
        std::vector<uint8_t> seed = request(0, v, 5, body.b);
        fuzz::one_input(seed.data(), seed.size());
    }
}

TEST(KafkaCodec, MutatedLegacySetsNeverCrash) {
    std::mt19937 rng(7);
    const bytes inner = legacy_set(1, {"a", "bb", "ccc"});
    std::vector<bytes> seeds = {legacy_set(0, {"x", "y"}), legacy_set(1, {"x", "y"}), inner};
    for (const auto& c : codec_cases)
        if (c.codec != compression::zstd)
            seeds.push_back(legacy_msg(1, int8_t(c.codec), std::nullopt, c.compress(inner)));
    seeds.push_back(legacy_msg(0, 3, std::nullopt, lz4_compress_kafka_3160(inner)));
    for (const bytes& seed : seeds) {
        for (int iter = 0; iter < 500; iter++) {
            bytes f = seed;
            for (int k = int(rng() % 4); k >= 0; k--)
                f[rng() % f.size()] = uint8_t(rng());
            if (rng() % 3 == 0) f.resize(rng() % f.size());
            fuzz::one_input(f.data(), f.size());
            (void)fuzz::walk_legacy(f);
        }
    }
}

} // namespace
} // namespace sluice::dataplane::kafka
