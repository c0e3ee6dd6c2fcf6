// kafka_listener on its own (no DPDK, no codec): framing across writes, answers in request
// order whatever order they become ready in, the in-flight bound that stops reading a
// connection, back-pressure from a refused frame, oversize frames, the connection limit,
// in both receive modes (multishot over provided buffers, and single-shot).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/limits.h"
#include "base/tsc.h"
#include "dataplane/kafka/kafka_listener.h"

namespace sluice::dataplane::kafka {
namespace {

using clock_type = std::chrono::steady_clock;

int connect_to(uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// A frame: size prefix, then 4 bytes of tag and `pad` bytes (>= 8 bytes in all).
std::string frame(uint32_t tag, uint32_t pad = 4) {
    std::string body(4 + pad, 'p');
    std::memcpy(body.data(), &tag, 4);
    const uint32_t n = htonl(uint32_t(body.size()));
    return std::string(reinterpret_cast<const char*>(&n), 4) + body;
}

uint32_t tag_of(const kafka_frame& f) {
    uint32_t t;
    std::memcpy(&t, f.data, 4);
    return t;
}

// Reads n 4-byte answers (each the tag of its request).
std::vector<uint32_t> read_answers(int fd, size_t n) {
    std::vector<uint32_t> out;
    while (out.size() < n) {
        uint32_t t;
        size_t got = 0;
        while (got < 4) {
            const ssize_t r = recv(fd, reinterpret_cast<char*>(&t) + got, 4 - got, 0);
            if (r <= 0) return out;
            got += size_t(r);
        }
        out.push_back(t);
    }
    return out;
}

bool closed_by_peer(int fd) {
    char c;
    const ssize_t r = recv(fd, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

class KafkaListener : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        kafka_listener_config c;
        c.listen = {"127.0.0.1:0"};
        c.connections_max = 3;
        c.request_bytes_max = 4096;
        c.inflight_max = 4;
        c.multishot = GetParam();
        auto l = kafka_listener::open(c);
        ASSERT_TRUE(l) << l.err().message;
        _l = std::move(l.value());
        _port = _l->ports().front();
        ASSERT_NE(_port, 0);
    }
    // Polls until pred() or 5 s.
    template <typename Pred>
    bool poll_until(Pred&& pred) {
        const auto deadline = clock_type::now() + std::chrono::seconds(5);
        while (clock_type::now() < deadline) {
            _l->poll();
            if (pred()) return true;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return false;
    }
    // Takes every frame offered; each reserves an answer slot, kept in `pending`.
    uint32_t take_all() {
        return _l->take_frames(
            [&](const kafka_frame& f) {
                const int32_t slot = _l->reserve_response(f.conn);
                if (slot < 0) return false;
                pending.push_back({f.conn, slot, tag_of(f), f.arrival_tsc});
                return true;
            },
            1000);
    }
    void answer(size_t i) {
        std::vector<uint8_t>* out = _l->response_buffer(pending[i].conn, pending[i].slot);
        ASSERT_NE(out, nullptr);
        const uint32_t t = pending[i].tag;
        out->assign(reinterpret_cast<const uint8_t*>(&t), reinterpret_cast<const uint8_t*>(&t) + 4);
        _l->response_ready(pending[i].conn, pending[i].slot);
    }
    struct taken {
        conn_ref conn;
        int32_t slot;
        uint32_t tag;
        uint64_t arrival_tsc;
    };
    std::vector<taken> pending;
    std::unique_ptr<kafka_listener> _l;
    uint16_t _port = 0;
};

TEST_P(KafkaListener, ReassemblesFramesAndAnswersInRequestOrder) {
    const int fd = connect_to(_port);
    std::string bytes;
    for (uint32_t t = 1; t <= 3; ++t) bytes += frame(t, 100 * t);
    // One byte at a time for the first frame, the rest in one write.
    for (size_t i = 0; i < 20; ++i) {
        ASSERT_EQ(send(fd, bytes.data() + i, 1, 0), 1);
        _l->poll();
    }
    ASSERT_EQ(send(fd, bytes.data() + 20, bytes.size() - 20, 0), ssize_t(bytes.size() - 20));
    uint32_t got = 0;
    ASSERT_TRUE(poll_until([&] { return (got += take_all()) == 3; }));
    ASSERT_EQ(pending.size(), 3u);
    EXPECT_EQ(pending[0].tag, 1u);
    EXPECT_EQ(pending[2].tag, 3u);
    // Ready last to first: still sent first to last.
    answer(2);
    answer(1);
    for (int i = 0; i < 50; ++i) _l->poll();
    answer(0);
    std::vector<uint32_t> answers;
    std::thread reader([&] { answers = read_answers(fd, 3); });
    poll_until([&] { return _l->counters().bytes_out.load() == 12; });
    reader.join();
    EXPECT_EQ(answers, (std::vector<uint32_t>{1, 2, 3}));
    ::close(fd);
}

// An idle Kafka RX blocks in wait(): a write to wake_fd() (a worker publishing durable
// slots) and received bytes each end it long before its timeout, here 30 s, and the wake
// is armed again for the next wait. Without the armed read the waits run to the timeout.
TEST_P(KafkaListener, WaitEndsOnTheWakeFdAndOnReceivedBytes) {
    constexpr uint32_t long_wait_us = 30'000'000;
    const auto woken_within = [&](auto&& cause) {
        std::thread t([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            cause();
        });
        const auto t0 = clock_type::now();
        _l->wait(long_wait_us);
        const auto waited = clock_type::now() - t0;
        t.join();
        _l->poll();
        return waited < std::chrono::seconds(20);
    };
    _l->poll();
    const uint64_t one = 1;
    for (int round = 0; round < 3; ++round)
        EXPECT_TRUE(woken_within([&] {
            ASSERT_EQ(write(_l->wake_fd(), &one, sizeof one), ssize_t(sizeof one));
        })) << "round " << round;
    int fd = -1;
    EXPECT_TRUE(woken_within([&] { fd = connect_to(_port); })); // the accept
    ASSERT_GE(fd, 0);
    EXPECT_FALSE(_l->has_ready());
    const std::string bytes = frame(7);
    // The receive may be posted with the accept's poll or after it: wait until a frame is
    // ready, each wait ended by the bytes (or the connection's set-up), never by a timeout.
    EXPECT_TRUE(woken_within([&] {
        ASSERT_EQ(send(fd, bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
    }));
    for (int i = 0; i < 3 && !_l->has_ready(); ++i) EXPECT_TRUE(woken_within([] {}));
    EXPECT_TRUE(_l->has_ready());
    EXPECT_EQ(take_all(), 1u);
    ::close(fd);
}

TEST_P(KafkaListener, InFlightBoundAndRefusedFramesStopTheConnection) {
    const int fd = connect_to(_port);
    std::string bytes;
    for (uint32_t t = 1; t <= 10; ++t) bytes += frame(t);
    ASSERT_EQ(send(fd, bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
    // Four in flight at most: the other six stay buffered until answers go out.
    uint32_t got = 0;
    ASSERT_TRUE(poll_until([&] { return (got += take_all()) == 4; }));
    for (int i = 0; i < 100; ++i) got += (_l->poll(), take_all());
    EXPECT_EQ(got, 4u);
    // Multishot: the connection's receive was cancelled (single-shot: simply not re-armed).
    if (GetParam()) { EXPECT_GT(_l->counters().paused.load(), 0u); }
    // A refused frame (back-pressure) stays and is offered again.
    answer(0);
    poll_until([&] { return _l->counters().bytes_out.load() == 4; });
    uint32_t refused = 0;
    _l->take_frames([&](const kafka_frame&) { return ++refused, false; }, 10);
    EXPECT_EQ(refused, 1u);
    ASSERT_TRUE(poll_until([&] { return take_all() == 1; }));
    EXPECT_EQ(pending.back().tag, 5u);
    size_t answered = 1;
    ASSERT_TRUE(poll_until([&] {
        take_all();
        while (answered < pending.size()) answer(answered++);
        return pending.size() == 10 && _l->counters().bytes_out.load() == 40;
    }));
    EXPECT_EQ(read_answers(fd, 10), (std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
    ::close(fd);
}

// A frame's arrival is the receive that completed it (the produce-ack latency starts
// there): not the receive that brought its first bytes, not the time it was taken. Beyond
// kafka_frame_stamps buffered frames, a later frame gets an older stamp (overstated, never
// understated).
TEST_P(KafkaListener, FramesCarryTheArrivalOfTheReceiveThatCompletedThem) {
    const int fd = connect_to(_port);
    const uint32_t n = limits::kafka_frame_stamps + 4;
    std::vector<uint64_t> before(n), after(n);
    uint64_t in = 0;
    // Frame 0 in two parts, each received before the next is sent; then one frame per send.
    const std::string first = frame(0, 40);
    before[0] = tsc_now();
    ASSERT_EQ(send(fd, first.data(), 10, 0), 10);
    ASSERT_TRUE(poll_until([&] { return _l->counters().bytes_in.load() == 10; }));
    const uint64_t partial = tsc_now();
    ASSERT_EQ(send(fd, first.data() + 10, first.size() - 10, 0), ssize_t(first.size() - 10));
    in = first.size();
    ASSERT_TRUE(poll_until([&] { return _l->counters().bytes_in.load() == in; }));
    after[0] = tsc_now();
    for (uint32_t t = 1; t < n; ++t) {
        const std::string f = frame(t);
        before[t] = tsc_now();
        ASSERT_EQ(send(fd, f.data(), f.size(), 0), ssize_t(f.size()));
        in += f.size();
        ASSERT_TRUE(poll_until([&] { return _l->counters().bytes_in.load() == in; }));
        after[t] = tsc_now();
    }
    const uint64_t taking = tsc_now();
    // Four in flight at most: take, answer, repeat.
    size_t answered = 0;
    ASSERT_TRUE(poll_until([&] {
        take_all();
        while (answered < pending.size())
            answer(answered++);
        return pending.size() == n;
    }));
    EXPECT_GT(pending[0].arrival_tsc, partial);
    EXPECT_LE(pending[0].arrival_tsc, after[0]);
    for (uint32_t t = 0; t < n; ++t) {
        ASSERT_EQ(pending[t].tag, t);
        EXPECT_LE(pending[t].arrival_tsc, after[t]) << t;
        EXPECT_LT(pending[t].arrival_tsc, taking) << t;
        const uint32_t own = std::min(t, limits::kafka_frame_stamps - 1);
        EXPECT_GE(pending[t].arrival_tsc, before[own]) << t;
    }
    ::close(fd);
}

TEST_P(KafkaListener, OversizeFrameClosesAndExtraConnectionsAreRefused) {
    const int big = connect_to(_port);
    const uint32_t n = htonl(5000);
    ASSERT_EQ(send(big, &n, 4, 0), 4);
    ASSERT_TRUE(poll_until([&] {
        take_all();
        return _l->counters().closed[int(close_reason::request_too_large)].load() == 1;
    }));
    EXPECT_TRUE(closed_by_peer(big));
    ::close(big);
    std::vector<int> fds;
    for (int i = 0; i < 5; ++i) fds.push_back(connect_to(_port));
    ASSERT_TRUE(poll_until([&] { return _l->counters().connections_refused.load() == 2; }));
    EXPECT_EQ(_l->counters().connections_open.load(), 3u);
    for (int fd : fds) ::close(fd);
    ASSERT_TRUE(poll_until([&] { return _l->counters().connections_open.load() == 0; }));
    EXPECT_EQ(_l->counters().closed[int(close_reason::peer_closed)].load(), 3u);
}

// acks=0 clients close right after their last send: what arrived before the close is still
// taken, a half-closed client still gets its answers, then the connection is closed.
TEST_P(KafkaListener, RequestsSentBeforeThePeerClosesAreStillTakenAndAnswered) {
    const int fd = connect_to(_port);
    const std::string bytes = frame(1) + frame(2) + frame(3).substr(0, 6); // and a partial one
    ASSERT_EQ(send(fd, bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    uint32_t got = 0;
    ASSERT_TRUE(poll_until([&] { return (got += take_all()) == 2; }));
    EXPECT_EQ(_l->counters().connections_open.load(), 1u); // two answers still owed
    answer(0);
    answer(1);
    ASSERT_TRUE(poll_until([&] { return _l->counters().connections_open.load() == 0; }));
    EXPECT_EQ(_l->counters().closed[int(close_reason::peer_closed)].load(), 1u);
    EXPECT_EQ(read_answers(fd, 2), (std::vector<uint32_t>{1, 2}));
    EXPECT_TRUE(closed_by_peer(fd));
    ::close(fd);
}

TEST_P(KafkaListener, IdleConnectionsAreClosedBusyOnesAreNot) {
    kafka_listener_config c;
    c.listen = {"127.0.0.1:0"};
    c.idle_timeout_ms = 100;
    c.multishot = GetParam();
    auto l = kafka_listener::open(c);
    ASSERT_TRUE(l) << l.err().message;
    _l = std::move(l.value());
    const int idle = connect_to(_l->ports().front());
    const int busy = connect_to(_l->ports().front());
    const auto start = clock_type::now();
    auto last = start;
    ASSERT_TRUE(poll_until([&] {
        // The busy one sends a request every 20 ms and gets it taken.
        if (clock_type::now() - start < std::chrono::milliseconds(400)) {
            if (clock_type::now() - last > std::chrono::milliseconds(20)) {
                last = clock_type::now();
                const std::string f = frame(7);
                EXPECT_EQ(send(busy, f.data(), f.size(), MSG_NOSIGNAL), ssize_t(f.size()));
            }
            _l->take_frames([](const kafka_frame&) { return true; }, 10);
            return false;
        }
        return _l->counters().closed[int(close_reason::idle)].load() >= 1;
    }));
    EXPECT_TRUE(closed_by_peer(idle));
    EXPECT_EQ(_l->counters().closed[int(close_reason::idle)].load(), 1u);
    ::close(idle);
    ::close(busy);
}

INSTANTIATE_TEST_SUITE_P(Receive, KafkaListener, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Multishot" : "SingleShot"; });

} // namespace
} // namespace sluice::dataplane::kafka
