// fault_walk: I/O faults injected into the real sluiced at the Nth I/O call of the store,
// for N walked over the calls of a short run (issue 15, item 2, at the daemon level;
// tests/storage/fault_injection_test.cpp walks the segment writer alone). The hook
// (storage/fault_injection.h) covers every table's segment writer (events, dead letters,
// the query tables), recovery, and every file replaced whole under the data dir
// (_processing/ checkpoints and queries, the Kafka sequence journal): sluiced arms it from
// SLUICE_TEST_FAULT at start, so recovery and replay are inside the walk too.
//
// A reference run (hook counting only) takes one sluice-gen stream in step and stops
// gracefully: its call count C is the walk's range, its tables the reference. Then, for
// each fault kind and each N chosen (every N in 1..C+4, or a sample), on a fresh data dir:
// Beside the UDP input sluiced runs a Kafka listener, and after the stream an idempotent
// producer (kcat, enable.idempotence, acks=all) sends --kafka-records values that are not
// JSON (dead letters: the compared tables stay the model's), so the Kafka sequence
// journal's calls (its start-up rewrite, open, writes, fdatasyncs, submits) are in the
// walk too.
//
//  1. the faulted run: sluiced with SLUICE_TEST_FAULT=N:KIND takes the stream in step
//     (and the Kafka records) and is stopped gracefully. It must either exit 0 (the fault was absorbed: a retry,
//     a short write completed, a delay waited for) or exit non-zero with a line naming
//     the cause (the errno's text), and never hang or die by a signal. A run that reported
//     `storage.state` = failed must exit non-zero.
//  2. offline, before any restart: no event stored twice, and at least as many events
//     stored as the faulted run reported durable (storage.tables[events].rows_durable).
//  3. the restart: sluiced without the hook on the same data dir takes the whole stream
//     again and stops with status 0; its events table must equal the reference (every
//     event once, the same late flag), every query table the reference's, and the
//     reference query sluice-gen's model.
//
// Usage: fault_walk [--kinds eio,enospc,short,delay] [--sample K | --all] [--from N]
//                   [--to N] [--events E] [--kafka-records R] [--workers W] [--delay-ms MS]
//                   [--seed S] [--wait S] [--dir DIR] [--keep]
// (--kafka-records 0: no Kafka listener; --workers: sluiced's worker lcores, default 1;
// --delay-ms: how long a `delay` fault holds back a completion, default 3; --wait: how
// long a run may take to start, to take the stream and to stop before it counts as hung,
// default 60 s: raise it on a machine whose CPUs other work keeps busy. A hung sluiced's
// threads' stacks go to its log (gdb -p) before it is killed.)
// Needs SLUICED in the environment (scripts/faultwalk and meson set it). Exit 0 when
// every check held; a summary is printed either way.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/restart_harness.h"

using namespace sluice::testing;
using steady = std::chrono::steady_clock;

namespace {

int failures = 0;
std::vector<std::string> failure_lines;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ++failures;                                                                            \
            char buf_[1024];                                                                       \
            std::snprintf(buf_, sizeof buf_, __VA_ARGS__);                                         \
            std::printf("fault_walk: FAILED: %s\n", buf_);                                         \
            std::fflush(stdout);                                                                   \
            failure_lines.push_back(buf_);                                                         \
        }                                                                                          \
    } while (0)

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The hook's own summary line (sluiced prints it at exit): "N calls (...)".
uint64_t calls_in_log(const std::string& log) {
    const std::string text = read_text(log);
    const std::string tag = "sluiced: fault injection: ";
    auto p = text.rfind(tag);
    return p == std::string::npos ? 0 : std::strtoull(text.c_str() + p + tag.size(), nullptr, 10);
}
uint64_t injected_in_log(const std::string& log) {
    const std::string text = read_text(log);
    auto p = text.rfind(" injected\n");
    if (p == std::string::npos) return 0;
    auto s = text.rfind(' ', p - 1);
    return std::strtoull(text.c_str() + s + 1, nullptr, 10);
}

struct run_result {
    bool started = false;   // answered on its control socket
    bool took_all = false;  // took every line of the stream and every Kafka record
    bool kafka_ok = false;  // kcat had every record acknowledged
    uint64_t journaled = 0; // kafka.sequences_journaled last reported
    int rc = -1;            // exit status; -1: hung (killed by the walk)
    std::string ended;      // how it ended, in words
    std::string state;      // storage.state last reported
    uint64_t events_durable = 0;
    std::string log;
};

