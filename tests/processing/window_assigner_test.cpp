// The window rule (processing/window_assigner.h) and the event replayer that re-runs
// stored events with it: a replay of what workers stored, across a restart with a
// watermark floor, gives what the workers computed live.
#include "processing/window_assigner.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "processing/event_replayer.h"
#include "processing/worker.h"
#include "storage/segment_files.h"
#include "tests/processing/processing_test_util.h"

namespace sluice::processing {
namespace {

using namespace testing;

constexpr int64_t minute_ms = 60'000;
constexpr int64_t t0 = 1'740'000'000'000; // a minute boundary

std::vector<std::pair<int64_t, int64_t>> windows_of(const window_def& d, int64_t t, int64_t w,
                                                    bool* late) {
    std::vector<std::pair<int64_t, int64_t>> out;
    *late = for_each_window(d, t, w, [&](int64_t s, int64_t e) { out.emplace_back(s, e); });
    return out;
}

TEST(WindowAssigner, WatermarkIsMaxOfDelayedMAndFloor) {
    EXPECT_EQ(query_watermark(no_time, 1000, INT64_MIN), INT64_MIN);
    EXPECT_EQ(query_watermark(no_time, 1000, 5), 5);
    EXPECT_EQ(query_watermark(10'000, 1000, 5), 9'000);
    EXPECT_EQ(query_watermark(10'000, 1000, 9'500), 9'500);
}

// The window-closed rule itself: a window ending at W is closed, one ending after it is
// not; no watermark yet (INT64_MIN) closes nothing.
TEST(WindowAssigner, WindowClosedWhenItsEndIsAtOrBeforeW) {
    EXPECT_TRUE(window_closed(t0, t0));
    EXPECT_TRUE(window_closed(t0 - 1, t0));
    EXPECT_FALSE(window_closed(t0 + 1, t0));
    EXPECT_FALSE(window_closed(t0, INT64_MIN));
    EXPECT_FALSE(window_closed(INT64_MAX, t0)); // an empty state's earliest end
}

TEST(WindowAssigner, TumblingLateOnlyWhenItsWindowEndedAtOrBeforeW) {
    window_def d{window_kind::tumbling, minute_ms, 0, 0};
    bool late = false;
    auto w = windows_of(d, t0 + 5, t0 + minute_ms - 1, &late);
    EXPECT_FALSE(late);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0], std::make_pair(t0, t0 + minute_ms));
    EXPECT_TRUE(windows_of(d, t0 + 5, t0 + minute_ms, &late).empty());
    EXPECT_TRUE(late);
}

TEST(WindowAssigner, HoppingMissesClosedWindowsAndKeepsOpenOnes) {
    window_def d{window_kind::hopping, 2 * minute_ms, minute_ms, 0};
    bool late = false;
    // t in [t0 + 1m, t0 + 2m): windows [t0, t0 + 2m) and [t0 + 1m, t0 + 3m).
    auto w = windows_of(d, t0 + minute_ms + 5, t0 + 2 * minute_ms, &late);
    EXPECT_TRUE(late);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0], std::make_pair(t0 + minute_ms, t0 + 3 * minute_ms));
    w = windows_of(d, t0 + minute_ms + 5, INT64_MIN, &late);
    EXPECT_FALSE(late);
    EXPECT_EQ(w.size(), 2u);
}

