#include "dataplane/kernel_udp_rx.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace sluice::dataplane {
namespace {

using namespace std::chrono_literals;

// A plain blocking UDP sender, the way a test peer would send.
class sender {
  public:
    sender(int family, uint16_t port) : _family(family) {
        _fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (family == AF_INET) {
            auto* a = reinterpret_cast<sockaddr_in*>(&_to);
            a->sin_family = AF_INET;
            a->sin_port = htons(port);
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            _to_len = sizeof(sockaddr_in);
        } else {
            auto* a = reinterpret_cast<sockaddr_in6*>(&_to);
            a->sin6_family = AF_INET6;
            a->sin6_port = htons(port);
            a->sin6_addr = in6addr_loopback;
            _to_len = sizeof(sockaddr_in6);
        }
    }
    ~sender() { close(_fd); }
    void send(const std::string& bytes) {
        const ssize_t n = sendto(_fd, bytes.data(), bytes.size(), 0,
                                 reinterpret_cast<const sockaddr*>(&_to), _to_len);
        ASSERT_EQ(n, static_cast<ssize_t>(bytes.size())) << std::strerror(errno);
    }

  private:
    int _family;
    int _fd = -1;
    sockaddr_storage _to{};
    socklen_t _to_len = 0;
};

// Deterministic, size- and index-dependent bytes: a reordered or corrupted datagram shows.
std::string datagram_bytes(size_t index, size_t size) {
    std::string s(size, '\0');
    for (size_t i = 0; i < size; ++i)
        s[i] = static_cast<char>((index * 131 + i * 7) & 0xff);
    return s;
}

// Polls until `count` datagrams arrived (or 5 s passed), copying and releasing each burst.
std::vector<std::string> receive(kernel_udp_rx& rx, size_t count) {
    std::vector<std::string> got;
    datagram burst[limits::rx_burst_max];
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
        const uint32_t n = rx.receive_burst(burst, limits::rx_burst_max);
        for (uint32_t i = 0; i < n; ++i)
            got.emplace_back(burst[i].data, burst[i].len);
        rx.release(burst, n);
        if (n == 0) std::this_thread::sleep_for(100us);
    }
    return got;
}

// Receives until nothing arrived for 100 ms: for when the count is not known in advance.
std::vector<std::string> receive_until_quiet(kernel_udp_rx& rx) {
    std::vector<std::string> got;
    datagram burst[limits::rx_burst_max];
    auto last = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - last < 100ms) {
        const uint32_t n = rx.receive_burst(burst, limits::rx_burst_max);
        for (uint32_t i = 0; i < n; ++i)
            got.emplace_back(burst[i].data, burst[i].len);
        rx.release(burst, n);
        if (n != 0)
            last = std::chrono::steady_clock::now();
        else
            std::this_thread::sleep_for(100us);
    }
    return got;
}

// Gives the kernel a moment to surface anything still in flight, then drains it.
size_t drain_extra(kernel_udp_rx& rx) {
    datagram burst[limits::rx_burst_max];
    size_t extra = 0;
    for (int i = 0; i < 50; ++i) {
        const uint32_t n = rx.receive_burst(burst, limits::rx_burst_max);
        rx.release(burst, n);
        extra += n;
        std::this_thread::sleep_for(1ms);
    }
    return extra;
}

std::unique_ptr<kernel_udp_rx> open_or_fail(kernel_rx_config config) {
    auto rx = kernel_udp_rx::open(config);
    EXPECT_TRUE(rx.ok()) << (rx.ok() ? "" : rx.err().message);
    return rx.ok() ? std::move(rx).value() : nullptr;
}

kernel_rx_config loopback_config(bool multishot) {
    kernel_rx_config c;
    c.port = 0; // ephemeral: tests never collide with each other or a running daemon
    c.buffers = 64;
    c.multishot = multishot;
    return c;
}