class runner {
  public:
    runner(std::string dir, const gen_stream& s, uint64_t kafka_records, uint32_t workers, int wait_s)
        : _dir(std::move(dir)), _s(s), _kafka_records(kafka_records), _workers(workers), _wait_s(wait_s) {
        std::filesystem::create_directories(_dir);
        std::ofstream(_dir + "/sluiced.toml") << restart_config_toml(20);
        _port = uint16_t(20000 + (getpid() * 7 + 4441) % 20000);
    }
    std::string data() const { return _dir + "/data"; }

    // One run: start (with the plan, if any), take the stream in step, stop gracefully.
    run_result run(const std::string& plan, const std::string& tag) {
        run_result r;
        const std::string prefix = "sluice-fw-" + std::to_string(getpid()) + "-" + std::to_string(_runs++);
        // Lcores: the main one, the RX, the workers, and one more with the Kafka listener.
        auto args = eal_args(prefix, _workers + (_kafka_records > 0 ? 3 : 2));
        args.insert(args.end(), {"--", "--config", _dir + "/sluiced.toml", "--data-dir", data(),
                                 "--control-socket", _dir + "/ctl.sock", "--workers", std::to_string(_workers),
                                 "--kernel-udp", "127.0.0.1", "--udp-port", std::to_string(_port)});
        if (_kafka_records > 0) args.insert(args.end(), {"--kafka", "127.0.0.1:0"});
        r.log = _dir + "/sluiced-" + tag + ".log";
        if (!plan.empty()) setenv("SLUICE_TEST_FAULT", plan.c_str(), 1);
        daemon_process d(args, r.log);
        unsetenv("SLUICE_TEST_FAULT");
        const uint64_t lines = _s.lines[_s.payloads.size()] + _kafka_records;
        if (d.wait_stats([](const json&) { return true; }, _wait_s).value("ok", false)) {
            r.started = true;
            json st = d.request({{"cmd", "stats"}}, 5);
            std::string why;
            if (st.value("ok", false) &&
                send_udp_in_step(d, _port, _s.payloads, 0, _s.payloads.size(),
                                 st["totals"]["rx_packets"].get<uint64_t>(), &why)) {
                r.kafka_ok = _kafka_records == 0 || produce(st, tag);
                json done = d.wait_stats([&](const json& x) { return all_lines_taken(x, lines); }, _wait_s);
                r.took_all = r.kafka_ok && done.value("ok", false) && all_lines_taken(done, lines);
            }
            json last = d.request({{"cmd", "stats"}}, 5);
            if (last.value("ok", false)) {
                if (last["kafka"].is_object())
                    r.journaled = last["kafka"].value("sequences_journaled", uint64_t(0));
                r.state = last["storage"].value("state", "");
                for (const auto& t : last["storage"]["tables"])
                    if (t.value("table", "") == "events") r.events_durable = t.value("rows_durable", uint64_t(0));
            }
            r.rc = d.shutdown_and_wait(_wait_s);
        } else {
            r.rc = d.running() ? -1 : d.shutdown_and_wait(1); // exited: its status
        }
        if (r.rc == -1) {
            // Where it hangs, for the reader of the log: every thread's stack (gdb, if there).
            run_command("command -v gdb > /dev/null && { echo '--- fault_walk: sluiced hung, its threads:'; "
                        "timeout 60 gdb -p " + std::to_string(d.pid()) +
                        " -batch -ex 'thread apply all bt'; } >> " + r.log + " 2>&1");
            d.kill9();
        }
        r.ended = r.rc == -1    ? "hung (killed)"
                  : r.rc < 128 ? "exit status " + std::to_string(r.rc)
                               : "killed by signal " + std::to_string(r.rc - 128);
        // The final stats line (graceful stop) has the last word on durability.
        json fin = read_final_stats(r.log);
        if (fin.is_object() && fin.contains("storage")) {
            r.state = fin["storage"].value("state", r.state);
            for (const auto& t : fin["storage"]["tables"])
                if (t.value("table", "") == "events")
                    r.events_durable = std::max(r.events_durable, t.value("rows_durable", uint64_t(0)));
        }
        remove_eal_runtime(prefix);
        return r;
    }

