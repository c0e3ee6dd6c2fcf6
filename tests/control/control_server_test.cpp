#include "control/control_server.h"

#include <grp.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/limits.h"
#include "base/log.h"
#include "control/protocol.h"
#include "tests/control/control_test_util.h"

namespace sluice::control {
namespace {

using namespace testing;

constexpr uint32_t nobody = 65534;
constexpr int timeout_ms = 5000;

std::map<std::string, handler> test_handlers() {
    return {
        {"echo",
         [](const json& req) {
             return json{{"echo", req}};
         }},
        {"status",
         [](const json&) {
             return json{{"state", "running"}};
         }},
        {"throw", [](const json&) -> json { throw std::runtime_error("boom: disk on fire"); }},
        {"fail",
         [](const json&) {
             return json{{"ok", false}, {"error", "custom failure"}};
         }},
        {"scalar", [](const json&) { return json(42); }},
        {"slow",
         [](const json&) {
             std::this_thread::sleep_for(std::chrono::milliseconds(500));
             return json::object();
         }},
    };
}

class ControlServer : public ::testing::Test {
  protected:
    void start(server_config cfg = {}) {
        if (cfg.socket_path.empty()) cfg.socket_path = path;
        auto r = control_server::start(cfg, test_handlers());
        ASSERT_TRUE(r.ok()) << r.err().message;
        server = std::move(r.value());
    }
    json call(const json& req) {
        auto r = request(path, req, timeout_ms);
        EXPECT_TRUE(r.ok()) << r.err().message;
        return r.ok() ? r.value() : json();
    }

    temp_dir dir;
    std::string path = dir.file("ctl.sock");
    std::unique_ptr<control_server> server;
};

TEST_F(ControlServer, RepliesToRequest) {
    start();
    json reply = call({{"cmd", "echo"}, {"x", 7}});
    EXPECT_EQ(reply["ok"], true);
    EXPECT_EQ(reply["v"], protocol_version);
    EXPECT_EQ(reply["echo"]["x"], 7);
    EXPECT_EQ(reply["echo"]["cmd"], "echo");
    EXPECT_EQ(server->requests_total(), 1u);
}

TEST_F(ControlServer, ReplyLineHasOkFirst) {
    start();
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "{\"v\":1,\"cmd\":\"status\"}\n"));
    EXPECT_EQ(read_line(fd), "{\"ok\":true,\"v\":1,\"state\":\"running\"}");
    ::close(fd);
}

TEST_F(ControlServer, BodyWithOkIsPassedThrough) {
    start();
    json reply = call({{"cmd", "fail"}});
    EXPECT_EQ(reply["ok"], false);
    EXPECT_EQ(reply["error"], "custom failure");
}

TEST_F(ControlServer, NonObjectBodyIsCarriedAsResult) {
    start();
    json reply = call({{"cmd", "scalar"}});
    EXPECT_EQ(reply["ok"], true);
    EXPECT_EQ(reply["result"], 42);
}

TEST_F(ControlServer, HandlerExceptionBecomesErrorReply) {
    start();
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "{\"cmd\":\"throw\"}\n{\"cmd\":\"status\"}\n"));
    std::string pending;
    EXPECT_EQ(read_line(fd, pending), "{\"ok\":false,\"error\":\"boom: disk on fire\"}");
    // The server and the connection both survive.
    EXPECT_EQ(json::parse(read_line(fd, pending))["state"], "running");
    ::close(fd);
}

TEST_F(ControlServer, ServesManyConcurrentClients) {
    start();
    constexpr int threads = 100;
    constexpr int per_thread = 10;
    std::atomic<int> good{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                auto r = request(path, {{"cmd", "echo"}, {"id", t * 1000 + i}}, timeout_ms);
                if (r.ok() && r.value()["ok"] == true && r.value()["echo"]["id"] == t * 1000 + i)
                    good.fetch_add(1);
            }
        });
    }
    for (auto& th : pool)
        th.join();
    EXPECT_EQ(good.load(), threads * per_thread);
    EXPECT_EQ(server->requests_total(), uint64_t(threads * per_thread));
}

TEST_F(ControlServer, MalformedJsonGetsErrorAndConnectionSurvives) {
    start();
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    std::string pending;
    ASSERT_TRUE(send_all(fd, "{not json\n"));
    json bad = json::parse(read_line(fd, pending));
    EXPECT_EQ(bad["ok"], false);
    EXPECT_NE(bad["error"].get<std::string>().find("malformed request"), std::string::npos);
    ASSERT_TRUE(send_all(fd, "{\"cmd\":\"status\"}\n"));
    EXPECT_EQ(json::parse(read_line(fd, pending))["ok"], true);
    ::close(fd);
}

