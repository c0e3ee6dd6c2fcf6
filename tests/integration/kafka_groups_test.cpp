// Consumer groups with sluiced as their coordinator (docs/KAFKA.md "Consumer groups"), with
// consumers no one here wrote: kafka-python 2.0.2's KafkaConsumer(group_id=...), kcat -G
// (librdkafka 2.0.2), confluent-kafka 1.7.0's Consumer with commits, and two kafkajs 2.2.4
// consumers in one group that rebalance when one leaves. Every test reads events-topic
// (two workers: two partitions) and checks every stored event arrives exactly once across
// the group, that a consumer resumes at its committed offsets, that committed offsets
// survive a kill -9, and that `groups` / `sluicectl groups` / metrics show the lag.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/kafka_harness.h"

namespace sluice::testing::kafka {
namespace {

constexpr uint32_t workers = 2;

// `n` distinct events (their own event ids), one second apart from `minute`:00.
std::vector<std::string> make_values(const std::string& tag, int n, int minute = 10) {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i) {
        char ts[40];
        std::snprintf(ts, sizeof ts, "2025-02-28T%02d:%02d:%02dZ", 15 + (minute + i / 60) / 60,
                      (minute + i / 60) % 60, i % 60);
        v.push_back(R"({"event_id": ")" + tag + "-" + std::to_string(i) + R"(", "user_id": "u)" +
                    std::to_string(i % 7) + R"(", "event_type": "page_view", "timestamp": ")" + ts +
                    R"(", "page": "/g/)" + std::to_string(i) + "\"}");
    }
    return v;
}

struct record {
    int32_t partition = 0;
    int64_t offset = 0;
    std::string value;
};

class KafkaGroups : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(run_command("command -v kcat > /dev/null"), 0)
            << "kcat is missing: apt-get install kcat (scripts/bootstrap)";
        k.dir = make_temp_dir("kafka-groups");
        k.prefix = "sluice-kafka-groups-" + std::to_string(getpid());
        write_file(k.dir + "/sluiced.toml",
                   "[input]\nslots = 8192\n[processing]\ndedup_memory_mb = 32\n"
                   "[storage]\nflush_interval_ms = 100\n[kafka]\n");
        launch("sluiced.log");
    }

    void TearDown() override {
        if (k.proc && k.proc->running()) {
            EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir;
        }
        remove_eal_runtime(k.prefix);
        if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
    }

    void launch(const std::string& log) { kafka::launch(k, k.dir + "/sluiced.toml", workers, log); }

    std::string broker() const { return kafka::broker(k); }

    // kcat -P with acks=all, then waits until the store's events table has `rows_after`.
    void produce(const std::vector<std::string>& values, const std::string& tag,
                 uint64_t rows_after) {
        kcat_produce(k, values, tag);
        if (HasFatalFailure()) return;
        json s = k.proc->wait_stats(
            [&](const json& s) { return durable_rows(s, "events") >= rows_after; }, 60);
        ASSERT_EQ(durable_rows(s, "events"), rows_after) << s["storage"].dump();
    }

    json groups() const {
        json r = k.proc->request({{"cmd", "groups"}});
        EXPECT_TRUE(r.value("ok", false)) << r.dump();
        return r.value("groups", json::array());
    }

    // The group's entry in `groups`, or null.
    json group(const std::string& id) const {
        for (const auto& g : groups())
            if (g.value("group", "") == id) return g;
        return nullptr;
    }

    // The group once `ready(g)` holds (the control thread sees what the group thread
    // published, at most group_publish_ms old), or its last state after 30 s.
    template <typename Ready> json wait_group(const std::string& id, Ready&& ready) const {
        json g;
        for (int i = 0; i < 300; ++i) {
            g = group(id);
            if (g.is_object() && ready(g)) return g;
            ::usleep(100 * 1000);
        }
        return g;
    }

    // Parses lines `{"p": P, "o": O, "v": VALUE}` (the Python consumers' output).
    std::vector<record> records_of(const std::string& path) const {
        std::vector<record> out;
        std::istringstream in(read_text(path));
        std::string line;
        while (std::getline(in, line)) {
            json j = json::parse(line, nullptr, false);
            if (!j.is_object() || !j.contains("p")) continue;
            out.push_back(
                {j["p"].get<int32_t>(), j["o"].get<int64_t>(), j["v"].get<std::string>()});
        }
        return out;
    }

    // kafka-python: subscribe with `group`, read until `want` records (then 2 s more, to
    // see that nothing else comes), commit, print the committed offsets.
    std::vector<record> kafka_python(const std::string& group, size_t want,
                                     const std::string& tag) {
        static const char* const script = R"(import sys, json, time
from kafka import KafkaConsumer
c = KafkaConsumer('events-topic', bootstrap_servers=[sys.argv[1]], group_id=sys.argv[2],
                  auto_offset_reset='earliest', enable_auto_commit=False)
want, got = int(sys.argv[3]), 0
deadline = time.time() + 90
settle = None
while time.time() < deadline:
    for tp, msgs in c.poll(timeout_ms=200).items():
        for m in msgs:
            print(json.dumps({'p': m.partition, 'o': m.offset, 'v': m.value.decode()}), flush=True)
            got += 1
    if got >= want and c.assignment() and settle is None:
        settle = time.time() + 2
    if settle is not None and time.time() > settle:
        break
c.commit()
print(json.dumps({'committed': {str(tp.partition): c.committed(tp) for tp in c.assignment()}}))
c.close()
)";
        const std::string py = write_file(k.dir + "/kp_consumer.py", script);
        const std::string out = k.dir + "/" + tag + ".out";
        EXPECT_TRUE(run_client(150,
                               std::string(python) + " " + py + " " + broker() + " " + group + " " +
                                   std::to_string(want),
                               out));
        return records_of(out);
    }

    kafka_daemon k;
};

