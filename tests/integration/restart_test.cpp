// Exactly-once across a crash (§3), with the real sluiced: the same sluice-gen stream goes
// once through a daemon that is never interrupted (A), and once through a daemon that is
// killed with SIGKILL twice while events are arriving and restarted each time, the sender
// re-sending from the start after each restart (B). B's store must end up exactly as A's:
// every accepted event once with the same late flag, and the same rows in every query's
// table (tumbling, hopping and session windows, counts and distinct counts, group-by on
// a metadata field), which windows open at the crashes could only get by being rebuilt
// from the stored events. The reference query must also equal sluice-gen's model.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/restart_harness.h"
#include "tools/gen/udp_sender.h"

using namespace sluice::testing;

namespace {

class node {
  public:
    node(std::string dir, std::string tag) : _dir(std::move(dir)), _tag(std::move(tag)) {
        std::ofstream(_dir + "/sluiced.toml") << restart_config_toml(50);
        _port = uint16_t(20000 + (getpid() * 7 + _tag.size() * 131) % 20000);
    }
    // Starts (or restarts) sluiced on the same data dir.
    bool start() {
        auto args = eal_args("sluice-restart-" + _tag + "-" + std::to_string(getpid()) + "-" + std::to_string(_runs), 4);
        args.insert(args.end(), {"--", "--config", _dir + "/sluiced.toml", "--data-dir", _dir + "/data",
                                 "--control-socket", _dir + "/ctl.sock", "--workers", "2", "--kernel-udp",
                                 "127.0.0.1", "--udp-port", std::to_string(_port)});
        _daemon = std::make_unique<daemon_process>(args, _dir + "/sluiced-" + std::to_string(_runs++) + ".log");
        json up = _daemon->wait_stats([](const json&) { return true; }, 120);
        return up.value("ok", false);
    }
    // Sends datagrams [from, to) in step with what this run has received: every one is
    // taken, however loaded the machine (what the runs without a crash need).
    void send_all(const gen_stream& s, size_t from, size_t to) {
        json st = _daemon->request({{"cmd", "stats"}});
        ASSERT_TRUE(st.value("ok", false)) << st.dump();
        std::string why;
        ASSERT_TRUE(send_udp_in_step(*_daemon, _port, s.payloads, from, to,
                                     st["totals"]["rx_packets"].get<uint64_t>(), &why))
            << why;
    }
    // Sends datagrams [from, to), paced, not waiting for sluiced: what is in flight when
    // it is killed (or dropped at its socket meanwhile) is sent again after the restart.
    void send(const gen_stream& s, size_t from, size_t to) {
        auto sender = sluice::tools::udp_sender::open("127.0.0.1:" + std::to_string(_port), 20000);
        ASSERT_TRUE(sender) << sender.err().message;
        for (size_t i = from; i < to; ++i) ASSERT_TRUE(sender->send(s.payloads[i]));
    }
    // Waits until this run has taken `lines` event lines (accepted, duplicate or dead).
    json wait_done(uint64_t lines) {
        return _daemon->wait_stats([&](const json& st) { return all_lines_taken(st, lines); }, 180);
    }
    // Waits until this run has received at least `lines` event lines.
    json wait_received(uint64_t lines) {
        return _daemon->wait_stats(
            [&](const json& st) { return st["totals"]["events_received"].get<uint64_t>() >= lines; }, 180);
    }
    void kill9() {
        ::kill(_daemon->pid(), SIGKILL);
        _daemon.reset(); // reaps it
    }
    int shutdown() { return _daemon->shutdown_and_wait(120); }
    std::string data() const { return _dir + "/data"; }
    const std::string& dir() const { return _dir; }

  private:
    std::string _dir, _tag;
    uint16_t _port;
    int _runs = 0;
    std::unique_ptr<daemon_process> _daemon;
};

uint64_t total_overflow(const json& st) {
    uint64_t n = 0;
    for (const auto& q : st["queries"]) n += q["window_overflow"].get<uint64_t>();
    return n;
}

} // namespace