TEST_F(ControlServer, DeeplyNestedJsonIsRefusedNotCrashed) {
    start();
    std::string deep(30000, '[');
    deep += std::string(30000, ']');
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, deep + "\n"));
    json reply = json::parse(read_line(fd));
    EXPECT_EQ(reply["ok"], false);
    EXPECT_NE(reply["error"].get<std::string>().find("must be a JSON object"), std::string::npos);
    ::close(fd);
}

TEST_F(ControlServer, MissingOrBadCmdIsAnError) {
    start();
    for (const char* req : {"{}", "{\"cmd\":5}", "[1,2]", "\"stats\""}) {
        int fd = raw_connect(path);
        ASSERT_GE(fd, 0);
        ASSERT_TRUE(send_all(fd, std::string(req) + "\n"));
        json reply = json::parse(read_line(fd));
        EXPECT_EQ(reply["ok"], false) << req;
        EXPECT_TRUE(reply["error"].is_string()) << req;
        ::close(fd);
    }
}

TEST_F(ControlServer, WrongProtocolVersionIsAnError) {
    start();
    json reply = call({{"cmd", "status"}, {"v", 2}});
    EXPECT_EQ(reply["ok"], false);
    EXPECT_NE(reply["error"].get<std::string>().find("unsupported protocol version 2"),
              std::string::npos);
}

TEST_F(ControlServer, UnknownCommandListsKnownOnes) {
    start();
    json reply = call({{"cmd", "nope"}});
    EXPECT_EQ(reply["ok"], false);
    std::string err = reply["error"];
    EXPECT_NE(err.find("unknown command \"nope\""), std::string::npos) << err;
    EXPECT_NE(err.find("echo"), std::string::npos) << err;
}

TEST_F(ControlServer, PipelinedRequestsAreAnsweredInOrder) {
    start();
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "{\"cmd\":\"echo\",\"n\":1}\n\n{\"cmd\":\"echo\",\"n\":2}\r\n"
                             "{\"cmd\":\"echo\",\"n\":3}\n"));
    std::string pending;
    for (int n = 1; n <= 3; ++n)
        EXPECT_EQ(json::parse(read_line(fd, pending))["echo"]["n"], n);
    ::close(fd);
}

TEST_F(ControlServer, RequestWithoutNewlineIsAnsweredAtHalfClose) {
    start();
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "{\"cmd\":\"status\"}"));
    ::shutdown(fd, SHUT_WR);
    EXPECT_EQ(json::parse(read_line(fd))["state"], "running");
    EXPECT_TRUE(closed_by_peer(fd));
    ::close(fd);
}

TEST_F(ControlServer, RequestOfExactlyTheLimitIsServed) {
    start();
    std::string head = "{\"cmd\":\"echo\",\"pad\":\"";
    std::string tail = "\"}";
    std::string req =
        head + std::string(limits::control_request_bytes_max - head.size() - tail.size(), 'a') +
        tail;
    ASSERT_EQ(req.size(), limits::control_request_bytes_max);
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, req + "\n"));
    EXPECT_EQ(json::parse(read_line(fd))["ok"], true);
    ::close(fd);
}

TEST_F(ControlServer, OversizedRequestGetsErrorAndClose) {
    start();
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    // No newline: the server must not wait for one.
    ASSERT_TRUE(send_all(fd, std::string(limits::control_request_bytes_max + 1, 'a')));
    json reply = json::parse(read_line(fd));
    EXPECT_EQ(reply["ok"], false);
    EXPECT_NE(reply["error"].get<std::string>().find("exceeds"), std::string::npos);
    EXPECT_TRUE(closed_by_peer(fd));
    ::close(fd);
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
}

// A flood of refusals writes the log's burst and counts the rest (base/log.h), so a
// misbehaving client cannot fill the journal.
TEST_F(ControlServer, RefusalLogsAreCutByTheLogRateLimitAndCounted) {
    log_set_rate_limit({3, 600'000});
    start();
    const uint64_t before = log_suppressed_total();
    ::testing::internal::CaptureStderr();
    for (int i = 0; i < 20; ++i) {
        int fd = raw_connect(path);
        ASSERT_GE(fd, 0);
        ASSERT_TRUE(send_all(fd, std::string(limits::control_request_bytes_max + 1, 'a')));
        EXPECT_EQ(json::parse(read_line(fd))["ok"], false);
        EXPECT_TRUE(closed_by_peer(fd));
        ::close(fd);
    }
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true); // every refusal was handled and logged
    const std::string err = ::testing::internal::GetCapturedStderr();
    log_set_rate_limit({});
    size_t lines = 0;
    for (size_t p = err.find("request over"); p != std::string::npos;
         p = err.find("request over", p + 1))
        ++lines;
    EXPECT_EQ(lines, 3u) << err;
    EXPECT_EQ(log_suppressed_total() - before, 17u);
}

TEST_F(ControlServer, SocketFileModeIs0600ByDefault) {
    start();
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(ControlServer, ConfiguredModeAndGroupDespiteUmask) {
    mode_t old = ::umask(077);
    start({.socket_path = path, .mode = 0660, .group_gid = nobody});
    ::umask(old);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    EXPECT_EQ(st.st_gid, nobody);
}

TEST_F(ControlServer, ModeOutside0777IsRejected) {
    auto r = control_server::start({.socket_path = path, .mode = 04755}, test_handlers());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::bad_config);
}

TEST_F(ControlServer, StaleSocketFileIsReplaced) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr = unix_addr(path);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd); // the file stays behind, as after kill -9
    ASSERT_TRUE(std::filesystem::exists(path));
    start();
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
}

