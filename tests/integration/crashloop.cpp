// crashloop: the real sluiced killed with SIGKILL at random moments, N times, under load
// (issue 15, item 3). One sluice-gen stream; a run that is never interrupted (A) gives
// the reference tables. Then B: sluiced is started on one data dir, the stream is re-sent
// from its start (sluice deduplicates: what was stored before a crash comes back as
// duplicates; over the first half of the cycles the prefix sent grows, so kills keep
// finding new events in flight), and the daemon is killed at a random moment — sometimes while it starts (recovery,
// replay), mostly while it takes events. After each kill: every event is stored at most
// once, and every row the daemon had reported durable (stats totals.rows_durable) is on
// disk. At the end the stream is sent once more, in step, to a last B run that shuts down
// gracefully, and its store must equal A's: every event once with the same late flag,
// the same rows in every query's table (tumbling, hopping and session windows); and the
// reference query must equal sluice-gen's model.
//
// Usage: crashloop [--cycles N] [--events E] [--seed S] [--dir DIR] [--keep] [--sabotage]
// (--sabotage deletes the newest events segment after each kill, to show the checks fail.)
// Needs SLUICED in the environment (scripts/crashloop and meson set it). Exit 0 when
// every check held; the summary is printed either way.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/restart_harness.h"
#include "tools/gen/udp_sender.h"

using namespace sluice::testing;
using steady = std::chrono::steady_clock;

namespace {

int failures = 0;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ++failures;                                                                            \
            std::printf("crashloop: FAILED: " __VA_ARGS__);                                        \
            std::printf("\n");                                                                     \
        }                                                                                          \
    } while (0)

class node {
  public:
    node(std::string dir, std::string tag) : _dir(std::move(dir)), _tag(std::move(tag)) {
        std::ofstream(_dir + "/sluiced.toml") << restart_config_toml(20);
        _port = uint16_t(20000 + (getpid() * 13 + _tag.size() * 131) % 20000);
    }
    ~node() { stop_daemon(); }
    // Spawns sluiced on the data dir; does not wait for it.
    void spawn() {
        _prefix = "sluice-crash-" + _tag + "-" + std::to_string(getpid()) + "-" + std::to_string(_runs);
        auto args = eal_args(_prefix, 4);
        args.insert(args.end(), {"--", "--config", _dir + "/sluiced.toml", "--data-dir", data(),
                                 "--control-socket", _dir + "/ctl.sock", "--workers", "2",
                                 "--kernel-udp", "127.0.0.1", "--udp-port", std::to_string(_port)});
        _log = _dir + "/sluiced-" + std::to_string(_runs++) + ".log";
        _daemon = std::make_unique<daemon_process>(args, _log);
    }
    bool wait_up(int timeout_s) {
        json up = _daemon->wait_stats([](const json&) { return true; }, timeout_s);
        return up.value("ok", false);
    }
    json stats() const { return _daemon->request({{"cmd", "stats"}}, 5); }
    bool running() const { return _daemon && _daemon->running(); }
    void kill9() {
        if (_daemon) _daemon->kill9();
        stop_daemon();
    }
    int shutdown() {
        int rc = _daemon->shutdown_and_wait(120);
        stop_daemon();
        return rc;
    }
    bool send_all(const gen_stream& s, std::string* why) {
        json st = stats();
        if (!st.value("ok", false)) return *why = "no stats: " + st.dump(), false;
        return send_udp_in_step(*_daemon, _port, s.payloads, 0, s.payloads.size(),
                                st["totals"]["rx_packets"].get<uint64_t>(), why);
    }
    json wait_done(uint64_t lines) {
        return _daemon->wait_stats([&](const json& st) { return all_lines_taken(st, lines); }, 300);
    }
    uint16_t port() const { return _port; }
    std::string data() const { return _dir + "/data"; }
    const std::string& dir() const { return _dir; }
    const std::string& log() const { return _log; }

  private:
    void stop_daemon() {
        _daemon.reset();
        if (!_prefix.empty()) remove_eal_runtime(_prefix);
    }
    std::string _dir, _tag, _prefix, _log;
    uint16_t _port;
    int _runs = 0;
    std::unique_ptr<daemon_process> _daemon;
};

// Sends the stream, paced, until done or told to stop (the daemon was killed).
class background_sender {
  public:
    background_sender(const gen_stream& s, size_t to, uint16_t port, uint64_t pps) {
        _thread = std::thread([this, &s, to, port, pps] {
            auto sender = sluice::tools::udp_sender::open("127.0.0.1:" + std::to_string(port), pps);
            if (!sender) return;
            for (size_t i = 0; i < to && !_stop.load(); ++i)
                (void)sender->send(s.payloads[i]); // refused while the daemon is down: fine
        });
    }
    ~background_sender() {
        _stop = true;
        _thread.join();
    }

