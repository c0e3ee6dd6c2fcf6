// Drives the real sluicectl binary (path in $SLUICECTL, set by meson) against a test
// server and checks its output and exit codes.
#include <grp.h>
#include <poll.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "control/control_server.h"
#include "tests/control/control_test_util.h"

extern char** environ;

namespace sluice::control {
namespace {

struct run_result {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs sluicectl with `args`, optionally with SLUICE_SOCKET set and as another user.
run_result run_ctl(const std::vector<std::string>& args, const std::string& env_socket = "",
                   int as_uid = -1) {
    const char* bin = std::getenv("SLUICECTL");
    if (bin == nullptr) throw std::runtime_error("SLUICECTL is not set (run through meson test)");
    // Everything the child needs is built before fork: the parent has threads.
    std::vector<std::string> argv_s{bin};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e)
        if (std::string_view(*e).rfind("SLUICE_SOCKET=", 0) != 0) env_s.emplace_back(*e);
    if (!env_socket.empty()) env_s.push_back("SLUICE_SOCKET=" + env_socket);
    std::vector<char*> envp;
    for (auto& e : env_s)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    int out_pipe[2], err_pipe[2];
    if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw std::runtime_error("pipe");
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        if (as_uid >= 0 && (::setgroups(0, nullptr) != 0 || ::setgid(gid_t(as_uid)) != 0 ||
                            ::setuid(uid_t(as_uid)) != 0))
            ::_exit(120);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    run_result r;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open = 2;
    while (open > 0) {
        if (::poll(fds, 2, 10000) <= 0) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            char buf[4096];
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open;
                continue;
            }
            (i == 0 ? r.out : r.err).append(buf, size_t(n));
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

class Sluicectl : public ::testing::Test {
  protected:
    void SetUp() override {
        std::map<std::string, handler> handlers{
            {"stats", [](const json&) { return stats_body(); }},
            {"status",
             [](const json&) {
                 return json{{"state", "running"}, {"version", "0.1.0"}};
             }},
            {"shutdown",
             [this](const json&) {
                 shutdowns.fetch_add(1);
                 return json{{"state", "stopping"}};
             }},
            {"flush",
             [this](const json&) -> json {
                 if (flush_fails) throw std::runtime_error("cannot fsync /data: disk full");
                 flushes.fetch_add(1);
                 return json::object();
             }},
            {"echo",
             [](const json& req) {
                 return json{{"echo", req}};
             }},
            {"metrics",
             [](const json&) {
                 return json{{"content_type", "text/plain; version=0.0.4"},
                             {"text", "# TYPE sluice_up gauge\nsluice_up 1\n"}};
             }},
            {"reload",
             [](const json&) {
                 return json{{"applied", json::array({"control.allow_uids"})},
                             {"restart_required", json::array()}};
             }},
        };
        auto r = control_server::start({.socket_path = path, .mode = 0666}, std::move(handlers));
        ASSERT_TRUE(r.ok()) << r.err().message;
        server = std::move(r.value());
    }

    static json stats_body() {
        return json::parse(R"({"uptime_s":12.5,"watermark_ms":1740755000000,
          "watermark_delay_ms":600000,
          "totals":{"rx_packets":1,"ignored_packets":0,"events_received":0,"events_accepted":0,
            "duplicates":0,"late_events":0,"dead_letters":0,"rx_dropped":0,"bytes_written":0,
            "watermark_ms":0,"dead_letters_by_reason":{"parse_error":0,"missing_timestamp":0}},
          "per_core":[{"lcore":1,"role":"rx","rx_packets":1,"ignored_packets":0,
                       "events_received":0,"rx_dropped":0},
                      {"lcore":2,"role":"worker","events_accepted":0,"duplicates":0,
                       "late_events":0,"dead_letters":0,"bytes_written":0,"gc_runs":4}],
          "rings":[{"rx":0,"worker":0,"occupancy":0,"capacity":4095}],
          "future_field":{"p99":7}})");
    }