TEST_F(ControlServer, LiveSocketIsRefused) {
    start();
    auto second = control_server::start({.socket_path = path}, test_handlers());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.err().code, errc::busy);
    EXPECT_EQ(second.err().message,
              "another sluiced is serving " + path + " (stop it or pass --control-socket)");
    // The first one still serves, and its file is still there.
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
}

TEST_F(ControlServer, NonSocketFileIsNotTouched) {
    std::ofstream(path) << "precious";
    auto r = control_server::start({.socket_path = path}, test_handlers());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("is not a socket"), std::string::npos);
    EXPECT_TRUE(std::filesystem::is_regular_file(path));
}

TEST_F(ControlServer, MissingDirectoryIsAClearError) {
    auto r = control_server::start({.socket_path = dir.file("no/such/dir.sock")}, test_handlers());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("create the directory"), std::string::npos) << r.err().message;
}

TEST_F(ControlServer, StopClosesClientsAndRemovesSocketFile) {
    start();
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "{\"cmd\":\"status\"}\n"));
    ASSERT_EQ(json::parse(read_line(fd))["ok"], true);
    server->stop();
    EXPECT_TRUE(closed_by_peer(fd, 1000));
    EXPECT_FALSE(std::filesystem::exists(path));
    server->stop(); // idempotent
    ::close(fd);
}

TEST_F(ControlServer, StopLeavesASuccessorsSocketFile) {
    start();
    ASSERT_EQ(::unlink(path.c_str()), 0);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr = unix_addr(path);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    server->stop();
    EXPECT_TRUE(std::filesystem::exists(path));
    ::close(fd);
}

TEST_F(ControlServer, ClientGivesUpAfterTimeout) {
    start();
    auto r = request(path, {{"cmd", "slow"}}, 100);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("no reply from " + path + " within 100 ms"), std::string::npos)
        << r.err().message;
}

// A handler that blocks until released (or 60 s pass), telling the test when it runs:
// a flush waiting for a stuck disk, a windows scan of a large table.
struct blocker {
    std::mutex m;
    std::condition_variable cv;
    bool released = false;
    std::atomic<int> entered{0};
    handler fn() {
        return [this](const json&) {
            entered.fetch_add(1);
            std::unique_lock lock(m);
            cv.wait_for(lock, std::chrono::seconds(60), [&] { return released; });
            return json{{"blocked", true}};
        };
    }
    void release() {
        {
            std::lock_guard lock(m);
            released = true;
        }
        cv.notify_all();
    }
    // Waits (up to a deadline, never a fixed sleep) until the handler is running.
    bool wait_entered(int n = 1) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (entered.load() < n)
            if (std::chrono::steady_clock::now() > deadline) return false;
            else std::this_thread::yield();
        return true;
    }
};

std::unique_ptr<control_server> start_with_blocker(const std::string& path, blocker& b,
                                                   uint32_t deadline_ms = 30'000) {
    server_config cfg;
    cfg.socket_path = path;
    cfg.slow_commands = {"block"};
    cfg.slow_deadline_ms = deadline_ms;
    cfg.tick_interval_ms = 20;
    auto handlers = test_handlers();
    handlers["block"] = b.fn();
    auto r = control_server::start(cfg, std::move(handlers));
    EXPECT_TRUE(r.ok()) << r.err().message;
    return r.ok() ? std::move(r.value()) : nullptr;
}

