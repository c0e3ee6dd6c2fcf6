// `sluicectl export` against the real sluiced: every format with the daemon's counts
// (DuckDB reads the Parquet back), a --from/--to range in epoch ms and RFC 3339, the
// progress bar, --data-dir with no daemon, and the exit codes of failures and misuse.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "tests/integration/daemon_harness.h"
#include "tests/storage/duckdb_util.h"

using namespace sluice::testing;
using sluice::test::duckdb_count;

namespace {

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

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}


struct cmd_result {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs sluicectl with `args` (shell words), capturing stdout and stderr in files: so
// stderr is not a terminal.
cmd_result sluicectl(const std::string& args, const std::string& scratch_dir) {
    static std::atomic<int> n{0};
    std::string base = scratch_dir + "/cmd" + std::to_string(n++);
    cmd_result r;
    r.code = run_command(env("SLUICECTL") + " " + args + " > " + base + ".out 2> " + base + ".err");
    r.out = slurp(base + ".out");
    r.err = slurp(base + ".err");
    return r;
}

std::string rfc3339(int64_t ms) {
    time_t secs = time_t(ms / 1000);
    tm t{};
    gmtime_r(&secs, &t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                  t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, int(ms % 1000));
    return buf;
}


uint16_t test_port() { return uint16_t(20000 + (getpid() * 11 + 5) % 30000); }

// Sends page views with event times base_ms + i * 10, and `bad` lines that are dead letters.
void send(uint16_t port, int n, int64_t base_ms, int bad) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto one = [&](const std::string& payload) {
        ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    };
    for (int i = 0; i < n; ++i)
        one("{\"event_id\":\"x" + std::to_string(i) + "\",\"timestamp\":" +
            std::to_string(base_ms + i * 10) + ",\"page\":\"/p" + std::to_string(i % 7) + "\"}");
    for (int i = 0; i < bad; ++i) one("{not json " + std::to_string(i));
    ::close(fd);
}

