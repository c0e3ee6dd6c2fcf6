// The benchmark workload's binary form (bench/e2e/workload.*): the JSON capture's events
// as binary batches must reach the same outcome under the reference model of §3 (same
// accepted events, duplicates, late events and windows), and survive a pcap round trip.
#include "bench/e2e/workload.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "storage/event_identity.h"
#include "tools/gen/binary_batch.h"
#include "tools/gen/gen_run.h"
#include "tools/gen/model.h"

namespace sluice::bench {
namespace {

constexpr int64_t now_ms = 1767225600000; // 2026-01-01: the 2099 events stay future

class WorkloadTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir = (std::filesystem::temp_directory_path() /
               ("sluice-workload-test-" + std::to_string(getpid())))
                  .string();
        tools::run_options o;
        o.gen.events = 30000;
        o.gen.seed = 11;
        o.gen.events_per_minute = 1000; // 30 minutes of event time: windows close
        o.out_dir = dir;
        o.now_ms = now_ms;
        auto done = tools::run_sluice_gen(o);
        ASSERT_TRUE(done) << done.err().message;
        json_counters = done->counters;
        auto w = load_pcap(done->pcap_path, o.gen.dst_port);
        ASSERT_TRUE(w) << w.err().message;
        json = *w;
    }
    static void TearDownTestSuite() { std::filesystem::remove_all(dir); }

    static tools::reference_model model_of(const std::vector<std::string>& datagrams) {
        tools::model_config c;
        c.now_ms = now_ms;
        tools::reference_model m(c);
        for (const std::string& d : datagrams)
            m.feed_datagram(d);
        return m;
    }

    static inline std::string dir;
    static inline tools::model_counters json_counters;
    static inline workload json;
};

TEST_F(WorkloadTest, EveryLineBecomesARecordOrIsOneSluiceDeadLettersAtRx) {
    const binary_workload bin = to_binary(json, now_ms, 1400);
    EXPECT_EQ(json.event_lines, json_counters.events_received);
    EXPECT_EQ(bin.records + bin.not_representable, json.event_lines);
    const auto& by = json_counters.dead_letters_by_reason;
    const uint64_t rx_dead =
        json_counters.dead_letters - by[int(tools::reason::beyond_dedup_horizon)];
    EXPECT_GT(rx_dead, 0u);
    EXPECT_EQ(bin.not_representable, rx_dead);
}

TEST_F(WorkloadTest, BinaryEventsReachTheJsonOutcome) {
    const binary_workload bin = to_binary(json, now_ms, 1400);
    const tools::reference_model from_json = model_of(json.datagrams);
    const tools::reference_model from_bin = model_of(bin.datagrams);
    const tools::model_counters& j = from_json.counters();
    const tools::model_counters& b = from_bin.counters();
    EXPECT_EQ(b.events_received, bin.records);
    EXPECT_EQ(b.events_accepted, j.events_accepted);
    EXPECT_EQ(b.duplicates, j.duplicates);
    EXPECT_EQ(b.late_events, j.late_events);
    const int horizon = int(tools::reason::beyond_dedup_horizon);
    EXPECT_EQ(b.dead_letters, j.dead_letters_by_reason[horizon]);
    EXPECT_EQ(b.dead_letters_by_reason[horizon], j.dead_letters_by_reason[horizon]);
    // The stream is not trivial: every kind of outcome occurs.
    EXPECT_GT(j.duplicates, 0u);
    EXPECT_GT(j.late_events, 0u);
    EXPECT_GT(j.dead_letters_by_reason[horizon], 0u);

    const auto jw = from_json.windows(), bw = from_bin.windows();
    ASSERT_GT(jw.size(), 100u);
    ASSERT_EQ(bw.size(), jw.size());
    for (size_t i = 0; i < jw.size(); i++) {
        EXPECT_EQ(bw[i].window_start_ms, jw[i].window_start_ms) << i;
        EXPECT_EQ(bw[i].page, jw[i].page) << i; // unescaped alike: "/caf\u00e9" is "/café"
        EXPECT_EQ(bw[i].count, jw[i].count) << i;
    }
}