// A slow command runs on the server's pool: while one is in flight, other clients are
// answered at once (before the pool, the io_uring loop ran it and every client waited).
TEST_F(ControlServer, SlowRequestInFlightDoesNotStallOtherClients) {
    blocker b;
    server = start_with_blocker(path, b);
    ASSERT_NE(server, nullptr);
    std::thread slow([&] {
        auto r = request(path, {{"cmd", "block"}}, 60'000);
        ASSERT_TRUE(r.ok()) << r.err().message;
        EXPECT_EQ(r.value()["ok"], true);
        EXPECT_EQ(r.value()["blocked"], true);
    });
    ASSERT_TRUE(b.wait_entered());
    // Generous for a loaded 2-core machine, far below the blocked handler's 60 s.
    auto status = request(path, {{"cmd", "status"}}, 3000);
    const bool answered = status.ok();
    b.release();
    slow.join();
    ASSERT_TRUE(answered) << status.err().message;
    EXPECT_EQ(status.value()["ok"], true);
    EXPECT_EQ(status.value()["state"], "running");
}

// Past its deadline a slow request is answered with an error, the connection goes on
// with its next request, and the late result is dropped.
TEST_F(ControlServer, SlowRequestPastItsDeadlineIsAnsweredWithAnError) {
    blocker b;
    server = start_with_blocker(path, b, 200);
    ASSERT_NE(server, nullptr);
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    std::string pending;
    ASSERT_TRUE(send_all(fd, "{\"cmd\":\"block\"}\n{\"cmd\":\"status\"}\n"));
    json late = json::parse(read_line(fd, pending, 30'000), nullptr, false);
    ASSERT_TRUE(late.is_object());
    EXPECT_EQ(late["ok"], false);
    EXPECT_NE(late.value("error", "").find("did not complete within 200 ms"), std::string::npos)
        << late.dump();
    // Pipelined behind it, answered in order.
    json next = json::parse(read_line(fd, pending, 30'000), nullptr, false);
    ASSERT_TRUE(next.is_object());
    EXPECT_EQ(next["ok"], true);
    EXPECT_EQ(next["state"], "running");
    EXPECT_EQ(server->counters().deadline_exceeded, 1u);
    b.release();
    // The blocked handler's own reply never reaches the client: the next line is the
    // answer to the next request.
    ASSERT_TRUE(send_all(fd, "{\"cmd\":\"echo\",\"n\":3}\n"));
    json echo = json::parse(read_line(fd, pending, 30'000), nullptr, false);
    ASSERT_TRUE(echo.is_object());
    EXPECT_EQ(echo["echo"]["n"], 3);
    ::close(fd);
}

TEST_F(ControlServer, ClientOverTheBoundIsToldAndClosed) {
    start();
    std::vector<int> fds;
    for (uint32_t i = 0; i < limits::control_clients_max; ++i) {
        int fd = raw_connect(path);
        ASSERT_GE(fd, 0);
        // A reply proves the server has accepted this one and holds its slot.
        ASSERT_TRUE(send_all(fd, "{\"cmd\":\"status\"}\n"));
        ASSERT_EQ(json::parse(read_line(fd))["ok"], true) << i;
        fds.push_back(fd);
    }
    int extra = raw_connect(path);
    ASSERT_GE(extra, 0);
    std::string line = read_line(extra);
    EXPECT_NE(line.find("too many control clients"), std::string::npos) << line;
    ::close(extra);
    for (int fd : fds)
        ::close(fd);
    // Slots come back once the server sees the closes.
    bool served = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!served && std::chrono::steady_clock::now() < deadline) {
        auto r = request(path, {{"cmd", "status"}}, timeout_ms);
        served = r.ok() && r.value()["ok"] == true;
        if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(served);
}

// 1,000 clients connected at once (issue 15): the first control_clients_max hold slots
// and are served, every other one is told "too many control clients" and closed, each
// refusal is counted, and once they all close the server serves new clients again.
TEST_F(ControlServer, AThousandConcurrentClientsAreBoundedAndTheServerRecovers) {
    constexpr uint32_t clients = 1000;
    fd_limit_guard guard;
    const rlimit saved = guard.saved;
    rlimit raised = saved;
    const rlim_t need = 2 * clients + 256; // our ends, the server's ends, the rest
    if (raised.rlim_cur != RLIM_INFINITY && raised.rlim_cur < need) {
        if (raised.rlim_max != RLIM_INFINITY && raised.rlim_max < need) {
            raised.rlim_max = need; // root (CI) may raise the hard limit; others cannot
            if (::setrlimit(RLIMIT_NOFILE, &raised) != 0)
                GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << saved.rlim_max << " < " << need
                             << " and not raisable without CAP_SYS_RESOURCE";
        }
        raised.rlim_cur = need;
        ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &raised), 0);
    }
    start();
    std::vector<int> fds;
    for (uint32_t i = 0; i < clients; ++i) {
        int fd = raw_connect(path);
        ASSERT_GE(fd, 0) << i;
        fds.push_back(fd);
    }
    // Every client asks; a refused one may already be closed (the send then fails).
    for (int fd : fds)
        (void)send_all(fd, "{\"cmd\":\"status\"}\n");
    uint32_t served = 0, refused = 0, other = 0;
    for (int fd : fds) {
        std::string line = read_line(fd, 30'000);
        if (line.find("too many control clients") != std::string::npos) ++refused;
        else if (json::parse(line, nullptr, false).value("ok", false)) ++served;
        else ++other;
    }
    EXPECT_EQ(served, limits::control_clients_max);
    EXPECT_EQ(refused, clients - limits::control_clients_max);
    EXPECT_EQ(other, 0u);
    EXPECT_EQ(server->counters().refused_clients, clients - limits::control_clients_max);
    for (int fd : fds)
        ::close(fd);
    bool recovered = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!recovered && std::chrono::steady_clock::now() < deadline) {
        auto r = request(path, {{"cmd", "status"}}, timeout_ms);
        recovered = r.ok() && r.value()["ok"] == true && server->counters().connections_open <= 1;
        if (!recovered) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(recovered) << server->counters().connections_open << " connections still open";
}

// Out of file descriptors (issue 15): the server's accept fails with EMFILE while a
// client waits in the backlog. It must count and log it, keep retrying (not spin, not
// stop accepting), and serve that client once descriptors are free again.
TEST_F(ControlServer, OutOfDescriptorsTheAcceptIsCountedLoggedAndRetried) {
    start();
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
    ::testing::internal::CaptureStderr(); // its temp file before the limit
    struct release_stderr {
        bool done = false;
        std::string get() { return done = true, ::testing::internal::GetCapturedStderr(); }
        ~release_stderr() { if (!done) (void)::testing::internal::GetCapturedStderr(); }
    } captured;
    fd_limit_guard guard; // restores the limit and closes the fillers on every path
    const rlimit saved = guard.saved;
    // The limit is on descriptor numbers: just above the highest one open once the
    // previous test's server has released its descriptors.
    const int highest = settled_highest_fd();
    rlimit low = saved;
    low.rlim_cur = rlim_t(highest) + 16;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    // Take every free descriptor but one, then connect with that one: the client waits in
    // the listen backlog and the server has none left to accept it with.
    std::vector<int>& fillers = guard.taken;
    for (;;) {
        int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        fillers.push_back(fd);
    }
    ASSERT_FALSE(fillers.empty());
    ::close(fillers.back());
    fillers.pop_back();
    int client = raw_connect(path);
    ASSERT_GE(client, 0) << "connect: " << std::strerror(-client);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server->counters().accept_errors < 1 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const uint64_t errors = server->counters().accept_errors;
    ASSERT_GE(errors, 1u) << "the accept did not fail: descriptors were left";
    // A descriptor the previous test's server released late may let a retry succeed at
    // once; either way no new connection re-arms the accept: the client below is served
    // only if the server retried by itself.
    // Retried after a back-off (100 ms), not in a spin: a few tries in 200 ms, not
    // thousands.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_LE(server->counters().accept_errors - errors, 10u);
    // Clients close: descriptors come back, the waiting client is accepted and served.
    for (int fd : fillers)
        ::close(fd);
    fillers.clear();
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
    ASSERT_TRUE(send_all(client, "{\"cmd\":\"status\"}\n"));
    EXPECT_EQ(json::parse(read_line(client, 10'000), nullptr, false).value("ok", false), true);
    ::close(client);
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
    const std::string err = captured.get();
    EXPECT_NE(err.find("cannot accept"), std::string::npos) << err;
    EXPECT_NE(err.find("Too many open files"), std::string::npos) << err;
}

// Runs a client as `nobody` in a child process: connect, send a status request, read
// the reply. Returns the reply line, or "connect errno N".
std::string request_as_nobody(const std::string& path) {
    sockaddr_un addr = unix_addr(path);
    const char req[] = "{\"cmd\":\"status\"}\n";
    int pipefd[2];
    if (::pipe(pipefd) != 0) return "pipe failed";
    pid_t pid = ::fork();
    if (pid == 0) {
        // The parent has threads: only async-signal-safe calls until _exit.
        ::close(pipefd[0]);
        if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0)
            ::_exit(100);
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(errno);
        (void)!::send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
        char buf[1024];
        ssize_t n;
        // Until the reply's newline: an allowed client's connection stays open.
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
            (void)!::write(pipefd[1], buf, size_t(n));
            if (::memchr(buf, '\n', size_t(n)) != nullptr) break;
        }
        ::_exit(0);
    }
    ::close(pipefd[1]);
    std::string out;
    char buf[1024];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0)
        out.append(buf, size_t(n));
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) return "child crashed";
    if (WEXITSTATUS(status) != 0) return "connect errno " + std::to_string(WEXITSTATUS(status));
    return out.substr(0, out.find('\n'));
}

TEST_F(ControlServer, FileModeKeepsOtherUsersOut) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as nobody";
    start();
    EXPECT_EQ(request_as_nobody(path), "connect errno " + std::to_string(EACCES));
}

TEST_F(ControlServer, PeerNotAllowedIsRefusedAndCounted) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as nobody";
    start({.socket_path = path, .mode = 0666});
    EXPECT_EQ(request_as_nobody(path),
              "{\"ok\":false,\"error\":\"permission denied: uid 65534 is not allowed (add it to "
              "control.allow_uids)\"}");
    EXPECT_EQ(server->refused_total(), 1u);
    EXPECT_EQ(server->requests_total(), 0u); // the request was never read
}

TEST_F(ControlServer, AllowedUidIsServed) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as nobody";
    start({.socket_path = path, .mode = 0666, .access = {.allow_uids = {nobody}}});
    EXPECT_EQ(json::parse(request_as_nobody(path))["state"], "running");
    EXPECT_EQ(server->refused_total(), 0u);
}

TEST_F(ControlServer, AllowedGidIsServed) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as nobody";
    start({.socket_path = path, .mode = 0666, .access = {.allow_gids = {nobody}}});
    EXPECT_EQ(json::parse(request_as_nobody(path))["state"], "running");
}

TEST_F(ControlServer, RefusedPeerCanBeAllowedByUpdatingAccess) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as nobody";
    start({.socket_path = path, .mode = 0666});
    EXPECT_NE(request_as_nobody(path).find("permission denied"), std::string::npos);
    access_policy a = server->access();
    a.allow_uids.push_back(nobody);
    server->update_access(a);
    EXPECT_EQ(json::parse(request_as_nobody(path))["state"], "running");
    EXPECT_EQ(server->counters().refused_peers, 1u);
}