std::multiset<std::string> values_of(const std::vector<record>& rs) {
    std::multiset<std::string> out;
    for (const auto& r : rs)
        out.insert(r.value);
    return out;
}

std::multiset<std::string> as_set(const std::vector<std::string>& v) {
    return {v.begin(), v.end()};
}

// Every (partition, offset) exactly once, and per partition the offsets are `from`.. dense.
void expect_each_once(const std::vector<record>& rs, std::map<int32_t, int64_t> from = {}) {
    std::map<int32_t, std::set<int64_t>> seen;
    for (const auto& r : rs)
        EXPECT_TRUE(seen[r.partition].insert(r.offset).second)
            << "partition " << r.partition << " offset " << r.offset << " twice";
    for (const auto& [p, offsets] : seen) {
        int64_t next = from[p];
        for (int64_t o : offsets)
            EXPECT_EQ(o, next++) << "partition " << p;
    }
}

TEST_F(KafkaGroups, KafkaPythonGroupReadsEveryEventCommitsAndShowsLag) {
    ASSERT_EQ(run_command(std::string(python) + " -c 'import kafka' 2> /dev/null"), 0)
        << "kafka-python is missing: apt-get install python3-kafka (scripts/bootstrap)";
    const std::vector<std::string> sent = make_values("py", 60);
    produce(sent, "first", sent.size());
    ASSERT_FALSE(HasFailure());
    const std::vector<record> got = kafka_python("py", sent.size(), "py1");
    EXPECT_EQ(values_of(got), as_set(sent));
    expect_each_once(got);
    std::set<int32_t> partitions;
    for (const auto& r : got)
        partitions.insert(r.partition);
    EXPECT_EQ(partitions.size(), size_t{workers}); // both workers stored some

    // Committed = the high watermark of each partition: no lag.
    auto settled = [](const json& g) {
        return g["partitions"].size() == size_t{workers} && g["lag"] == 0 && g["members"].empty();
    };
    json g = wait_group("py", settled);
    ASSERT_TRUE(g.is_object()) << groups().dump();
    ASSERT_EQ(g["partitions"].size(), size_t{workers}) << g.dump();
    int64_t hw_total = 0;
    for (const auto& p : g["partitions"]) {
        EXPECT_EQ(p["committed"], p["high_watermark"]) << g.dump();
        EXPECT_EQ(p["lag"], 0) << g.dump();
        hw_total += p["high_watermark"].get<int64_t>();
    }
    EXPECT_EQ(hw_total, int64_t(sent.size()));
    EXPECT_EQ(g["members"].size(), 0u) << g.dump(); // it left (close: LeaveGroup)

    // 12 more events: the lag is exactly them, per partition, in groups, stats and metrics.
    const std::vector<std::string> more = make_values("py-more", 12, 20);
    produce(more, "second", sent.size() + more.size());
    ASSERT_FALSE(HasFailure());
    g = wait_group("py", [&](const json& g) { return g["lag"] == int64_t(more.size()); });
    int64_t lag = 0;
    for (const auto& p : g["partitions"]) {
        EXPECT_EQ(p["lag"].get<int64_t>(),
                  p["high_watermark"].get<int64_t>() - p["committed"].get<int64_t>());
        lag += p["lag"].get<int64_t>();
    }
    EXPECT_EQ(lag, int64_t(more.size())) << g.dump();
    EXPECT_EQ(g["lag"], lag);
    json s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s["kafka"]["groups"].is_object()) << s["kafka"].dump();
    const json& gs = s["kafka"]["groups"];
    EXPECT_GE(gs["offsets_committed"].get<uint64_t>(), 2u) << gs.dump();
    EXPECT_EQ(gs["commit_errors"], 0) << gs.dump();
    bool in_stats = false;
    for (const auto& e : gs["groups"])
        if (e["group"] == "py") in_stats = e["lag"] == lag;
    EXPECT_TRUE(in_stats) << gs.dump();
    json m = k.proc->request({{"cmd", "metrics"}});
    const std::string text = m.value("text", "");
    int64_t metric_lag = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("sluice_kafka_consumer_lag{group=\"py\"", 0) == 0)
            metric_lag += std::stoll(line.substr(line.rfind(' ') + 1));
    EXPECT_EQ(metric_lag, lag) << text;
    // sluicectl groups, as an operator runs it.
    const std::string out = k.dir + "/groups.txt";
    ASSERT_EQ(run_command(env_or_empty("SLUICECTL") + " --socket " + k.dir + "/ctl.sock groups > " +
                          out + " 2>&1"),
              0)
        << read_text(out);
    const std::string shown = read_text(out);
    EXPECT_NE(shown.find("group py (Empty"), std::string::npos) << shown;
    EXPECT_NE(shown.find("HIGH-WATERMARK"), std::string::npos) << shown;
    EXPECT_NE(shown.find(" " + std::to_string(lag) + "\n"), std::string::npos) << shown;

    // The same group resumes at its commits: exactly the 12 new events.
    const std::vector<record> rest = kafka_python("py", more.size(), "py2");
    EXPECT_EQ(values_of(rest), as_set(more));
    std::map<int32_t, int64_t> from;
    for (const auto& p : g["partitions"])
        from[p["partition"]] = p["committed"];
    expect_each_once(rest, from);
    s = k.proc->request({{"cmd", "stats"}});
    // kafka-python guesses a broker from the ApiVersions table and uses fixed versions.
    const json& v = s["kafka"]["requests_by_version"];
    EXPECT_TRUE(v["join_group"].contains("2")) << v.dump();
    EXPECT_TRUE(v["offset_commit"].contains("2")) << v.dump();
    EXPECT_TRUE(v["offset_fetch"].contains("1")) << v.dump();
    EXPECT_TRUE(v["find_coordinator"].contains("0")) << v.dump();
}