    testing::temp_dir dir;
    std::string path = dir.file("ctl.sock");
    std::unique_ptr<control_server> server;
    std::atomic<int> shutdowns{0};
    std::atomic<int> flushes{0};
    std::atomic<bool> flush_fails{false};
};

TEST_F(Sluicectl, StatsPrintsTables) {
    run_result r = run_ctl({"--socket", path, "stats"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    for (const char* s : {"totals", "rx_packets", "missing_timestamp", "per core", "gc_runs",
                          "occupancy", "4095", "0.0%", "future_field.p99: 7", "12.5 s"})
        EXPECT_NE(r.out.find(s), std::string::npos) << s << " in:\n" << r.out;
}

TEST_F(Sluicectl, StatsJsonIsTheReply) {
    run_result r = run_ctl({"--socket=" + path, "stats", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    json reply = json::parse(r.out);
    json expected = stats_body();
    expected["ok"] = true;
    expected["v"] = 1;
    EXPECT_EQ(reply, expected);
}

TEST_F(Sluicectl, StatusPrintsFields) {
    run_result r = run_ctl({"--socket", path, "status"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "state: running\nversion: 0.1.0\n");
}

TEST_F(Sluicectl, ShutdownAndFlushReachTheirHandlers) {
    EXPECT_EQ(run_ctl({"--socket", path, "shutdown"}).code, 0);
    EXPECT_EQ(shutdowns.load(), 1);
    run_result r = run_ctl({"--socket", path, "flush"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "ok\n");
    EXPECT_EQ(flushes.load(), 1);
}

TEST_F(Sluicectl, FailedCommandExits1WithReason) {
    flush_fails = true;
    run_result r = run_ctl({"--socket", path, "flush"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluicectl: cannot fsync /data: disk full\n");
    EXPECT_EQ(r.out, "");
}

TEST_F(Sluicectl, CallPrintsRawReply) {
    run_result r = run_ctl({"--socket", path, "call", R"({"cmd":"echo","x":[1,2]})"});
    ASSERT_EQ(r.code, 0) << r.err;
    json reply = json::parse(r.out);
    EXPECT_EQ(reply["echo"]["x"], json::array({1, 2}));
    EXPECT_EQ(reply["echo"]["v"], 1); // the client adds the version
}

TEST_F(Sluicectl, CallWithErrorReplyExits1) {
    run_result r = run_ctl({"--socket", path, "call", R"({"cmd":"nope"})"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(json::parse(r.out)["ok"], false);
    EXPECT_NE(r.err.find("unknown command \"nope\""), std::string::npos) << r.err;
}

TEST_F(Sluicectl, SocketComesFromEnvironment) {
    run_result r = run_ctl({"status"}, path);
    EXPECT_EQ(r.code, 0) << r.err;
    // --socket wins over the environment.
    r = run_ctl({"--socket", path, "status"}, dir.file("wrong.sock"));
    EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(Sluicectl, MissingSocketExits1WithReason) {
    std::string missing = dir.file("none.sock");
    run_result r = run_ctl({"--socket", missing, "stats"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluicectl: cannot connect to " + missing +
                         ": No such file or directory (is sluiced running? pass --socket)\n");
}

TEST_F(Sluicectl, RefusedPeerExits1WithReason) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run sluicectl as nobody";
    run_result r = run_ctl({"--socket", path, "status"}, "", 65534);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluicectl: permission denied: uid 65534 is not allowed (add it to "
                     "control.allow_uids)\n");
    EXPECT_EQ(server->refused_total(), 1u);
}

TEST_F(Sluicectl, UsageErrorsExit2) {
    const std::vector<std::vector<std::string>> cases = {
        {},
        {"--socket", path, "bogus"},
        {"--socket", path, "stats", "--bogus"},
        {"--socket", path, "status", "extra"},
        {"--socket", path, "call"},
        {"--socket", path, "call", "not json"},
        {"--socket"},
        {"--frobnicate", "stats"},
        {"--timeout-ms", "0", "stats"},
    };
    for (const auto& args : cases) {
        run_result r = run_ctl(args);
        std::string joined;
        for (const auto& a : args)
            joined += a + " ";
        EXPECT_EQ(r.code, 2) << joined;
        EXPECT_EQ(r.err.rfind("sluicectl: ", 0), 0u) << joined;
        EXPECT_NE(r.err.find("usage:"), std::string::npos) << joined;
    }
    EXPECT_EQ(server->requests_total(), 0u);
}

TEST_F(Sluicectl, HelpExits0) {
    run_result r = run_ctl({"--help"});
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("usage:"), std::string::npos);
}

TEST_F(Sluicectl, WatchPrintsFramesAndStops) {
    run_result r = run_ctl({"--socket", path, "watch", "--count", "3", "--interval", "0.1"});
    ASSERT_EQ(r.code, 0) << r.err;
    // Not a terminal: frames one after another, no screen clearing.
    EXPECT_EQ(r.out.find("\x1b["), std::string::npos);
    size_t frames = 0;
    for (size_t at = r.out.find("sluiced"); at != std::string::npos; at = r.out.find("sluiced", at + 1))
        ++frames;
    EXPECT_EQ(frames, 3u) << r.out;
    EXPECT_NE(r.out.find("all cores"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("events/s"), std::string::npos) << r.out;
    EXPECT_EQ(server->requests_total(), 3u);
}

TEST_F(Sluicectl, WatchExits1WhenTheDaemonGoesAway) {
    run_result r = run_ctl({"--socket", dir.file("gone.sock"), "watch", "--count", "2"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
}

TEST_F(Sluicectl, MetricsPrintsTheExpositionText) {
    run_result r = run_ctl({"--socket", path, "metrics"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "# TYPE sluice_up gauge\nsluice_up 1\n");
}

TEST_F(Sluicectl, ReloadPrintsWhatWasApplied) {
    run_result r = run_ctl({"--socket", path, "reload"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("applied: [\"control.allow_uids\"]"), std::string::npos) << r.out;
}

TEST_F(Sluicectl, WatchUsageErrorsExit2) {
    for (std::vector<std::string> args : {std::vector<std::string>{"watch", "--interval", "0"},
                                          {"watch", "--count", "-1"},
                                          {"watch", "--bogus"},
                                          {"metrics", "extra"}}) {
        args.insert(args.begin(), {"--socket", path});
        run_result r = run_ctl(args);
        EXPECT_EQ(r.code, 2) << args[2];
        EXPECT_NE(r.err.find("usage:"), std::string::npos) << r.err;
    }
    EXPECT_EQ(server->requests_total(), 0u);
}

} // namespace
} // namespace sluice::control