// Pipelines `n` requests on one connection; returns how many were answered ok and how
// many were rate limited (and checks there was nothing else).
std::pair<int, int> pipeline(const std::string& path, int n) {
    int fd = raw_connect(path);
    EXPECT_GE(fd, 0);
    std::string batch;
    for (int i = 0; i < n; ++i)
        batch += "{\"cmd\":\"status\"}\n";
    EXPECT_TRUE(send_all(fd, batch));
    std::string pending;
    int ok = 0, limited = 0;
    for (int i = 0; i < n; ++i) {
        json r = json::parse(read_line(fd, pending), nullptr, false);
        if (r.is_object() && r["ok"] == true) {
            ++ok;
        } else if (r.is_object() &&
                   r["error"].get<std::string>().rfind("rate limited", 0) == 0) {
            ++limited;
        } else {
            ADD_FAILURE() << "unexpected reply " << r.dump();
        }
    }
    ::close(fd);
    return {ok, limited};
}

TEST_F(ControlServer, ConnectionRateLimitAnswersTheExcessWithAnError) {
    start({.socket_path = path, .access = {.requests_per_s = 0, .connection_requests_per_s = 50}});
    auto [ok, limited] = pipeline(path, 200);
    // One second's worth at once, plus what refills while the 200 are read (well under 1 s).
    EXPECT_GE(ok, 50);
    EXPECT_LT(ok, 100);
    EXPECT_EQ(ok + limited, 200);
    auto c = server->counters();
    EXPECT_EQ(c.rate_limited, uint64_t(limited));
    EXPECT_EQ(c.requests, 200u);
    // Another connection has its own budget.
    EXPECT_GE(pipeline(path, 10).first, 10);
}

