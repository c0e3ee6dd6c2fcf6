// The consume side's wire (dataplane/kafka/fetch_codec.*) against apache/kafka's schemas
// (FetchRequest/FetchResponse.json v4-v10, ListOffsetsRequest/Response.json v0-v5), the
// RecordBatch v2 builder read back by the produce side's parser (CRC-32C checked), and
// fetch_server serving frames from a real events log (storage/row_log.h).
#include "dataplane/kafka/fetch_codec.h"
#include "dataplane/kafka/fetch_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/segment_writer.h"
#include "tests/dataplane/kafka_wire.h"
#include "tests/storage/storage_test_util.h"

namespace sluice::dataplane::kafka {
namespace {

using namespace test;

bytes frame(int16_t key, int16_t version, int32_t correlation, const bytes& body) {
    return request(key, version, correlation, body, is_flexible(key, version), "test");
}

// FetchRequest per the schema: one topic, one partition, at `offset`.
bytes fetch_body(int16_t v, int64_t offset, int32_t max_wait_ms = 0, int32_t min_bytes = 1,
                 int32_t partition_max = 1 << 20, const std::string& topic = "events-topic",
                 int32_t partition = 0) {
    wire w;
    w.i32(-1).i32(max_wait_ms).i32(min_bytes).i32(50 << 20).u8(1); // replica..isolation
    if (v >= 7) w.i32(0).i32(-1);                                  // session id, epoch
    w.i32(1).str(topic).i32(1).i32(partition);
    if (v >= 9) w.i32(-1); // current leader epoch
    w.i64(offset);
    if (v >= 5) w.i64(-1); // log start offset
    w.i32(partition_max);
    if (v >= 7) w.i32(1).str("forgotten").i32(2).i32(3).i32(4);
    return w.b;
}

bytes_view as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(KafkaFetch, FetchRequestsParseFieldByFieldV4ToV10) {
    for (int16_t v = 4; v <= 10; ++v) {
        fetch_request r;
        ASSERT_EQ(parse_fetch_request(header_of(frame(1, v, 9, fetch_body(v, 1234, 500, 7, 4096))), r),
                  parse_error::none)
            << v;
        EXPECT_EQ(r.max_wait_ms, 500);
        EXPECT_EQ(r.min_bytes, 7);
        EXPECT_EQ(r.max_bytes, 50 << 20);
        EXPECT_EQ(r.isolation_level, 1);
        ASSERT_EQ(r.topics.size(), 1u);
        EXPECT_EQ(r.topics[0].name, "events-topic");
        ASSERT_EQ(r.topics[0].partitions.size(), 1u);
        EXPECT_EQ(r.topics[0].partitions[0].fetch_offset, 1234);
        EXPECT_EQ(r.topics[0].partitions[0].partition_max_bytes, 4096);
        // Truncated anywhere, or with a byte left over: an error, never a crash.
        bytes body = fetch_body(v, 1234);
        for (size_t cut = 0; cut < body.size(); ++cut) {
            bytes shorter(body.begin(), body.begin() + long(cut));
            EXPECT_NE(parse_fetch_request(header_of(frame(1, v, 9, shorter)), r), parse_error::none)
                << v << " cut at " << cut;
        }
        body.push_back(0);
        EXPECT_EQ(parse_fetch_request(header_of(frame(1, v, 9, body)), r), parse_error::trailing_bytes);
    }
    fetch_request r;
    EXPECT_EQ(parse_fetch_request(header_of(frame(1, 3, 9, fetch_body(4, 0))), r),
              parse_error::unsupported_version);
    EXPECT_EQ(parse_fetch_request(header_of(frame(1, 11, 9, fetch_body(10, 0))), r),
              parse_error::unsupported_version);
    // A lying topic count fails before anything is reserved for it.
    wire lie;
    lie.i32(-1).i32(0).i32(1).i32(1000).u8(0).i32(0x7fffffff);
    EXPECT_EQ(parse_fetch_request(header_of(frame(1, 4, 9, lie.b)), r), parse_error::bad_length);
}

TEST(KafkaFetch, FetchResponseFollowsTheSchemaPerVersion) {
    const bytes batch = {1, 2, 3, 4, 5};
    for (int16_t v = 4; v <= 10; ++v) {
        std::vector<fetch_response_topic> topics(1);
        topics[0].name = "events-topic";
        fetch_response_partition ok;
        ok.partition = 1;
        ok.high_watermark = 77;
        ok.last_stable_offset = 77;
        ok.log_start_offset = 5;
        ok.records = bytes_view(batch);
        fetch_response_partition bad;
        bad.partition = 9;
        bad.error = error_code::offset_out_of_range;
        topics[0].partitions = {ok, bad};
        bytes out;
        response_writer w(out);
        write_fetch_response(w, header_of(frame(1, v, 42, fetch_body(v, 0))), topics, 3);
        byte_reader r(out);
        EXPECT_EQ(r.i32(), int32_t(out.size() - 4));
        EXPECT_EQ(r.i32(), 42); // correlation id; response header v0 (no tags below v12)
        EXPECT_EQ(r.i32(), 3);  // ThrottleTimeMs (1+)
        if (v >= 7) {
            EXPECT_EQ(r.i16(), 0); // ErrorCode (7+)
            EXPECT_EQ(r.i32(), 0); // SessionId (7+): no session
        }
        EXPECT_EQ(r.array_count(), 1);
        EXPECT_EQ(r.string(), "events-topic");
        EXPECT_EQ(r.array_count(), 2);
        // Partition, ErrorCode, HighWatermark, LastStableOffset (4+), LogStartOffset (5+),
        // AbortedTransactions (4+, nullable), RecordSet (nullable records).
        EXPECT_EQ(r.i32(), 1);
        EXPECT_EQ(r.i16(), 0);
        EXPECT_EQ(r.i64(), 77);
        EXPECT_EQ(r.i64(), 77);
        if (v >= 5) { EXPECT_EQ(r.i64(), 5); }
        EXPECT_EQ(r.i32(), -1);
        auto recs = r.nullable_bytes();
        ASSERT_TRUE(recs.has_value());
        EXPECT_EQ(bytes(recs->begin(), recs->end()), batch);
        EXPECT_EQ(r.i32(), 9);
        EXPECT_EQ(r.i16(), error_code::offset_out_of_range);
        EXPECT_EQ(r.i64(), -1);
        EXPECT_EQ(r.i64(), -1);
        if (v >= 5) { EXPECT_EQ(r.i64(), -1); }
        EXPECT_EQ(r.i32(), -1);
        // An error partition carries an empty record set, not a null one (librdkafka
        // refuses -1: "invalid MessageSetSize").
        EXPECT_EQ(r.i32(), 0);
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r.remaining(), 0u) << v;
    }
}

TEST(KafkaFetch, ListOffsetsRequestsAndAnswersV0ToV5) {
    for (int16_t v = 0; v <= 5; ++v) {
        wire b;
        b.i32(-1);
        if (v >= 2) b.u8(1);
        b.i32(1).str("events-topic").i32(2);
        for (int32_t p = 0; p < 2; ++p) {
            b.i32(p);
            if (v >= 4) b.i32(-1);
            b.i64(p == 0 ? list_offsets_earliest : 1740754800000);
            if (v == 0) b.i32(1);
        }
        const request_header h = header_of(frame(2, v, 5, b.b));
        list_offsets_request req;
        ASSERT_EQ(parse_list_offsets_request(h, req), parse_error::none) << v;
        ASSERT_EQ(req.topics.size(), 1u);
        ASSERT_EQ(req.topics[0].partitions.size(), 2u);
        EXPECT_EQ(req.topics[0].partitions[0].timestamp, list_offsets_earliest);
        EXPECT_EQ(req.topics[0].partitions[1].timestamp, 1740754800000);
        EXPECT_EQ(req.isolation_level, v >= 2 ? 1 : 0);

        std::vector<list_offsets_topic_result> res(1);
        res[0].name = "events-topic";
        res[0].partitions = {{0, 0, -1, 12}, {1, error_code::unknown_topic_or_partition, -1, -1}};
        bytes out;
        response_writer w(out);
        write_list_offsets_response(w, h, res);
        byte_reader r(out);
        EXPECT_EQ(r.i32(), int32_t(out.size() - 4));
        EXPECT_EQ(r.i32(), 5);
        if (v >= 2) { EXPECT_EQ(r.i32(), 0); } // ThrottleTimeMs (2+)
        EXPECT_EQ(r.array_count(), 1);
        EXPECT_EQ(r.string(), "events-topic");
        EXPECT_EQ(r.array_count(), 2);
        for (int p = 0; p < 2; ++p) {
            EXPECT_EQ(r.i32(), p);
            EXPECT_EQ(r.i16(), p == 0 ? 0 : error_code::unknown_topic_or_partition);
            if (v == 0) {
                // OldStyleOffsets (v0 only)
                const int32_t n = r.array_count();
                EXPECT_EQ(n, p == 0 ? 1 : 0);
                if (n == 1) { EXPECT_EQ(r.i64(), 12); }
                continue;
            }
            EXPECT_EQ(r.i64(), -1);           // Timestamp (1+)
            EXPECT_EQ(r.i64(), p == 0 ? 12 : -1); // Offset (1+)
            if (v >= 4) { EXPECT_EQ(r.i32(), -1); } // LeaderEpoch (4+)
        }
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r.remaining(), 0u) << v;
    }
}