TEST(Restart, KillNineTwiceAndResendEndsExactlyAsWithoutCrash) {
    const uint64_t events = std::getenv("SLUICE_RESTART_EVENTS") ? std::strtoull(std::getenv("SLUICE_RESTART_EVENTS"), nullptr, 10) : 30000;
    gen_stream s = make_stream(events, 77, 2000); // ~20 min of event time: windows close along the way
    const size_t n = s.payloads.size();
    ASSERT_GT(n, 100u);

    // A: no crash.
    node a(make_temp_dir("restart-a"), "a");
    ASSERT_TRUE(a.start()) << "see " << a.dir();
    a.send_all(s, 0, n);
    json sa = a.wait_done(s.lines[n]);
    ASSERT_TRUE(sa.value("ok", false)) << "see " << a.dir();
    EXPECT_EQ(total_overflow(sa), 0u);
    ASSERT_EQ(a.shutdown(), 0) << "see " << a.dir();

    // B: killed while events arrive, twice; after each restart the sender starts over.
    node b(make_temp_dir("restart-b"), "b");
    ASSERT_TRUE(b.start()) << "see " << b.dir();
    // Crash once half of the first 60% has been taken: the rest is in the socket, the
    // rings or an unsynced block, and the windows are open.
    b.send(s, 0, n * 6 / 10);
    ASSERT_TRUE(b.wait_received(s.lines[n * 3 / 10]).value("ok", false)) << "see " << b.dir();
    b.kill9();
    ASSERT_TRUE(b.start()) << "see " << b.dir();
    // Crash again while the re-send is being taken.
    b.send(s, 0, n * 8 / 10);
    ASSERT_TRUE(b.wait_received(s.lines[n * 7 / 10]).value("ok", false)) << "see " << b.dir();
    b.kill9();
    ASSERT_TRUE(b.start()) << "see " << b.dir();
    b.send_all(s, 0, n);
    json sb = b.wait_done(s.lines[n]);
    ASSERT_TRUE(sb.value("ok", false)) << "see " << b.dir();
    EXPECT_EQ(total_overflow(sb), 0u);
    // Everything re-sent that had been stored before the crash was a duplicate.
    EXPECT_GT(sb["totals"]["duplicates"].get<uint64_t>(), sa["totals"]["duplicates"].get<uint64_t>());
    ASSERT_EQ(b.shutdown(), 0) << "see " << b.dir();

    // The restarts did rebuild: identities reloaded, open windows handed back to workers.
    uint64_t reloaded = 0, reopened = 0;
    for (int run : {1, 2}) {
        std::ifstream log(b.dir() + "/sluiced-" + std::to_string(run) + ".log");
        std::string line;
        while (std::getline(log, line)) {
            unsigned long long m, ids, replayed, queries, emitted, open;
            if (std::sscanf(line.c_str(),
                            "sluice info: restart: M %llu, %llu identities reloaded into dedup, %llu "
                            "stored events replayed into %llu queries: %llu windows emitted, %llu reopened",
                            &m, &ids, &replayed, &queries, &emitted, &open) == 6) {
                reloaded += ids;
                reopened += open;
            }
        }
    }
    EXPECT_GT(reloaded, 0u) << "see " << b.dir();
    EXPECT_GT(reopened, 0u) << "see " << b.dir();

    // Same events, stored once each, with the same late flags.
    auto ea = stored_events(a.data()), eb = stored_events(b.data());
    EXPECT_EQ(ea.size(), s.model.event_lines().size());
    EXPECT_EQ(eb.size(), ea.size());
    EXPECT_TRUE(ea == eb) << "the events tables differ";
    // The model knows the reference query only; `late` here is late for any query.
    auto ids = [](std::vector<std::string> v) {
        for (auto& l : v) l = l.substr(0, 16);
        std::sort(v.begin(), v.end());
        return v;
    };
    EXPECT_TRUE(ids(ea) == ids(s.model.event_lines())) << "A's events differ from sluice-gen's model";
    // Same windows in every query.
    for (const auto& t : restart_query_tables) {
        auto ra = table_rows(a.data(), t), rb = table_rows(b.data(), t);
        EXPECT_GT(ra.size(), 0u) << t;
        EXPECT_EQ(ra.size(), rb.size()) << t;
        if (ra != rb) {
            std::vector<std::string> only_a, only_b;
            std::set_difference(ra.begin(), ra.end(), rb.begin(), rb.end(), std::back_inserter(only_a));
            std::set_difference(rb.begin(), rb.end(), ra.begin(), ra.end(), std::back_inserter(only_b));
            ADD_FAILURE() << t << ": " << only_a.size() << " rows only without the crash (first: "
                          << (only_a.empty() ? "" : only_a[0]) << "), " << only_b.size()
                          << " only with it (first: " << (only_b.empty() ? "" : only_b[0]) << ")";
        }
    }
    // And the reference query is what the model says.
    EXPECT_TRUE(table_rows(b.data(), "page_views_per_minute") == model_reference_rows(s.model)) << "reference query differs from the model";

    if (!::testing::Test::HasFailure()) {
        std::filesystem::remove_all(a.dir());
        std::filesystem::remove_all(b.dir());
    }
}
