// The control plane against the real sluiced: every sluicectl command, the socket's
// security (mode 0600, a peer with another uid refused, SIGHUP reload of the allow
// list), 100 concurrent clients while the ingest counts stay exact, and the latency
// percentiles against a known injected delay (--test-hold-us).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/limits.h"
#include "control/protocol.h"
#include "tests/integration/daemon_harness.h"

using namespace sluice::testing;

namespace {

constexpr uint32_t nobody = 65534;

std::string env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr) throw std::runtime_error(std::string(name) + " is not set (run through meson)");
    return v;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct cmd_result {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs a shell command line, capturing stdout and stderr.
cmd_result run_shell(const std::string& command, const std::string& scratch_dir) {
    static std::atomic<int> n{0};
    std::string base = scratch_dir + "/cmd" + std::to_string(n++);
    cmd_result r;
    r.code = run_command(command + " > " + base + ".out 2> " + base + ".err");
    r.out = slurp(base + ".out");
    r.err = slurp(base + ".err");
    return r;
}

std::string ctl(const std::string& socket) {
    return env("SLUICECTL") + " --socket " + socket;
}

// sluicectl as `nobody`, with no supplementary groups.
std::string ctl_as_nobody(const std::string& socket) {
    return "setpriv --reuid=" + std::to_string(nobody) + " --regid=" + std::to_string(nobody) +
           " --clear-groups -- " + ctl(socket);
}

uint16_t test_port(int offset) {
    return uint16_t(20000 + (getpid() * 7 + offset) % 30000);
}

// A daemon on the kernel UDP socket with `extra` sluice options.
struct udp_daemon {
    std::string dir = make_temp_dir("ctl-daemon");
    uint16_t port;
    std::unique_ptr<daemon_process> d;

    explicit udp_daemon(int port_offset, std::vector<std::string> extra = {})
        : port(test_port(port_offset)) {
        auto args = eal_args("sluice-ctl-" + std::to_string(getpid()) + "-" +
                                 std::to_string(port_offset),
                             3);
        args.insert(args.end(), {"--", "--data-dir", dir + "/data", "--control-socket",
                                 dir + "/ctl.sock", "--workers", "1", "--kernel-udp",
                                 "127.0.0.1", "--udp-port", std::to_string(port)});
        args.insert(args.end(), extra.begin(), extra.end());
        d = std::make_unique<daemon_process>(args, dir + "/sluiced.log");
    }
    bool up() { return d->wait_stats([](const json&) { return true; }, 60).value("ok", false); }
    std::string log() const {
        return slurp(dir + "/sluiced.log") + (d->running() ? "" : "[sluiced: " + d->how_it_ended() + "]");
    }
    ~udp_daemon() {
        d.reset();
        if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
    }
};

// Sends `n` page views stamped now, one datagram each, `gap_us` apart.
void send_events(uint16_t port, int n, int gap_us, const std::string& tag) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; ++i) {
        std::string ev = "{\"event_id\":\"" + tag + std::to_string(i) +
                         "\",\"timestamp\":" + std::to_string(sluice::wall_clock_ms()) +
                         ",\"page\":\"/p" + std::to_string(i % 7) + "\"}";
        ::sendto(fd, ev.data(), ev.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        if (gap_us) std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
    }
    ::close(fd);
}

uint64_t accepted(const json& s) {
    return s["totals"]["events_accepted"].get<uint64_t>();
}

// ---- latency against a known delay ----

struct latency_result {
    json stats;
    std::string metrics;
};

latency_result measure(udp_daemon& u, int events) {
    send_events(u.port, events, 2000, "lat");
    json s = u.d->wait_stats([&](const json& st) { return accepted(st) == uint64_t(events); }, 60);
    EXPECT_EQ(accepted(s), uint64_t(events)) << u.log();
    EXPECT_EQ(u.d->request({{"cmd", "flush"}})["ok"], true);
    // The flush is durable when it replies; the worker records it on its next tick.
    s = u.d->wait_stats(
        [&](const json& st) {
            return st["latency"]["durable"]["count"].get<uint64_t>() == uint64_t(events);
        },
        30);
    json m = u.d->request({{"cmd", "metrics"}});
    EXPECT_TRUE(m.value("ok", false)) << m.dump();
    return {s, m.value("text", "")};
}

double metric(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
}