TEST(KafkaFetch, BuiltRecordBatchesReadBackThroughTheProduceParser) {
    bytes out = {0xee}; // batches are appended after whatever is there
    record_batch_builder b;
    b.begin(out, 1000);
    const record_header_out late[] = {{"late", as_bytes("true")}};
    b.add(5000, as_bytes("k1"), as_bytes(R"({"a":1})"));
    b.add(4000, as_bytes("k2"), as_bytes(R"({"b":2})"), late); // older: negative delta
    b.add(7000, std::nullopt, as_bytes(""));
    const size_t n = b.finish();
    ASSERT_EQ(n, out.size() - 1);
    EXPECT_EQ(b.finish(), 0u); // nothing added since: nothing written

    record_batch rb;
    ASSERT_EQ(parse_record_batch(bytes_view(out).subspan(1), rb), parse_error::none);
    EXPECT_EQ(rb.base_offset, 1000);
    EXPECT_EQ(rb.magic, 2);
    EXPECT_EQ(rb.crc, crc32c_reference(out.data() + 1 + 21, n - 21));
    EXPECT_EQ(rb.codec(), compression::none);
    EXPECT_FALSE(rb.log_append_time());
    EXPECT_EQ(rb.last_offset_delta, 2);
    EXPECT_EQ(rb.base_timestamp, 5000);
    EXPECT_EQ(rb.max_timestamp, 7000);
    EXPECT_EQ(rb.producer_id, -1);
    EXPECT_EQ(rb.producer_epoch, -1);
    EXPECT_EQ(rb.base_sequence, -1);
    EXPECT_EQ(rb.records_count, 3);
    EXPECT_EQ(check_records(rb, rb.records), parse_error::none);
    record_reader rr(rb, rb.records);
    record rec;
    ASSERT_TRUE(rr.next(rec));
    EXPECT_EQ(rec.offset_delta, 0);
    EXPECT_EQ(rec.timestamp_ms, 5000);
    EXPECT_EQ(std::string(rec.key->begin(), rec.key->end()), "k1");
    EXPECT_EQ(std::string(rec.value->begin(), rec.value->end()), R"({"a":1})");
    EXPECT_EQ(rec.header_count, 0);
    ASSERT_TRUE(rr.next(rec));
    EXPECT_EQ(rec.offset_delta, 1);
    EXPECT_EQ(rec.timestamp_ms, 4000);
    ASSERT_EQ(rec.header_count, 1);
    record_header hd;
    auto hr = rec.headers();
    ASSERT_TRUE(hr.next(hd));
    EXPECT_EQ(hd.key, "late");
    EXPECT_EQ(std::string(hd.value->begin(), hd.value->end()), "true");
    ASSERT_TRUE(rr.next(rec));
    EXPECT_EQ(rec.offset_delta, 2);
    EXPECT_FALSE(rec.key.has_value());
    EXPECT_TRUE(rec.value.has_value());
    EXPECT_TRUE(rec.value->empty());
    EXPECT_FALSE(rr.next(rec));
}

