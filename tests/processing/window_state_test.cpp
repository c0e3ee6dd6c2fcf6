#include "processing/window_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <tuple>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "tests/processing/processing_test_util.h"

using namespace sluice::processing;
using namespace sluice::processing::testing;

namespace {

using cells = std::map<std::tuple<int64_t, int64_t, std::string>, uint64_t>;

uint64_t hash_of(std::string_view k) { return XXH3_64bits(k.data(), k.size()); }

struct fixture {
    field_catalog catalog;
    std::shared_ptr<compiled_query> query;
    std::unique_ptr<window_state> state;
    agg_input inputs[16]{};

    explicit fixture(window_def w, uint64_t memory = 1 << 20) {
        query_def d = reference_query();
        d.window = w;
        d.memory_bytes = memory;
        query = compile_or_die(d, catalog);
        state = std::make_unique<window_state>(*query);
    }
    window_state::verdict add(int64_t t, std::string_view key, int64_t watermark = INT64_MIN) {
        return state->add(t, key, hash_of(key), watermark, inputs);
    }
    uint32_t close(int64_t watermark, cells& out) {
        return state->close_until(watermark, [&](int64_t s, int64_t e, std::string_view k, const uint8_t* blob) {
            uint64_t count;
            std::memcpy(&count, blob, 8);
            out[{s, e, std::string(k)}] += count;
        });
    }
};

} // namespace

TEST(WindowAssignment, FirstWindowStartIsAFloorEvenBeforeTheEpoch) {
    window_def t{window_kind::tumbling, 60000, 0, 0};
    EXPECT_EQ(first_window_start(t, 0), 0);
    EXPECT_EQ(first_window_start(t, 59999), 0);
    EXPECT_EQ(first_window_start(t, 60000), 60000);
    EXPECT_EQ(first_window_start(t, -1), -60000);
    EXPECT_EQ(first_window_start(t, -60000), -60000);
    window_def h{window_kind::hopping, 60000, 20000, 0};
    // [t - size, t]: windows starting at -20000, 0, 20000 hold t = 30000.
    EXPECT_EQ(first_window_start(h, 30000), -20000);
    EXPECT_EQ(first_window_start(h, 40000), -0);
    EXPECT_EQ(first_window_start(h, -1), -60000);
}

TEST(WindowState, TumblingEventOnBoundaryBelongsToNextWindow) {
    fixture f({window_kind::tumbling, 60000, 0, 0});
    f.add(59999, "/a");
    f.add(60000, "/a");
    f.add(60000, "/b");
    EXPECT_EQ(f.state->open_cells(), 3u);
    EXPECT_EQ(f.state->earliest_end_ms(), 60000);
    cells out;
    EXPECT_EQ(f.close(59999, out), 0u); // end 60000 > W
    EXPECT_EQ(f.close(60000, out), 1u); // end == W closes
    EXPECT_EQ(out, (cells{{{0, 60000, "/a"}, 1}}));
    EXPECT_EQ(f.close(120000, out), 2u);
    EXPECT_EQ(out[std::make_tuple(60000, 120000, "/a")], 1u);
    EXPECT_EQ(out[std::make_tuple(60000, 120000, "/b")], 1u);
    EXPECT_EQ(f.state->open_cells(), 0u);
    EXPECT_EQ(f.state->earliest_end_ms(), INT64_MAX);
}

TEST(WindowState, TumblingLateEventIsNotAggregated) {
    fixture f({window_kind::tumbling, 1000, 0, 0});
    auto v = f.add(999, "/a", 1000);
    EXPECT_TRUE(v.late);
    EXPECT_EQ(f.state->open_cells(), 0u);
    v = f.add(1000, "/a", 1000);
    EXPECT_FALSE(v.late);
    EXPECT_EQ(f.state->open_cells(), 1u);
}

TEST(WindowState, HoppingEventCountsInEveryOpenWindowItFallsIn) {
    fixture f({window_kind::hopping, 3000, 1000, 0});
    auto v = f.add(2500, "/a", /*watermark=*/1000);
    // Windows holding 2500: [0,3000), [1000,4000), [2000,5000); none ended by W = 1000.
    EXPECT_FALSE(v.late);
    EXPECT_EQ(f.state->open_cells(), 3u);
    v = f.add(2500, "/a", /*watermark=*/3000);
    EXPECT_TRUE(v.late); // [0, 3000) has closed: it misses that one only
    cells out;
    f.close(INT64_MAX, out);
    EXPECT_EQ(out, (cells{{{0, 3000, "/a"}, 1}, {{1000, 4000, "/a"}, 2}, {{2000, 5000, "/a"}, 2}}));
}

