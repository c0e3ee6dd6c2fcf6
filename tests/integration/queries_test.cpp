// Continuous queries at run time with the real sluiced and sluicectl: add a query (group
// by a metadata field, a filter, numeric aggregates), see its open windows live, its
// closed windows from the store (equal to a small model), remove it, and find the set
// of queries as left across a restart. Bad definitions fail with a message and exit 1.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/segment_files.h"
#include "storage/segment_reader.h"
#include "tests/integration/daemon_harness.h"
#include "tools/gen/udp_sender.h"

using namespace sluice::testing;

namespace {

constexpr int64_t t0 = 1'740'754'800'000; // 2025-02-28T15:00:00Z, a minute boundary

struct ctl_result {
    int code;
    std::string out; // stdout and stderr
};

ctl_result sluicectl(const std::string& socket, const std::string& args) {
    std::string cmd = std::string(std::getenv("SLUICECTL")) + " --socket " + socket + " " + args + " 2>&1";
    ctl_result r{-1, {}};
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int status = ::pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    return r;
}

std::vector<json> json_lines(const std::string& text) {
    std::vector<json> out;
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        if (!line.empty()) out.push_back(json::parse(line, nullptr, false));
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    return out;
}

struct event {
    int64_t t;
    std::string page, region, type;
    int bytes;
};

std::string render(const event& e, int i) {
    return "{\"event_id\":\"q" + std::to_string(i) + "\",\"user_id\":\"u" + std::to_string(i % 5) +
           "\",\"event_type\":\"" + e.type + "\",\"timestamp\":" + std::to_string(e.t) + ",\"page\":\"" +
           e.page + "\",\"metadata\":{\"region\":\"" + e.region + "\",\"bytes\":" + std::to_string(e.bytes) +
           "}}";
}

class daemon_node {
  public:
    explicit daemon_node(const std::string& dir, std::vector<std::string> extra = {})
        : _dir(dir), _extra(std::move(extra)) {
        _port = uint16_t(20000 + (getpid() * 13 + 7) % 20000);
    }
    bool start() {
        auto args = eal_args("sluice-queries-" + std::to_string(getpid()) + "-" + std::to_string(_runs), 4);
        args.insert(args.end(), {"--", "--data-dir", _dir + "/data", "--control-socket", socket(),
                                 "--workers", "2", "--kernel-udp", "127.0.0.1", "--udp-port",
                                 std::to_string(_port)});
        args.insert(args.end(), _extra.begin(), _extra.end());
        _d = std::make_unique<daemon_process>(args, _dir + "/sluiced-" + std::to_string(_runs++) + ".log");
        return _d->wait_stats([](const json&) { return true; }, 120).value("ok", false);
    }
    void send(const std::vector<std::string>& lines) {
        auto s = sluice::tools::udp_sender::open("127.0.0.1:" + std::to_string(_port), 5000);
        ASSERT_TRUE(s) << s.err().message;
        for (const auto& l : lines) ASSERT_TRUE(s->send(l));
    }
    daemon_process& d() { return *_d; }
    std::string socket() const { return _dir + "/ctl.sock"; }
    int shutdown() { return _d->shutdown_and_wait(120); }

  private:
    std::string _dir;
    std::vector<std::string> _extra;
    uint16_t _port;
    int _runs = 0;
    std::unique_ptr<daemon_process> _d;
};

// The query's entry in a stats reply; null when absent (or the reply is an error).
json query_stats(const json& stats, const std::string& name) {
    auto queries = stats.find("queries");
    if (queries == stats.end() || !queries->is_array()) return json();
    for (const auto& q : *queries)
        if (q.value("name", "") == name) return q;
    return json();
}

} // namespace