  private:
    // The Kafka records: one idempotent producer, acks=all, values that are not JSON.
    bool produce(const json& st, const std::string& tag) {
        if (!st["kafka"].is_object() || st["kafka"]["ports"].empty()) return false;
        const std::string port = std::to_string(st["kafka"]["ports"][0].get<int>());
        const std::string values = _dir + "/kafka-values.txt";
        {
            std::ofstream out(values);
            for (uint64_t i = 0; i < _kafka_records; ++i) out << "fault-walk record " << i << " (not JSON)\n";
        }
        // A faulted run may never acknowledge (a failed writer): kcat gives up after 20 s.
        const std::string cmd = "timeout 30 kcat -P -b 127.0.0.1:" + port +
                                " -t events-topic -X enable.idempotence=true -X acks=all -X linger.ms=5 -X batch.num.messages=8"
                                " -X message.timeout.ms=20000 < " +
                                values + " > " + _dir + "/kcat-" + tag + ".log 2>&1";
        return run_command(cmd) == 0;
    }

    std::string _dir;
    const gen_stream& _s;
    uint64_t _kafka_records;
    uint32_t _workers;
    int _wait_s; // for the start, for the stream to be taken, for the graceful stop
    uint16_t _port;
    int _runs = 0;
};

struct kind_def {
    std::string name;      // in the plan
    std::string cause;     // what a stop must name; "" when the kind never fails a call
};
const std::map<std::string, kind_def> kinds_known = {
    {"eio", {"eio", std::strerror(EIO)}},
    {"enospc", {"enospc", std::strerror(ENOSPC)}},
    {"short", {"short", ""}},
    {"delay", {"delay", ""}}, // "=MS" added from --delay-ms
};

struct options {
    std::vector<std::string> kinds = {"eio"};
    int sample = 8;  // 0: every N
    uint64_t from = 1, to = 0;
    uint64_t events = 1500;
    uint64_t kafka_records = 40;
    uint32_t workers = 1;
    uint32_t delay_ms = 3; // how long a `delay` fault holds back its completion
    int wait_s = 60;       // how long a run may take to start, to take the stream, to stop
    uint64_t seed = 0;
    std::string dir;
    bool keep = false;
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "fault_walk: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--kinds") {
            o.kinds.clear();
            std::stringstream ss(next());
            for (std::string k; std::getline(ss, k, ',');) {
                if (!kinds_known.count(k)) {
                    std::fprintf(stderr, "fault_walk: unknown kind %s (eio, enospc, short, delay)\n", k.c_str());
                    std::exit(2);
                }
                o.kinds.push_back(k);
            }
        } else if (a == "--sample") o.sample = std::stoi(next());
        else if (a == "--all") o.sample = 0;
        else if (a == "--from") o.from = std::stoull(next());
        else if (a == "--to") o.to = std::stoull(next());
        else if (a == "--events") o.events = std::stoull(next());
        else if (a == "--kafka-records") o.kafka_records = std::stoull(next());
        else if (a == "--workers") o.workers = uint32_t(std::stoul(next()));
        else if (a == "--delay-ms") o.delay_ms = uint32_t(std::stoul(next()));
        else if (a == "--seed") o.seed = std::stoull(next());
        else if (a == "--wait") o.wait_s = std::max(1, std::stoi(next()));
        else if (a == "--dir") o.dir = next();
        else if (a == "--keep") o.keep = true;
        else {
            std::fprintf(stderr, "usage: fault_walk [--kinds eio,enospc,short,delay] [--sample K | --all] "
                                 "[--from N] [--to N] [--events E] [--kafka-records R] [--workers W] [--delay-ms MS] [--seed S] "
                                 "[--wait S] [--dir DIR] [--keep]\n");
            std::exit(2);
        }
    }
    return o;
}

} // namespace