TEST(WindowAssigner, SessionLateIffBeforeW) {
    window_def d{window_kind::session, 0, 0, 30'000};
    bool late = false;
    auto w = windows_of(d, t0, t0, &late);
    EXPECT_FALSE(late);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0], std::make_pair(t0, t0 + 30'000));
    EXPECT_TRUE(windows_of(d, t0 - 1, t0, &late).empty());
    EXPECT_TRUE(late);
}

TEST(FloorHistory, EachSegmentGetsItsRunsFloor) {
    floor_history f;
    EXPECT_EQ(f.floor_for("w0", 1), INT64_MIN);
    EXPECT_FALSE(f.add(floor_epoch{{{"w0", 1}}, INT64_MIN})); // the base covers it
    EXPECT_TRUE(f.add(floor_epoch{{{"w0", 3}, {"w1", 2}}, 100}));
    EXPECT_TRUE(f.add(floor_epoch{{{"w0", 5}}, 200}));
    EXPECT_TRUE(
        f.add(floor_epoch{{{"w0", 7}, {"w2", 1}}, 200})); // same floor: w2 joins the last epoch
    EXPECT_FALSE(f.add(floor_epoch{{{"w0", 9}}, 200}));
    EXPECT_EQ(f.epochs.size(), 2u);
    EXPECT_EQ(f.floor_for("w0", 2), INT64_MIN);
    EXPECT_EQ(f.floor_for("w0", 3), 100);
    EXPECT_EQ(f.floor_for("w0", 4), 100);
    EXPECT_EQ(f.floor_for("w0", 5), 200);
    EXPECT_EQ(f.floor_for("w0", 8), 200);
    EXPECT_EQ(f.floor_for("w1", 1), INT64_MIN);
    EXPECT_EQ(f.floor_for("w1", 9), 100);
    EXPECT_EQ(f.floor_for("w2", 1), 200);
}

// The stored events are parsed back from this table (the RX's parser lives in
// dataplane/): each raw string maps to the spec it was made from.
struct spec {
    int64_t t;
    std::string page;
};
std::string raw_of(const std::string& id, const spec& s) {
    return R"({"event_id":")" + id + R"(","timestamp":)" + std::to_string(s.t) + R"(,"page":")" +
           s.page + R"("})";
}

class table_parser final : public stored_event_parser {
  public:
    explicit table_parser(const std::map<std::string, spec>* specs) : _specs(specs) {}
    void parse(std::string_view raw, event_slot& out) override {
        auto it = _specs->find(std::string(raw));
        out.kind = it == _specs->end() ? slot_kind::dead_letter : slot_kind::event;
        if (it == _specs->end()) return;
        out.event_time_ms = it->second.t;
        out.generation = 0;
        out.data_used = 0;
        auto add = [&](std::string_view v) {
            field_ref f{out.data_used, uint32_t(v.size())};
            std::memcpy(out.data() + f.off, v.data(), v.size());
            out.data_used += f.len;
            return f;
        };
        out.page = add(it->second.page);
        out.user_id = add("");
        out.event_type = add("");
        out.event_id = add("");
        out.fields_parsed = 0;
    }

  private:
    const std::map<std::string, spec>* _specs;
};

using rows_t = std::vector<std::tuple<int64_t, int64_t, std::string, uint64_t>>;
rows_t rows_of(window_merger& m) {
    rows_t out;
    m.finalize_all([&](const result_row& r) {
        out.emplace_back(r.start_ms, r.end_ms, r.key, r.values[0].integer);
    });
    return out;
}