// ---- fetch_server over a real events log ----

struct log_fixture {
    storage::test::temp_dir tmp;
    std::unique_ptr<storage::segment_writer> w;
    std::atomic<uint64_t> hw{0};

    explicit log_fixture(uint64_t rows, uint64_t segment_bytes_max = 1ull << 30) {
        storage::writer_config c;
        c.options.segment_bytes_max = segment_bytes_max;
        c.data_dir = tmp.path();
        c.writer_name = "w0";
        c.rows_per_block = 16;
        c.string_bytes_max = 64 << 10;
        c.row_string_bytes_max = 1024;
        w = std::move(storage::segment_writer::open(c, storage::events_schema()).value());
        append(rows);
    }
    void append(uint64_t n) {
        const uint64_t first = w->row_offset_durable_end();
        for (uint64_t i = first; i < first + n; ++i) {
            storage::test::push_row(w->batch(), storage::test::event_row(i, int64_t(1000 + i)));
            w->commit_row();
        }
        EXPECT_TRUE(w->flush_and_sync().ok());
        hw = w->row_offset_durable_end();
    }
    std::unique_ptr<fetch_server> server(const std::function<void(fetch_server_config&)>& more = {}) {
        fetch_server_config fc;
        fc.data_dir = tmp.path();
        fc.partitions = 1;
        fc.high_watermark = [this](uint32_t) { return hw.load(); };
        if (more) more(fc);
        return std::make_unique<fetch_server>(std::move(fc));
    }
};

struct fetched {
    int16_t error = -2;
    int64_t hw = -1, log_start = -1;
    std::vector<std::pair<int64_t, std::string>> records; // offset, value
    std::vector<std::string> keys, headers;
};

fetched decode_fetch(const bytes& answer) {
    fetched f;
    byte_reader r(answer);
    r.i32();
    r.i32();
    r.i32();
    r.i16();
    r.i32(); // v10: throttle, error, session
    EXPECT_EQ(r.array_count(), 1);
    r.string();
    EXPECT_EQ(r.array_count(), 1);
    r.i32();
    f.error = r.i16();
    f.hw = r.i64();
    r.i64();
    f.log_start = r.i64();
    r.i32();
    auto recs = r.nullable_bytes();
    EXPECT_TRUE(r.ok() && recs.has_value());
    if (!recs) return f;
    record_batch_reader br(*recs);
    record_batch b;
    while (br.next(b)) {
        EXPECT_EQ(check_records(b, b.records), parse_error::none);
        record_reader rr(b, b.records);
        record rec;
        while (rr.next(rec)) {
            f.records.emplace_back(b.base_offset + rec.offset_delta,
                                   std::string(rec.value->begin(), rec.value->end()));
            f.keys.push_back(rec.key ? std::string(rec.key->begin(), rec.key->end()) : "<null>");
            record_header hd;
            auto hr = rec.headers();
            std::string h;
            while (hr.next(hd)) h += std::string(hd.key) + "=" + std::string(hd.value->begin(), hd.value->end());
            f.headers.push_back(h);
        }
    }
    EXPECT_EQ(br.error(), parse_error::none);
    return f;
}

std::string raw_of(uint64_t i) {
    return std::get<std::string>(storage::test::event_row(i, int64_t(1000 + i))[6]);
}

TEST(KafkaFetchServer, ServesRowsByOffsetWithKeysHeadersAndLimits) {
    log_fixture log(100);
    auto srv = log.server();
    bytes answer;
    int32_t wait = 0;
    // From offset 37: every durable row after it, dense, as stored.
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 37)), answer, false, wait));
    fetched f = decode_fetch(answer);
    EXPECT_EQ(f.error, 0);
    EXPECT_EQ(f.hw, 100);
    EXPECT_EQ(f.log_start, 0);
    ASSERT_EQ(f.records.size(), 63u);
    for (size_t i = 0; i < f.records.size(); ++i) {
        const uint64_t off = 37 + i;
        EXPECT_EQ(f.records[i].first, int64_t(off));
        EXPECT_EQ(f.records[i].second, raw_of(off));
        const auto row = storage::test::event_row(off, int64_t(1000 + off));
        if (std::holds_alternative<std::string>(row[1]))
            EXPECT_EQ(f.keys[i], std::get<std::string>(row[1]));
        else
            EXPECT_EQ(f.keys[i].size(), 32u); // the identity, in hex
        EXPECT_EQ(f.headers[i], off % 5 == 0 ? "late=true" : "") << off;
    }
    // partition_max_bytes: fewer records, still whole ones; a budget below one record
    // still gets one (KIP-74).
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0, 0, 1, 1000)), answer, false, wait));
    f = decode_fetch(answer);
    EXPECT_GT(f.records.size(), 1u);
    EXPECT_LT(f.records.size(), 20u);
    EXPECT_EQ(f.records.front().first, 0);
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 5, 0, 1, 1)), answer, false, wait));
    f = decode_fetch(answer);
    ASSERT_EQ(f.records.size(), 1u);
    EXPECT_EQ(f.records[0].first, 5);
    // Beyond the high watermark: OFFSET_OUT_OF_RANGE; an unknown partition or topic: 3.
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 101)), answer, false, wait));
    EXPECT_EQ(decode_fetch(answer).error, error_code::offset_out_of_range);
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0, 0, 1, 1 << 20, "events-topic", 1)),
                           answer, false, wait));
    EXPECT_EQ(decode_fetch(answer).error, error_code::unknown_topic_or_partition);
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0, 0, 1, 1 << 20, "other")), answer,
                           false, wait));
    EXPECT_EQ(decode_fetch(answer).error, error_code::unknown_topic_or_partition);
    EXPECT_EQ(srv->counters().out_of_range.load(), 1u);
}