TEST_F(KafkaGroups, KcatGroupConsumesAndResumesAtItsCommits) {
    const std::vector<std::string> sent = make_values("kc", 40);
    produce(sent, "first", sent.size());
    ASSERT_FALSE(HasFailure());
    // -e: exit once every assigned partition is at its end; %p %o %s one per line.
    auto kcat_group = [&](const std::string& tag) {
        const std::string out = k.dir + "/" + tag + ".out";
        EXPECT_TRUE(run_client(90,
                               "kcat -b " + broker() +
                                   " -G kcg -X auto.offset.reset=earliest -e -q -f '{\"p\": %p, "
                                   "\"o\": %o, \"v\": %s}\\n' events-topic",
                               out));
        std::vector<record> rs;
        std::istringstream in(read_text(out));
        for (std::string line; std::getline(in, line);) {
            json j = json::parse(line, nullptr, false);
            if (!j.is_object()) continue;
            rs.push_back({j["p"].get<int32_t>(), j["o"].get<int64_t>(), j["v"].dump()});
        }
        return rs;
    };
    auto canonical = [](const std::vector<std::string>& vs) {
        std::multiset<std::string> out;
        for (const auto& v : vs)
            out.insert(json::parse(v).dump());
        return out;
    };
    const std::vector<record> first = kcat_group("kcat1");
    EXPECT_EQ(values_of(first), canonical(sent));
    expect_each_once(first);
    EXPECT_TRUE(kcat_group("kcat2").empty()); // everything was committed
    const std::vector<std::string> more = make_values("kc-more", 7, 30);
    produce(more, "second", sent.size() + more.size());
    ASSERT_FALSE(HasFailure());
    const std::vector<record> third = kcat_group("kcat3");
    EXPECT_EQ(values_of(third), canonical(more));
    json g = wait_group("kcg", [](const json& g) { return g["lag"] == 0; });
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["lag"], 0) << g.dump();
    json s = k.proc->request({{"cmd", "stats"}});
    // What librdkafka 2.0.2 picks from sluiced's table (measured): the first JoinGroup of
    // each run is answered MEMBER_ID_REQUIRED (v4+), and it joins again with that id.
    const json& v = s["kafka"]["requests_by_version"];
    EXPECT_TRUE(v["join_group"].contains("5")) << v.dump();
    EXPECT_TRUE(v["sync_group"].contains("3")) << v.dump();
    EXPECT_TRUE(v["offset_commit"].contains("7")) << v.dump();
    EXPECT_TRUE(v["offset_fetch"].contains("5")) << v.dump();
    EXPECT_TRUE(v["find_coordinator"].contains("2")) << v.dump();
    EXPECT_GE(s["kafka"]["groups"]["join_groups"].get<uint64_t>(), 6u)
        << s["kafka"]["groups"].dump(); // three runs, two JoinGroups each at least
}