TEST_F(WorkloadTest, EachRecordCarriesItsLinesFields) {
    const binary_workload bin = to_binary(json, now_ms, 1400);
    // The lines that pass the RX checks, in order, with their event times (the model).
    tools::model_config c;
    c.now_ms = now_ms;
    tools::reference_model m(c);
    std::vector<std::pair<std::string, int64_t>> lines;
    for (const std::string& d : json.datagrams) {
        size_t start = 0;
        while (start < d.size()) {
            size_t end = std::min(d.find('\n', start), d.size());
            const std::string line = d.substr(start, end - start);
            start = end + 1;
            if (line.empty()) continue;
            const tools::line_outcome o = m.feed_line(line);
            if (o.kind == tools::verdict::dead_letter && o.why != tools::reason::beyond_dedup_horizon)
                continue;
            lines.emplace_back(line, o.event_time_ms);
        }
    }
    std::vector<tools::bin_event> records;
    for (const std::string& d : bin.datagrams) {
        auto batch = tools::bin_decode(d);
        ASSERT_TRUE(batch);
        for (const tools::bin_record& r : *batch) {
            ASSERT_TRUE(r.readable);
            records.push_back(r.event);
        }
    }
    ASSERT_EQ(records.size(), lines.size());
    auto same = [](const nlohmann::json& j, const char* key, const std::optional<std::string>& v) {
        return j.contains(key) ? v && *v == j[key].get<std::string>() : !v;
    };
    for (size_t i = 0; i < records.size(); i++) {
        const auto j = nlohmann::json::parse(lines[i].first);
        const tools::bin_event& e = records[i];
        ASSERT_EQ(e.timestamp_ms, lines[i].second) << lines[i].first;
        EXPECT_TRUE(same(j, "event_id", e.event_id)) << lines[i].first;
        EXPECT_TRUE(same(j, "user_id", e.user_id)) << lines[i].first;
        EXPECT_TRUE(same(j, "event_type", e.event_type)) << lines[i].first;
        EXPECT_TRUE(same(j, "page", e.page)) << lines[i].first;
        ASSERT_TRUE(e.metadata) << lines[i].first;
        EXPECT_EQ(nlohmann::json::parse(*e.metadata), j["metadata"]) << lines[i].first;
    }
}