TEST(DaemonControl, LatencyPercentilesReflectAnInjectedDelay) {
    constexpr int events = 200;
    constexpr double hold_us = 50'000; // every event waits at least 50 ms before its window
    udp_daemon slow(0, {"--test-hold-us", "50000"});
    ASSERT_TRUE(slow.up()) << slow.log();
    EXPECT_NE(slow.log().find("TEST ONLY: workers hold each burst 50000 us"), std::string::npos);
    latency_result r = measure(slow, events);
    const json& lat = r.stats["latency"];
    const json& vis = lat["window_visible"];
    const json& dur = lat["durable"];
    ASSERT_EQ(vis["count"], events) << lat.dump();
    ASSERT_EQ(dur["count"], events) << lat.dump();
    // No event can be visible before the hold; the histogram's resolution is ~3%.
    for (const char* q : {"p50_us", "p99_us", "p999_us", "max_us"})
        EXPECT_GE(vis[q].get<double>(), hold_us * 0.97) << q << " " << lat.dump();
    // A burst holds until its newest event is 50 ms old, so an event waits at most about
    // two holds; generous bounds for a shared 2-core machine.
    EXPECT_LT(vis["p50_us"].get<double>(), hold_us * 3) << lat.dump();
    EXPECT_LT(vis["p99_us"].get<double>(), hold_us * 10) << lat.dump();
    // Durable comes after visible: the group commit (100 ms) or the flush.
    EXPECT_GE(dur["p50_us"].get<double>(), vis["p50_us"].get<double>() * 0.97) << lat.dump();
    EXPECT_LT(dur["p50_us"].get<double>(), 5e6) << lat.dump();
    // The same numbers as Prometheus series: nothing under 25 ms, all under 10 s.
    const std::string b = "sluice_latency_seconds_bucket{stage=\"window_visible\",le=\"";
    EXPECT_EQ(metric(r.metrics, b + "0.025\"}"), 0) << r.metrics;
    EXPECT_EQ(metric(r.metrics, b + "10\"}"), events) << r.metrics;
    EXPECT_EQ(metric(r.metrics, "sluice_latency_seconds_count{stage=\"durable\"}"), events);
    double p99 = metric(r.metrics, "sluice_latency_recent_seconds{stage=\"window_visible\",quantile=\"0.99\"}");
    EXPECT_GE(p99, 0.05 * 0.97) << r.metrics;

    // The same traffic without the hold: the percentiles drop well below it.
    udp_daemon fast(1);
    ASSERT_TRUE(fast.up()) << fast.log();
    latency_result f = measure(fast, events);
    EXPECT_EQ(f.stats["latency"]["window_visible"]["count"], events);
    EXPECT_LT(f.stats["latency"]["window_visible"]["p50_us"].get<double>(), hold_us / 2)
        << f.stats["latency"].dump();
    EXPECT_EQ(slow.d->shutdown_and_wait(60), 0);
    EXPECT_EQ(fast.d->shutdown_and_wait(60), 0);
}

// ---- every command, through sluicectl ----