void expect_in_order_exact(int family, const std::string& bind_addr, bool multishot) {
    SCOPED_TRACE(std::string(multishot ? "multishot " : "single-shot ") + bind_addr);
    kernel_rx_config config = loopback_config(multishot);
    config.bind_addr = bind_addr;
    auto rx = open_or_fail(config);
    ASSERT_NE(rx, nullptr);
    if (!multishot) {
        EXPECT_FALSE(rx->multishot());
    }
    const std::vector<size_t> sizes = {0,    1,     2,     7,     100, 1472, 1473,  4096,
                                       9000, 32768, 65000, 65507, 0,   3,    65507, 12};
    // The first burst arms the receive: datagrams sent before it wait in the socket.
    datagram none[1];
    EXPECT_EQ(rx->receive_burst(none, 1), 0u);
    sender tx(family, rx->local_port());
    for (size_t i = 0; i < sizes.size(); ++i)
        tx.send(datagram_bytes(i, sizes[i]));
    const auto got = receive(*rx, sizes.size());
    ASSERT_EQ(got.size(), sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
        ASSERT_EQ(got[i].size(), sizes[i]) << "datagram " << i;
        EXPECT_EQ(got[i], datagram_bytes(i, sizes[i])) << "datagram " << i;
    }
    EXPECT_EQ(drain_extra(*rx), 0u);
    EXPECT_EQ(rx->datagrams_total(), sizes.size());
    EXPECT_EQ(rx->oversize_total(), 0u);
    EXPECT_EQ(rx->errors_total(), 0u);
}

bool ipv6_loopback_available() {
    const int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

TEST(KernelUdpRx, ReceivesIpv4DatagramsInOrderWithExactBytes) {
    expect_in_order_exact(AF_INET, "127.0.0.1", true);
    expect_in_order_exact(AF_INET, "127.0.0.1", false);
}

TEST(KernelUdpRx, ReceivesIpv6DatagramsInOrderWithExactBytes) {
    if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback (::1) on this host";
    expect_in_order_exact(AF_INET6, "::1", true);
    expect_in_order_exact(AF_INET6, "[::1]", false);
}

TEST(KernelUdpRx, UsesMultishotWhenTheKernelHasIt) {
    auto rx = open_or_fail(loopback_config(true));
    ASSERT_NE(rx, nullptr);
    // Multishot recvmsg is in every kernel since 6.0; on an older one this documents the
    // fallback rather than failing.
    if (!rx->multishot()) GTEST_SKIP() << "kernel refuses multishot recvmsg";
    EXPECT_TRUE(rx->multishot());
}

// More datagrams than buffers, several rounds: the buffers must come back on release(),
// and the multishot receive must be re-armed after it ran out of them.
TEST(KernelUdpRx, RecyclesBuffersAcrossRounds) {
    for (bool multishot : {true, false}) {
        SCOPED_TRACE(multishot ? "multishot" : "single-shot");
        kernel_rx_config config = loopback_config(multishot);
        config.buffers = 8;
        config.buffer_bytes = 2048;
        auto rx = open_or_fail(config);
        ASSERT_NE(rx, nullptr);
        datagram none[1];
        EXPECT_EQ(rx->receive_burst(none, 1), 0u);
        sender tx(AF_INET, rx->local_port());
        size_t next = 0;
        for (int round = 0; round < 5; ++round) {
            const size_t first = next;
            for (int i = 0; i < 37; ++i, ++next)
                tx.send(datagram_bytes(next, 100 + next % 900));
            datagram burst[64];
            std::vector<std::string> got;
            const auto deadline = std::chrono::steady_clock::now() + 5s;
            while (got.size() < 37 && std::chrono::steady_clock::now() < deadline) {
                const uint32_t n = rx->receive_burst(burst, 64);
                ASSERT_LE(n, config.buffers); // never more in hand than there are buffers
                for (uint32_t i = 0; i < n; ++i) {
                    ASSERT_LT(burst[i].buffer_id, config.buffers);
                    got.emplace_back(burst[i].data, burst[i].len);
                }
                rx->release(burst, n);
            }
            ASSERT_EQ(got.size(), 37u) << "round " << round;
            for (size_t i = 0; i < got.size(); ++i)
                ASSERT_EQ(got[i], datagram_bytes(first + i, 100 + (first + i) % 900))
                    << "round " << round << " datagram " << i;
        }
        EXPECT_EQ(rx->datagrams_total(), next);
        EXPECT_EQ(rx->kernel_drops(), 0u);
    }
}

TEST(KernelUdpRx, HoldsBuffersUntilReleased) {
    kernel_rx_config config = loopback_config(true);
    config.buffers = 4;
    config.buffer_bytes = 1024;
    auto rx = open_or_fail(config);
    ASSERT_NE(rx, nullptr);
    datagram held[8];
    EXPECT_EQ(rx->receive_burst(held, 8), 0u);
    sender tx(AF_INET, rx->local_port());
    for (int i = 0; i < 6; ++i)
        tx.send(datagram_bytes(i, 64));
    uint32_t n = 0;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (n < 4 && std::chrono::steady_clock::now() < deadline)
        n += rx->receive_burst(held + n, 8 - n);
    ASSERT_EQ(n, 4u);
    // All four buffers are in our hands: nothing more can arrive, and the data we hold
    // must not be overwritten by the two datagrams still waiting in the socket.
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(rx->receive_burst(held + n, 8 - n), 0u);
    for (uint32_t i = 0; i < 4; ++i)
        EXPECT_EQ(std::string(held[i].data, held[i].len), datagram_bytes(i, 64));
    rx->release(held, 4);
    const auto rest = receive(*rx, 2);
    ASSERT_EQ(rest.size(), 2u);
    EXPECT_EQ(rest[0], datagram_bytes(4, 64));
    EXPECT_EQ(rest[1], datagram_bytes(5, 64));
}

TEST(KernelUdpRx, DropsAndCountsOversizeDatagrams) {
    for (bool multishot : {true, false}) {
        SCOPED_TRACE(multishot ? "multishot" : "single-shot");
        kernel_rx_config config = loopback_config(multishot);
        config.buffers = 4;
        config.buffer_bytes = 1024;
        auto rx = open_or_fail(config);
        ASSERT_NE(rx, nullptr);
        datagram none[1];
        EXPECT_EQ(rx->receive_burst(none, 1), 0u);
        sender tx(AF_INET, rx->local_port());
        tx.send(datagram_bytes(0, 1024)); // fits exactly
        tx.send(datagram_bytes(1, 5000)); // does not
        tx.send(datagram_bytes(2, 10));
        const auto got = receive(*rx, 2);
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(got[0], datagram_bytes(0, 1024));
        EXPECT_EQ(got[1], datagram_bytes(2, 10));
        EXPECT_EQ(rx->oversize_total(), 1u);
        EXPECT_EQ(rx->datagrams_total(), 2u);
    }
}

// With a tiny socket buffer and nobody receiving, the kernel drops; SO_RXQ_OVFL reports
// the count with the next datagram, so received + dropped == sent once one more arrives.
TEST(KernelUdpRx, CountsKernelDrops) {
    for (bool multishot : {true, false}) {
        SCOPED_TRACE(multishot ? "multishot" : "single-shot");
        kernel_rx_config config = loopback_config(multishot);
        config.rcvbuf_bytes = 4096;
        config.buffers = 256;
        config.buffer_bytes = 2048;
        auto rx = open_or_fail(config);
        ASSERT_NE(rx, nullptr);
        sender tx(AF_INET, rx->local_port());
        // Before the first receive_burst nothing is armed: the socket buffer overflows.
        const size_t flood = 200;
        for (size_t i = 0; i < flood; ++i)
            tx.send(datagram_bytes(i, 1000));
        const auto got = receive_until_quiet(*rx);
        ASSERT_LT(got.size(), flood);
        ASSERT_GT(got.size(), 0u);
        tx.send("after");
        const auto tail = receive(*rx, 1);
        ASSERT_EQ(tail.size(), 1u);
        EXPECT_EQ(tail[0], "after");
        EXPECT_EQ(rx->kernel_drops() + rx->datagrams_total(), flood + 1);
        // What did arrive is the start of the flood, in order.
        for (size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], datagram_bytes(i, 1000));
    }
}

