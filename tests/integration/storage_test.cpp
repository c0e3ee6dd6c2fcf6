// The store's promises, held against the real sluiced: what `stats` reports durable
// survives kill -9 at random moments during heavy ingest (many times), recovery sets
// corrupt segments aside and truncates torn ones and the daemon starts either way, a
// full disk stops ingest with back-pressure and a clear error and loses nothing, and
// retention deletes old segments in the background as set over the control socket.
#include <gtest/gtest.h>
#include "tests/storage/duckdb_util.h"
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "storage/schema.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"
#include "storage/table_reader.h"
#include "tests/integration/daemon_harness.h"

using namespace sluice;
using namespace sluice::testing;
using sluice::test::duckdb;
namespace fs = std::filesystem;

namespace {

const char* query_table = "page_views_per_minute";
const char* tables[] = {"events", "dead_letters", "page_views_per_minute"};

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

// Runs sluice-gen into dir (pcap + expected outcome).
void generate(const std::string& dir, uint32_t events, uint32_t seed) {
    std::string gen = std::string(std::getenv("SLUICE_GEN")) + " --events " +
                      std::to_string(events) + " --seed " + std::to_string(seed) + " --out " + dir +
                      " > " + dir + "/gen.log 2>&1";
    ASSERT_EQ(run_command(gen), 0) << gen;
}

std::vector<std::string> daemon_args(const std::string& prefix, const std::string& pcap,
                                     const std::string& data_dir, const std::string& sock,
                                     const std::string& config = "") {
    auto args = eal_args(prefix, 4);
    args.insert(args.end(), {"--vdev", "net_pcap0,rx_pcap=" + pcap, "--", "--data-dir", data_dir,
                             "--control-socket", sock, "--workers", "2"});
    if (!config.empty()) args.insert(args.end(), {"--config", config});
    return args;
}

// Segment file paths of every table, by name.
std::set<std::string> segment_paths(const std::string& data_dir) {
    std::set<std::string> out;
    for (const char* t : tables) {
        auto files = storage::list_segments(data_dir + "/" + t);
        if (!files) continue;
        for (const auto& f : *files) out.insert(f.path);
    }
    return out;
}

// Decodes one segment file, verifying every block; false on any damage.
bool read_segment(const std::string& path,
                  const std::function<void(const storage::column_batch&)>& fn) {
    auto rd = storage::segment_reader::open(path);
    if (!rd) return false;
    storage::column_batch b((*rd)->schema(), 1, 0, 0);
    while ((*rd)->next_block()) {
        if (!(*rd)->read_block(b)) return false;
        fn(b);
    }
    return (*rd)->end() != storage::segment_reader::end_state::damaged;
}

uint64_t done_events(const json& s) {
    const json& t = s["totals"];
    return t["events_accepted"].get<uint64_t>() + t["duplicates"].get<uint64_t>() +
           t["dead_letters"].get<uint64_t>();
}

const json* table_stats(const json& stats, const std::string& table) {
    for (const auto& t : stats["storage"]["tables"])
        if (t["table"] == table) return &t;
    return nullptr;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

struct run_files {
    std::set<std::string> paths; // the segments this run created
    json last_stats;            // the last stats reply before the kill
};

// Checks what one killed run left, after the next start's recovery: every row its
// last stats reported durable is there (per writer and table), rows are events of the
// capture at most as often as the model accepts them, nothing is damaged, and the
// newest durable event time is a stored row's.
void check_killed_run(int run, const run_files& rf, const expected_outcome& want) {
    std::map<std::string, int> allowed;
    for (const auto& e : want.events) ++allowed[e];
    std::map<std::string, uint64_t> rows_by; // "<table>/<writer>"
    std::set<int64_t> event_times;
    for (const auto& path : rf.paths) {
        ASSERT_TRUE(fs::exists(path)) << "run " << run << ": " << path
                                      << " was set aside or lost after a crash";
        storage::segment_file f;
        ASSERT_TRUE(storage::parse_segment_name(fs::path(path).filename(), f));
        std::string table = fs::path(path).parent_path().filename();
        bool ok = read_segment(path, [&](const storage::column_batch& b) {
            rows_by[table + "/" + f.writer] += b.rows();
            if (table != "events") return;
            namespace ev = storage::events_col;
            for (uint32_t i = 0; i < b.rows(); ++i) {
                auto raw = b.string_at(ev::raw, i);
                std::string key = hex64(XXH3_64bits(raw.data(), raw.size())) + " " +
                                  std::to_string(b.u8_at(ev::late, i));
                EXPECT_GT(allowed[key]--, 0) << "run " << run << ": stored twice or not an "
                                             << "accepted event of the capture: " << key;
                event_times.insert(b.i64_at(ev::event_time_ms, i));
            }
        });
        EXPECT_TRUE(ok) << "run " << run << ": damaged data served from " << path;
    }
    const json& s = rf.last_stats;
    ASSERT_TRUE(s.value("ok", false)) << "run " << run << ": no stats before the kill";
    for (const auto& core : s["per_core"]) {
        if (core["role"] != "worker") continue;
        std::string w = "w" + std::to_string(core["worker"].get<int>());
        EXPECT_GE(rows_by["events/" + w], core["events_durable"].get<uint64_t>())
            << "run " << run << ": durable events of " << w << " lost";
        EXPECT_GE(rows_by["dead_letters/" + w], core["dead_letters_durable"].get<uint64_t>())
            << "run " << run << ": durable dead letters of " << w << " lost";
    }
    if (const json* q = table_stats(s, query_table)) {
        EXPECT_GE(rows_by[std::string(query_table) + "/merger"], (*q)["rows_durable"].get<uint64_t>())
            << "run " << run << ": durable window rows lost";
    }
    int64_t newest = s["totals"]["durable_event_time_ms"].get<int64_t>();
    if (newest != 0) {
        EXPECT_TRUE(event_times.contains(newest))
            << "run " << run << ": the newest durable event time " << newest << " is not stored";
    }
}

// Kill -9 at random moments during heavy ingest, many times, restarting each time.
TEST(StorageCrash, EveryRowReportedDurableSurvivesKill9) {
    std::string dir = make_temp_dir("crash");
    generate(dir, 200000, 51);
    expected_outcome want = read_expected(dir);
    const std::string data = dir + "/data";
    std::mt19937_64 rng(std::random_device{}());
    const int kills = 8;
    std::vector<run_files> runs;
    std::unique_ptr<daemon_process> d;
    for (int run = 0; run <= kills; ++run) {
        auto before = segment_paths(data);
        std::string prefix = "sluice-crash-" + std::to_string(getpid()) + "-" + std::to_string(run);
        d = std::make_unique<daemon_process>(
            daemon_args(prefix, dir + "/events.pcap", data, dir + "/ctl.sock"),
            dir + "/sluiced-" + std::to_string(run) + ".log");
        // Up: recovery of the last run's crash is done. Check that run now.
        json up = d->wait_stats([](const json&) { return true; }, 120);
        ASSERT_TRUE(up.value("ok", false)) << "sluiced did not restart after a kill; see " << dir;
        if (run > 0) {
            check_killed_run(run - 1, runs.back(), want);
            if (::testing::Test::HasFatalFailure()) return;
        }
        if (run == kills) break;
        // Heavy ingest is running (the capture replays at full speed): kill at a random
        // moment after it has started, right after a stats reply.
        // (Events received, not accepted: once the capture is stored, the runs after a
        // crash find every re-sent event a duplicate.)
        json started = d->wait_stats(
            [](const json& s) { return s["totals"]["events_received"].get<uint64_t>() > 0; }, 60);
        ASSERT_TRUE(started.value("ok", false));
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(rng() % 1500);
        json last = started;
        while (std::chrono::steady_clock::now() < deadline) {
            json s = d->request({{"cmd", "stats"}});
            if (s.value("ok", false)) last = s;
        }
        json s = d->request({{"cmd", "stats"}});
        if (s.value("ok", false)) last = s;
        d->kill9();
        run_files rf;
        rf.last_stats = last;
        for (const auto& p : segment_paths(data))
            if (!before.contains(p)) rf.paths.insert(p);
        runs.push_back(std::move(rf));
    }
    // Ingest resumes after the last crash: the capture is taken in full, and a graceful
    // stop leaves a store that scans without damage.
    uint64_t received = want.counters["events_received"];
    json stats = d->wait_stats([&](const json& s) { return done_events(s) == received; }, 300);
    ASSERT_TRUE(stats.value("ok", false)) << dump(stats);
    EXPECT_EQ(stats["storage"]["state"], "ok");
    ASSERT_EQ(d->shutdown_and_wait(120), 0) << "see " << dir;
    // Exactly once across every crash: dedup state survives the restarts (rebuilt from
    // the store), so the events table holds each accepted event of the capture once,
    // with the model's lateness, however often the capture was re-sent.
    std::vector<std::string> stored;
    auto ev_scan = storage::scan_table(data, "events", INT64_MIN, INT64_MAX, [&](const storage::column_batch& b) {
        namespace ev = storage::events_col;
        for (uint32_t i = 0; i < b.rows(); ++i) {
            auto raw = b.string_at(ev::raw, i);
            stored.push_back(hex64(XXH3_64bits(raw.data(), raw.size())) + " " +
                             std::to_string(b.u8_at(ev::late, i)));
        }
    });
    ASSERT_TRUE(ev_scan.ok());
    std::vector<std::string> expected = want.events;
    std::sort(stored.begin(), stored.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(stored.size(), expected.size());
    EXPECT_TRUE(stored == expected) << "the events table differs from the model's accepted events";
    for (const char* t : tables) {
        auto r = storage::scan_table(data, t, INT64_MIN, INT64_MAX, [](const storage::column_batch&) {});
        ASSERT_TRUE(r.ok()) << t;
        EXPECT_EQ(r->damaged_segments, 0u) << t;
    }
    if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

void flip_byte(const std::string& path, uint64_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(std::streamoff(offset));
    char c;
    f.get(c);
    f.seekp(std::streamoff(offset));
    f.put(char(c ^ 0x20));
}

// Corruption in the middle of a segment and a torn tail: the daemon starts, sets the
// corrupt segment aside with a clear log line, truncates the torn one, serves neither
// bad block, and ingests on.
TEST(StorageCorruption, FlippedBitsAndTruncatedFilesAreSetAsideAndTheDaemonStarts) {
    std::string dir = make_temp_dir("corrupt");
    generate(dir, 60000, 52);
    expected_outcome want = read_expected(dir);
    const std::string data = dir + "/data";
    // Small blocks (flush every 10 ms) so that segments have many of them.
    std::ofstream(dir + "/sluiced.toml") << "[storage]\nflush_interval_ms = 10\n";
    {
        daemon_process d(daemon_args("sluice-corrupt-a-" + std::to_string(getpid()),
                                     dir + "/events.pcap", data, dir + "/ctl.sock",
                                     dir + "/sluiced.toml"),
                         dir + "/sluiced-a.log");
        uint64_t received = want.counters["events_received"];
        json s = d.wait_stats([&](const json& st) { return done_events(st) == received; }, 300);
        ASSERT_TRUE(s.value("ok", false)) << dump(s);
        ASSERT_EQ(d.shutdown_and_wait(120), 0);
    }
    auto files = storage::list_segments(data + "/events");
    ASSERT_TRUE(files.ok());
    ASSERT_EQ(files->size(), 2u); // w0 and w1
    auto offsets = [](const std::string& path) {
        std::vector<uint64_t> out;
        auto rd = storage::segment_reader::open(path);
        while (rd && (*rd)->next_block()) out.push_back((*rd)->block_offset());
        return out;
    };
    const std::string corrupt = (*files)[0].path, torn = (*files)[1].path;
    auto co = offsets(corrupt), to = offsets(torn);
    ASSERT_GE(co.size(), 3u) << "need a block in the middle";
    ASSERT_GE(to.size(), 2u);
    uint64_t good_rows = 0;
    {
        auto rd = storage::segment_reader::open(torn);
        for (size_t i = 0; i + 1 < to.size() && (*rd)->next_block(); ++i) good_rows += (*rd)->block().rows;
    }
    flip_byte(corrupt, co[co.size() / 2] + storage::format::block_header_bytes + 7);
    fs::resize_file(torn, to.back() + 100); // the last block torn, the footer gone

    daemon_process d(daemon_args("sluice-corrupt-b-" + std::to_string(getpid()),
                                 dir + "/events.pcap", data, dir + "/ctl.sock",
                                 dir + "/sluiced.toml"),
                     dir + "/sluiced-b.log");
    json up = d.wait_stats([](const json& s) { return s["totals"]["events_accepted"] > 0; }, 120);
    ASSERT_TRUE(up.value("ok", false)) << "the daemon did not start; see " << dir;
    EXPECT_TRUE(fs::exists(corrupt + ".corrupt"));
    EXPECT_FALSE(fs::exists(corrupt));
    EXPECT_EQ(fs::file_size(torn), to.back());
    std::ifstream log(dir + "/sluiced-b.log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("corrupt segment " + corrupt), std::string::npos) << text;
    EXPECT_NE(text.find("moved aside"), std::string::npos) << text;
    EXPECT_NE(text.find("torn tail in " + torn), std::string::npos) << text;
    uint64_t torn_rows = 0;
    EXPECT_TRUE(read_segment(torn, [&](const storage::column_batch& b) { torn_rows += b.rows(); }));
    EXPECT_EQ(torn_rows, good_rows);
    ASSERT_EQ(d.shutdown_and_wait(120), 0);
    auto r = storage::scan_table(data, "events", INT64_MIN, INT64_MAX, [](const storage::column_batch&) {});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->damaged_segments, 0u);
    if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

// A tmpfs of `size` mounted by the test: the small disk that fills up.
struct small_disk {
    explicit small_disk(const std::string& size) {
        path = make_temp_dir("disk");
        if (::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0)
            mounted = true;
        else
            error = std::strerror(errno);
    }
    ~small_disk() {
        if (mounted) ::umount2(path.c_str(), MNT_DETACH);
        ::rmdir(path.c_str());
    }
    std::string path, error;
    bool mounted = false;
};

// ENOSPC: sluice stops taking events (the capture waits: back-pressure), says why in
// stats and its log, and once space returns it finishes with exactly the model's store.
TEST(StorageDiskFull, StopsAcceptingLosesNothingAndResumesWhenSpaceReturns) {
    small_disk disk("24m");
    if (!disk.mounted) GTEST_SKIP() << "cannot mount a tmpfs (" << disk.error << "; needs root)";
    std::string dir = make_temp_dir("diskfull");
    generate(dir, 200000, 53);
    expected_outcome want = read_expected(dir);
    const std::string data = disk.path + "/data";
    fs::create_directories(data);
    {
        // Leave ~1.5 MiB: room to start, not for the ~5 MB the capture stores.
        std::ofstream filler(disk.path + "/filler", std::ios::binary);
        std::string chunk(1 << 16, 'x');
        while (fs::space(disk.path).available > (3u << 19) + chunk.size()) filler << chunk;
    }
    daemon_process d(daemon_args("sluice-diskfull-" + std::to_string(getpid()),
                                 dir + "/events.pcap", data, dir + "/ctl.sock"),
                     dir + "/sluiced.log");
    json full = d.wait_stats([](const json& s) { return s["storage"]["state"] == "disk_full"; }, 120);
    ASSERT_EQ(full["storage"]["state"], "disk_full") << dump(full) << " (see " << dir << ")";
    EXPECT_NE(full["storage"]["error"].get<std::string>().find("disk full"), std::string::npos);
    // Ingest stops: a second later nothing more has been received (RX waits on the rings).
    // (The pauses measure that nothing moves; no condition can stand in for them.)
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    json a = d.request({{"cmd", "stats"}});
    ASSERT_TRUE(a.value("ok", false)) << dump(a);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    json b = d.request({{"cmd", "stats"}});
    ASSERT_TRUE(b.value("ok", false)) << dump(b);
    EXPECT_EQ(a["totals"]["events_received"], b["totals"]["events_received"]) << "still ingesting";
    EXPECT_LT(b["totals"]["events_received"].get<uint64_t>(),
              want.counters["events_received"].get<uint64_t>());
    EXPECT_EQ(b["storage"]["state"], "disk_full");
    EXPECT_EQ(b["totals"]["rx_dropped"], 0); // a capture waits; nothing was dropped
    uint64_t durable_while_full = b["totals"]["rows_durable"];

    fs::remove(disk.path + "/filler");
    uint64_t received = want.counters["events_received"];
    json done = d.wait_stats([&](const json& s) { return done_events(s) == received; }, 300);
    ASSERT_TRUE(done.value("ok", false)) << dump(done);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (done["storage"]["state"] != "ok" && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        done = d.request({{"cmd", "stats"}});
    }
    EXPECT_EQ(done["storage"]["state"], "ok") << dump(done);
    EXPECT_GE(done["totals"]["rows_durable"].get<uint64_t>(), durable_while_full);
    EXPECT_GE((*table_stats(done, "events"))["disk_full_stalls"].get<uint64_t>(), 1u);
    EXPECT_EQ((*table_stats(done, "events"))["rows_dropped"], 0);
    EXPECT_EQ(done["totals"]["events_accepted"], want.counters["events_accepted"]);
    ASSERT_EQ(d.shutdown_and_wait(120), 0) << "see " << dir;

    std::ifstream log(dir + "/sluiced.log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("disk full writing"), std::string::npos) << text;
    EXPECT_NE(text.find("resumed"), std::string::npos) << text;
    // Nothing lost: the store is exactly the model's.
    stored_outcome got = read_store(data, query_table);
    EXPECT_EQ(got.events.size(), want.events.size());
    EXPECT_TRUE(got.events == want.events) << "events differ from the model";
    EXPECT_TRUE(got.dead_letters == want.dead_letters) << "dead letters differ";
    EXPECT_TRUE(got.windows_csv == want.windows_csv) << "window rows differ";
    if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

// Retention set over the control socket deletes closed segments in the background and
// shows in stats; the segment being written is kept.
TEST(StorageRetention, SetOverTheSocketDeletesOldSegmentsInTheBackground) {
    std::string dir = make_temp_dir("retention");
    generate(dir, 100000, 54);
    expected_outcome want = read_expected(dir);
    const std::string data = dir + "/data";
    // 1 MiB segments: the writers rotate while ingesting.
    std::ofstream(dir + "/sluiced.toml") << "[storage]\nsegment_bytes_max = 1048576\n"
                                            "compression = \"none\"\nflush_interval_ms = 20\n"
                                            "[retention]\ninterval_ms = 100\n";
    daemon_process d(daemon_args("sluice-retention-" + std::to_string(getpid()),
                                 dir + "/events.pcap", data, dir + "/ctl.sock",
                                 dir + "/sluiced.toml"),
                     dir + "/sluiced.log");
    uint64_t received = want.counters["events_received"];
    json s = d.wait_stats([&](const json& st) { return done_events(st) == received; }, 300);
    ASSERT_TRUE(s.value("ok", false)) << dump(s);
    ASSERT_TRUE(d.request({{"cmd", "flush"}}).value("ok", false));
    auto before = storage::list_segments(data + "/events");
    ASSERT_TRUE(before.ok());
    ASSERT_GE(before->size(), 6u) << "expected rotations at 1 MiB";
    // Keep as little as possible: everything but the segments being written goes.
    json r = d.request({{"cmd", "retention"}, {"table", "events"}, {"max_bytes", 1}});
    ASSERT_TRUE(r.value("ok", false)) << dump(r);
    json bad = d.request({{"cmd", "retention"}, {"table", "../etc"}, {"max_bytes", 1}});
    EXPECT_FALSE(bad.value("ok", true));
    EXPECT_NE(bad.value("error", "").find("bad table name"), std::string::npos) << dump(bad);

    json after = d.wait_stats(
        [](const json& st) {
            const json* t = table_stats(st, "events");
            return t && t->contains("segments") && (*t)["segments"] == 2;
        },
        30);
    const json* t = table_stats(after, "events");
    ASSERT_NE(t, nullptr) << dump(after);
    EXPECT_EQ((*t)["segments"], 2) << dump(*t);
    EXPECT_EQ((*t)["segments_deleted"].get<uint64_t>(), before->size() - 2);
    EXPECT_GT((*t)["rows_deleted"].get<uint64_t>(), 0u);
    EXPECT_EQ((*t)["retention_max_bytes"], 1);
    auto remaining = storage::list_segments(data + "/events");
    ASSERT_TRUE(remaining.ok());
    EXPECT_LT(remaining->size(), before->size());
    // Each writer's newest segment is still there.
    std::map<std::string, uint64_t> newest;
    for (const auto& f : *before) newest[f.writer] = std::max(newest[f.writer], f.seq);
    for (const auto& [w, seq] : newest) {
        bool found = false;
        for (const auto& f : *remaining) found |= f.writer == w && f.seq == seq;
        EXPECT_TRUE(found) << w << "'s segment being written was deleted";
    }
    json listed = d.request({{"cmd", "retention"}});
    ASSERT_TRUE(listed.value("ok", false));
    bool events_listed = false;
    for (const auto& lt : listed["tables"])
        if (lt["table"] == "events") {
            events_listed = true;
            EXPECT_EQ(lt["policy"], "table");
            EXPECT_EQ(lt["max_bytes"], 1);
        }
    EXPECT_TRUE(events_listed) << dump(listed);
    ASSERT_EQ(d.shutdown_and_wait(120), 0);
    if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}



// A real run exported by sluice-read in every format: DuckDB counts what sluice counted,
// and its window rows are sluice's (and the model's).
TEST(StorageExport, DuckDbReadsEveryExportWithSluicesCountsAndWindows) {
    std::string dir = make_temp_dir("export");
    generate(dir, 60000, 55);
    expected_outcome want = read_expected(dir);
    const std::string data = dir + "/data";
    {
        daemon_process d(daemon_args("sluice-export-" + std::to_string(getpid()),
                                     dir + "/events.pcap", data, dir + "/ctl.sock"),
                         dir + "/sluiced.log");
        uint64_t received = want.counters["events_received"];
        json s = d.wait_stats([&](const json& st) { return done_events(st) == received; }, 300);
        ASSERT_TRUE(s.value("ok", false)) << dump(s);
        ASSERT_EQ(d.shutdown_and_wait(120), 0);
    }
    const std::string reader = std::getenv("SLUICE_READ");
    std::map<std::string, std::string> files; // "<table>.<format>" -> path
    for (const char* t : tables)
        for (const char* f : {"parquet", "csv", "jsonl"}) {
            std::string path = dir + "/" + t + "." + f;
            ASSERT_EQ(run_command(reader + " " + data + " " + t + " --format " + f + " --out " +
                                  path + " 2>/dev/null"),
                      0)
                << t << " " << f;
            files[std::string(t) + "." + f] = path;
        }
    auto from = [&](const std::string& key) {
        const std::string& p = files.at(key);
        if (key.ends_with(".parquet")) return "read_parquet('" + p + "')";
        if (key.ends_with(".csv")) return "read_csv('" + p + "', header = true, allow_quoted_nulls = false)";
        return "read_json('" + p + "', format = 'newline_delimited')";
    };
    const json& c = want.counters;
    for (const char* f : {"parquet", "csv", "jsonl"}) {
        SCOPED_TRACE(f);
        const std::string ev = from(std::string("events.") + f);
        const std::string dl = from(std::string("dead_letters.") + f);
        const std::string wq = from(std::string(query_table) + "." + f);
        auto res = duckdb({
            "SELECT count(*), sum(late::BIGINT) FROM " + ev,
            "SELECT reason, count(*) FROM " + dl + " GROUP BY reason ORDER BY reason",
            "SELECT window_start_ms, window_end_ms, page, count FROM " + wq +
                " ORDER BY window_start_ms, page",
            "SELECT count(*) FROM " + ev + " WHERE event_id IS NULL",
        });
        ASSERT_EQ(res.size(), 4u);
        EXPECT_EQ(res[0]["rows"][0][0], std::to_string(c["events_accepted"].get<uint64_t>()));
        EXPECT_EQ(res[0]["rows"][0][1], std::to_string(c["late_events"].get<uint64_t>()));
        std::map<std::string, uint64_t> by_reason;
        for (const auto& r : res[1]["rows"]) by_reason[r[0]] = std::stoull(r[1].get<std::string>());
        for (auto& [reason, n] : c["dead_letters_by_reason"].items())
            EXPECT_EQ(by_reason[reason], n.get<uint64_t>()) << reason;
        // Window rows, as sluice-gen's expected windows.csv writes them.
        std::vector<std::string> windows;
        for (const auto& r : res[2]["rows"]) {
            std::string key = r[2].get<std::string>();
            std::string field = key;
            if (key.find_first_of(",\"\n\r") != std::string::npos) {
                field = "\"";
                for (char ch : key) field += ch == '"' ? std::string("\"\"") : std::string(1, ch);
                field += "\"";
            }
            auto num = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
            windows.push_back(num(r[0]) + "," + num(r[1]) + "," + field + "," + num(r[3]));
        }
        // DuckDB orders keys by its collation; the model by bytes: compare as sets.
        std::vector<std::string> a = windows, b = want.windows_csv;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        EXPECT_EQ(a.size(), b.size());
        EXPECT_TRUE(a == b) << "window results differ from sluice's";
        EXPECT_GT(std::stoull(res[3]["rows"][0][0].get<std::string>()), 0u);
    }
    auto types = duckdb({"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " +
                         from("events.parquet") + ")"});
    ASSERT_EQ(types.size(), 1u);
    EXPECT_EQ(types[0]["rows"].dump(),
              R"([["event_time_ms","BIGINT"],["event_id","VARCHAR"],["user_id","VARCHAR"],)"
              R"(["event_type","VARCHAR"],["page","VARCHAR"],["late","UTINYINT"],["raw","VARCHAR"],)"
              R"(["max_time_ms","BIGINT"]])");
    if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

} // namespace
