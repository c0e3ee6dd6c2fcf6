// sluiced as systemd and an operator meet it: the notify protocol (READY=1 once the
// control socket answers, WATCHDOG=1 at the unit's interval, RELOADING=1 on SIGHUP,
// STOPPING=1 on SIGTERM) read from a Unix datagram socket as systemd would, and the
// start-up failures an operator meets, each one line on stderr naming cause and fix.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/daemon_harness.h"

namespace {

using namespace sluice::testing;
using clock_type = std::chrono::steady_clock;

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

// The systemd side of sd_notify: a bound datagram socket, one message per datagram.
class notify_listener {
  public:
    explicit notify_listener(const std::string& path) : _path(path) {
        _fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        ::unlink(path.c_str());
        _ok = _fd >= 0 && ::bind(_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~notify_listener() {
        if (_fd >= 0) ::close(_fd);
        ::unlink(_path.c_str());
    }
    bool ok() const { return _ok; }
    // The next message, or "" after the deadline.
    std::string next(clock_type::time_point deadline) {
        while (clock_type::now() < deadline) {
            timeval tv{0, 100 * 1000};
            ::setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            char buf[4096];
            ssize_t n = ::recv(_fd, buf, sizeof buf, 0);
            if (n > 0) return std::string(buf, size_t(n));
        }
        return "";
    }
    // Messages until one contains `want` (returned) or the deadline ("").
    std::string until(const std::string& want, clock_type::time_point deadline,
                      std::vector<std::string>* seen = nullptr) {
        for (;;) {
            std::string m = next(deadline);
            if (m.empty()) return m;
            if (seen) seen->push_back(m);
            if (m.find(want) != std::string::npos) return m;
        }
    }

  private:
    std::string _path;
    int _fd = -1;
    bool _ok = false;
};

std::vector<std::string> kernel_udp_args(const std::string& prefix, const std::string& dir,
                                         uint16_t port) {
    std::vector<std::string> a = eal_args(prefix, 3);
    a.insert(a.end(), {"--", "--kernel-udp", "127.0.0.1", "--udp-port", std::to_string(port),
                       "--data-dir", dir + "/data", "--control-socket", dir + "/ctl.sock"});
    return a;
}

uint16_t test_port(int offset) { return uint16_t(20000 + (::getpid() * 7 + offset) % 20000); }

TEST(ServiceNotify, ReadyAfterSocketWatchdogAtIntervalReloadingStopping) {
    std::string dir = make_temp_dir("notify");
    notify_listener systemd(dir + "/notify.sock");
    ASSERT_TRUE(systemd.ok());
    // WatchdogSec=2s: sluiced pings every second; systemd would kill it after 2 s without one.
    const int64_t watchdog_us = 2'000'000;
    ::setenv("NOTIFY_SOCKET", (dir + "/notify.sock").c_str(), 1);
    ::setenv("WATCHDOG_USEC", std::to_string(watchdog_us).c_str(), 1);
    const std::string prefix = "sluice-notify-" + std::to_string(getpid());
    daemon_process d(kernel_udp_args(prefix, dir, test_port(1)), dir + "/sluiced.log");
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");

    std::vector<std::string> seen;
    std::string ready = systemd.until("READY=1", clock_type::now() + std::chrono::seconds(120), &seen);
    ASSERT_FALSE(ready.empty()) << "no READY=1; log:\n" << read_file(dir + "/sluiced.log");
    // READY=1 means the control socket answers now, not a moment later.
    json st = d.request_once({{"cmd", "status"}});
    EXPECT_TRUE(st.value("ok", false)) << st.dump();
    EXPECT_NE(ready.find("STATUS="), std::string::npos) << ready;
    for (const std::string& m : seen) EXPECT_EQ(m.find("WATCHDOG=1"), std::string::npos) << m;

    // Four pings, none further apart than the watchdog interval.
    std::vector<clock_type::time_point> pings;
    const auto deadline = clock_type::now() + std::chrono::seconds(60);
    while (pings.size() < 4) {
        std::string m = systemd.next(deadline);
        ASSERT_FALSE(m.empty()) << pings.size() << " WATCHDOG=1 before the deadline";
        if (m == "WATCHDOG=1") pings.push_back(clock_type::now());
    }
    for (size_t i = 1; i < pings.size(); ++i)
        EXPECT_LT(std::chrono::duration_cast<std::chrono::microseconds>(pings[i] - pings[i - 1])
                      .count(),
                  watchdog_us);

    // SIGHUP (the unit's ExecReload): RELOADING=1, then READY=1 again.
    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    EXPECT_FALSE(systemd.until("RELOADING=1", clock_type::now() + std::chrono::seconds(60)).empty());
    EXPECT_FALSE(systemd.until("READY=1", clock_type::now() + std::chrono::seconds(60)).empty());

    // SIGTERM (systemctl stop): STOPPING=1, then a clean exit.
    ASSERT_EQ(::kill(d.pid(), SIGTERM), 0);
    EXPECT_FALSE(systemd.until("STOPPING=1", clock_type::now() + std::chrono::seconds(60)).empty());
    const auto exit_deadline = clock_type::now() + std::chrono::seconds(120);
    while (d.running() && clock_type::now() < exit_deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(d.how_it_ended(), "exit status 0") << read_file(dir + "/sluiced.log");
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(ServiceNotify, StatusAndStartLineNameTheMemoryMode) {
    std::string dir = make_temp_dir("memmode");
    const std::string prefix = "sluice-memmode-" + std::to_string(getpid());
    daemon_process d(kernel_udp_args(prefix, dir, test_port(2)), dir + "/sluiced.log");
    ASSERT_TRUE(d.wait_up(120)) << read_file(dir + "/sluiced.log");
    json st = d.request({{"cmd", "status"}});
    ASSERT_TRUE(st.value("ok", false)) << st.dump();
    // The harness passes --no-huge, or in the hugepage pass 2 MB pages; EAL also sets up
    // a list for 1 GiB pages where the CPU has them, reserved or not: the mode names the
    // pages that hold the memory.
    const bool huge = hugepage_pass() > 0;
    EXPECT_EQ(st["memory"]["mode"], huge ? "hugepages" : "no-huge") << st.dump();
    EXPECT_EQ(st["memory"]["page_bytes"].get<uint64_t>(), huge ? 2u << 20 : 4u << 10)
        << st.dump();
    EXPECT_EQ(d.shutdown_and_wait(120), 0);
    const std::string log = read_file(dir + "/sluiced.log");
    EXPECT_NE(log.find(huge ? "sluiced: memory: hugepages (2 MiB pages, IOVA as "
                            : "sluiced: memory: no hugepages (--no-huge: 4 KiB pages"),
              std::string::npos)
        << log;
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// ---- start-up failures: exit 1, and the last line on stderr names the cause and fix ----

struct run_result {
    int code;
    std::string err;
    std::string last_line() const {
        std::string e = err;
        while (!e.empty() && e.back() == '\n') e.pop_back();
        size_t nl = e.rfind('\n');
        return nl == std::string::npos ? e : e.substr(nl + 1);
    }
};

run_result run_sluiced(const std::vector<std::string>& args, const std::string& dir) {
    std::string cmd = "timeout 300 " + env("SLUICED");
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " >" + dir + "/out.log 2>" + dir + "/err.log";
    int st = run_command(cmd);
    return run_result{st, read_file(dir + "/err.log")};
}

TEST(StartupErrors, DataDirNotWritableIsOneLineBeforeEal) {
    std::string dir = make_temp_dir("su-datadir");
    std::ofstream(dir + "/afile") << "x";
    auto r = run_sluiced({"--", "--kernel-udp", "127.0.0.1", "--data-dir", dir + "/afile/data",
                          "--control-socket", dir + "/ctl.sock"},
                         dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: cannot create data dir " + dir +
                         "/afile/data: Not a directory (create it for sluiced's user, or pass "
                         "--data-dir)\n");
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// A key of the wrong type or a misspelt key in sluiced.toml: exit 1 with one line naming
// the key, what it must be and where, before EAL starts (nothing on stdout, no data dir).
TEST(StartupErrors, AConfigKeyOfTheWrongTypeOrUnknownIsOneLineBeforeEal) {
    std::string dir = make_temp_dir("su-config");
    const std::string conf = dir + "/sluiced.toml";
    const std::vector<std::string> args = {"--",         "--config",        conf,
                                           "--kernel-udp", "127.0.0.1",     "--data-dir",
                                           dir + "/data", "--control-socket", dir + "/ctl.sock"};
    std::ofstream(conf) << "[sluice]\nworkers = \"two\"\n";
    auto r = run_sluiced(args, dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: sluice.workers must be an integer within 0..1024, not the string "
                     "\"two\" (line 2 of " +
                         conf + "; e.g. workers = 0)\n");
    EXPECT_EQ(read_file(dir + "/out.log"), "");
    EXPECT_FALSE(std::filesystem::exists(dir + "/data"));
    std::ofstream(conf) << "[kafka]\nlisen = [\"127.0.0.1:9092\"]\n";
    r = run_sluiced(args, dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line only:\n" << r.err;
    EXPECT_EQ(r.err.find("sluiced: unknown key kafka.lisen (line 2 of " + conf +
                         "): remove it or fix its name; [kafka] has: "),
              0u)
        << r.err;
    EXPECT_EQ(read_file(dir + "/out.log"), "");
    EXPECT_FALSE(std::filesystem::exists(dir + "/data"));
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(StartupErrors, ControlSocketServedByAnotherSluicedIsOneLine) {
    std::string dir = make_temp_dir("su-socket");
    const std::string prefix = "sluice-su-socket-" + std::to_string(getpid());
    daemon_process first(kernel_udp_args(prefix, dir, test_port(3)), dir + "/sluiced.log");
    ASSERT_TRUE(first.wait_up(120)) << read_file(dir + "/sluiced.log");
    auto r = run_sluiced({"--", "--kernel-udp", "127.0.0.1", "--data-dir", dir + "/data2",
                          "--control-socket", dir + "/ctl.sock"},
                         dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: another sluiced is serving " + dir +
                         "/ctl.sock (stop it or pass --control-socket)\n");
    auto nodir = run_sluiced({"--", "--kernel-udp", "127.0.0.1", "--data-dir", dir + "/data3",
                              "--control-socket", dir + "/missing/ctl.sock"},
                             dir);
    EXPECT_EQ(nodir.code, 1);
    EXPECT_NE(nodir.err.find("the control socket's directory " + dir +
                             "/missing does not exist (create it"),
              std::string::npos)
        << nodir.err;
    EXPECT_EQ(first.shutdown_and_wait(120), 0);
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(StartupErrors, DataDirInUseByAnotherSluicedIsOneLineNamingItsPid) {
    std::string dir = make_temp_dir("su-lock");
    const std::string prefix = "sluice-su-lock-" + std::to_string(getpid());
    daemon_process first(kernel_udp_args(prefix, dir, test_port(5)), dir + "/sluiced.log");
    ASSERT_TRUE(first.wait_up(120)) << read_file(dir + "/sluiced.log");
    // Same data dir, its own control socket and port: only the lock stands in the way.
    auto r = run_sluiced({"--", "--kernel-udp", "127.0.0.1", "--udp-port",
                          std::to_string(test_port(6)), "--data-dir", dir + "/data",
                          "--control-socket", dir + "/ctl2.sock"},
                         dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: data dir " + dir + "/data is in use by another sluiced (pid " +
                         std::to_string(first.pid()) +
                         ") (stop it, or give this one its own --data-dir)\n");
    EXPECT_FALSE(std::filesystem::exists(dir + "/ctl2.sock"));
    EXPECT_EQ(first.shutdown_and_wait(120), 0);
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(StartupErrors, LcoreOnACpuThisProcessMayNotUseIsOneLine) {
    std::string dir = make_temp_dir("su-lcores");
    auto r = run_sluiced({"--no-huge", "--no-pci", "-m", "256", "--lcores", "0@0,1@0,2@1000",
                          "--", "--kernel-udp", "127.0.0.1", "--data-dir", dir + "/data",
                          "--control-socket", dir + "/ctl.sock"},
                         dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line only:\n" << r.err;
    EXPECT_NE(r.err.find("sluiced: --lcores '0@0,1@0,2@1000' pins to CPU 1000, which this "
                         "process may not use (allowed: "),
              std::string::npos)
        << r.err;
    // EAL's usage text (to stdout) no longer buries what was wrong.
    auto bad = run_sluiced({"--no-huge", "--no-pci", "-m", "256", "--lcores", "x", "--",
                            "--kernel-udp", "127.0.0.1", "--data-dir", dir + "/data",
                            "--control-socket", dir + "/ctl.sock"},
                           dir);
    EXPECT_EQ(bad.code, 1);
    EXPECT_EQ(read_file(dir + "/out.log"), "");
    EXPECT_NE(bad.err.find("invalid parameter for --lcores"), std::string::npos) << bad.err;
    EXPECT_NE(bad.last_line().find("sluiced: DPDK EAL initialisation failed: Invalid argument "
                                   "(EAL's lines above name the option"),
              std::string::npos)
        << bad.err;
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(StartupErrors, NoDpdkPortNamesTheWaysToGetOne) {
    std::string dir = make_temp_dir("su-noport");
    const std::string prefix = "sluice-su-noport-" + std::to_string(getpid());
    std::vector<std::string> a = eal_args(prefix, 3);
    a.insert(a.end(), {"--", "--data-dir", dir + "/data", "--control-socket", dir + "/ctl.sock"});
    auto r = run_sluiced(a, dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.last_line(), "sluiced: no DPDK port found (pass a device, e.g. --vdev "
                             "net_pcap0,rx_pcap=FILE, or bind a NIC to vfio-pci; or run with "
                             "--kernel-udp)")
        << r.err;
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// A UDP port another process holds, as a plain socket or as another sluiced whose two RX
// lcores share it through SO_REUSEPORT (which a second sluiced with two RX lcores used to
// join quietly, taking part of the traffic): one line before EAL, naming port and fix.
TEST(StartupErrors, KernelUdpPortTakenIsOneLineBeforeEal) {
    std::string dir = make_temp_dir("su-udpport");
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const uint16_t taken = ntohs(a.sin_port);
    const std::string prefix = "sluice-su-udpport-" + std::to_string(getpid());
    auto r = run_sluiced(kernel_udp_args(prefix, dir, taken), dir);
    ::close(fd);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: cannot bind UDP 127.0.0.1:" + std::to_string(taken) +
                         ": Address already in use (stop the other listener or pass --udp-port)\n");

    const uint16_t port = test_port(7);
    std::vector<std::string> two_rx = eal_args(prefix, 4);
    two_rx.insert(two_rx.end(), {"--", "--rx", "2", "--workers", "1", "--kernel-udp", "127.0.0.1",
                                 "--udp-port", std::to_string(port), "--data-dir", dir + "/data",
                                 "--control-socket", dir + "/ctl.sock"});
    daemon_process first(two_rx, dir + "/sluiced.log");
    ASSERT_TRUE(first.wait_up(120)) << read_file(dir + "/sluiced.log");
    std::vector<std::string> second = two_rx;
    for (auto& arg : second) {
        if (arg == prefix) arg = prefix + "-2";
        if (arg == dir + "/data") arg = dir + "/data2";
        if (arg == dir + "/ctl.sock") arg = dir + "/ctl2.sock";
    }
    r = run_sluiced(second, dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: cannot bind UDP 127.0.0.1:" + std::to_string(port) +
                         ": Address already in use (stop the other listener or pass --udp-port)\n");
    EXPECT_EQ(first.shutdown_and_wait(120), 0);
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// A DPDK device or EAL file prefix another sluiced holds. Its own EAL options (--no-huge,
// in both passes: EAL's config lock, which a shared prefix runs into, does not exist with
// the hugepage pass's --in-memory).
TEST(StartupErrors, DpdkPrefixOrDeviceHeldByAnotherSluicedNamesIt) {
    std::string dir = make_temp_dir("su-dpdkbusy");
    const std::string prefix = "sluice-su-dpdkbusy-" + std::to_string(getpid());
    const std::string memif = "net_memif0,role=server,socket=" + dir + "/memif.sock";
    auto args = [&](const std::string& p, const std::string& data) {
        return std::vector<std::string>{
            "--no-huge", "--no-pci", "-m", "512", "--file-prefix", p, "--lcores",
            "0@0,1@0,2@0", "--log-level", "*:warning", "--vdev", memif, "--",
            "--data-dir", dir + "/" + data, "--control-socket", dir + "/" + data + ".sock"};
    };
    daemon_process first(args(prefix, "data"), dir + "/sluiced.log");
    ASSERT_TRUE(first.wait_up(120)) << read_file(dir + "/sluiced.log");
    // The same --file-prefix (e.g. one /etc/default/sluiced for two instances): EAL's
    // answer was "Cannot create lock ... Is another primary process running?" and
    // "initialisation failed: Success".
    auto r = run_sluiced(args(prefix, "data2"), dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: DPDK file prefix '" + prefix +
                         "' is in use by another DPDK process (pid " + std::to_string(first.pid()) +
                         ", /var/run/dpdk/" + prefix +
                         "/config) (give each sluiced its own --file-prefix before `--`, e.g. "
                         "in SLUICED_EAL_ARGS, or stop the other one)\n");
    // Its own prefix, the same memif socket: the device does not start, and the last line
    // says so instead of "no DPDK port found (pass a device ...)".
    r = run_sluiced(args(prefix + "-2", "data3"), dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << r.err;
    EXPECT_EQ(r.last_line(), "sluiced: no DPDK port: the device(s) given (" + memif +
                                 ") did not start; DPDK's lines above say why (a socket, "
                                 "interface or NIC that another process holds: stop it or give "
                                 "this one its own; a NIC not bound to vfio-pci, "
                                 "docs/DEPLOY.md; a PMD not installed, librte-net-*)")
        << r.err;
    EXPECT_EQ(first.shutdown_and_wait(120), 0);
    remove_eal_runtime(prefix);
    remove_eal_runtime(prefix + "-2");
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// EAL memory too small for the mbuf pool: the line names the pool, its size and the two
// settings (-m or hugepages; [input] mbufs).
TEST(StartupErrors, TooLittleEalMemoryNamesTheSettings) {
    std::string dir = make_temp_dir("su-memory");
    ASSERT_EQ(run_command(env("SLUICE_GEN") + " --events 100 --seed 4 --out " + dir +
                          "/gen >" + dir + "/gen.log 2>&1"),
              0)
        << read_file(dir + "/gen.log");
    const std::string prefix = "sluice-su-memory-" + std::to_string(getpid());
    auto r = run_sluiced({"--no-huge", "--no-pci", "-m", "64", "--file-prefix", prefix,
                          "--lcores", "0@0,1@0,2@0", "--log-level", "*:warning", "--vdev",
                          "net_pcap0,rx_pcap=" + dir + "/gen/events.pcap", "--", "--data-dir",
                          dir + "/data", "--control-socket", dir + "/ctl.sock"},
                         dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.last_line().find("sluiced: cannot create the mbuf pool (8191 x "),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.last_line().find("(give EAL more memory with -m or reserve hugepages with "
                                 "scripts/hugepages; or lower [input] mbufs)"),
              std::string::npos)
        << r.err;
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// EAL options without --no-huge on a machine with no free hugepages: one line before EAL
// (EAL said "Cannot get hugepage information" and "Permission denied").
TEST(StartupErrors, NoFreeHugepagesIsOneLineBeforeEal) {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    uint64_t free_pages = 0;
    while (meminfo >> key)
        if (key == "HugePages_Free:") meminfo >> free_pages;
    if (free_pages > 0)
        GTEST_SKIP() << free_pages << " hugepages are free on this machine (this pass's lease, or "
                                      "another run's): EAL would take them";
    std::string dir = make_temp_dir("su-nohuge");
    const std::string prefix = "sluice-su-nohuge-" + std::to_string(getpid());
    auto r = run_sluiced({"--no-pci", "--file-prefix", prefix, "--lcores", "0@0,1@0,2@0", "--",
                          "--kernel-udp", "127.0.0.1", "--udp-port", std::to_string(test_port(9)),
                          "--data-dir", dir + "/data", "--control-socket", dir + "/ctl.sock"},
                         dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line only:\n" << r.err;
    EXPECT_NE(r.err.find("sluiced: the EAL options ask for hugepages (no --no-huge) and none are "
                         "free ("),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(" reserved) (reserve them: sluice-hugepages --size 2M --count 1024, "
                         "docs/DEPLOY.md; or pass --no-huge -m 1024)\n"),
              std::string::npos)
        << r.err;
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// A data dir on a full filesystem: one line before EAL (it used to start, park its first
// segment writes before the control socket was up and ignore SIGTERM). A 1 MiB tmpfs,
// filled: needs root to mount, as CI has.
TEST(StartupErrors, DataDirOnAFullDiskIsOneLineBeforeEal) {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root (CI runs as root)";
    std::string dir = make_temp_dir("su-diskfull");
    const std::string mnt = dir + "/mnt";
    std::filesystem::create_directories(mnt);
    if (run_command("mount -t tmpfs -o size=1m sluice-test " + mnt + " 2>" + dir + "/mount.log") != 0)
        GTEST_SKIP() << "cannot mount a tmpfs: " << read_file(dir + "/mount.log");
    {
        struct unmount {
            std::string at;
            ~unmount() { run_command("umount " + at); }
        } guard{mnt};
        run_command("dd if=/dev/zero of=" + mnt + "/fill bs=64k 2>/dev/null");
        const std::string prefix = "sluice-su-diskfull-" + std::to_string(getpid());
        std::vector<std::string> args = kernel_udp_args(prefix, dir, test_port(8));
        for (auto& a : args)
            if (a == dir + "/data") a = mnt + "/data";
        auto r = run_sluiced(args, dir);
        EXPECT_EQ(r.code, 1);
        EXPECT_EQ(r.err, "sluiced: the data dir " + mnt +
                             "/data's filesystem is full (0 KiB free, sluiced needs 1 MiB to "
                             "start): free space there (lower [retention] max_bytes or "
                             "max_age_ms), or pass --data-dir on a disk with room\n");
        EXPECT_FALSE(std::filesystem::exists(dir + "/ctl.sock"));
        remove_eal_runtime(prefix);
    }
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// A capture with more frames than the default pool (8191 mbufs): net_pcap's infinite_rx
// keeps every frame in an mbuf, so sluiced sizes the pool from the capture; it used to
// stop with "Not enough mbufs", "cannot set up RX queue" and, at exit, DPDK freeing the
// PMD's ring twice ("RING: Cannot free ring").
TEST(StartupErrors, PcapInfiniteRxWithABigCaptureStartsAndStopsCleanly) {
    std::string dir = make_temp_dir("su-bigpcap");
    ASSERT_EQ(run_command(env("SLUICE_GEN") + " --events 40000 --seed 3 --out " + dir +
                          "/gen >" + dir + "/gen.log 2>&1"),
              0)
        << read_file(dir + "/gen.log");
    const std::string prefix = "sluice-su-bigpcap-" + std::to_string(getpid());
    std::vector<std::string> a = eal_args(prefix, 3);
    a.insert(a.end(), {"--vdev", "net_pcap0,rx_pcap=" + dir + "/gen/events.pcap,infinite_rx=1",
                       "--", "--data-dir", dir + "/data", "--control-socket", dir + "/ctl.sock"});
    {
        daemon_process d(a, dir + "/sluiced.log");
        ASSERT_TRUE(d.wait_up(180)) << read_file(dir + "/sluiced.log");
        json s = d.wait_stats(
            [](const json& st) { return st["totals"]["rx_packets"].get<uint64_t>() > 9000; }, 180);
        EXPECT_TRUE(s.value("ok", false)) << s.dump();
        EXPECT_EQ(d.shutdown_and_wait(180), 0);
    }
    std::string log = read_file(dir + "/sluiced.log");
    EXPECT_NE(log.find("frame(s) kept in mbufs; mbuf pool sized to"), std::string::npos) << log;
    EXPECT_EQ(log.find("Not enough mbufs"), std::string::npos) << log;
    EXPECT_EQ(log.find("RING:"), std::string::npos) << log;
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

} // namespace
