// kafka_rx when the store fails (docs/KAFKA.md, acks): a worker whose writer fails on an
// I/O error makes nothing more durable, so the acks=all answers waiting on it are answered
// KAFKA_STORAGE_ERROR (56) at once instead of never, and later Produce requests are refused
// with 56. The real pieces on a deviceless EAL: a worker on its loop thread, an rx_lcore and
// its ring, the Kafka listener on a loopback port and kafka_rx on a thread; the store's
// fdatasyncs fail through the fault-injection hook (storage/fault_injection.h). Every wait
// has a deadline.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "dataplane/kafka/kafka_listener.h"
#include "dataplane/kafka/kafka_rx.h"
#include "storage/fault_injection.h"
#include "tests/dataplane/kafka_wire.h"
#include "tests/dataplane/one_worker_rig.h"
#include "tests/integration/loopback_tcp.h"

namespace sluice::dataplane::kafka {
namespace {

using namespace test;
namespace fault = storage::fault;
using dataplane::testing::event_line;

// A RecordBatch v2 of `values` (producer id -1: not idempotent).
bytes batch(const std::vector<std::string>& values, int64_t pid = -1, int32_t seq = -1) {
    wire recs;
    for (size_t i = 0; i < values.size(); ++i) {
        wire r;
        r.u8(0).var(0).var(int64_t(i)).var(-1).var(int64_t(values[i].size()));
        r.raw(values[i].data(), values[i].size()).var(0);
        recs.var(int64_t(r.b.size())).raw(r.b);
    }
    const int64_t ts = 1'740'754'951'000;
    wire tail; // what the CRC covers
    tail.i16(0).i32(int32_t(values.size()) - 1).i64(ts).i64(ts);
    tail.i64(pid).i16(pid >= 0 ? 0 : -1).i32(seq).i32(int32_t(values.size())).raw(recs.b);
    wire w;
    w.i64(0).i32(int32_t(4 + 1 + 4 + tail.b.size())).i32(0).u8(2);
    w.i32(int32_t(crc32c_reference(tail.b.data(), tail.b.size()))).raw(tail.b);
    return w.b;
}

// A Produce v3 frame, size prefix included: one topic, partition 0.
bytes produce_frame(int32_t corr, int16_t acks, const bytes& records) {
    wire body;
    body.null_str().i16(acks).i32(30000).i32(1).str("events-topic").i32(1).i32(0).blob(records);
    const bytes req = request(api_key::produce, 3, corr, body.b);
    wire f;
    f.i32(int32_t(req.size())).raw(req);
    return f.b;
}

struct partition_answer {
    bool ok = false;
    int16_t error = -2;
    int64_t base_offset = -2;
};

bool read_exact(int fd, uint8_t* p, size_t n, std::chrono::steady_clock::time_point deadline) {
    while (n > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, int(left.count())) <= 0) continue;
        const ssize_t got = ::recv(fd, p, n, 0);
        if (got <= 0) return false;
        p += got;
        n -= size_t(got);
    }
    return true;
}

// The answer to `corr` (Produce v3: one topic, one partition), within `within`.
partition_answer read_answer(int fd, int32_t corr, std::chrono::seconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    uint8_t size_be[4];
    if (!read_exact(fd, size_be, 4, deadline)) return {};
    const uint32_t size = uint32_t(size_be[0]) << 24 | uint32_t(size_be[1]) << 16 |
                          uint32_t(size_be[2]) << 8 | size_be[3];
    bytes f(size);
    if (size > 4096 || !read_exact(fd, f.data(), size, deadline)) return {};
    byte_reader r(f);
    partition_answer a;
    const bool same = r.i32() == corr;
    const bool shape = r.array_count() == 1 && r.string() == "events-topic" && r.array_count() == 1;
    (void)r.i32(); // partition index
    a.error = r.i16();
    a.base_offset = r.i64();
    a.ok = same && shape && r.ok();
    return a;
}