TEST(Queries, AddSeeOpenAndClosedWindowsRemoveAndRestart) {
    std::string dir = make_temp_dir("queries");
    daemon_node n(dir);
    ASSERT_TRUE(n.start()) << "see " << dir;
    const std::string sock = n.socket();

    // Bad definitions: one line saying why, exit 1; a bad option: usage, exit 2.
    auto bad = sluicectl(sock, "queries add x --window hopping --size 1m --slide 100ms");
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.out.find("at most 64 windows per event"), std::string::npos) << bad.out;
    bad = sluicectl(sock, "queries add y --size 1m --agg 'median(x)'");
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.out.find("unknown aggregate"), std::string::npos) << bad.out;
    bad = sluicectl(sock, "queries add events");
    EXPECT_NE(bad.out.find("reserved"), std::string::npos) << bad.out;
    EXPECT_EQ(sluicectl(sock, "queries add z --window weekly").code, 2);

    auto added = sluicectl(sock,
                           "queries add clicks --window hopping --size 2m --slide 1m "
                           "--group-by page,metadata.region --filter event_type=click "
                           "--agg count --agg 'sum(metadata.bytes)' --agg 'max(metadata.bytes)' "
                           "--agg 'distinct(user_id)' --delay 1m");
    ASSERT_EQ(added.code, 0) << added.out;
    EXPECT_EQ(sluicectl(sock, "queries add clicks --size 1m").code, 1); // exists
    auto list = sluicectl(sock, "queries list --json");
    ASSERT_EQ(list.code, 0) << list.out;
    json l = json::parse(list.out);
    ASSERT_EQ(l["queries"].size(), 2u);
    EXPECT_EQ(l["queries"][1]["name"], "clicks");
    EXPECT_EQ(l["queries"][1]["columns"],
              json::array({"window_start_ms", "window_end_ms", "page", "metadata_region", "count",
                           "sum_metadata_bytes", "max_metadata_bytes", "distinct_user_id", "revision"}));

    // 240 events over 4 minutes; the model: per hopping window and (page, region), the
    // clicks' count, sum and max of bytes and distinct users.
    std::vector<std::string> lines;
    std::map<std::tuple<int64_t, std::string, std::string>, std::tuple<uint64_t, double, double, std::set<int>>> want;
    for (int i = 0; i < 240; ++i) {
        event e{t0 + i * 1000, "/p" + std::to_string(i % 2), "r" + std::to_string(i % 3),
                i % 4 == 0 ? "page_view" : "click", 100 + i};
        lines.push_back(render(e, i));
        if (e.type != "click") continue;
        for (int64_t s = (e.t / 60000 - 1) * 60000; s <= e.t; s += 60000) {
            if (!(s <= e.t && e.t < s + 120000)) continue;
            auto& [c, sum, mx, users] = want[{s, e.page, e.region}];
            ++c;
            sum += e.bytes;
            mx = std::max(mx, double(e.bytes));
            users.insert(i % 5);
        }
    }
    n.send(lines);
    json st = n.d().wait_stats([](const json& s) { return s["totals"]["events_accepted"] == 240; }, 60);
    ASSERT_EQ(st["totals"]["events_accepted"], 240) << "see " << dir;
    EXPECT_EQ(query_stats(st, "clicks")["events"], 180); // the filter's share

    // The last minutes' windows are still open (W = last time - 1 min): a live view shows them.
    auto open = sluicectl(sock, "windows clicks --open --format json");
    ASSERT_EQ(open.code, 0) << open.out;
    auto open_rows = json_lines(open.out);
    ASSERT_FALSE(open_rows.empty());
    bool any_open = false;
    for (const auto& r : open_rows) any_open |= r["open"] == true;
    EXPECT_TRUE(any_open) << open.out;

    // A late-time event moves W past every window: all close and are written.
    n.send({R"({"event_id":"end","event_type":"view","timestamp":)" + std::to_string(t0 + 3600000) + "}"});
    st = n.d().wait_stats([&](const json& s) { return query_stats(s, "clicks")["rows_emitted"] == want.size(); },
                          60);
    ASSERT_EQ(query_stats(st, "clicks")["rows_emitted"], want.size()) << st.dump();
    ASSERT_EQ(sluicectl(sock, "flush").code, 0);
    auto closed = sluicectl(sock, "windows clicks --format json");
    ASSERT_EQ(closed.code, 0) << closed.out;
    auto rows = json_lines(closed.out);
    ASSERT_EQ(rows.size(), want.size()) << closed.out;
    // Newest first.
    for (size_t i = 1; i < rows.size(); ++i)
        EXPECT_GE(rows[i - 1]["window_end_ms"].get<int64_t>(), rows[i]["window_end_ms"].get<int64_t>())
            << "row " << i;
    for (const auto& r : rows) {
        auto it = want.find({r["window_start_ms"].get<int64_t>(), r["page"].get<std::string>(),
                             r["metadata_region"].get<std::string>()});
        ASSERT_NE(it, want.end()) << r.dump();
        const auto& [c, sum, mx, users] = it->second;
        EXPECT_EQ(r["window_end_ms"].get<int64_t>(), r["window_start_ms"].get<int64_t>() + 120000);
        EXPECT_EQ(r["count"], c) << r.dump();
        EXPECT_EQ(r["sum_metadata_bytes"].get<double>(), sum) << r.dump();
        EXPECT_EQ(r["max_metadata_bytes"].get<double>(), mx) << r.dump();
        EXPECT_EQ(r["distinct_user_id"], users.size()) << r.dump();
    }
    // --from/--to bound the window end; csv has a header.
    auto csv = sluicectl(sock, "windows clicks --format csv --from " + std::to_string(t0 + 120000) + " --to " +
                                   std::to_string(t0 + 120000));
    ASSERT_EQ(csv.code, 0) << csv.out;
    EXPECT_EQ(csv.out.rfind("window_start_ms,window_end_ms,page,metadata_region,count", 0), 0u) << csv.out;
    size_t csv_rows = 0;
    for (const auto& [k, v] : want) csv_rows += std::get<0>(k) + 120000 == t0 + 120000;
    EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), long(csv_rows + 1)) << csv.out;

    // A query added now has none of the history; a replay rebuilds it from the store.
    ASSERT_EQ(sluicectl(sock, "queries add per_page --size 1m --group-by page --agg count").code, 0);
    auto none = sluicectl(sock, "windows per_page --format json");
    ASSERT_EQ(none.code, 0) << none.out;
    EXPECT_TRUE(json_lines(none.out).empty()) << none.out;
    // Wait until the new query's workers have published a watermark (replay writes only
    // windows the live query has closed).
    json published = n.d().wait_stats(
        [](const json& s) { return !query_stats(s, "per_page")["closed_until_ms"].is_null(); }, 60);
    ASSERT_FALSE(query_stats(published, "per_page")["closed_until_ms"].is_null()) << published.dump();
    auto rep = sluicectl(sock, "replay per_page --from " + std::to_string(t0) + " --to " +
                                   std::to_string(t0 + 240000));
    ASSERT_EQ(rep.code, 0) << rep.out;
    EXPECT_NE(rep.out.find("240 events read, 8 windows written"), std::string::npos) << rep.out;
    auto hist = json_lines(sluicectl(sock, "windows per_page --format json").out);
    ASSERT_EQ(hist.size(), 8u);
    for (const auto& r : hist) {
        EXPECT_EQ(r["count"], 30) << r.dump(); // 60 events a minute, half per page
        EXPECT_GT(r["window_start_ms"].get<int64_t>() + 0, t0 - 1);
    }
    // Replaying what the live query computed gives the same rows (a newer revision).
    auto again = sluicectl(sock, "replay clicks --from " + std::to_string(t0 - 60000) + " --to " +
                                     std::to_string(t0 + 300000));
    ASSERT_EQ(again.code, 0) << again.out;
    auto replayed = json_lines(sluicectl(sock, "windows clicks --format json").out);
    EXPECT_EQ(replayed, rows) << "a replay of the live range differs from the live rows";
    EXPECT_EQ(sluicectl(sock, "replay nope --from 0 --to 1").code, 1);
    EXPECT_EQ(sluicectl(sock, "replay clicks --from 10 --to 5").code, 1);
    ASSERT_EQ(sluicectl(sock, "queries remove per_page").code, 0);

    // Remove the reference query and add another: both survive a restart.
    ASSERT_EQ(sluicectl(sock, "queries remove page_views_per_minute").code, 0);
    EXPECT_EQ(sluicectl(sock, "queries remove nope").code, 1);
    ASSERT_EQ(sluicectl(sock, "queries add --json '{\"name\":\"sessions\",\"window\":\"session\",\"gap\":\"30s\","
                              "\"group_by\":\"user_id\"}'")
                  .code,
              0);
    ASSERT_EQ(n.shutdown(), 0) << "see " << dir;
    ASSERT_TRUE(n.start()) << "see " << dir;
    l = json::parse(sluicectl(sock, "queries list --json").out);
    std::vector<std::string> names;
    for (const auto& q : l["queries"]) names.push_back(q["name"]);
    EXPECT_EQ(names, (std::vector<std::string>{"clicks", "sessions"}));
    // The removed query's table is still readable.
    auto old = sluicectl(sock, "windows page_views_per_minute --format json");
    EXPECT_EQ(old.code, 0) << old.out;
    EXPECT_FALSE(json_lines(old.out).empty());
    ASSERT_EQ(n.shutdown(), 0);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