TEST(WindowState, SessionsMergeOverlappingPiecesPerKey) {
    fixture f({window_kind::session, 0, 0, 100});
    f.add(1000, "/a");  // [1000, 1100)
    f.add(1300, "/a");  // [1300, 1400): a second piece
    f.add(2000, "/b");  // other key
    EXPECT_EQ(f.state->open_cells(), 3u);
    f.add(1150, "/a");  // [1150, 1250): touches neither (strict overlap)
    EXPECT_EQ(f.state->open_cells(), 4u);
    f.add(1099, "/a");  // [1099, 1199) overlaps [1000,1100) and [1150,1250): one piece
    EXPECT_EQ(f.state->open_cells(), 3u);
    f.add(1240, "/a");  // [1240, 1340) bridges to [1300, 1400)
    EXPECT_EQ(f.state->open_cells(), 2u);
    EXPECT_EQ(f.state->holds_ms()[hold_bucket_of(hash_of("/a"))], 1000);
    EXPECT_LE(f.state->open_min_start_ms(), 1000);
    cells out;
    EXPECT_EQ(f.close(1399, out), 0u);
    EXPECT_EQ(f.close(1400, out), 1u);
    EXPECT_EQ(out, (cells{{{1000, 1400, "/a"}, 5}}));
    // A session event before the watermark could bridge a closed session: late.
    EXPECT_TRUE(f.add(1999, "/b", 2000).late);
    EXPECT_FALSE(f.add(2000, "/b", 2000).late);
    EXPECT_EQ(f.state->holds_ms()[hold_bucket_of(hash_of("/a"))], INT64_MAX);
}

TEST(WindowState, FullStateOverflowsAndReusesFreedCells) {
    fixture f({window_kind::tumbling, 1000, 0, 0}, 1 << 20);
    const uint32_t max = f.state->cells_max();
    for (uint32_t i = 0; i < max; ++i) ASSERT_FALSE(f.add(0, "k" + std::to_string(i)).overflow);
    EXPECT_TRUE(f.add(0, "one more").overflow);
    cells out;
    EXPECT_EQ(f.close(1000, out), max);
    for (uint32_t i = 0; i < max; ++i) ASSERT_FALSE(f.add(5000, "again" + std::to_string(i)).overflow);
}

TEST(WindowState, InstallMergesIntoExistingCell) {
    fixture f({window_kind::tumbling, 1000, 0, 0});
    f.add(10, "/a");
    uint64_t blob[1] = {41};
    EXPECT_TRUE(f.state->install(0, 1000, "/a", hash_of("/a"), reinterpret_cast<uint8_t*>(blob)));
    EXPECT_TRUE(f.state->install(1000, 2000, "/b", hash_of("/b"), reinterpret_cast<uint8_t*>(blob)));
    cells out;
    f.close(INT64_MAX, out);
    EXPECT_EQ(out, (cells{{{0, 1000, "/a"}, 42}, {{1000, 2000, "/b"}, 41}}));
}

// close_until() closes exactly the cells window_closed() (processing/window_assigner.h,
// the rule live windows, the rebuild and replay share) calls closed: an end at or before
// W, never one after it, for every window kind, at every watermark step.
TEST(WindowState, CloseUntilFollowsTheWindowClosedRule) {
    const window_def kinds[] = {{window_kind::tumbling, 1000, 0, 0},
                                {window_kind::hopping, 3000, 1000, 0},
                                {window_kind::session, 0, 0, 700}};
    for (const window_def& d : kinds) {
        fixture f(d);
        for (int64_t t = 0; t < 10'000; t += 450) f.add(t, "/k" + std::to_string(t % 3));
        for (int64_t w = -1; w <= 14'000; w += 250) {
            cells out;
            const uint32_t n = f.close(w, out);
            EXPECT_EQ(n, out.size());
            for (const auto& [cell, count] : out)
                EXPECT_TRUE(window_closed(std::get<1>(cell), w))
                    << "kind " << int(d.kind) << ": closed [" << std::get<0>(cell) << ", "
                    << std::get<1>(cell) << ") at W " << w;
            uint32_t open = 0;
            int64_t first_end = INT64_MAX;
            f.state->for_each_open([&](int64_t s, int64_t e, std::string_view, const void*) {
                ++open;
                first_end = std::min(first_end, e);
                EXPECT_FALSE(window_closed(e, w))
                    << "kind " << int(d.kind) << ": kept [" << s << ", " << e << ") at W " << w;
            });
            EXPECT_EQ(open, f.state->open_cells());
            // The boundary itself: the first cell to end stays open at W = end - 1 and
            // closes at W = end.
            if (open > 0) {
                cells at_end;
                EXPECT_EQ(f.close(first_end - 1, at_end), 0u);
                EXPECT_GT(f.close(first_end, at_end), 0u);
            }
        }
        EXPECT_EQ(f.state->open_cells(), 0u);
    }
}

// Random adds against a std::map, with closes in between: keys churn through the
// index, the cell free list and the key arena.
TEST(WindowState, RandomizedAgainstMap) {
    for (auto kind : {window_kind::tumbling, window_kind::hopping}) {
        fixture f({kind, 4000, kind == window_kind::hopping ? 1000 : 0, 0});
        std::mt19937_64 rng(7);
        cells want, got;
        int64_t t = 0, w = INT64_MIN;
        for (int i = 0; i < 20000; ++i) {
            t += int64_t(rng() % 50);
            int64_t et = t - int64_t(rng() % 3000);
            std::string key = "/k" + std::to_string(rng() % 300) + std::string(rng() % 40, 'x');
            auto v = f.add(et, key, w);
            ASSERT_FALSE(v.overflow);
            window_def wd = f.query->def.window;
            for (int64_t s = first_window_start(wd, et); s <= et; s += window_slide_ms(wd))
                if (s + wd.size_ms > w) want[{s, s + wd.size_ms, key}] += 1;
            if (i % 97 == 0) {
                w = std::max(w, t - 2000);
                f.close(w, got);
            }
        }
        f.close(INT64_MAX, got);
        EXPECT_EQ(got, want);
    }
}