TEST(KafkaFetchServer, AtTheHighWatermarkAFetchWaitsThenSeesNewRows) {
    log_fixture log(20);
    auto srv = log.server();
    bytes answer;
    int32_t wait = 0;
    // Nothing past 20 yet and max_wait 500: not answered now (the reader keeps it).
    EXPECT_FALSE(srv->serve(frame(1, 10, 1, fetch_body(10, 20, 500, 1)), answer, false, wait));
    EXPECT_EQ(wait, 500);
    // At the deadline: answered empty.
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 20, 500, 1)), answer, true, wait));
    fetched f = decode_fetch(answer);
    EXPECT_EQ(f.error, 0);
    EXPECT_TRUE(f.records.empty());
    // Rows become durable: the same request is answered with them.
    log.append(5);
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 20, 500, 1)), answer, false, wait));
    f = decode_fetch(answer);
    ASSERT_EQ(f.records.size(), 5u);
    EXPECT_EQ(f.records[0].first, 20);
    EXPECT_EQ(f.hw, 25);
}

TEST(KafkaFetchServer, TheReaderThreadAnswersThroughJobsAndLongPolls) {
    log_fixture log(10);
    auto srv = log.server();
    ASSERT_TRUE(srv->has_free_job());
    srv->submit({3, 1}, 0, frame(1, 10, 7, fetch_body(10, 10, 2000, 1))); // waits for data
    srv->submit({4, 1}, 0, frame(2, 1, 8, [] {
                    wire b;
                    b.i32(-1).i32(1).str("events-topic").i32(1).i32(0).i64(list_offsets_latest);
                    return b.b;
                }()));
    EXPECT_EQ(srv->in_flight(), 2u);
    std::vector<std::pair<uint32_t, bytes>> got;
    auto done = [&](conn_ref c, int32_t, std::vector<uint8_t>& a) { got.emplace_back(c.index, a); };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.size() < 1 && std::chrono::steady_clock::now() < deadline) srv->complete(done);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, 4u); // ListOffsets first: the Fetch is still waiting
    byte_reader r(got[0].second);
    r.i32();
    EXPECT_EQ(r.i32(), 8);
    EXPECT_EQ(r.array_count(), 1);
    r.string();
    EXPECT_EQ(r.array_count(), 1);
    r.i32();
    EXPECT_EQ(r.i16(), 0);
    r.i64();
    EXPECT_EQ(r.i64(), 10); // latest = the high watermark
    log.append(3);
    while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) srv->complete(done);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].first, 3u);
    fetched f = decode_fetch(got[1].second);
    ASSERT_EQ(f.records.size(), 3u);
    EXPECT_EQ(f.records[0].first, 10);
    EXPECT_EQ(srv->counters().long_polls.load(), 1u);
    EXPECT_EQ(srv->in_flight(), 0u);
}

TEST(KafkaFetchServer, RetentionMovesTheLogStartAndOlderOffsetsAreOutOfRange) {
    log_fixture log(300, 16 << 10); // several segments
    auto srv = log.server();
    bytes answer;
    int32_t wait = 0;
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0)), answer, false, wait));
    EXPECT_EQ(decode_fetch(answer).log_start, 0);
    auto segs = storage::list_log_segments(log.tmp.path() + "/events", "w0");
    ASSERT_TRUE(segs.ok());
    ASSERT_GE(segs->size(), 3u);
    const int64_t second = int64_t((*segs)[1].first_offset);
    std::filesystem::remove((*segs)[0].path); // what retention does
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0)), answer, false, wait));
    fetched f = decode_fetch(answer);
    EXPECT_EQ(f.error, error_code::offset_out_of_range);
    EXPECT_EQ(f.log_start, second);
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, second)), answer, false, wait));
    f = decode_fetch(answer);
    EXPECT_EQ(f.error, 0);
    ASSERT_FALSE(f.records.empty());
    EXPECT_EQ(f.records[0].first, second);
    EXPECT_EQ(f.records[0].second, raw_of(uint64_t(second)));
}

// ---- OffsetForLeaderEpoch and DescribeConfigs, per apache/kafka's schemas ----

bytes leader_epoch_body(int16_t v, const std::string& topic, int32_t partition,
                        int32_t current_epoch, int32_t epoch) {
    wire w;
    const bool flex = v >= 4;
    if (v >= 3) w.i32(-1); // replica id: a consumer
    if (flex)
        w.uvar(2).cstr(topic).uvar(2);
    else
        w.i32(1).str(topic).i32(1);
    w.i32(partition);
    if (v >= 2) w.i32(current_epoch);
    w.i32(epoch);
    if (flex) w.u8(0).u8(0).u8(0); // partition, topic and request tags
    return w.b;
}

struct epoch_answer {
    int16_t error = -2;
    int32_t partition = -1, epoch = -2;
    int64_t end = -2;
};

epoch_answer decode_leader_epoch(int16_t v, const bytes& answer) {
    epoch_answer a;
    byte_reader r(answer);
    r.i32(); // size
    EXPECT_EQ(r.i32(), 5); // correlation id
    const bool flex = v >= 4;
    if (flex) r.skip_tagged_fields();
    if (v >= 2) { EXPECT_EQ(r.i32(), 0); } // throttle
    EXPECT_EQ(flex ? r.compact_array_count() : r.array_count(), 1);
    EXPECT_EQ(flex ? r.compact_string() : r.string(), "events-topic");
    EXPECT_EQ(flex ? r.compact_array_count() : r.array_count(), 1);
    a.error = r.i16();
    a.partition = r.i32();
    if (v >= 1) a.epoch = r.i32();
    a.end = r.i64();
    if (flex) {
        r.skip_tagged_fields();
        r.skip_tagged_fields();
        r.skip_tagged_fields();
    }
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u) << v;
    return a;
}