namespace {

std::string event_json(const std::string& id, int64_t t, const std::string& user, const std::string& page) {
    return "{\"event_id\":\"" + id + "\",\"user_id\":\"" + user + "\",\"event_type\":\"click\",\"timestamp\":" +
           std::to_string(t) + ",\"page\":\"" + page + "\",\"metadata\":{\"bytes\":" +
           std::to_string(t / 1000 % 1000) + "}}";
}

bool wait_accepted(daemon_node& n, uint64_t events) {
    json st = n.d().wait_stats([&](const json& s) { return s["totals"]["events_accepted"] == events; }, 60);
    return st["totals"]["events_accepted"] == events;
}

// The three queries of the agreement test: each kind, watermark delay 1 min.
const char* const agreement_queries[] = {
    "queries add tum --size 1m --group-by page --agg count --agg 'sum(metadata.bytes)' --delay 1m",
    "queries add hop --window hopping --size 2m --slide 1m --group-by page --agg count --delay 1m",
    "queries add ses --window session --gap 30s --group-by user_id --agg count "
    "--agg 'sum(metadata.bytes)' --delay 1m",
};
const char* const agreement_names[] = {"tum", "hop", "ses"};

// Run 1: users u0..u2 every 5 s from t0 to t0 + 4m30s (their sessions stay open), then
// one event at t0 + 5m: M = 5m, W = 4m, but the workers' last durable events carry
// M <= 4m30s, so a restart resumes at W <= 3m30s with the queries' floor at 4m.
std::vector<std::string> agreement_run1() {
    std::vector<std::string> out;
    for (int i = 0; i <= 54; ++i)
        out.push_back(event_json("r1-" + std::to_string(i), t0 + i * 5000, "u" + std::to_string(i % 3),
                                 "/p" + std::to_string(i % 2)));
    out.push_back(event_json("r1-end", t0 + 300000, "u5", "/p0"));
    return out;
}

// Run 2: events around the floor (4m): before it but after the restarted run's own
// watermark (late only by the floor), after it, late by M anyway, and a session gap
// that crosses the watermark.
std::vector<std::string> agreement_run2() {
    return {
        event_json("r2-a", t0 + 220000, "u0", "/p0"),  // 3m40s: late by the floor
        event_json("r2-b", t0 + 245000, "u0", "/p1"),  // 4m05s: after the floor
        event_json("r2-c", t0 + 190000, "u1", "/p0"),  // 3m10s: late by M too
        event_json("r2-d1", t0 + 230000, "u9", "/p1"), // 3m50s: late by the floor
        event_json("r2-d2", t0 + 260000, "u9", "/p0"), // 4m20s: a session...
        event_json("r2-d3", t0 + 310000, "u9", "/p1"), // 5m10s: ...and another (gap 50s)
        event_json("r2-e", t0 + 280000, "u2", "/p0"),  // 4m40s: extends u2's open session
    };
}

const int64_t agreement_end_ms = t0 + 20 * 60000; // run 3: closes everything up to 19m

int64_t checkpoint_closed(const std::string& data_dir, const std::string& query) {
    std::ifstream in(data_dir + "/_processing/checkpoints/" + query + ".json");
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("closed_until_ms") || !j["closed_until_ms"].is_number_integer())
        return INT64_MIN;
    return j["closed_until_ms"].get<int64_t>();
}

