// Continuous queries at run time with the real sluiced and sluicectl: add a query (group
// by a metadata field, a filter, numeric aggregates), see its open windows live, its
// closed windows from the store (equal to a small model), remove it, and find the set
// of queries as left across a restart. Bad definitions fail with a message and exit 1.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

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
    explicit daemon_node(const std::string& dir) : _dir(dir) {
        _port = uint16_t(20000 + (getpid() * 13 + 7) % 20000);
    }
    bool start() {
        auto args = eal_args("sluice-queries-" + std::to_string(getpid()) + "-" + std::to_string(_runs), 4);
        args.insert(args.end(), {"--", "--data-dir", _dir + "/data", "--control-socket", socket(),
                                 "--workers", "2", "--kernel-udp", "127.0.0.1", "--udp-port",
                                 std::to_string(_port)});
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