TEST(KafkaFetch, OffsetForLeaderEpochV0ToV4) {
    for (int16_t v = 0; v <= 4; ++v) {
        const bytes f = frame(23, v, 5, leader_epoch_body(v, "events-topic", 1, 0, 0));
        offset_for_leader_epoch_request req;
        ASSERT_EQ(parse_offset_for_leader_epoch_request(header_of(f), req), parse_error::none) << v;
        EXPECT_EQ(req.replica_id, v >= 3 ? -1 : -2);
        ASSERT_EQ(req.topics.size(), 1u);
        EXPECT_EQ(req.topics[0].name, "events-topic");
        ASSERT_EQ(req.topics[0].partitions.size(), 1u);
        EXPECT_EQ(req.topics[0].partitions[0].partition, 1);
        EXPECT_EQ(req.topics[0].partitions[0].current_leader_epoch, v >= 2 ? 0 : -1);
        // Bytes left over are malformed.
        bytes longer = leader_epoch_body(v, "events-topic", 1, 0, 0);
        longer.push_back(0);
        EXPECT_EQ(parse_offset_for_leader_epoch_request(header_of(frame(23, v, 5, longer)), req),
                  parse_error::trailing_bytes)
            << v;
        std::vector<leader_epoch_topic_result> out(1);
        out[0].name = "events-topic";
        out[0].partitions.push_back({1, error_code::none, 0, 1234});
        bytes answer;
        response_writer w(answer);
        write_offset_for_leader_epoch_response(w, header_of(f), out);
        const epoch_answer a = decode_leader_epoch(v, answer);
        EXPECT_EQ(a.error, 0);
        EXPECT_EQ(a.partition, 1);
        if (v >= 1) { EXPECT_EQ(a.epoch, 0); }
        EXPECT_EQ(a.end, 1234);
    }
}

bytes describe_configs_body(int16_t v, int8_t type, const std::string& name,
                            std::optional<std::vector<std::string>> keys, bool synonyms) {
    wire w;
    const bool flex = v >= 4;
    if (flex)
        w.uvar(2).u8(uint8_t(type)).cstr(name);
    else
        w.i32(1).u8(uint8_t(type)).str(name);
    if (!keys) {
        if (flex)
            w.uvar(0);
        else
            w.i32(-1);
    } else {
        if (flex)
            w.uvar(keys->size() + 1);
        else
            w.i32(int32_t(keys->size()));
        for (const auto& k : *keys) flex ? w.cstr(k) : w.str(k);
    }
    if (flex) w.u8(0);
    if (v >= 1) w.u8(synonyms ? 1 : 0);
    if (v >= 3) w.u8(0); // include documentation
    if (flex) w.u8(0);
    return w.b;
}

struct config_answer {
    int16_t error = -2;
    std::optional<std::string> message;
    int8_t type = 0;
    std::string name;
    std::map<std::string, std::string> values;
    std::map<std::string, int> sources, synonyms, types;
};

std::vector<config_answer> decode_describe_configs(int16_t v, const bytes& answer) {
    std::vector<config_answer> out;
    byte_reader r(answer);
    r.i32();
    EXPECT_EQ(r.i32(), 6);
    const bool flex = v >= 4;
    if (flex) r.skip_tagged_fields();
    EXPECT_EQ(r.i32(), 0); // throttle
    auto str = [&] { return std::string(flex ? r.compact_string() : r.string()); };
    auto nullable = [&]() -> std::optional<std::string> {
        auto s = flex ? r.compact_nullable_string() : r.nullable_string();
        if (!s) return std::nullopt;
        return std::string(*s);
    };
    auto count = [&] { return flex ? r.compact_array_count() : r.array_count(); };
    const int32_t n = count();
    for (int32_t i = 0; r.ok() && i < n; ++i) {
        config_answer& a = out.emplace_back();
        a.error = r.i16();
        a.message = nullable();
        a.type = r.i8();
        a.name = str();
        const int32_t configs = count();
        for (int32_t c = 0; r.ok() && c < configs; ++c) {
            const std::string key = str();
            a.values[key] = nullable().value_or("<null>");
            EXPECT_EQ(r.i8(), 1) << key; // read only
            if (v == 0) a.sources[key] = r.i8() ? 5 : 4; // is_default
            if (v >= 1) a.sources[key] = r.i8();
            EXPECT_EQ(r.i8(), 0); // sensitive
            if (v >= 1) {
                const int32_t syn = count();
                a.synonyms[key] = syn;
                for (int32_t k = 0; k < syn; ++k) {
                    EXPECT_EQ(str(), key);
                    EXPECT_EQ(nullable().value_or("<null>"), a.values[key]);
                    EXPECT_EQ(r.i8(), a.sources[key]);
                    if (flex) r.skip_tagged_fields();
                }
            }
            if (v >= 3) {
                a.types[key] = r.i8();
                EXPECT_FALSE(nullable().has_value()); // documentation
            }
            if (flex) r.skip_tagged_fields();
        }
        if (flex) r.skip_tagged_fields();
    }
    if (flex) r.skip_tagged_fields();
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u) << v;
    return out;
}