TEST_F(ControlServer, GlobalRateLimitSpansConnections) {
    start({.socket_path = path, .access = {.requests_per_s = 100, .connection_requests_per_s = 0}});
    int ok = 0, limited = 0;
    for (int i = 0; i < 5; ++i) {
        auto [o, l] = pipeline(path, 60);
        ok += o;
        limited += l;
    }
    EXPECT_GE(ok, 100);
    EXPECT_LT(ok, 200);
    EXPECT_EQ(ok + limited, 300);
    EXPECT_EQ(server->counters().rate_limited, uint64_t(limited));
}

TEST_F(ControlServer, IdleConnectionIsToldAndClosed) {
    start({.socket_path = path, .idle_timeout_ms = 200, .tick_interval_ms = 50});
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "{\"cmd\":\"sta")); // never completed
    std::string line = read_line(fd, 3000);
    EXPECT_NE(line.find("no request within 200 ms"), std::string::npos) << line;
    EXPECT_TRUE(closed_by_peer(fd));
    ::close(fd);
    EXPECT_EQ(server->counters().idle_closed, 1u);
    EXPECT_EQ(server->counters().requests, 0u); // the fragment was never taken as a request
    // A client that keeps asking is not idle.
    fd = raw_connect(path);
    std::string pending;
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(send_all(fd, "{\"cmd\":\"status\"}\n"));
        ASSERT_EQ(json::parse(read_line(fd, pending))["ok"], true) << i;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::close(fd);
}