// The ClickHouse rows and NATS messages: one per event that passes the RX checks, in
// order, with sluice's identity, the line's fields and event time, and its exact bytes.
TEST_F(WorkloadTest, RowsAndMessagesCarryEachValidLineWithItsIdentity) {
    std::FILE* rows = std::tmpfile();
    std::FILE* msgs = std::tmpfile();
    ASSERT_TRUE(rows && msgs);
    const rows_summary sum = write_rows(json, now_ms, rows, msgs);
    auto lines_of = [](std::FILE* f) {
        std::vector<std::string> out;
        std::rewind(f);
        std::string cur;
        for (int c; (c = std::fgetc(f)) != EOF;) {
            if (c == '\n') {
                out.push_back(cur);
                cur.clear();
            } else {
                cur += char(c);
            }
        }
        EXPECT_TRUE(cur.empty()) << "last line without a newline";
        std::fclose(f);
        return out;
    };
    const std::vector<std::string> row_lines = lines_of(rows), msg_lines = lines_of(msgs);

    tools::model_config c;
    c.now_ms = now_ms;
    tools::reference_model m(c);
    std::vector<std::pair<std::string, int64_t>> valid;
    for (const std::string& d : json.datagrams) {
        size_t start = 0;
        while (start < d.size()) {
            size_t end = std::min(d.find('\n', start), d.size());
            const std::string line = d.substr(start, end - start);
            start = end + 1;
            if (line.empty()) continue;
            const tools::line_outcome o = m.feed_line(line);
            if (o.kind == tools::verdict::dead_letter && o.why != tools::reason::beyond_dedup_horizon)
                continue;
            valid.emplace_back(line, o.event_time_ms);
        }
    }
    ASSERT_EQ(sum.rows, valid.size());
    EXPECT_EQ(sum.rows + sum.not_representable, json.event_lines);
    ASSERT_EQ(row_lines.size(), valid.size());
    ASSERT_EQ(msg_lines.size(), valid.size());
    std::set<std::string> ids, pages, series;
    auto hex = [](const storage::event_identity& id) {
        char buf[33];
        std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(id.hi),
                      static_cast<unsigned long long>(id.lo));
        return std::string(buf);
    };
    for (size_t i = 0; i < valid.size(); i++) {
        const std::string& line = valid[i].first;
        const auto j = nlohmann::json::parse(line);
        const auto r = nlohmann::json::parse(row_lines[i]);
        const std::string id = j.contains("event_id")
                                   ? hex(storage::identity_of_event_id(j["event_id"].get<std::string>()))
                                   : hex(storage::identity_of_bytes(line));
        EXPECT_EQ(r["id"], id) << line;
        EXPECT_EQ(msg_lines[i], id + " " + line);
        EXPECT_EQ(r["ts"].get<int64_t>(), valid[i].second) << line;
        for (const char* key : {"event_id", "user_id", "event_type", "page"})
            EXPECT_EQ(r[key].get<std::string>(), j.value(key, std::string())) << key << ": " << line;
        EXPECT_EQ(nlohmann::json::parse(r["metadata"].get<std::string>()), j["metadata"]) << line;
        ids.insert(id);
        pages.insert(j.value("page", std::string()));
        series.insert(j.value("page", std::string()) + '\0' + j.value("event_type", std::string()));
    }
    EXPECT_EQ(sum.distinct_ids, ids.size());
    EXPECT_LT(sum.distinct_ids, sum.rows); // the stream has re-sends
    EXPECT_EQ(sum.pages, pages.size());
    EXPECT_EQ(sum.series, series.size());
}

TEST_F(WorkloadTest, BatchesFillADatagramAndAreSmallerThanTheJson) {
    const binary_workload bin = to_binary(json, now_ms, 1400);
    uint64_t json_bytes = 0, bin_bytes = 0;
    for (const auto& d : json.datagrams)
        json_bytes += d.size();
    for (const auto& d : bin.datagrams) {
        bin_bytes += d.size();
        EXPECT_LE(d.size(), 1400u);
        EXPECT_EQ(uint8_t(d[0]), 0xB1);
    }
    EXPECT_LT(bin.datagrams.size(), json.datagrams.size());
    EXPECT_LT(bin_bytes, json_bytes);
}

TEST_F(WorkloadTest, PcapRoundTrip) {
    const binary_workload bin = to_binary(json, now_ms, 1400);
    const std::string path = dir + "/binary.pcap";
    auto frames = write_pcap(path, bin.datagrams, 9000);
    ASSERT_TRUE(frames) << frames.err().message;
    EXPECT_EQ(*frames, bin.datagrams.size());
    auto back = load_pcap(path, 9000);
    ASSERT_TRUE(back) << back.err().message;
    EXPECT_EQ(back->ignored_frames, 0u);
    EXPECT_EQ(back->event_lines, bin.records);
    EXPECT_EQ(back->datagrams, bin.datagrams);
}

TEST_F(WorkloadTest, WritePcapNamesTheCauseOfAFailure) {
    auto frames = write_pcap(dir + "/no/such/dir/x.pcap", {"x"}, 9000);
    ASSERT_FALSE(frames);
    EXPECT_NE(frames.err().message.find("cannot create"), std::string::npos);
}

} // namespace
} // namespace sluice::bench