TEST(SluicectlExport, EveryFormatMatchesTheDaemonsCountsWithAndWithoutTheDaemon) {
    constexpr int events = 400, bad = 3;
    const std::string dir = make_temp_dir("ctl-export");
    const std::string data = dir + "/data", sock = dir + "/ctl.sock";
    const std::string prefix = "sluice-export-" + std::to_string(getpid());
    auto args = eal_args(prefix, 3);
    const uint16_t port = test_port();
    // A relative data dir: status reports it absolute, so sluicectl finds it from anywhere.
    const std::string relative = std::filesystem::relative(data).string();
    ASSERT_NE(relative[0], '/');
    args.insert(args.end(), {"--", "--data-dir", relative, "--control-socket", sock, "--workers", "1",
                             "--kernel-udp", "127.0.0.1", "--udp-port", std::to_string(port)});
    auto d = std::make_unique<daemon_process>(args, dir + "/sluiced.log");
    auto log = [&] { return slurp(dir + "/sluiced.log"); };
    ASSERT_TRUE(d->wait_up(60)) << log();
    json status = d->request({{"cmd", "status"}});
    ASSERT_TRUE(status.value("ok", false)) << status.dump();
    EXPECT_EQ(status["data_dir"], data);

    // Recent event times: neither late nor in the future.
    const int64_t base = sluice::wall_clock_ms() - 60'000;
    send(port, events, base, bad);
    json stats = d->wait_stats(
        [&](const json& s) {
            return s["totals"]["events_accepted"] == events && s["totals"]["dead_letters"] == bad;
        },
        60);
    ASSERT_EQ(stats["totals"]["events_accepted"], events) << stats.dump() << log();
    ASSERT_EQ(stats["totals"]["dead_letters"], bad) << stats.dump();
    ASSERT_EQ(d->request({{"cmd", "flush"}})["ok"], true);
    const uint64_t accepted = stats["totals"]["events_accepted"].get<uint64_t>();
    const uint64_t dead = stats["totals"]["dead_letters"].get<uint64_t>();
    const std::string ctl = "--socket " + sock + " ";

    // JSON Lines: every event once, with its time.
    cmd_result r = sluicectl(ctl + "export events --format jsonl --out " + dir + "/e.jsonl", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("exported " + std::to_string(accepted) + " rows of events to " + dir +
                         "/e.jsonl (jsonl, "),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.err.find('\r'), std::string::npos) << "no progress bar when stderr is a file";
    std::set<std::string> ids;
    for (const auto& line : lines_of(slurp(dir + "/e.jsonl"))) {
        json j = json::parse(line);
        ids.insert(j["event_id"].get<std::string>());
    }
    EXPECT_EQ(ids.size(), accepted);
    EXPECT_FALSE(std::filesystem::exists(dir + "/e.jsonl.tmp"));

    // CSV: a header and one line per event.
    r = sluicectl(ctl + "export events --format csv --out " + dir + "/e.csv --no-progress", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(lines_of(slurp(dir + "/e.csv")).size(), accepted + 1);

    // Parquet, with the bar forced on: redrawn with \r, ending at 100%.
    r = sluicectl(ctl + "export events --format parquet --out " + dir + "/e.parquet --progress", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("exported " + std::to_string(accepted) + " rows"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("\revents 100% [####################] "), std::string::npos) << r.err;
    EXPECT_EQ(duckdb_count("read_parquet('" + dir + "/e.parquet')"), int64_t(accepted));

    // Dead letters: the daemon's count.
    r = sluicectl(ctl + "export dead_letters --format jsonl --out " + dir + "/d.jsonl", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(lines_of(slurp(dir + "/d.jsonl")).size(), dead);

    // A range: epoch ms to RFC 3339, inclusive: events 100 .. 199.
    const int64_t from = base + 1000, to = base + 1990;
    r = sluicectl(ctl + "export events --format jsonl --from " + std::to_string(from) + " --to " +
                      rfc3339(to) + " --out " + dir + "/range.jsonl",
                  dir);
    ASSERT_EQ(r.code, 0) << r.err;
    auto range = lines_of(slurp(dir + "/range.jsonl"));
    EXPECT_EQ(range.size(), 100u);
    for (const auto& line : range) {
        int64_t t = json::parse(line)["event_time_ms"].get<int64_t>();
        EXPECT_GE(t, from);
        EXPECT_LE(t, to);
    }

    // Failures: one line on stderr, exit 1.
    r = sluicectl(ctl + "export nope --format jsonl --out " + dir + "/n.jsonl", dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("sluicectl: no table 'nope' in " + data + " (tables: "), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("events"), std::string::npos) << r.err;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
    r = sluicectl(ctl + "export events --format csv --out " + dir + "/no/such/dir/x.csv", dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("cannot create " + dir + "/no/such/dir/x.csv.tmp"), std::string::npos) << r.err;
    EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
    r = sluicectl(ctl + "export events --format csv --out " + dir, dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;

    // Usage: exit 2.
    for (const std::string& bad_args : std::vector<std::string>{
             "export events --format xml --out " + dir + "/x", "export events --out " + dir + "/x",
          "export events --format csv", "export events --format csv --out x --from yesterday",
          "export events --format csv --out x --from 2000 --to 1000",
          "export events --format csv --out x --progress --no-progress"}) {
        r = sluicectl(ctl + bad_args, dir);
        EXPECT_EQ(r.code, 2) << bad_args << "\n" << r.err;
    }

    ASSERT_EQ(d->shutdown_and_wait(60), 0) << log();
    d.reset();

    // No daemon: without --data-dir it says how to go on, with it the export works.
    r = sluicectl(ctl + "export events --format jsonl --out " + dir + "/x.jsonl", dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("cannot connect to " + sock), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pass --data-dir"), std::string::npos) << r.err;
    r = sluicectl(ctl + "export events --format parquet --data-dir " + data + " --out " + dir +
                      "/offline.parquet",
                  dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(duckdb_count("read_parquet('" + dir + "/offline.parquet')"), int64_t(accepted));
    r = sluicectl("export events --format csv --data-dir " + dir + "/nowhere --out " + dir + "/x.csv",
                  dir);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("cannot read the data dir"), std::string::npos) << r.err;

    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

} // namespace