// Hostile clients (issue 15, item 6): a slow-loris client trickling a request byte by
// byte never completes one, so the idle timeout closes it; other clients are served
// promptly meanwhile.
TEST_F(ControlServer, SlowLorisTricklingBytesIsClosedAtTheIdleTimeout) {
    start({.socket_path = path, .idle_timeout_ms = 300, .tick_interval_ms = 50});
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    const std::string req = "{\"cmd\":\"status\",\"padding\":\"" + std::string(200, 'x');
    const auto t0 = std::chrono::steady_clock::now();
    bool closed = false;
    for (size_t i = 0; i < req.size() && !closed; ++i) {
        // A byte every 20 ms: never idle on the wire, never a whole request.
        closed = !send_all(fd, req.substr(i, 1));
        pollfd p{fd, POLLIN, 0};
        if (!closed && ::poll(&p, 1, 20) > 0) break; // the server spoke: the idle error
        if (i % 5 == 0) {
            auto t = std::chrono::steady_clock::now();
            EXPECT_EQ(call({{"cmd", "status"}})["ok"], true) << i;
            EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(2)) << i;
        }
    }
    std::string line = read_line(fd, 3000);
    EXPECT_NE(line.find("no request within 300 ms"), std::string::npos) << line;
    EXPECT_TRUE(closed_by_peer(fd));
    ::close(fd);
    // Closed at the timeout (plus a tick or two), not when the trickle ended.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(300 + 3000));
    EXPECT_EQ(server->counters().idle_closed, 1u);
}

// A client that pipelines requests and never reads the replies fills its socket: the
// server's send to it cannot complete. Other clients are still served, and once it has
// made no progress for the idle timeout it is closed and its slot comes back.
TEST_F(ControlServer, ClientThatNeverReadsIsClosedAtTheIdleTimeout) {
    start({.socket_path = path,
           .access = {.requests_per_s = 0, .connection_requests_per_s = 0},
           .idle_timeout_ms = 300,
           .tick_interval_ms = 50});
    int fd = raw_connect(path);
    ASSERT_GE(fd, 0);
    const std::string req =
        json{{"cmd", "echo"}, {"pad", std::string(limits::control_request_bytes_max / 2, 'y')}}.dump() + "\n";
    // Far more replies than the socket buffers hold; the sends stop when the server stops
    // reading (it reads a client's next requests only after its replies are sent).
    size_t sent = 0;
    for (int i = 0; i < 200; ++i) {
        ssize_t n = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) break;
        sent += size_t(n);
    }
    ASSERT_GT(sent, 4 * req.size());
    // Others are served while it is stuck.
    for (int i = 0; i < 5; ++i) {
        auto t = std::chrono::steady_clock::now();
        EXPECT_EQ(call({{"cmd", "status"}})["ok"], true) << i;
        EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(2)) << i;
    }
    // Closed within the timeout and a few ticks: only this client is left open before.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server->counters().connections_open > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(server->counters().connections_open, 0u);
    EXPECT_EQ(server->counters().idle_closed, 1u);
    // Its side sees the end after the replies that had reached its buffer.
    std::vector<char> buf(1 << 16);
    ssize_t n;
    do {
        pollfd p{fd, POLLIN, 0};
        ASSERT_GT(::poll(&p, 1, 5000), 0);
        n = ::recv(fd, buf.data(), buf.size(), 0);
    } while (n > 0);
    EXPECT_TRUE(n == 0 || errno == ECONNRESET) << std::strerror(errno);
    ::close(fd);
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
}

// A flood far beyond the per-connection limit from one client: it is answered
// "rate limited" (every request gets a reply), and another client keeps its own budget.
TEST_F(ControlServer, FloodFromOneClientLeavesOthersServed) {
    start({.socket_path = path,
           .access = {.requests_per_s = 0, .connection_requests_per_s = 100}});
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> flood_replies{0}, flood_limited{0};
    std::thread flooder([&] {
        int fd = raw_connect(path);
        if (fd < 0) return;
        std::string pending;
        const std::string batch = [] {
            std::string b;
            for (int i = 0; i < 50; ++i) b += "{\"cmd\":\"status\"}\n";
            return b;
        }();
        while (!stop.load()) {
            if (!send_all(fd, batch)) break;
            for (int i = 0; i < 50; ++i) {
                std::string line = read_line(fd, pending);
                if (line.front() != '{') return;
                ++flood_replies;
                if (line.find("rate limited") != std::string::npos) ++flood_limited;
            }
        }
        ::close(fd);
    });
    // While the flood runs: another client, well within its own budget, is served.
    const auto t0 = std::chrono::steady_clock::now();
    int ok = 0;
    for (int i = 0; i < 40; ++i) {
        auto t = std::chrono::steady_clock::now();
        ok += call({{"cmd", "status"}})["ok"] == true;
        EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(2)) << i;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    stop = true;
    flooder.join();
    const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(ok, 40);
    // The flooder was served at most one second's worth at once plus the refill, and
    // got a reply ("rate limited") for everything beyond.
    EXPECT_GT(flood_limited.load(), 0u);
    EXPECT_LE(flood_replies.load() - flood_limited.load(), uint64_t(100 + 100 * (elapsed_s + 1)));
    EXPECT_EQ(server->counters().rate_limited, flood_limited.load());
}