TEST_F(KafkaGroups, ConfluentKafkaCommitsAndANewConsumerResumesThere) {
    ASSERT_EQ(run_command(std::string(python) + " -c 'import confluent_kafka' 2> /dev/null"), 0)
        << "confluent-kafka is missing: apt-get install python3-confluent-kafka";
    const std::vector<std::string> sent = make_values("ck", 50);
    produce(sent, "first", sent.size());
    ASSERT_FALSE(HasFailure());
    static const char* const script = R"(import sys, json, time
from confluent_kafka import Consumer
c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': sys.argv[2],
              'enable.auto.commit': False, 'auto.offset.reset': 'earliest'})
c.subscribe(['events-topic'])
want, got = int(sys.argv[3]), 0
deadline = time.time() + 90
while got < want and time.time() < deadline:
    m = c.poll(0.2)
    if m is None or m.error():
        continue
    print(json.dumps({'p': m.partition(), 'o': m.offset(), 'v': m.value().decode()}), flush=True)
    got += 1
c.commit(asynchronous=False)
print(json.dumps({'committed': [(tp.partition, tp.offset) for tp in c.committed(c.assignment())]}))
c.close()
)";
    const std::string py = write_file(k.dir + "/ck_consumer.py", script);
    auto run = [&](size_t want, const std::string& tag) {
        const std::string out = k.dir + "/" + tag + ".out";
        EXPECT_TRUE(run_client(
            150, std::string(python) + " " + py + " " + broker() + " ckg " + std::to_string(want),
            out));
        return records_of(out);
    };
    const std::vector<record> first = run(20, "ck1");
    ASSERT_EQ(first.size(), 20u);
    // The second consumer of the group starts at the first one's commits: the other 30,
    // none of the first 20 again.
    const std::vector<record> second = run(30, "ck2");
    std::vector<record> all = first;
    all.insert(all.end(), second.begin(), second.end());
    EXPECT_EQ(values_of(all), as_set(sent));
    expect_each_once(all);
    json g = wait_group("ckg", [](const json& g) { return g["lag"] == 0; });
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["lag"], 0) << g.dump();
}