TEST(KernelUdpRx, IdlePollReturnsNothing) {
    for (bool multishot : {true, false}) {
        auto rx = open_or_fail(loopback_config(multishot));
        ASSERT_NE(rx, nullptr);
        datagram burst[8];
        for (int i = 0; i < 1000; ++i)
            ASSERT_EQ(rx->receive_burst(burst, 8), 0u);
        EXPECT_EQ(rx->datagrams_total(), 0u);
    }
}

// open() runs on the control thread at startup; the RX loop runs on its own thread.
TEST(KernelUdpRx, ReceivesOnAThreadOtherThanTheOpener) {
    for (bool multishot : {true, false}) {
        SCOPED_TRACE(multishot ? "multishot" : "single-shot");
        auto rx = open_or_fail(loopback_config(multishot));
        ASSERT_NE(rx, nullptr);
        std::vector<std::string> got;
        std::thread rx_thread([&] { got = receive(*rx, 50); });
        sender tx(AF_INET, rx->local_port());
        // Paced so that most datagrams arrive after the RX thread armed the receive.
        for (size_t i = 0; i < 50; ++i) {
            tx.send(datagram_bytes(i, 300));
            if (i % 10 == 0) std::this_thread::sleep_for(1ms);
        }
        rx_thread.join();
        ASSERT_EQ(got.size(), 50u);
        for (size_t i = 0; i < got.size(); ++i)
            EXPECT_EQ(got[i], datagram_bytes(i, 300));
    }
}

