#include "control/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "control/stats.h"
#include "tests/integration/loopback_tcp.h"

namespace sluice::control {
namespace {

constexpr int deadline_ms = 5000;

// ---- routing, without sockets ----

TEST(MetricsHttpAnswer, GetMetricsRendersTheExposition) {
    auto a = answer_metrics_request("GET", "/metrics", [] { return std::string("x_total 1\n"); });
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(a.body, "x_total 1\n");
    EXPECT_FALSE(a.head);
    EXPECT_EQ(a.content_type, std::string(prometheus_content_type) + "; charset=utf-8");
}

TEST(MetricsHttpAnswer, HeadKeepsTheBodyLengthButMarksItUnsent) {
    auto a = answer_metrics_request("HEAD", "/metrics", [] { return std::string("abc\n"); });
    EXPECT_EQ(a.status, 200);
    EXPECT_TRUE(a.head);
    EXPECT_EQ(a.body.size(), 4u);
}

TEST(MetricsHttpAnswer, OtherMethodsAre405WithAllow) {
    int renders = 0;
    auto render = [&] {
        ++renders;
        return std::string("x 1\n");
    };
    for (const char* m : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
        auto a = answer_metrics_request(m, "/metrics", render);
        EXPECT_EQ(a.status, 405) << m;
        ASSERT_NE(a.allow, nullptr);
        EXPECT_STREQ(a.allow, "GET, HEAD");
    }
    EXPECT_EQ(renders, 0); // nothing is rendered for a refused request
}

TEST(MetricsHttpAnswer, OtherPathsAre404WhateverTheMethod) {
    for (const char* p : {"/", "/metrics/", "/metricsx", "/favicon.ico", ""}) {
        auto a = answer_metrics_request("GET", p, [] { return std::string("x 1\n"); });
        EXPECT_EQ(a.status, 404) << p;
        EXPECT_NE(a.body.find("/metrics"), std::string::npos);
    }
    EXPECT_EQ(answer_metrics_request("POST", "/other", [] { return std::string(); }).status, 404);
}

TEST(MetricsHttpAnswer, ARendererThatThrowsIs500WithTheReason) {
    auto a = answer_metrics_request(
        "GET", "/metrics", []() -> std::string { throw std::runtime_error("no pipeline"); });
    EXPECT_EQ(a.status, 500);
    EXPECT_NE(a.body.find("no pipeline"), std::string::npos);
}

TEST(MetricsHttpListen, AcceptsIpv4AndPortOrNothing) {
    EXPECT_TRUE(check_metrics_listen(""));
    EXPECT_TRUE(check_metrics_listen("127.0.0.1:9464"));
    EXPECT_TRUE(check_metrics_listen("0.0.0.0:0"));
    for (const char* bad :
         {"9464", ":9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:94x",
          "localhost:9464", "[::1]:9464", "::1:9464", "127.0.0.1:9464s"}) {
        auto r = check_metrics_listen(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.err().message.find("metrics.listen"), std::string::npos) << r.err().message;
        EXPECT_NE(r.err().message.find("127.0.0.1:9464"), std::string::npos) << r.err().message;
    }
}

// ---- the server, through real sockets ----

void send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += size_t(n);
    }
}

// Reads more into `buf`; false on EOF, error or the deadline.
bool read_more(int fd, std::string& buf, int64_t deadline_ns) {
    const int64_t left_ms = (deadline_ns - monotonic_ns()) / 1'000'000;
    if (left_ms <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, int(left_ms)) <= 0) return false;
    char chunk[4096];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, size_t(n));
    return true;
}

struct response {
    int status = 0;
    std::map<std::string, std::string> headers; // lower-case names
    std::string body;
};