TEST(KafkaFetch, DescribeConfigsV0ToV4) {
    for (int16_t v = 0; v <= 4; ++v) {
        const bytes f = frame(32, v, 6,
                              describe_configs_body(v, config_resource::topic, "events-topic",
                                                    std::vector<std::string>{"retention.ms", "x"}, true));
        describe_configs_request req;
        ASSERT_EQ(parse_describe_configs_request(header_of(f), req), parse_error::none) << v;
        ASSERT_EQ(req.resources.size(), 1u);
        EXPECT_EQ(req.resources[0].type, config_resource::topic);
        EXPECT_EQ(req.resources[0].name, "events-topic");
        ASSERT_TRUE(req.resources[0].keys.has_value());
        EXPECT_EQ(req.resources[0].keys->size(), 2u);
        EXPECT_EQ(req.include_synonyms, v >= 1);
        std::vector<describe_configs_result> res(2);
        res[0].type = config_resource::topic;
        res[0].name = "events-topic";
        res[0].configs.push_back({"cleanup.policy", "delete", config_source::default_config, config_type::list});
        res[0].configs.push_back({"broker.id", "0", config_source::static_broker, config_type::int_});
        res[1].error = error_code::unknown_topic_or_partition;
        res[1].message = "no such topic";
        res[1].type = config_resource::topic;
        res[1].name = "nope";
        bytes answer;
        response_writer w(answer);
        write_describe_configs_response(w, header_of(f), req, res);
        auto got = decode_describe_configs(v, answer);
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(got[0].error, 0);
        EXPECT_FALSE(got[0].message.has_value());
        EXPECT_EQ(got[0].values["cleanup.policy"], "delete");
        EXPECT_EQ(got[0].values["broker.id"], "0");
        EXPECT_EQ(got[0].sources["cleanup.policy"], config_source::default_config);
        EXPECT_EQ(got[0].sources["broker.id"], config_source::static_broker);
        if (v >= 1) { EXPECT_EQ(got[0].synonyms["cleanup.policy"], 1); }
        if (v >= 3) { EXPECT_EQ(got[0].types["cleanup.policy"], config_type::list); }
        EXPECT_EQ(got[1].error, error_code::unknown_topic_or_partition);
        EXPECT_EQ(got[1].message, "no such topic");
        EXPECT_EQ(got[1].name, "nope");
        // Null keys: every key.
        const bytes all = frame(32, v, 6, describe_configs_body(v, config_resource::broker, "0",
                                                                std::nullopt, false));
        ASSERT_EQ(parse_describe_configs_request(header_of(all), req), parse_error::none) << v;
        EXPECT_FALSE(req.resources[0].keys.has_value());
        EXPECT_FALSE(req.include_synonyms);
    }
}

TEST(KafkaFetchServer, OffsetForLeaderEpochAndDescribeConfigsAnsweredAsOneBroker) {
    log_fixture log(30);
    auto srv = log.server([](fetch_server_config& fc) {
        fc.producer_topic = [](std::string_view n) { return n == "produced"; };
    });
    bytes answer;
    int32_t wait = 0;
    for (int16_t v = 0; v <= 4; ++v) {
        ASSERT_TRUE(srv->serve(frame(23, v, 5, leader_epoch_body(v, "events-topic", 0, 0, 0)),
                               answer, false, wait));
        epoch_answer a = decode_leader_epoch(v, answer);
        EXPECT_EQ(a.error, 0) << v;
        if (v >= 1) { EXPECT_EQ(a.epoch, 0); }
        EXPECT_EQ(a.end, 30) << v; // epoch 0 ends at the high watermark
        // An epoch below 0: undefined; a client epoch newer than 0: UNKNOWN_LEADER_EPOCH.
        ASSERT_TRUE(srv->serve(frame(23, v, 5, leader_epoch_body(v, "events-topic", 0, -1, -1)),
                               answer, false, wait));
        a = decode_leader_epoch(v, answer);
        EXPECT_EQ(a.error, 0);
        EXPECT_EQ(a.end, -1);
        if (v >= 2) {
            ASSERT_TRUE(srv->serve(frame(23, v, 5, leader_epoch_body(v, "events-topic", 0, 3, 0)),
                                   answer, false, wait));
            EXPECT_EQ(decode_leader_epoch(v, answer).error, error_code::unknown_leader_epoch);
        }
        ASSERT_TRUE(srv->serve(frame(23, v, 5, leader_epoch_body(v, "events-topic", 4, 0, 0)),
                               answer, false, wait));
        EXPECT_EQ(decode_leader_epoch(v, answer).error, error_code::unknown_topic_or_partition);
    }
    EXPECT_EQ(srv->counters().leader_epochs.load(), 5u * 3 + 3);
    for (int16_t v = 0; v <= 4; ++v) {
        ASSERT_TRUE(srv->serve(frame(32, v, 6,
                                     describe_configs_body(v, config_resource::topic, "events-topic",
                                                           std::vector<std::string>{"cleanup.policy", "nope"},
                                                           false)),
                               answer, false, wait));
        auto got = decode_describe_configs(v, answer);
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].error, 0);
        EXPECT_EQ(got[0].values.size(), 1u); // only what was asked, unknown keys left out
        EXPECT_EQ(got[0].values["cleanup.policy"], "delete");
        ASSERT_TRUE(srv->serve(frame(32, v, 6,
                                     describe_configs_body(v, config_resource::topic, "produced",
                                                           std::nullopt, false)),
                               answer, false, wait));
        got = decode_describe_configs(v, answer);
        EXPECT_EQ(got[0].error, 0);
        EXPECT_EQ(got[0].values["message.timestamp.type"], "CreateTime");
        ASSERT_TRUE(srv->serve(frame(32, v, 6,
                                     describe_configs_body(v, config_resource::topic, "absent",
                                                           std::nullopt, false)),
                               answer, false, wait));
        EXPECT_EQ(decode_describe_configs(v, answer)[0].error, error_code::unknown_topic_or_partition);
        ASSERT_TRUE(srv->serve(frame(32, v, 6,
                                     describe_configs_body(v, config_resource::broker, "0",
                                                           std::nullopt, false)),
                               answer, false, wait));
        got = decode_describe_configs(v, answer);
        EXPECT_EQ(got[0].error, 0);
        EXPECT_EQ(got[0].values["broker.id"], "0");
        EXPECT_EQ(got[0].values["num.partitions"], "1");
        ASSERT_TRUE(srv->serve(frame(32, v, 6,
                                     describe_configs_body(v, config_resource::broker, "7",
                                                           std::nullopt, false)),
                               answer, false, wait));
        EXPECT_EQ(decode_describe_configs(v, answer)[0].error, error_code::invalid_request);
    }
    // A malformed body: no answer (the RX closes the connection).
    ASSERT_TRUE(srv->serve(frame(32, 1, 6, bytes{0, 0, 0, 5}), answer, false, wait));
    EXPECT_TRUE(answer.empty());
}

