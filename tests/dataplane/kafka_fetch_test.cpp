// The consume side's wire (dataplane/kafka/fetch_codec.*) against apache/kafka's schemas
// (FetchRequest/FetchResponse.json v4-v10, ListOffsetsRequest/Response.json v0-v5), the
// RecordBatch v2 builder read back by the produce side's parser (CRC-32C checked), and
// fetch_server serving frames from a real events log (storage/row_log.h).
#include "dataplane/kafka/fetch_codec.h"
#include "dataplane/kafka/fetch_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/segment_writer.h"
#include "tests/storage/storage_test_util.h"

namespace sluice::dataplane::kafka {
namespace {

using bytes = std::vector<uint8_t>;

struct wire {
    bytes b;
    wire& u8(uint8_t v) {
        b.push_back(v);
        return *this;
    }
    wire& i16(int16_t v) { return u8(uint8_t(uint16_t(v) >> 8)).u8(uint8_t(v)); }
    wire& i32(int32_t v) { return i16(int16_t(uint32_t(v) >> 16)).i16(int16_t(v)); }
    wire& i64(int64_t v) { return i32(int32_t(uint64_t(v) >> 32)).i32(int32_t(v)); }
    wire& str(std::string_view s) {
        i16(int16_t(s.size()));
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
};

bytes frame(int16_t key, int16_t version, int32_t correlation, const bytes& body) {
    wire w;
    w.i16(key).i16(version).i32(correlation).str("test");
    w.b.insert(w.b.end(), body.begin(), body.end());
    return w.b;
}

// Frames live as long as the program: parsed views point into them.
request_header header_of(bytes f) {
    static std::vector<std::unique_ptr<bytes>> keep;
    keep.push_back(std::make_unique<bytes>(std::move(f)));
    request_header h;
    EXPECT_EQ(parse_request_header(*keep.back(), h), parse_error::none);
    return h;
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

uint32_t crc32c_reference(const uint8_t* p, size_t n) {
    uint32_t crc = 0xFFFFFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78 & (0 - (crc & 1)));
    }
    return ~crc;
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
        if (v >= 5) EXPECT_EQ(r.i64(), 5);
        EXPECT_EQ(r.i32(), -1);
        auto recs = r.nullable_bytes();
        ASSERT_TRUE(recs.has_value());
        EXPECT_EQ(bytes(recs->begin(), recs->end()), batch);
        EXPECT_EQ(r.i32(), 9);
        EXPECT_EQ(r.i16(), error_code::offset_out_of_range);
        EXPECT_EQ(r.i64(), -1);
        EXPECT_EQ(r.i64(), -1);
        if (v >= 5) EXPECT_EQ(r.i64(), -1);
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
        if (v >= 2) EXPECT_EQ(r.i32(), 0); // ThrottleTimeMs (2+)
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
                if (n == 1) EXPECT_EQ(r.i64(), 12);
                continue;
            }
            EXPECT_EQ(r.i64(), -1);           // Timestamp (1+)
            EXPECT_EQ(r.i64(), p == 0 ? 12 : -1); // Offset (1+)
            if (v >= 4) EXPECT_EQ(r.i32(), -1); // LeaderEpoch (4+)
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
    std::unique_ptr<fetch_server> server() {
        fetch_server_config fc;
        fc.data_dir = tmp.path();
        fc.partitions = 1;
        fc.high_watermark = [this](uint32_t) { return hw.load(); };
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
            f.keys.emplace_back(rec.key->begin(), rec.key->end());
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

} // namespace
} // namespace sluice::dataplane::kafka