int main(int argc, char** argv) {
    options opt = parse(argc, argv);
    if (!std::getenv("SLUICED")) {
        std::fprintf(stderr, "fault_walk: set SLUICED to the sluiced binary\n");
        return 2;
    }
    const auto t0 = steady::now();
    if (opt.seed == 0) opt.seed = std::random_device{}();
    std::mt19937_64 rng(opt.seed);
    gen_stream s = make_stream(opt.events, opt.seed, 300);
    const std::string base = opt.dir.empty() ? make_temp_dir("faultwalk") : opt.dir;
    std::printf("fault_walk: %llu events (%zu datagrams), %u worker(s), seed %llu, in %s\n",
                (unsigned long long)opt.events, s.payloads.size(), opt.workers,
                (unsigned long long)opt.seed, base.c_str());
    std::fflush(stdout);

    // The reference: the hook armed to count only.
    if (opt.kafka_records > 0 && run_command("command -v kcat > /dev/null") != 0) {
        std::fprintf(stderr, "fault_walk: kcat is missing (apt-get install kcat), or pass --kafka-records 0\n");
        return 2;
    }
    if (opt.workers == 0) {
        std::fprintf(stderr, "fault_walk: --workers needs at least 1\n");
        return 2;
    }
    runner ref(base + "/ref", s, opt.kafka_records, opt.workers, opt.wait_s);
    run_result a = ref.run("0", "ref");
    if (!a.took_all || a.rc != 0) {
        std::printf("fault_walk: FAILED: the reference run %s, %s (see %s)\n",
                    a.took_all ? "took every event" : "did not take every event", a.ended.c_str(),
                    a.log.c_str());
        return 1;
    }
    const uint64_t calls = calls_in_log(a.log);
    std::string calls_text;
    {
        const std::string text = read_text(a.log);
        const std::string tag = "sluiced: fault injection: ";
        const auto p = text.rfind(tag);
        if (p != std::string::npos) calls_text = text.substr(p + tag.size(), text.find('\n', p) - p - tag.size());
    }
    auto events_a = stored_events(ref.data());
    std::vector<std::vector<std::string>> tables_a;
    for (const auto& t : restart_query_tables) tables_a.push_back(table_rows(ref.data(), t));
    CHECK(events_a.size() == s.model.event_lines().size(),
          "the reference run stored %zu events, the model says %zu", events_a.size(),
          s.model.event_lines().size());
    CHECK(table_rows(ref.data(), "page_views_per_minute") == model_reference_rows(s.model),
          "the reference run's page_views_per_minute differs from sluice-gen's model");
    CHECK(opt.kafka_records == 0 || a.journaled > 0,
          "the reference run journaled no idempotent batch (see %s)", a.log.c_str());
    std::printf("fault_walk: reference run: %zu events stored, %llu Kafka batches journaled, %llu hooked "
                "I/O calls (%s)\n",
                events_a.size(), (unsigned long long)a.journaled, (unsigned long long)calls,
                read_text(a.log).empty() ? "" : "see its log");
    std::fflush(stdout);
    if (calls == 0) {
        std::printf("fault_walk: FAILED: the reference run reported no hooked calls (see %s)\n", a.log.c_str());
        return 1;
    }

    // The calls to fail: every one in [from, to], or a sample (the first few, where
    // recovery and start-up run, the rest spread at random).
    const uint64_t last = opt.to ? opt.to : calls + 4;
    std::vector<uint64_t> ns;
    if (opt.sample == 0) {
        for (uint64_t n = opt.from; n <= last; ++n) ns.push_back(n);
    } else {
        std::set<uint64_t> pick;
        for (uint64_t n = opt.from; n < opt.from + 3 && n <= last; ++n) pick.insert(n);
        while (pick.size() < size_t(opt.sample) && pick.size() < last - opt.from + 1)
            pick.insert(opt.from + rng() % (last - opt.from + 1));
        ns.assign(pick.begin(), pick.end());
    }

    struct tally {
        uint64_t runs = 0, absorbed = 0, stopped_at_start = 0, stopped_later = 0, injected = 0;
    };
    std::map<std::string, tally> tallies;
    uint64_t durable_checked = 0;
    for (const auto& kname : opt.kinds) {
        const kind_def& k = kinds_known.at(kname);
        tally& t = tallies[kname];
        for (uint64_t n : ns) {
            if (failures > 0) break;
            const std::string dir = base + "/" + kname + "-" + std::to_string(n);
            runner r(dir, s, opt.kafka_records, opt.workers, opt.wait_s);
            const std::string plan = std::to_string(n) + ":" + k.name +
                                     (kname == "delay" ? "=" + std::to_string(opt.delay_ms) : "");
            run_result f = r.run(plan, "faulted");
            ++t.runs;
            t.injected += injected_in_log(f.log);
            const std::string log = read_text(f.log);
            CHECK(f.rc != -1, "%s: sluiced hung (see %s)", plan.c_str(), f.log.c_str());
            CHECK(f.rc >= 0 && f.rc < 128, "%s: sluiced %s (see %s)", plan.c_str(), f.ended.c_str(),
                  f.log.c_str());
            if (f.rc == 0) {
                ++t.absorbed;
                CHECK(f.started && f.took_all, "%s: exit 0 but the stream was not taken (see %s)",
                      plan.c_str(), f.log.c_str());
                CHECK(f.state != "failed", "%s: storage.state was failed, yet exit status 0 (see %s)",
                      plan.c_str(), f.log.c_str());
            } else if (f.rc > 0) {
                f.started ? ++t.stopped_later : ++t.stopped_at_start;
                CHECK(!k.cause.empty(), "%s: a %s fault never fails a call, yet sluiced %s (see %s)",
                      plan.c_str(), kname.c_str(), f.ended.c_str(), f.log.c_str());
                // ENOSPC from io_uring_submit (never returned by the kernel there; only
                // injection reaches it) is reported as EIO on purpose: a failed submit is
                // never retried as a full disk (RELIABILITY.md, bug 2).
                CHECK(k.cause.empty() || log.find(k.cause) != std::string::npos ||
                          (kname == "enospc" && log.find(std::strerror(EIO)) != std::string::npos &&
                           log.find("io_uring_submit 0,") == std::string::npos),
                      "%s: sluiced %s without naming the cause (\"%s\") (see %s)", plan.c_str(),
                      f.ended.c_str(), k.cause.c_str(), f.log.c_str());
            }
            // What it reported durable is on disk, once.
            auto ev = stored_events(r.data());
            std::set<std::string> ids;
            for (const auto& e : ev) ids.insert(e.substr(0, 16));
            CHECK(ids.size() == ev.size(), "%s: %zu events stored twice", plan.c_str(),
                  ev.size() - ids.size());
            CHECK(ev.size() >= f.events_durable, "%s: %zu events stored, %llu were reported durable",
                  plan.c_str(), ev.size(), (unsigned long long)f.events_durable);
            durable_checked += f.events_durable;
            // The restart, without the hook: everything again, then equal to the reference.
            run_result b = r.run("", "restart");
            CHECK(b.took_all && b.rc == 0, "%s: the restart %s, %s (see %s)", plan.c_str(),
                  b.took_all ? "took every event" : "did not take every event", b.ended.c_str(),
                  b.log.c_str());
            const int failures_before_restart_check = failures;
            if (b.took_all && b.rc == 0) {
                auto events_b = stored_events(r.data());
                CHECK(events_b == events_a, "%s: after the restart %zu events stored, %zu in the reference",
                      plan.c_str(), events_b.size(), events_a.size());
                for (size_t i = 0; i < restart_query_tables.size(); ++i) {
                    auto rb = table_rows(r.data(), restart_query_tables[i]);
                    CHECK(rb == tables_a[i], "%s: %s has %zu rows after the restart, %zu in the reference (or they differ)",
                          plan.c_str(), restart_query_tables[i].c_str(), rb.size(), tables_a[i].size());
                }
            }
            std::printf("fault_walk: %-18s %s%s, %llu events durable at its end; restart %s\n",
                        plan.c_str(),
                        f.rc == 0 ? "absorbed" : f.started ? "stopped while running" : "stopped at start",
                        f.rc > 0 ? (" (" + f.ended + ")").c_str() : "",
                        (unsigned long long)f.events_durable,
                        failures == failures_before_restart_check && b.rc == 0 ? "equal to the reference" : "FAILED");
            std::fflush(stdout);
            if (failures == 0 && !opt.keep) std::filesystem::remove_all(dir);
        }
    }

    std::printf("\nfault_walk summary (seed %llu, %llu events, %u worker(s), %llu Kafka records, %llu hooked "
                "calls in the reference run: %s)\n",
                (unsigned long long)opt.seed, (unsigned long long)opt.events, opt.workers,
                (unsigned long long)opt.kafka_records, (unsigned long long)calls, calls_text.c_str());
    for (const auto& [kname, t] : tallies)
        std::printf("  %-7s %llu runs: %llu absorbed, %llu stopped at start, %llu stopped while running; "
                    "%llu faults injected\n",
                    kname.c_str(), (unsigned long long)t.runs, (unsigned long long)t.absorbed,
                    (unsigned long long)t.stopped_at_start, (unsigned long long)t.stopped_later,
                    (unsigned long long)t.injected);
    std::printf("  durability %llu events reported durable by faulted runs: %s\n",
                (unsigned long long)durable_checked, failures == 0 ? "all found, once" : "see FAILED above");
    std::printf("  time       %.0f s\n", std::chrono::duration<double>(steady::now() - t0).count());
    std::printf("  result     %s\n", failures == 0 ? "PASS" : "FAIL");
    if (failures == 0 && !opt.keep && opt.dir.empty()) std::filesystem::remove_all(base);
    else std::printf("  data       %s\n", base.c_str());
    return failures == 0 ? 0 : 1;
}