class KafkaRxStorage : public ::testing::Test {
  protected:
    void SetUp() override {
        _rig.open({"krx_storage", 60'000}); // only the acks=all commits (commit_now) sync
        ASSERT_FALSE(HasFatalFailure());
        kafka_listener_config lc;
        lc.listen = {"127.0.0.1:0"};
        auto l = kafka_listener::open(lc);
        ASSERT_TRUE(l) << l.err().message;
        _listener = std::move(l.value());
        kafka_rx_config kc;
        kc.idle_wait = false;
        processing::worker& w = _rig.worker();
        _krx = std::make_unique<kafka_rx>(
            kc, *_listener, _rig.rx(),
            std::vector<worker_durability>{{&w.slots_durable(0), &w.slots_wanted(0), &w}},
            &_rig.stop_flag());
    }
    void start() {
        _rig.start();
        _rx_thread = std::thread([this] { _krx->run(); });
        _fd = sluice::testing::connect_loopback_tcp(_listener->ports()[0]);
        ASSERT_GE(_fd, 0);
    }
    void TearDown() override {
        fault::disarm();
        if (_fd >= 0) ::close(_fd);
        _rig.stop_flag().store(true);
        if (_rx_thread.joinable()) _rx_thread.join(); // kafka_rx drains its rx_lcore
        _rig.stop();
        _krx.reset();
        _listener.reset();
    }
    void send(const bytes& frame) {
        ASSERT_EQ(::send(_fd, frame.data(), frame.size(), MSG_NOSIGNAL), ssize_t(frame.size()));
    }
    std::vector<std::string> events(const std::string& prefix, int n) {
        std::vector<std::string> out;
        for (int i = 0; i < n; ++i) out.push_back(event_line(prefix + std::to_string(i), wall_ms()));
        return out;
    }
    static int64_t wall_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    dataplane::testing::one_worker_rig _rig; // outlives the listener and kafka_rx
    std::unique_ptr<kafka_listener> _listener;
    std::unique_ptr<kafka_rx> _krx;
    std::thread _rx_thread;
    int _fd = -1;
};

// The store's first commit succeeds, every one after fails: the first idempotent batch is
// durable and answered 0; the second waits for a commit that fails and is answered 56 at
// once (not left to the client's timeout), and taken back from the sequence state; its
// retry, like any later Produce (acks 1 too), is refused with 56.
TEST_F(KafkaRxStorage, AnAnswerWaitingOnAFailedStoreIsStorageErrorAndLaterOnesAreRefused) {
    fault::arm({2, fault::kind::error, EIO, 5, true, fault::op::fsync});
    start();
    ASSERT_FALSE(HasFatalFailure());
    send(produce_frame(1, -1, batch(events("a", 3), 7, 0)));
    partition_answer a = read_answer(_fd, 1, std::chrono::seconds(20));
    ASSERT_TRUE(a.ok);
    EXPECT_EQ(a.error, error_code::none);
    EXPECT_EQ(a.base_offset, 0);
    EXPECT_FALSE(_rig.worker().storage_failed());
    EXPECT_EQ(_krx->counters().producer_states.load(), 1u);

    const auto t = std::chrono::steady_clock::now();
    send(produce_frame(2, -1, batch(events("b", 2), 7, 3)));
    a = read_answer(_fd, 2, std::chrono::seconds(20)); // the client's timeout is 30 s
    ASSERT_TRUE(a.ok) << "no answer: a parked acks=all answer waits for a failed store";
    EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(10));
    EXPECT_EQ(a.error, error_code::kafka_storage_error);
    EXPECT_EQ(a.base_offset, -1);
    EXPECT_TRUE(_rig.worker().storage_failed());
    EXPECT_EQ(_krx->counters().acks_parked.load(), 0u);

    send(produce_frame(3, -1, batch(events("b", 2), 7, 3))); // the producer's retry
    a = read_answer(_fd, 3, std::chrono::seconds(20));
    ASSERT_TRUE(a.ok);
    EXPECT_EQ(a.error, error_code::kafka_storage_error) << "a retry taken for a duplicate";
    send(produce_frame(4, 1, batch(events("c", 1))));
    a = read_answer(_fd, 4, std::chrono::seconds(20));
    ASSERT_TRUE(a.ok);
    EXPECT_EQ(a.error, error_code::kafka_storage_error);
    EXPECT_EQ(_krx->counters().errors[error_code::kafka_storage_error].load(), 3u);
    EXPECT_EQ(_krx->counters().duplicate_sequences.load(), 0u);
    // Only the first batch's records were taken; the rest were refused before routing.
    EXPECT_EQ(_krx->counters().records.load(), 5u);
}

} // namespace
} // namespace sluice::dataplane::kafka