TEST(DaemonControl, EverySluicectlCommandAgainstTheDaemon) {
    udp_daemon u(2);
    ASSERT_TRUE(u.up()) << u.log();
    std::string sock = u.dir + "/ctl.sock";
    // Startup printed the lcore map and the socket.
    std::string log = u.log();
    EXPECT_NE(log.find("lcore 1: rx 0 (queue 0) -> workers 0..0"), std::string::npos) << log;
    EXPECT_NE(log.find("lcore 2: worker 0 <- rings from 1 RX lcore(s)"), std::string::npos) << log;
    EXPECT_NE(log.find("control socket " + sock + " (mode 0600)"), std::string::npos) << log;

    send_events(u.port, 50, 100, "cmd");
    json sent = u.d->wait_stats([](const json& s) { return accepted(s) == 50; }, 60);
    ASSERT_TRUE(sent.value("ok", false)) << sent.dump() << u.log();
    ASSERT_EQ(accepted(sent), 50u);

    cmd_result r = run_shell(ctl(sock) + " status", u.dir);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("state: running"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("socket: " + sock), std::string::npos) << r.out;

    r = run_shell(ctl(sock) + " stats", u.dir);
    EXPECT_EQ(r.code, 0) << r.err;
    for (const char* s : {"totals", "events_accepted", "latency from RX", "window-visible",
                          "per core (rx)", "per core (worker)", "rings", "rates"})
        EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;

    r = run_shell(ctl(sock) + " stats --json", u.dir);
    ASSERT_EQ(r.code, 0) << r.err;
    json s = json::parse(r.out);
    EXPECT_EQ(s["totals"]["events_accepted"], 50);
    EXPECT_EQ(s["latency"]["window_visible"]["count"], 50);
    EXPECT_TRUE(s["lag"]["watermark_lag_ms"].is_number());
    EXPECT_GE(s["lag"]["watermark_lag_ms"].get<int64_t>(), 600'000 - 1000); // 10 min delay
    // The one worker's dedup table: the default 256 MiB in 16-byte slots, all 50 ids in it.
    for (const auto& core : s["per_core"]) {
        if (core["role"] != "worker") continue;
        EXPECT_EQ(core["dedup_capacity"], (256u << 20) / 16) << core.dump();
        EXPECT_EQ(core["dedup_tracked"], 50) << core.dump();
    }

    r = run_shell(ctl(sock) + " watch --count 2 --interval 0.2", u.dir);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("all cores"), std::string::npos) << r.out;

    r = run_shell(ctl(sock) + " metrics", u.dir);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("sluice_events_accepted_total{lcore=\"2\",worker=\"0\"} 50"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("# TYPE sluice_latency_seconds histogram"), std::string::npos);

    r = run_shell(ctl(sock) + " flush", u.dir);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("rows_durable: 50"), std::string::npos) << r.out;

    r = run_shell(ctl(sock) + " reload", u.dir);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("reloads: 1"), std::string::npos) << r.out;

    r = run_shell(ctl(sock) + " call '{\"cmd\":\"nope\"}'", u.dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("unknown command \"nope\""), std::string::npos) << r.err;
    r = run_shell(ctl(sock) + " frobnicate", u.dir);
    EXPECT_EQ(r.code, 2);

    r = run_shell(ctl(sock) + " shutdown", u.dir);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("state: stopping"), std::string::npos) << r.out;
    EXPECT_EQ(u.d->shutdown_and_wait(60), 0);
    // Gone: the socket file is removed and sluicectl says so.
    EXPECT_FALSE(std::filesystem::exists(sock));
    r = run_shell(ctl(sock) + " status", u.dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("is sluiced running?"), std::string::npos) << r.err;
}

// ---- security ----