  private:
    std::atomic<bool> _stop{false};
    std::thread _thread;
};

struct options {
    int cycles = 20;
    uint64_t events = 12000;
    uint64_t seed = 0;
    std::string dir;
    bool keep = false;
    bool sabotage = false; // deletes the newest events segment after each kill: must FAIL
};

options parse(int argc, char** argv) {
    options o;
    o.seed = std::random_device{}();
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "crashloop: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--cycles") o.cycles = std::stoi(next());
        else if (a == "--events") o.events = std::stoull(next());
        else if (a == "--seed") o.seed = std::stoull(next());
        else if (a == "--dir") o.dir = next();
        else if (a == "--keep") o.keep = true;
        else if (a == "--sabotage") o.sabotage = true;
        else {
            std::fprintf(stderr, "usage: crashloop [--cycles N] [--events E] [--seed S] [--dir DIR] [--keep]\n");
            std::exit(2);
        }
    }
    return o;
}

double seconds_since(steady::time_point t) {
    return std::chrono::duration<double>(steady::now() - t).count();
}

} // namespace

int main(int argc, char** argv) {
    options opt = parse(argc, argv);
    if (!std::getenv("SLUICED")) {
        std::fprintf(stderr, "crashloop: set SLUICED to the sluiced binary\n");
        return 2;
    }
    const auto t0 = steady::now();
    std::mt19937_64 rng(opt.seed);
    // ~events/600 minutes of event time: windows close as it runs.
    gen_stream s = make_stream(opt.events, opt.seed, 600);
    const size_t n = s.payloads.size();
    const uint64_t lines = s.lines[n];
    std::string base = opt.dir.empty() ? make_temp_dir("crashloop") : opt.dir;
    std::filesystem::create_directories(base + "/a");
    std::filesystem::create_directories(base + "/b");
    std::printf("crashloop: %d cycles, %llu events (%zu datagrams), seed %llu, in %s\n",
                opt.cycles, (unsigned long long)opt.events, n, (unsigned long long)opt.seed,
                base.c_str());
    std::fflush(stdout);

    // A: the uncrashed reference run.
    node a(base + "/a", "a");
    a.spawn();
    if (!a.wait_up(120)) {
        std::printf("crashloop: FAILED: the reference sluiced did not start (see %s)\n", a.log().c_str());
        return 1;
    }
    std::string why;
    CHECK(a.send_all(s, &why), "reference run: %s", why.c_str());
    json sa = a.wait_done(lines);
    CHECK(sa.value("ok", false), "reference run did not take every event (see %s)", a.log().c_str());
    CHECK(a.shutdown() == 0, "reference run did not shut down cleanly (see %s)", a.log().c_str());
    auto events_a = stored_events(a.data());
    std::vector<std::vector<std::string>> tables_a;
    for (const auto& t : restart_query_tables) tables_a.push_back(table_rows(a.data(), t));
    const double t_ref = seconds_since(t0);

    // B: killed at random moments, restarted on the same data dir, the stream re-sent.
    node b(base + "/b", "b");
    int kills_starting = 0, kills_loaded = 0, starts_failed = 0;
    uint64_t durable_checked = 0, received_total = 0;
    size_t stored_prev = 0;
    for (int cycle = 1; cycle <= opt.cycles && failures == 0; ++cycle) {
        b.spawn();
        if (rng() % 100 < 15) {
            // Killed while it starts: recovery, dedup reload, replay of open windows.
            auto until = steady::now() + std::chrono::milliseconds(rng() % 600);
            while (steady::now() < until && b.running())
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            CHECK(b.running(), "cycle %d: sluiced exited while starting (see %s)", cycle,
                  b.log().c_str());
            b.kill9();
            ++kills_starting;
        } else {
            if (!b.wait_up(120)) {
                ++starts_failed;
                CHECK(false, "cycle %d: sluiced did not start (see %s)", cycle, b.log().c_str());
                break;
            }
            uint64_t durable = 0, received = 0;
            {
                // Everything from the start, re-sent: over the first half of the cycles
                // the prefix sent grows, so that most kills find new events in flight.
                const size_t to = std::min(n, size_t(double(n) * 2 * cycle / opt.cycles) + 1);
                const uint64_t pps = std::max<uint64_t>(2000, to); // about a second of sending
                background_sender sender(s, to, b.port(), pps);
                // A random moment under load: between 0 and ~1.5 s of sending.
                auto until = steady::now() + std::chrono::milliseconds(rng() % 1500);
                do {
                    json st = b.stats();
                    if (st.value("ok", false)) {
                        durable = st["totals"].value("rows_durable", uint64_t(0));
                        received = st["totals"].value("events_received", uint64_t(0));
                    }
                } while (steady::now() < until && b.running());
                CHECK(b.running(), "cycle %d: sluiced died by itself (see %s)", cycle, b.log().c_str());
                b.kill9();
            }
            ++kills_loaded;
            received_total += received;
            if (opt.sabotage) {
                // Proof that the checks can fail: lose the newest events segment.
                std::filesystem::path newest;
                for (const auto& e : std::filesystem::directory_iterator(b.data() + "/events"))
                    if (e.path().extension() == ".seg" && e.path() > newest) newest = e.path();
                if (!newest.empty()) std::filesystem::remove(newest);
            }
            // What it reported durable is on disk, next to what earlier runs stored.
            auto ev = stored_events(b.data());
            CHECK(ev.size() >= stored_prev + durable,
                  "cycle %d: %zu events stored, but %zu were before and %llu more were reported "
                  "durable", cycle, ev.size(), stored_prev, (unsigned long long)durable);
            durable_checked += durable;
        }
        // Never an event twice, at any moment.
        auto ev = stored_events(b.data());
        std::set<std::string> ids;
        for (const auto& e : ev) ids.insert(e.substr(0, 16));
        CHECK(ids.size() == ev.size(), "cycle %d: %zu events stored twice", cycle,
              ev.size() - ids.size());
        for (const auto& e : ev) CHECK(e.rfind("<scan failed", 0) != 0, "cycle %d: %s", cycle, e.c_str());
        stored_prev = ev.size();
        if (cycle % 10 == 0 || cycle == opt.cycles) {
            std::printf("crashloop: %d/%d cycles, %zu events stored so far, %.0f s\n", cycle,
                        opt.cycles, stored_prev, seconds_since(t0));
            std::fflush(stdout);
        }
    }

    // The last run: everything once more, in step, then a graceful stop.
    bool final_ok = false;
    if (failures == 0) {
        b.spawn();
        if (b.wait_up(120)) {
            CHECK(b.send_all(s, &why), "final run: %s", why.c_str());
            json sb = b.wait_done(lines);
            CHECK(sb.value("ok", false), "final run did not take every event (see %s)", b.log().c_str());
            CHECK(b.shutdown() == 0, "final run did not shut down cleanly (see %s)", b.log().c_str());
            final_ok = true;
        } else {
            CHECK(false, "final run: sluiced did not start (see %s)", b.log().c_str());
        }
    }
    size_t tables_equal = 0;
    if (final_ok) {
        auto events_b = stored_events(b.data());
        CHECK(events_a.size() == s.model.event_lines().size(),
              "the uncrashed run stored %zu events, the model says %zu", events_a.size(),
              s.model.event_lines().size());
        CHECK(events_b == events_a, "events: %zu stored after the crashes, %zu without",
              events_b.size(), events_a.size());
        for (size_t i = 0; i < restart_query_tables.size(); ++i) {
            auto rb = table_rows(b.data(), restart_query_tables[i]);
            CHECK(!tables_a[i].empty(), "%s: the uncrashed run wrote no windows", restart_query_tables[i].c_str());
            CHECK(rb == tables_a[i], "%s: %zu rows after the crashes, %zu without (or they differ)",
                  restart_query_tables[i].c_str(), rb.size(), tables_a[i].size());
            tables_equal += rb == tables_a[i];
        }
        CHECK(table_rows(b.data(), "page_views_per_minute") == model_reference_rows(s.model),
              "page_views_per_minute differs from sluice-gen's model");
    }

    std::printf("\ncrashloop summary (seed %llu)\n", (unsigned long long)opt.seed);
    std::printf("  cycles            %d SIGKILLs: %d while starting (recovery/replay), %d under load\n",
                kills_starting + kills_loaded, kills_starting, kills_loaded);
    std::printf("  events            %llu per pass, %llu taken by the killed runs in all\n",
                (unsigned long long)lines, (unsigned long long)received_total);
    std::printf("  durability        %llu rows reported durable before a kill: %s\n",
                (unsigned long long)durable_checked, failures == 0 ? "all found on disk" : "see FAILED above");
    std::printf("  exactly once      %s (checked after every kill and at the end)\n",
                failures == 0 ? "every event stored once" : "see FAILED above");
    std::printf("  final store       %s (events %zu, query tables equal to the uncrashed run: %zu/%zu)\n",
                final_ok && failures == 0 ? "equal to the uncrashed run and the model" : "DIFFERS",
                events_a.size(), tables_equal, restart_query_tables.size());
    std::printf("  time              %.0f s (reference run %.0f s)\n", seconds_since(t0), t_ref);
    std::printf("  result            %s\n", failures == 0 ? "PASS" : "FAIL");
    if (failures == 0 && !opt.keep && opt.dir.empty()) std::filesystem::remove_all(base);
    else std::printf("  data              %s\n", base.c_str());
    return failures == 0 ? 0 : 1;
}