// ---- query tables and dead_letters as topics ----

struct tables_fixture : log_fixture {
    std::unique_ptr<storage::segment_writer> q, dead;
    std::mutex m;
    std::map<std::string, uint64_t> running; // what the merger would list

    tables_fixture() : log_fixture(5) {
        storage::writer_config c;
        c.data_dir = tmp.path();
        c.rows_per_block = 4;
        c.writer_name = "merger";
        q = std::move(storage::segment_writer::open(
                          c, storage::window_schema("views", {"page", "region"},
                                                    {{"count", storage::column_type::u64},
                                                     {"mean", storage::column_type::f64}}))
                          .value());
        for (int i = 0; i < 10; ++i) {
            auto& b = q->batch();
            b.push_i64(0, 60000 * i);
            b.push_i64(1, 60000 * (i + 1));
            b.push_string(2, "/p" + std::to_string(i));
            b.push_string(3, i % 2 ? "eu" : "us\"x");
            b.push_u64(4, uint64_t(i * 10));
            b.push_f64(5, i == 3 ? std::nan("") : i * 0.5);
            b.push_u64(6, 0);
            b.end_row();
            q->commit_row();
        }
        EXPECT_TRUE(q->flush_and_sync().ok());
        running["views"] = q->row_offset_durable_end();
        c.writer_name = "w0";
        dead = std::move(storage::segment_writer::open(c, storage::dead_letters_schema()).value());
        for (int i = 0; i < 3; ++i) {
            auto& b = dead->batch();
            b.push_i64(0, 5000 + i);
            b.push_string(1, i == 1 ? "oversize" : "parse_error");
            b.push_u64(2, i == 1 ? 99999 : 4);
            b.push_string(3, "bad" + std::to_string(i));
            b.end_row();
            dead->commit_row();
        }
        EXPECT_TRUE(dead->flush_and_sync().ok());
    }
    std::unique_ptr<fetch_server> tables_server() {
        return server([this](fetch_server_config& fc) {
            fc.dead_letters_watermark = [this](uint32_t) { return dead->row_offset_durable_end(); };
            fc.queries = [this](const std::function<void(const std::string&, uint64_t)>& each) {
                std::lock_guard lock(m);
                for (const auto& [n, hw] : running) each(n, hw);
            };
        });
    }
};

fetched fetch_from(fetch_server& srv, const std::string& topic, int64_t offset,
                   int32_t partition_max = 1 << 20) {
    bytes answer;
    int32_t wait = 0;
    EXPECT_TRUE(srv.serve(frame(1, 10, 1, fetch_body(10, offset, 0, 1, partition_max, topic)),
                          answer, false, wait));
    return decode_fetch(answer);
}

TEST(KafkaFetchServer, QueryTablesAndDeadLettersAreTopics) {
    tables_fixture t;
    auto srv = t.tables_server();
    auto topics = srv->topics();
    ASSERT_TRUE(topics);
    ASSERT_EQ(topics->size(), 3u);
    EXPECT_EQ((*topics)[0].name, "events-topic");
    EXPECT_EQ((*topics)[1].name, "dead_letters");
    EXPECT_EQ((*topics)[1].partitions, 1);
    EXPECT_EQ((*topics)[2].name, "views");
    EXPECT_EQ((*topics)[2].partitions, 1);

    // One record per window row: the value the jsonl export's row without revision, the
    // key the group values as a JSON array, the timestamp the window's end.
    fetched f = fetch_from(*srv, "views", 2);
    EXPECT_EQ(f.error, 0);
    EXPECT_EQ(f.hw, 10);
    ASSERT_EQ(f.records.size(), 8u);
    EXPECT_EQ(f.records[0].first, 2);
    EXPECT_EQ(f.records[0].second,
              R"({"window_start_ms":120000,"window_end_ms":180000,"page":"/p2","region":"us\"x","count":20,"mean":1})");
    EXPECT_EQ(f.keys[0], R"(["/p2","us\"x"])");
    EXPECT_EQ(f.records[1].second,
              R"({"window_start_ms":180000,"window_end_ms":240000,"page":"/p3","region":"eu","count":30,"mean":null})");
    EXPECT_EQ(f.headers[0], "");
    // Beyond its one partition: unknown.
    bytes answer;
    int32_t wait = 0;
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0, 0, 1, 1 << 20, "views", 1)), answer,
                           false, wait));
    EXPECT_EQ(decode_fetch(answer).error, error_code::unknown_topic_or_partition);

    // dead_letters: the bad bytes as stored, the reason and original length as headers.
    f = fetch_from(*srv, "dead_letters", 0);
    EXPECT_EQ(f.error, 0);
    ASSERT_EQ(f.records.size(), 3u);
    EXPECT_EQ(f.records[1].second, "bad1");
    EXPECT_EQ(f.headers[0], "reason=parse_errorraw_len=4");
    EXPECT_EQ(f.headers[1], "reason=oversizeraw_len=99999");

    // ListOffsets by time on a query topic: by window end.
    wire lo;
    lo.i32(-1).u8(0).i32(1).str("views").i32(1).i32(0).i64(300000);
    ASSERT_TRUE(srv->serve(frame(2, 2, 8, lo.b), answer, false, wait));
    byte_reader r(answer);
    r.i32();
    r.i32();
    r.i32();
    r.array_count();
    r.string();
    r.array_count();
    r.i32();
    EXPECT_EQ(r.i16(), 0);
    EXPECT_EQ(r.i64(), 300000); // timestamp: the end of window 4
    EXPECT_EQ(r.i64(), 4);

    // The query is removed: its topic goes (Metadata's list and Fetch).
    {
        std::lock_guard lock(t.m);
        t.running.clear();
    }
    srv->refresh_topics();
    EXPECT_EQ(srv->topics()->size(), 2u);
    EXPECT_EQ(fetch_from(*srv, "views", 0).error, error_code::unknown_topic_or_partition);
}