TEST_F(KafkaGroups, TwoKafkajsConsumersRebalanceWhenOneLeaves) {
    const std::string node = env_or_empty("NODE");
    const std::string script = env_or_empty("KAFKAJS_GROUP");
    ASSERT_FALSE(node.empty())
        << "Node.js is missing: apt-get install nodejs npm (scripts/bootstrap)";
    ASSERT_FALSE(script.empty()) << "KAFKAJS_GROUP is not set (meson sets it)";
    ASSERT_EQ(run_command("cd " + std::filesystem::path(script).parent_path().string() + " && " +
                          node + " -e \"require('kafkajs')\" 2> /dev/null"),
              0)
        << "kafkajs 2.2.4 is missing: run scripts/setup-node (scripts/bootstrap does)";
    const std::vector<std::string> stored = make_values("js", 30);
    produce(stored, "first", stored.size());
    ASSERT_FALSE(HasFailure());
    const std::vector<std::string> phase2 = make_values("js-2", 20, 20);
    const std::vector<std::string> phase3 = make_values("js-3", 20, 30);
    auto lines = [](const std::vector<std::string>& v) {
        std::string t;
        for (const auto& s : v)
            t += s + "\n";
        return t;
    };
    const std::string a = write_file(k.dir + "/phase2.ndjson", lines(phase2));
    const std::string b = write_file(k.dir + "/phase3.ndjson", lines(phase3));
    const std::string out = k.dir + "/kafkajs.out";
    ASSERT_TRUE(run_client(400,
                           "env KAFKAJS_NO_PARTITIONER_WARNING=1 " + node + " " + script + " " +
                               std::to_string(k.port) + " jsg " + std::to_string(stored.size()) +
                               " " + a + " " + b,
                           out))
        << read_text(out);
    std::vector<record> all;
    std::map<std::string, std::map<int, std::set<int32_t>>> by; // consumer -> phase -> partitions
    std::map<std::string, std::vector<std::string>> assigns;
    json versions;
    std::istringstream in(read_text(out));
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string kind, who;
        f >> kind;
        if (kind == "rec") {
            record r;
            int phase = 0;
            f >> who >> phase >> r.partition >> r.offset;
            f.get();
            std::getline(f, r.value);
            by[who][phase].insert(r.partition);
            all.push_back(r);
        } else if (kind == "assign") {
            f >> who;
            std::string rest;
            std::getline(f, rest);
            assigns[who].push_back(rest);
        } else if (kind == "versions") {
            versions = json::parse(line.substr(9), nullptr, false);
        }
    }
    // Every stored event exactly once across the two consumers, offsets dense.
    std::vector<std::string> sent = stored;
    sent.insert(sent.end(), phase2.begin(), phase2.end());
    sent.insert(sent.end(), phase3.begin(), phase3.end());
    EXPECT_EQ(values_of(all), as_set(sent));
    expect_each_once(all);
    // Phase 2: one partition each; phase 3 (B left): A alone, on both partitions.
    EXPECT_EQ(by["B"][2].size(), 1u) << read_text(out);
    EXPECT_EQ(by["A"][2].size(), 1u) << read_text(out);
    EXPECT_TRUE(by["B"][3].empty()) << read_text(out);
    EXPECT_EQ(by["A"][3].size(), size_t{workers}) << read_text(out);
    EXPECT_GE(assigns["A"].size(), 2u);
    json s = k.proc->request({{"cmd", "stats"}});
    const json& gs = s["kafka"]["groups"];
    EXPECT_GE(gs["rebalances"].get<uint64_t>(), 3u) << gs.dump(); // A, A+B, A after B left
    EXPECT_GE(gs["leave_groups"].get<uint64_t>(), 2u) << gs.dump();
    json g = wait_group("jsg", [](const json& g) { return g["lag"] == 0; });
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["lag"], 0) << g.dump();
    // What kafkajs 2.2.4 picks from sluiced's table (measured).
    EXPECT_EQ(versions["JoinGroup"], json::array({5})) << versions.dump();
    EXPECT_EQ(versions["SyncGroup"], json::array({3})) << versions.dump();
    EXPECT_EQ(versions["LeaveGroup"], json::array({3})) << versions.dump();
    EXPECT_EQ(versions["OffsetCommit"], json::array({5})) << versions.dump();
    EXPECT_EQ(versions["OffsetFetch"], json::array({4})) << versions.dump();
}

TEST_F(KafkaGroups, CommittedOffsetsSurviveKill9) {
    ASSERT_EQ(run_command(std::string(python) + " -c 'import kafka' 2> /dev/null"), 0)
        << "kafka-python is missing: apt-get install python3-kafka (scripts/bootstrap)";
    const std::vector<std::string> sent = make_values("k9", 40);
    produce(sent, "first", sent.size());
    ASSERT_FALSE(HasFailure());
    const std::vector<record> got = kafka_python("k9", sent.size(), "k9a");
    EXPECT_EQ(values_of(got), as_set(sent));
    const json before = wait_group("k9", [](const json& g) {
        return g["partitions"].size() == size_t{workers} && g["lag"] == 0;
    });
    ASSERT_TRUE(before.is_object());
    ASSERT_EQ(before["partitions"].size(), size_t{workers}) << before.dump();
    // The answer to OffsetCommit came after the fdatasync: a crash right after keeps it.
    k.proc->kill9();
    launch("sluiced2.log");
    ASSERT_FALSE(HasFailure());
    const json after = wait_group("k9", [](const json& g) { return !g["partitions"].empty(); });
    ASSERT_TRUE(after.is_object()) << groups().dump();
    ASSERT_EQ(after["partitions"].size(), size_t{workers});
    for (size_t i = 0; i < workers; ++i)
        EXPECT_EQ(after["partitions"][i]["committed"], before["partitions"][i]["committed"])
            << before.dump() << after.dump();
    EXPECT_EQ(after["lag"], 0) << after.dump();
    // The group goes on from there: only new events.
    const std::vector<std::string> more = make_values("k9-more", 5, 40);
    produce(more, "second", more.size()); // this run's rows
    ASSERT_FALSE(HasFailure());
    const std::vector<record> rest = kafka_python("k9", more.size(), "k9b");
    EXPECT_EQ(values_of(rest), as_set(more));
}

} // namespace
} // namespace sluice::testing::kafka