// One response from `buf` (filled from fd as needed); `head`: no body follows.
std::optional<response> read_response(int fd, std::string& buf, bool head = false) {
    const int64_t deadline = monotonic_ns() + int64_t(deadline_ms) * 1'000'000;
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
        if (!read_more(fd, buf, deadline)) return std::nullopt;
    response r;
    std::string head_text = buf.substr(0, end);
    buf.erase(0, end + 4);
    size_t line_end = head_text.find("\r\n");
    std::string status_line = head_text.substr(0, line_end);
    if (std::sscanf(status_line.c_str(), "HTTP/1.%*d %d", &r.status) != 1) return std::nullopt;
    size_t pos = line_end == std::string::npos ? head_text.size() : line_end + 2;
    while (pos < head_text.size()) {
        size_t e = head_text.find("\r\n", pos);
        if (e == std::string::npos) e = head_text.size();
        std::string line = head_text.substr(pos, e - pos);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (auto& c : name)
                c = char(std::tolower(static_cast<unsigned char>(c)));
            size_t v = line.find_first_not_of(' ', colon + 1);
            r.headers[name] = v == std::string::npos ? "" : line.substr(v);
        }
        pos = e + 2;
    }
    if (head) return r;
    size_t length = 0;
    if (auto it = r.headers.find("content-length"); it != r.headers.end())
        length = std::stoul(it->second);
    while (buf.size() < length)
        if (!read_more(fd, buf, deadline)) return std::nullopt;
    r.body = buf.substr(0, length);
    buf.erase(0, length);
    return r;
}

// True when the server closes `fd` before the deadline (reading and dropping anything).
bool closed_by_server(int fd, int within_ms) {
    const int64_t deadline = monotonic_ns() + int64_t(within_ms) * 1'000'000;
    char chunk[4096];
    while (monotonic_ns() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, int((deadline - monotonic_ns()) / 1'000'000) + 1) <= 0) continue;
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return true;
    }
    return false;
}

class MetricsHttp : public ::testing::Test {
  protected:
    void start(metrics_http_config cfg = {}) {
        if (cfg.listen.empty()) cfg.listen = "127.0.0.1:0";
        auto r = metrics_http_server::start(cfg, [this] {
            const uint64_t n = ++renders;
            return "sluice_test_renders_total " + std::to_string(n) + "\n";
        });
        ASSERT_TRUE(r) << r.err().message;
        server = std::move(r.value());
        ASSERT_NE(server->port(), 0);
    }
    int connect() {
        int fd = sluice::testing::connect_loopback_tcp(server->port());
        EXPECT_GE(fd, 0);
        return fd;
    }
    std::atomic<uint64_t> renders{0};
    std::unique_ptr<metrics_http_server> server;
};

TEST_F(MetricsHttp, KeepAliveServesAFreshRenderPerRequest) {
    start();
    int fd = connect();
    std::string buf;
    for (int i = 1; i <= 3; ++i) {
        send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        auto r = read_response(fd, buf);
        ASSERT_TRUE(r) << "request " << i;
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, "sluice_test_renders_total " + std::to_string(i) + "\n");
        EXPECT_EQ(r->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
        EXPECT_EQ(r->headers["connection"], "keep-alive");
    }
    ::close(fd);
    EXPECT_EQ(server->counters().ok, 3u);
}

// The headers and the body leave in two sends; with Nagle on, the body would wait for
// the client's delayed ACK (40 ms on Linux) on every keep-alive request after the first.
TEST_F(MetricsHttp, KeepAliveRequestsAreNotHeldByNagle) {
    start();
    int fd = connect();
    std::string buf;
    std::vector<int64_t> us;
    for (int i = 0; i < 21; ++i) {
        const int64_t t0 = monotonic_ns();
        send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        auto r = read_response(fd, buf);
        ASSERT_TRUE(r);
        us.push_back((monotonic_ns() - t0) / 1000);
    }
    ::close(fd);
    std::sort(us.begin(), us.end());
    EXPECT_LT(us[us.size() / 2], 30'000) << "median round trip in us";
}

TEST_F(MetricsHttp, PipelinedRequestsAreAnsweredInOrderAndCloseIsHonoured) {
    start();
    int fd = connect();
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                 "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                 "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string buf;
    auto get = read_response(fd, buf);
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200);
    EXPECT_EQ(get->body, "sluice_test_renders_total 1\n");
    // HEAD: the length of what GET would send, and no body (else the next response
    // would not parse).
    auto head = read_response(fd, buf, true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->headers["content-length"],
              std::to_string(std::string("sluice_test_renders_total 2\n").size()));
    auto del = read_response(fd, buf);
    ASSERT_TRUE(del);
    EXPECT_EQ(del->status, 405);
    EXPECT_EQ(del->headers["allow"], "GET, HEAD");
    auto other = read_response(fd, buf);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404);
    EXPECT_TRUE(closed_by_server(fd, deadline_ms));
    ::close(fd);
    auto c = server->counters();
    EXPECT_EQ(c.ok, 2u);
    EXPECT_EQ(c.method_not_allowed, 1u);
    EXPECT_EQ(c.not_found, 1u);
    EXPECT_EQ(renders.load(), 2u); // the 405 and the 404 render nothing
}