TEST(DaemonControl, SocketIsOwnerOnlyAndAnotherUidIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run sluicectl as nobody";
    udp_daemon u(3);
    ASSERT_TRUE(u.up()) << u.log();
    std::string sock = u.dir + "/ctl.sock";
    struct stat st {};
    ASSERT_EQ(::stat(sock.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    ::chmod(u.dir.c_str(), 0755); // the directory lets nobody in; the socket must not
    cmd_result r = run_shell(ctl_as_nobody(sock) + " status", u.dir);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("run as root, as sluiced's user, or in the socket's group"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(u.d->shutdown_and_wait(60), 0);
}

// A config the daemon cannot honour: exit 1 with one line naming the key and its range,
// before EAL starts (nothing else on stderr).
TEST(DaemonControl, BadConfigExitsWithOneLineNamingTheKey) {
    std::string dir = make_temp_dir("ctl-badconf");
    std::string conf = dir + "/sluiced.toml";
    // 30 days: longer than the dedup table's 32-bit time offsets allow.
    std::ofstream(conf) << "[processing]\ndedup_horizon_ms = 2592000000\n";
    cmd_result r = run_shell(env("SLUICED") + " -- --config " + conf + " --data-dir " + dir +
                                 "/data --control-socket " + dir + "/ctl.sock",
                             dir);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(r.err, "sluiced: processing.dedup_horizon_ms must be within 1..2147483647 (24.8 "
                     "days: the dedup table keeps 32-bit time offsets)\n");
    EXPECT_FALSE(std::filesystem::exists(dir + "/ctl.sock"));
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(DaemonControl, PeerCheckRefusesAndCountsThenSighupAllowsIt) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run sluicectl as nobody";
    std::string conf_dir = make_temp_dir("ctl-conf");
    ::chmod(conf_dir.c_str(), 0755);
    std::string conf = conf_dir + "/sluiced.toml";
    // A socket anyone may open: only the SO_PEERCRED allow list keeps nobody out.
    std::ofstream(conf) << "[control]\nsocket_mode = \"0666\"\n";
    udp_daemon u(4, {"--config", conf});
    ASSERT_TRUE(u.up()) << u.log();
    ::chmod(u.dir.c_str(), 0755);
    std::string sock = u.dir + "/ctl.sock";
    cmd_result r = run_shell(ctl_as_nobody(sock) + " status", u.dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluicectl: permission denied: uid 65534 is not allowed (add it to "
                     "control.allow_uids)\n");
    json s = u.d->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(s["control"]["refused_peers"], 1);
    EXPECT_NE(u.log().find("refused peer pid"), std::string::npos);
    EXPECT_NE(u.log().find("uid 65534"), std::string::npos);

    // Allow nobody in the file and send SIGHUP: no restart, the next connection is served.
    std::ofstream(conf) << "[control]\nsocket_mode = \"0666\"\nallow_uids = [65534]\n";
    json before = u.d->request({{"cmd", "status"}});
    ASSERT_TRUE(before.value("ok", false)) << before.dump();
    ASSERT_EQ(run_command("kill -HUP " + std::to_string(before["pid"].get<int64_t>())), 0);
    json st;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        st = u.d->request({{"cmd", "status"}});
        if (st.value("ok", false) && st.value("reloads", 0) == 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(st.value("ok", false)) << st.dump();
    EXPECT_EQ(st["reloads"], 1);
    EXPECT_EQ(st["control"]["allow_uids"], json::array({nobody}));
    r = run_shell(ctl_as_nobody(sock) + " status", u.dir);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(u.log().find("reloaded " + conf + " (SIGHUP): applied control.allow_uids"),
              std::string::npos)
        << u.log();
    // A key that cannot change while running is reported, not applied.
    std::ofstream(conf) << "[control]\nsocket_mode = \"0666\"\nallow_uids = [65534]\n"
                           "[processing]\nwatermark_delay_ms = 1000\n";
    json rel = u.d->request({{"cmd", "reload"}});
    ASSERT_TRUE(rel.value("ok", false)) << rel.dump();
    EXPECT_EQ(rel["restart_required"], json::array({"processing.watermark_delay_ms"}));
    json after_reload = u.d->request({{"cmd", "stats"}});
    ASSERT_TRUE(after_reload.value("ok", false)) << after_reload.dump();
    EXPECT_EQ(after_reload["watermark_delay_ms"], 600000);
    // A broken file keeps the running config.
    std::ofstream(conf) << "[control\n";
    rel = u.d->request({{"cmd", "reload"}});
    EXPECT_EQ(rel["ok"], false);
    EXPECT_NE(rel["error"].get<std::string>().find("the running config stays"), std::string::npos);
    EXPECT_EQ(run_shell(ctl_as_nobody(sock) + " status", u.dir).code, 0);
    EXPECT_EQ(u.d->shutdown_and_wait(60), 0);
    std::filesystem::remove_all(conf_dir);
}

// ---- many clients while ingesting ----

// One client's loop: a mix of valid, malformed and oversized requests on fresh or
// reused connections, until `stop`. Every reply must be ok, a rate limit, or the
// expected error for what was sent.
struct hammer_stats {
    std::atomic<uint64_t> ok{0}, rate_limited{0}, expected_errors{0}, unexpected{0};
    std::atomic<uint64_t> oversize{0};
};

void hammer(const std::string& sock, int id, const std::atomic<bool>& stop, hammer_stats& h) {
    std::mt19937 rng{uint32_t(id)};
    const std::vector<json> requests = {{{"cmd", "stats"}}, {{"cmd", "status"}},
                                        {{"cmd", "metrics"}}, {{"cmd", "nope"}},
                                        {{"cmd", "status"}, {"v", 9}}};
    while (!stop.load()) {
        int kind = int(rng() % 10);
        if (kind == 8) {
            // 40 requests pipelined on one connection: over the per-connection burst.
            int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
            if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
                h.unexpected++;
                ::close(fd);
                continue;
            }
            std::string batch;
            for (int i = 0; i < 40; ++i)
                batch += "{\"cmd\":\"status\"}\n";
            (void)!::send(fd, batch.data(), batch.size(), MSG_NOSIGNAL);
            std::string in;
            int lines = 0;
            char buf[4096];
            while (lines < 40) {
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                in.append(buf, size_t(n));
                size_t nl;
                while ((nl = in.find('\n')) != std::string::npos) {
                    std::string line = in.substr(0, nl);
                    in.erase(0, nl + 1);
                    ++lines;
                    if (line.rfind("{\"ok\":true", 0) == 0)
                        h.ok++;
                    else if (line.find("rate limited") != std::string::npos)
                        h.rate_limited++;
                    else
                        h.unexpected++;
                }
            }
            if (lines < 40) h.unexpected++;
            ::close(fd);
            continue;
        }
        if (kind == 9) {
            // Raw garbage or an oversized line on a raw socket.
            int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
            if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
                bool big = rng() % 2;
                std::string junk = big ? std::string(sluice::limits::control_request_bytes_max + 10, 'x')
                                       : "{\"cmd\":[1,2,\n";
                (void)!::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
                char buf[512];
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                std::string reply(buf, n > 0 ? size_t(n) : 0);
                if (reply.find("\"ok\":false") != std::string::npos)
                    h.expected_errors++;
                else
                    h.unexpected++;
                if (big) h.oversize++;
            } else {
                h.unexpected++;
            }
            ::close(fd);
            continue;
        }
        const json& req = requests[size_t(kind) % requests.size()];
        auto r = sluice::control::request(sock, req, 10000);
        if (!r.ok()) {
            h.unexpected++;
            continue;
        }
        const json& reply = r.value();
        std::string err = reply.value("error", "");
        if (reply.value("ok", false)) {
            h.ok++;
        } else if (err.rfind("rate limited", 0) == 0) {
            h.rate_limited++;
        } else if (err.find("unknown command") != std::string::npos ||
                   err.find("unsupported protocol version") != std::string::npos) {
            h.expected_errors++;
        } else {
            h.unexpected++;
        }
    }
}

uint64_t processed(const json& s) {
    const json& t = s["totals"];
    return t["events_accepted"].get<uint64_t>() + t["duplicates"].get<uint64_t>() +
           t["dead_letters"].get<uint64_t>();
}

TEST(DaemonControl, HundredConcurrentClientsWhileIngestCountsStayExact) {
    std::string dir = make_temp_dir("ctl-hammer");
    std::string gen = env("SLUICE_GEN") + " --events 60000 --seed 77 --out " + dir + " > " +
                      dir + "/gen.log 2>&1";
    ASSERT_EQ(run_command(gen), 0) << gen;
    expected_outcome want = read_expected(dir);

    // Limits the clients exceed (pipelined bursts over the per-connection limit at least),
    // so refusals happen under load too.
    std::ofstream(dir + "/sluiced.toml")
        << "[control]\nrequests_per_s = 300\nconnection_requests_per_s = 20\n";
    auto args = eal_args("sluice-ctl-hammer-" + std::to_string(getpid()), 4);
    args.insert(args.end(), {"--vdev", "net_pcap0,rx_pcap=" + dir + "/events.pcap", "--",
                             "--config", dir + "/sluiced.toml", "--data-dir", dir + "/data",
                             "--control-socket", dir + "/ctl.sock", "--workers", "2"});
    std::atomic<bool> stop{false};
    hammer_stats h;
    std::vector<std::thread> clients;
    {
        daemon_process d(args, dir + "/sluiced.log");
        // The socket appears once the daemon is up; the clients start hammering at once,
        // while the pcap is still being ingested.
        for (int i = 0; i < 3000 && !std::filesystem::exists(d.socket) && d.running(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ASSERT_TRUE(std::filesystem::exists(d.socket))
            << "sluiced did not come up (" << d.how_it_ended() << "): " << slurp(dir + "/sluiced.log");
        for (int i = 0; i < 100; ++i)
            clients.emplace_back(hammer, d.socket, i, std::cref(stop), std::ref(h));
        uint64_t received = want.counters["events_received"];
        json stats = d.wait_stats(
            [&](const json& s) {
                return s["totals"]["rx_packets"] == want.counters["rx_packets"] &&
                       processed(s) == received;
            },
            300);
        // Let the clients go on after ingest (the daemon keeps serving them once idle)
        // for a few hundred more answers, then stop them.
        auto answered = [&] { return h.ok.load() + h.rate_limited.load(); };
        uint64_t at_ingest_end = answered();
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (answered() < at_ingest_end + 300 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        EXPECT_GE(answered(), at_ingest_end + 300) << "clients got no answers after ingest";
        stop = true;
        for (auto& t : clients)
            t.join();
        ASSERT_TRUE(stats.value("ok", false))
            << stats.dump() << " (running: " << d.running() << ", " << d.how_it_ended() << ")\n"
            << slurp(dir + "/sluiced.log");
        const json& t = stats["totals"];
        for (const char* k : {"events_received", "events_accepted", "duplicates", "late_events",
                              "dead_letters"})
            EXPECT_EQ(t[k], want.counters[k]) << k;
        EXPECT_EQ(t["rx_packets"], want.counters["rx_packets"]);
        EXPECT_EQ(t["ignored_packets"], want.counters["ignored_packets"]);
        EXPECT_EQ(t["rx_dropped"], 0);

        // The clients have stopped, so the limiter lets this through within a second.
        json after = d.request({{"cmd", "stats"}});
        ASSERT_TRUE(after.value("ok", false)) << after.dump();
        const json& c = after["control"];
        EXPECT_EQ(h.unexpected.load(), 0u);
        EXPECT_GT(h.ok.load(), 100u);
        EXPECT_GT(h.rate_limited.load(), 0u);
        // The server saw at least what the clients saw (the test's own polls may be
        // rate limited too).
        EXPECT_GE(c["rate_limited"].get<uint64_t>(), h.rate_limited.load());
        EXPECT_EQ(c["oversize"].get<uint64_t>(), h.oversize.load());
        EXPECT_EQ(c["refused_clients"], 0);
        std::printf("clients: %llu ok, %llu rate limited, %llu expected errors\n",
                    (unsigned long long)h.ok.load(), (unsigned long long)h.rate_limited.load(),
                    (unsigned long long)h.expected_errors.load());
        ASSERT_EQ(d.shutdown_and_wait(120), 0);
    }
    stored_outcome got = read_store(dir + "/data", "page_views_per_minute");
    EXPECT_TRUE(got.events == want.events) << "events table differs from the expected rows";
    EXPECT_TRUE(got.dead_letters == want.dead_letters);
    EXPECT_TRUE(got.windows_csv == want.windows_csv);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

} // namespace

// Requests that arrive the moment the socket exists (before the daemon's start-up has
// returned to its main thread) are answered: status, stats and reload once read a
// server pointer that was not yet set, and sluiced died of SIGSEGV.
TEST(DaemonControl, RequestsAtTheFirstMomentOfTheSocketAreAnswered) {
    using clock = std::chrono::steady_clock;
    const char* cmds[3] = {"status", "stats", "reload"};
    for (int round = 0; round < 4; ++round) {
        udp_daemon u(40 + round);
        const std::string sock = u.dir + "/ctl.sock";
        // Two deadlines: the start-up before the socket exists (EAL, pools, the pipeline:
        // a second or two in a normal build, up to a minute in a ThreadSanitizer build on
        // a loaded machine, which once used up a single 60 s deadline before status and
        // stats had a second try), then 60 s for the answers from the socket's first
        // appearance.
        const auto spawned = clock::now();
        std::optional<clock::time_point> seen;
        // Poll without sleeping so the first connect lands as early as possible.
        bool answered[3] = {false, false, false};
        json last[3];
        while (!(answered[0] && answered[1] && answered[2]) && u.d->running()) {
            const auto now = clock::now();
            if (!seen) {
                if (now > spawned + std::chrono::seconds(300)) break;
                if (!std::filesystem::exists(sock)) {
                    std::this_thread::yield(); // the daemon starting may need this core
                    continue;
                }
                seen = now;
            } else if (now > *seen + std::chrono::seconds(60)) {
                break;
            }
            for (int c = 0; c < 3; ++c) {
                if (answered[c]) continue;
                json r = u.d->request({{"cmd", cmds[c]}});
                last[c] = r;
                // reload may be refused while the server is still starting; it must reply.
                if (r.contains("ok") && !r.value("error", "").ends_with("without a reply") &&
                    r.value("error", "").find("cannot connect") == std::string::npos)
                    answered[c] = true;
            }
        }
        auto secs = [](clock::duration d) {
            return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0);
        };
        const std::string when =
            "round " + std::to_string(round) + ": socket " +
            (seen ? "after " + secs(*seen - spawned) + " s" : "never seen") + ", now " +
            secs(clock::now() - spawned) + " s; last replies: status " + last[0].dump() +
            ", stats " + last[1].dump() + ", reload " + last[2].dump() + "\n";
        ASSERT_TRUE(seen) << when << u.log();
        EXPECT_TRUE(u.d->running()) << when << u.log();
        EXPECT_TRUE(answered[0] && answered[1] && answered[2]) << when << u.log();
        if (::testing::Test::HasFailure()) return;
        std::printf("round %d: socket after %s s, all three answered after %s s\n", round,
                    secs(*seen - spawned).c_str(), secs(clock::now() - spawned).c_str());
        EXPECT_EQ(u.d->shutdown_and_wait(60), 0);
    }
}