TEST(KafkaFetchServer, TheCacheServesBuiltBatchesAgainWithoutDecoding) {
    log_fixture log(100);
    auto srv = log.server();
    bytes first, second;
    int32_t wait = 0;
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0)), first, false, wait));
    const uint64_t misses = srv->counters().cache_misses.load();
    EXPECT_EQ(misses, 100u / 16 + 1); // one per block of 16 rows
    EXPECT_EQ(srv->counters().cache_hits.load(), 0u);
    EXPECT_GT(srv->counters().cache_bytes.load(), 0u);
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0)), second, false, wait));
    EXPECT_EQ(first, second); // byte for byte
    EXPECT_EQ(srv->counters().cache_misses.load(), misses);
    EXPECT_EQ(srv->counters().cache_hits.load(), misses);
    // From the middle of a block: that block is built again from there, the rest are hits.
    fetched f = decode_fetch([&] {
        bytes a;
        EXPECT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 20)), a, false, wait));
        return a;
    }());
    ASSERT_EQ(f.records.size(), 80u);
    for (size_t i = 0; i < f.records.size(); ++i) EXPECT_EQ(f.records[i].second, raw_of(20 + i));
    EXPECT_EQ(srv->counters().cache_misses.load(), misses + 1);
    // New rows: the batch cut at the old high watermark is served, the rest built.
    log.append(10);
    f = decode_fetch([&] {
        bytes a;
        EXPECT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 90)), a, false, wait));
        return a;
    }());
    ASSERT_EQ(f.records.size(), 20u);
    for (size_t i = 0; i < f.records.size(); ++i) {
        EXPECT_EQ(f.records[i].first, int64_t(90 + i));
        EXPECT_EQ(f.records[i].second, raw_of(90 + i));
    }
    // A budget cut is never cached: a small consumer does not shorten the next one's batches.
    log_fixture other(100);
    auto small = other.server();
    ASSERT_TRUE(small->serve(frame(1, 10, 1, fetch_body(10, 0, 0, 1, 500)), first, false, wait));
    EXPECT_EQ(small->counters().cache_bytes.load(), 0u);
}

TEST(KafkaFetchServer, TheCacheIsBoundedAndLetsGoOfRowsRetentionRemoved) {
    log_fixture log(300, 16 << 10);
    auto srv = log.server([](fetch_server_config& fc) { fc.cache_bytes = 8 << 10; });
    bytes answer;
    int32_t wait = 0;
    ASSERT_TRUE(srv->serve(frame(1, 10, 1, fetch_body(10, 0)), answer, false, wait));
    EXPECT_LE(srv->counters().cache_bytes.load(), 8u << 10);
    EXPECT_GT(srv->counters().cache_evictions.load(), 0u);
    // Retention removes the oldest segment: its rows' batches are dropped with it.
    log_fixture big(300, 16 << 10);
    auto all = big.server();
    ASSERT_TRUE(all->serve(frame(1, 10, 1, fetch_body(10, 0)), answer, false, wait));
    EXPECT_EQ(all->counters().cache_evictions.load(), 0u);
    const uint64_t held = all->counters().cache_bytes.load();
    auto segs = storage::list_log_segments(big.tmp.path() + "/events", "w0");
    ASSERT_TRUE(segs.ok());
    std::filesystem::remove((*segs)[0].path);
    const int64_t second = int64_t((*segs)[1].first_offset);
    ASSERT_TRUE(all->serve(frame(1, 10, 1, fetch_body(10, second)), answer, false, wait));
    fetched f = decode_fetch(answer);
    EXPECT_EQ(f.error, 0);
    ASSERT_FALSE(f.records.empty());
    EXPECT_EQ(f.records[0].first, second);
    EXPECT_EQ(all->counters().cache_evictions.load(), uint64_t(second + 15) / 16);
    EXPECT_LT(all->counters().cache_bytes.load(), held);
}

TEST(KafkaFetchCache, LeastRecentlyUsedGoesFirstAndDropsAreByPartition) {
    fetch_batch_cache c(100);
    const bytes forty(40, 7);
    c.insert(1, 0, 10, 10, forty);
    c.insert(1, 10, 20, 10, forty);
    ASSERT_NE(c.find(1, 0), nullptr); // now the most recent
    c.insert(2, 0, 5, 5, forty);      // 120 > 100: the least recent (1, 10) goes
    EXPECT_EQ(c.find(1, 10), nullptr);
    ASSERT_NE(c.find(1, 0), nullptr);
    EXPECT_EQ(c.find(1, 0)->to, 10u);
    EXPECT_EQ(c.bytes(), 80u);
    fetch_batch_cache d(1000);
    d.insert(1, 0, 10, 10, forty);
    d.insert(1, 10, 20, 10, forty);
    d.insert(2, 0, 5, 5, forty);
    d.drop_below(1, 10); // retention: rows below 10 are gone
    EXPECT_EQ(d.find(1, 0), nullptr);
    EXPECT_NE(d.find(1, 10), nullptr);
    d.drop(1); // a removed query's topic
    EXPECT_EQ(d.find(1, 10), nullptr);
    EXPECT_NE(d.find(2, 0), nullptr);
    EXPECT_EQ(d.size(), 1u);
    EXPECT_EQ(d.bytes(), 40u);
    c.insert(3, 0, 1, 1, bytes(101, 0)); // larger than the whole cache: not kept
    EXPECT_EQ(c.find(3, 0), nullptr);
}

} // namespace
} // namespace sluice::dataplane::kafka