TEST_F(MetricsHttp, Http10ClientGetsItsAnswerAndTheConnectionCloses) {
    start();
    int fd = connect();
    send_all(fd, "GET /metrics HTTP/1.0\r\n\r\n");
    std::string buf;
    auto r = read_response(fd, buf);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(closed_by_server(fd, deadline_ms));
    ::close(fd);
}

TEST_F(MetricsHttp, AnOversizeRequestIsRefusedAndClosed) {
    metrics_http_config cfg;
    cfg.request_bytes_max = 2048;
    start(cfg);
    int fd = connect();
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(4096, 'a') +
                     "\r\n\r\n");
    std::string buf;
    auto r = read_response(fd, buf);
    ASSERT_TRUE(r);
    EXPECT_GE(r->status, 400);
    EXPECT_LT(r->status, 500);
    EXPECT_TRUE(closed_by_server(fd, deadline_ms));
    ::close(fd);
    EXPECT_EQ(renders.load(), 0u);
    // A request within the bound still works.
    fd = connect();
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(512, 'a') +
                     "\r\n\r\n");
    buf.clear();
    r = read_response(fd, buf);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ::close(fd);
}

TEST_F(MetricsHttp, ASlowClientIsClosedAndDoesNotHoldUpOthers) {
    metrics_http_config cfg;
    cfg.request_timeout_ms = 300;
    cfg.threads = 2;
    start(cfg);
    // Half a request, then nothing: the server gives up on it after its request timeout.
    int slow = connect();
    send_all(slow, "GET /metrics HTTP/1.1\r\nHo");
    // Meanwhile another client is served at once.
    int fast = connect();
    send_all(fast, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string buf;
    auto r = read_response(fast, buf);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ::close(fast);
    const int64_t t0 = monotonic_ns();
    EXPECT_TRUE(closed_by_server(slow, deadline_ms));
    EXPECT_LT(monotonic_ns() - t0, int64_t(deadline_ms) * 1'000'000);
    ::close(slow);
    EXPECT_EQ(renders.load(), 1u);
}

TEST_F(MetricsHttp, AnIdleKeepAliveConnectionIsClosedAfterItsTimeout) {
    metrics_http_config cfg;
    cfg.keep_alive_timeout_ms = 300;
    start(cfg);
    int fd = connect();
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string buf;
    auto r = read_response(fd, buf);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->headers["connection"], "keep-alive");
    EXPECT_TRUE(closed_by_server(fd, deadline_ms));
    ::close(fd);
}

TEST_F(MetricsHttp, AGarbledRequestLineGets400AndIsClosed) {
    start();
    int fd = connect();
    send_all(fd, "this is not http\r\n\r\n");
    // civetweb echoes the garbled "version" into its status line, so read raw bytes.
    std::string buf;
    const int64_t deadline = monotonic_ns() + int64_t(deadline_ms) * 1'000'000;
    while (read_more(fd, buf, deadline)) {
    }
    EXPECT_NE(buf.find(" 400 Bad Request\r\n"), std::string::npos) << buf;
    EXPECT_NE(buf.find("Connection: close"), std::string::npos) << buf;
    ::close(fd);
    EXPECT_EQ(renders.load(), 0u);
}

TEST_F(MetricsHttp, ATakenPortIsOneLineNamingTheAddressAndTheFix) {
    start();
    metrics_http_config cfg;
    cfg.listen = "127.0.0.1:" + std::to_string(server->port());
    auto second = metrics_http_server::start(cfg, [] { return std::string(); });
    ASSERT_FALSE(second);
    const std::string& m = second.err().message;
    EXPECT_NE(m.find(cfg.listen), std::string::npos) << m;
    EXPECT_NE(m.find("metrics.listen"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST_F(MetricsHttp, StopIsIdempotentAndClosesTheListener) {
    start();
    const uint16_t port = server->port();
    EXPECT_EQ(server->url(), "http://127.0.0.1:" + std::to_string(port) + "/metrics");
    server->stop();
    server->stop();
    EXPECT_LT(sluice::testing::connect_loopback_tcp(port), 0);
}

} // namespace
} // namespace sluice::control