TEST(KernelUdpRx, BindErrorNamesTheAddressAndTheFix) {
    const int holder = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(holder, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len), 0);
    const uint16_t port = ntohs(a.sin_port);

    kernel_rx_config config;
    config.port = port;
    auto rx = kernel_udp_rx::open(config);
    close(holder);
    ASSERT_FALSE(rx.ok());
    EXPECT_EQ(rx.err().code, errc::busy);
    EXPECT_EQ(rx.err().message, "cannot bind UDP 127.0.0.1:" + std::to_string(port) +
                                    ": Address already in use (stop the other listener or "
                                    "pass --udp-port)");
}

// The start-up check (control/preflight.h): a port held by a plain socket, or by another
// process's SO_REUSEPORT sockets, is taken; one that comes free within the wait (a
// sluiced just killed, its io_uring still being torn down) is free.
TEST(KernelUdpRx, PortCheckSeesReusePortHoldersAndWaitsForARelease) {
    auto bound = [](bool reuse_port, uint16_t port) {
        const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
        socklen_t len = sizeof a;
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        return std::pair<int, uint16_t>{fd, ntohs(a.sin_port)};
    };
    auto [holder, port] = bound(true, 0);
    const auto t0 = std::chrono::steady_clock::now();
    auto taken = check_udp_port_free("127.0.0.1", port);
    const auto waited = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(taken.ok());
    EXPECT_EQ(taken.err().code, errc::busy);
    EXPECT_EQ(taken.err().message, "cannot bind UDP 127.0.0.1:" + std::to_string(port) +
                                       ": Address already in use (stop the other listener or "
                                       "pass --udp-port)");
    EXPECT_GE(waited, std::chrono::milliseconds(limits::udp_port_release_wait_ms));

    std::thread release([fd = holder] {
        std::this_thread::sleep_for(300ms);
        close(fd);
    });
    EXPECT_TRUE(check_udp_port_free("127.0.0.1", port).ok());
    release.join();
}

TEST(KernelUdpRx, RejectsBadConfiguration) {
    kernel_rx_config bad_addr;
    bad_addr.bind_addr = "localhost:9000";
    auto r1 = kernel_udp_rx::open(bad_addr);
    ASSERT_FALSE(r1.ok());
    EXPECT_EQ(r1.err().code, errc::invalid_argument);
    EXPECT_NE(r1.err().message.find("localhost:9000"), std::string::npos);

    kernel_rx_config no_buffers = loopback_config(true);
    no_buffers.buffers = 0;
    auto r2 = kernel_udp_rx::open(no_buffers);
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.err().code, errc::invalid_argument);

    kernel_rx_config huge = loopback_config(true);
    huge.buffer_bytes = kernel_udp_rx::buffer_bytes_max + 1;
    EXPECT_FALSE(kernel_udp_rx::open(huge).ok());

    kernel_rx_config foreign = loopback_config(true);
    foreign.bind_addr = "192.0.2.1"; // TEST-NET-1: not an address of this host
    auto r3 = kernel_udp_rx::open(foreign);
    ASSERT_FALSE(r3.ok());
    EXPECT_NE(r3.err().message.find("cannot bind UDP 192.0.2.1:0"), std::string::npos);
}

// Destroying the receiver with buffers still held and requests in flight must cancel
// them cleanly (ASan reports a leak or a use after free otherwise).
TEST(KernelUdpRx, DestroysCleanlyWithBuffersHeld) {
    for (bool multishot : {true, false}) {
        auto rx = open_or_fail(loopback_config(multishot));
        ASSERT_NE(rx, nullptr);
        datagram burst[8];
        EXPECT_EQ(rx->receive_burst(burst, 8), 0u);
        sender tx(AF_INET, rx->local_port());
        for (int i = 0; i < 4; ++i)
            tx.send(datagram_bytes(i, 32));
        uint32_t n = 0;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (n == 0 && std::chrono::steady_clock::now() < deadline)
            n = rx->receive_burst(burst, 8);
        EXPECT_GT(n, 0u);
        rx.reset();
    }
}

} // namespace
} // namespace sluice::dataplane