// Run 1 stops with M = 5m; run 2 resumes at M = 4m30s (W = 3m30s) with the floor at
// 4m: an event at 3m40s is late only by the floor. A replay with each run's floor
// counts exactly what the workers counted; without the floors it would not.
TEST(EventReplayer, ReplaysAcrossARestartAsTheWorkersCountedLive) {
    temp_dir dir("replayer");
    field_catalog catalog;
    const window_def kinds[] = {{window_kind::tumbling, minute_ms, 0, 0},
                                {window_kind::hopping, 2 * minute_ms, minute_ms, 0},
                                {window_kind::session, 0, 0, 30'000}};
    std::vector<std::shared_ptr<compiled_query>> queries;
    for (uint32_t i = 0; i < 3; ++i) {
        query_def d;
        d.name = "q" + std::to_string(i);
        d.window = kinds[i];
        d.group_by = {"page"};
        d.aggregates = {aggregate_def{}};
        d.watermark_delay_ms = minute_ms;
        d.memory_bytes = 1 << 20;
        queries.push_back(compile_or_die(d, catalog, i + 1, 0, 4096));
        ASSERT_NE(queries.back(), nullptr);
    }
    catalog.publish();
    std::vector<std::unique_ptr<window_merger>> live;
    test_channel channel;
    for (const auto& q : queries) {
        live.push_back(std::make_unique<window_merger>(q, 1));
        channel.mergers.push_back(live.back().get());
    }

    std::map<std::string, spec> specs;
    int n = 0;
    // One run: a worker with `floor`, M starting at `restored`, the events with their
    // RX stamps (M before each).
    auto run = [&](int64_t restored, int64_t floor,
                   const std::vector<std::pair<spec, int64_t>>& events) {
        worker_config c;
        c.data_dir = dir.path;
        c.dedup_memory_bytes = 1 << 20;
        c.rows_per_block = 4;
        c.block_string_bytes_max = 64 << 10;
        c.restored_max_time_ms = restored;
        auto w = worker::open(c, channel.channel());
        ASSERT_TRUE(w) << w.err().message;
        for (const auto& q : queries)
            ASSERT_TRUE((*w)->add_query(q, std::make_unique<window_state>(*q), floor));
        for (const auto& [s, m] : events) {
            const std::string id = "e" + std::to_string(n++);
            specs[raw_of(id, s)] = s;
            slot_buffer b;
            b->kind = slot_kind::event;
            b->has_event_id = 1;
            b->id = id_of(id);
            b->event_time_ms = s.t;
            b->max_time_before_ms = m;
            b.set_raw(raw_of(id, s));
            b->event_id = b.add_field(id);
            b->user_id = b.add_field("");
            b->event_type = b.add_field("");
            b->page = b.add_field(s.page);
            event_slot* p = b.get();
            (*w)->process(&p, 1);
        }
        ASSERT_TRUE((*w)->finish());
    };
    std::vector<std::pair<spec, int64_t>> run1;
    int64_t m = no_time;
    for (int i = 0; i <= 54; ++i) {
        spec s{t0 + i * 5000, "/p" + std::to_string(i % 2)};
        run1.push_back({s, m});
        m = std::max(m, s.t);
    }
    run1.push_back({spec{t0 + 300'000, "/p0"}, m});
    run(no_time, INT64_MIN, run1);
    const int64_t floor = t0 + 240'000; // run 1's W: 5m - 1m
    const int64_t restored = t0 + 270'000;
    std::vector<std::pair<spec, int64_t>> run2 = {
        {spec{t0 + 220'000, "/p0"}, no_time}, // 3m40s: late by the floor only
        {spec{t0 + 245'000, "/p1"}, no_time}, // 4m05s
        {spec{t0 + 190'000, "/p0"}, no_time}, // 3m10s: late by M too
        {spec{t0 + 290'000, "/p0"}, no_time}, // 4m50s
    };
    // The first events segment of run 2 (the writer takes the next sequence number).
    auto first_of_run2 = storage::next_segment_seq(dir.path + "/events", "w0");
    ASSERT_TRUE(first_of_run2);
    run(restored, floor, run2);

    replay_scan scan;
    scan.data_dir = dir.path;
    scan.make_parser = [&] { return std::make_unique<table_parser>(&specs); };
    auto replay = [&](bool with_floors) {
        std::vector<replay_query> rq;
        for (const auto& q : queries) {
            replay_query r{q, INT64_MIN, {}};
            if (with_floors) r.floors.add(floor_epoch{{{"w0", *first_of_run2}}, floor});
            rq.push_back(std::move(r));
        }
        replay_progress progress;
        auto out = replay_events(scan, rq, progress);
        EXPECT_TRUE(out) << out.err().message;
        EXPECT_EQ(progress.events_read.load(), run1.size() + run2.size());
        return std::move(out.value());
    };
    auto with = replay(true);
    auto without = replay(false);
    for (size_t i = 0; i < queries.size(); ++i) {
        rows_t want = rows_of(*live[i]);
        ASSERT_FALSE(want.empty());
        EXPECT_EQ(rows_of(*with[i]), want) << "query " << i;
        EXPECT_NE(rows_of(*without[i]), want) << "query " << i << ": the floor made no difference";
    }
}

} // namespace
} // namespace sluice::processing