TEST_F(ControlServer, TickRunsOnTheServerThread) {
    std::atomic<int> ticks{0};
    std::atomic<bool> on_server_thread{true};
    std::thread::id main_id = std::this_thread::get_id();
    start({.socket_path = path, .on_tick = [&] {
               ticks.fetch_add(1);
               if (std::this_thread::get_id() == main_id) on_server_thread = false;
           },
           .tick_interval_ms = 20});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ticks.load() < 5 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_GE(ticks.load(), 5);
    EXPECT_TRUE(on_server_thread.load());
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
}

TEST_F(ControlServer, CountersSeeEveryKindOfRefusal) {
    start();
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
    int fd = raw_connect(path);
    ASSERT_TRUE(send_all(fd, "not json\n"));
    read_line(fd);
    ASSERT_TRUE(send_all(fd, std::string(limits::control_request_bytes_max + 1, 'x')));
    read_line(fd);
    ::close(fd);
    auto c = server->counters();
    EXPECT_EQ(c.requests, 2u);
    EXPECT_EQ(c.malformed, 1u);
    EXPECT_EQ(c.oversize, 1u);
    EXPECT_EQ(c.connections, 2u);
}

// Random bytes, random JSON-ish fragments and mutations of valid requests, over many
// connections: every complete line gets one JSON reply, and the server stays healthy.
TEST_F(ControlServer, FuzzedRequestsNeverCrashAndAlwaysGetAJsonReply) {
    start({.socket_path = path, .access = {.requests_per_s = 0, .connection_requests_per_s = 0}});
    std::mt19937 rng(1234);
    const std::vector<std::string> seeds = {
        R"({"v":1,"cmd":"status"})", R"({"cmd":"echo","x":[1,2,{"y":null}]})",
        R"({"cmd":"throw"})",        R"({"v":2,"cmd":"status"})",
        R"({"cmd":"\ud800"})",       R"({"cmd":"echo","n":1e999})",
        R"([])",                     R"({"cmd":"scalar"})",
    };
    const std::string alphabet = "{}[]\":,\\ 0123456789abcdeftrunlv.-+eE\t\r\x01\xff\xc3";
    int lines = 0;
    for (int conn = 0; conn < 40; ++conn) {
        int fd = raw_connect(path);
        ASSERT_GE(fd, 0);
        std::string batch;
        int n = 1 + int(rng() % 25);
        for (int i = 0; i < n; ++i) {
            std::string req = seeds[rng() % seeds.size()];
            switch (rng() % 4) {
            case 0: // random bytes, no newline inside
                req.clear();
                for (int k = int(rng() % 200); k > 0; --k)
                    req += alphabet[rng() % alphabet.size()];
                break;
            case 1: // flip bytes of a valid request
                for (int k = 0; k < 3; ++k)
                    req[rng() % req.size()] = alphabet[rng() % alphabet.size()];
                break;
            case 2: // truncate
                req.resize(rng() % req.size());
                break;
            default: break;
            }
            if (req.find_first_not_of(" \t\r") == std::string::npos) req = "x";
            batch += req + "\n";
        }
        ASSERT_TRUE(send_all(fd, batch));
        std::string pending;
        for (int i = 0; i < n; ++i) {
            std::string line = read_line(fd, pending);
            json r = json::parse(line, nullptr, false);
            ASSERT_TRUE(r.is_object()) << "reply " << i << " of connection " << conn << ": " << line;
            ASSERT_TRUE(r.contains("ok")) << line;
            if (r["ok"] == false) {
                ASSERT_TRUE(r["error"].is_string()) << line;
            }
            ++lines;
        }
        ::close(fd);
    }
    EXPECT_EQ(server->requests_total(), uint64_t(lines));
    EXPECT_EQ(call({{"cmd", "status"}})["ok"], true);
}

} // namespace
} // namespace sluice::control