// Flushes, then waits until every agreement query's checkpoint has reached `closed`:
// what a restart will rebuild from is then fixed, whatever the timing.
bool settle(daemon_node& n, const std::string& data_dir, int64_t closed) {
    if (sluicectl(n.socket(), "flush").code != 0) return false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        bool all = true;
        for (const char* q : agreement_names) all = all && checkpoint_closed(data_dir, q) >= closed;
        if (all) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

std::map<std::string, std::vector<json>> closed_rows(daemon_node& n) {
    std::map<std::string, std::vector<json>> out;
    for (const char* q : agreement_names)
        out[q] = json_lines(sluicectl(n.socket(), std::string("windows ") + q + " --format json").out);
    return out;
}

// Replays every agreement query over the whole history; returns the rows then shown.
std::map<std::string, std::vector<json>> replayed_rows(daemon_node& n) {
    for (const char* q : agreement_names) {
        auto r = sluicectl(n.socket(), std::string("replay ") + q + " --from " + std::to_string(t0 - 60000) +
                                           " --to " + std::to_string(agreement_end_ms));
        EXPECT_EQ(r.code, 0) << r.out;
    }
    return closed_rows(n);
}

} // namespace

// Live windows, the restart rebuild and replay judge lateness by one rule
// (processing/window_assigner.h): the same events around the watermark floor give the
// same rows whether sluiced ran without a stop, was killed twice and rebuilt its open
// windows, or replayed the whole history.
TEST(Queries, LiveRebuildAndReplayAgreeAroundTheWatermarkFloor) {
    std::string dir = make_temp_dir("agree");
    auto run1 = agreement_run1();
    auto run2 = agreement_run2();
    const std::string end_event = event_json("r3-z", agreement_end_ms, "u7", "/p0");

    // Reference: one run, nothing stopped.
    std::map<std::string, std::vector<json>> live, live_replayed;
    {
        daemon_node n(dir + "/ref");
        std::filesystem::create_directories(dir + "/ref");
        ASSERT_TRUE(n.start()) << "see " << dir;
        for (const char* a : agreement_queries) ASSERT_EQ(sluicectl(n.socket(), a).code, 0) << a;
        n.send(run1);
        ASSERT_TRUE(wait_accepted(n, run1.size()));
        n.send(run2);
        ASSERT_TRUE(wait_accepted(n, run1.size() + run2.size()));
        n.send({end_event});
        ASSERT_TRUE(wait_accepted(n, run1.size() + run2.size() + 1));
        ASSERT_TRUE(settle(n, dir + "/ref/data", agreement_end_ms - 60000)) << "see " << dir;
        live = closed_rows(n);
        live_replayed = replayed_rows(n);
        ASSERT_EQ(n.shutdown(), 0);
    }
    // The model's few facts, so that the comparison is not between two empty tables.
    ASSERT_FALSE(live["tum"].empty());
    for (const auto& r : live["ses"])
        if (r["user_id"] == "u0") {
            EXPECT_EQ(r["count"], 20) << r.dump(); // 19 + r2-b (r2-a is late)
        }
    for (const auto& r : live["tum"])
        if (r["window_start_ms"] == t0 + 180000 && r["page"] == "/p0") {
            EXPECT_EQ(r["count"], 6) << r.dump(); // r2-a and r2-c are late
        }
    EXPECT_EQ(live_replayed, live) << "replay without a stop differs from live";

    // Killed twice: run 2 starts below the floor; run 3 rebuilds what run 2 left open.
    {
        daemon_node n(dir + "/crash");
        std::filesystem::create_directories(dir + "/crash");
        const std::string data = dir + "/crash/data";
        ASSERT_TRUE(n.start()) << "see " << dir;
        for (const char* a : agreement_queries) ASSERT_EQ(sluicectl(n.socket(), a).code, 0) << a;
        n.send(run1);
        ASSERT_TRUE(wait_accepted(n, run1.size()));
        ASSERT_TRUE(settle(n, data, t0 + 240000)) << "see " << dir;
        n.d().kill9();
        ASSERT_TRUE(n.start()) << "see " << dir;
        n.send(run2);
        ASSERT_TRUE(wait_accepted(n, run2.size()));
        ASSERT_TRUE(settle(n, data, t0 + 250000)) << "see " << dir;
        n.d().kill9();
        ASSERT_TRUE(n.start()) << "see " << dir;
        n.send({end_event});
        ASSERT_TRUE(wait_accepted(n, 1));
        ASSERT_TRUE(settle(n, data, agreement_end_ms - 60000)) << "see " << dir;
        auto rebuilt = closed_rows(n);
        for (const char* q : agreement_names)
            EXPECT_EQ(rebuilt[q], live[q]) << q << ": live + restart rebuild differ from live without a stop";
        auto replayed = replayed_rows(n);
        for (const char* q : agreement_names)
            EXPECT_EQ(replayed[q], live[q]) << q << ": replay across restarts differs from live";
        ASSERT_EQ(n.shutdown(), 0);
    }
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// A replay writes its revision with the configured storage options (codec included),
// like the live merger.
TEST(Queries, ReplayWritesWithTheConfiguredCodec) {
    std::string dir = make_temp_dir("replay-codec");
    {
        std::ofstream cfg(dir + "/sluiced.toml");
        cfg << "[storage]\ncompression = \"lz4\"\n";
    }
    daemon_node n(dir, {"--config", dir + "/sluiced.toml"});
    ASSERT_TRUE(n.start()) << "see " << dir;
    ASSERT_EQ(sluicectl(n.socket(), "queries add per_sec --size 1s --group-by page --agg count --delay 1m").code, 0);
    std::vector<std::string> lines;
    for (int i = 0; i < 400; ++i)
        lines.push_back(event_json("c" + std::to_string(i), t0 + i * 1000, "u" + std::to_string(i % 7),
                                "/page/" + std::to_string(i % 3)));
    lines.push_back(event_json("c-end", t0 + 3600000, "u0", "/p0"));
    n.send(lines);
    ASSERT_TRUE(wait_accepted(n, lines.size()));
    n.d().wait_stats([](const json& s) { return query_stats(s, "per_sec")["rows_emitted"] == 400; }, 60);
    auto rep = sluicectl(n.socket(), "replay per_sec --from " + std::to_string(t0) + " --to " +
                                         std::to_string(t0 + 400000));
    ASSERT_EQ(rep.code, 0) << rep.out;
    auto files = sluice::storage::list_segments(dir + "/data/per_sec");
    ASSERT_TRUE(files) << files.err().message;
    std::map<std::string, std::map<int, int>> codecs; // writer kind -> codec -> chunks
    for (const auto& f : *files) {
        auto rd = sluice::storage::segment_reader::open(f.path);
        ASSERT_TRUE(rd) << rd.err().message;
        const std::string who = f.writer[0] == 'r' ? "replay" : "merger";
        while ((*rd)->next_block()) {
            if ((*rd)->block().rows == 0) continue;
            auto chunks = (*rd)->chunk_infos();
            ASSERT_TRUE(chunks) << chunks.err().message;
            for (const auto& c : *chunks) ++codecs[who][int(c.cd)];
        }
    }
    const int zstd = int(sluice::storage::format::codec::zstd), lz4 = int(sluice::storage::format::codec::lz4);
    EXPECT_GT(codecs["merger"][lz4], 0);
    EXPECT_GT(codecs["replay"][lz4], 0) << "the replay did not compress with the configured lz4";
    EXPECT_EQ(codecs["replay"][zstd], 0) << "the replay compressed with zstd, not the configured lz4";
    ASSERT_EQ(n.shutdown(), 0);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}
