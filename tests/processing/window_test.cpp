#include "processing/window.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

using namespace sluice::processing;

using cells = std::map<std::pair<int64_t, std::string>, uint64_t>;

namespace {
uint32_t close_into(window_state& w, int64_t watermark, cells& out) {
    return w.close_until(watermark, [&](int64_t start, std::string_view key, uint64_t count) {
        out[{start, std::string(key)}] += count;
    });
}
} // namespace

TEST(WindowAssigner, StartIsFloorEvenBeforeEpoch) {
    EXPECT_EQ(window_start_of(0, 60000), 0);
    EXPECT_EQ(window_start_of(59999, 60000), 0);
    EXPECT_EQ(window_start_of(60000, 60000), 60000);
    EXPECT_EQ(window_start_of(-1, 60000), -60000);
    EXPECT_EQ(window_start_of(-60000, 60000), -60000);
}

TEST(WindowState, EventOnBoundaryBelongsToNextWindow) {
    window_state w({60000}, 1024, 1024, 1 << 16);
    ASSERT_TRUE(w.add(59999, "/a"));
    ASSERT_TRUE(w.add(60000, "/a"));
    cells out;
    EXPECT_EQ(close_into(w, 60000, out), 1u); // [0, 60000) closes at W = 60000
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ((out[{0, "/a"}]), 1u);
    EXPECT_EQ(w.earliest_end_ms(), 120000);
    EXPECT_EQ(close_into(w, 119999, out), 0u); // not yet
    EXPECT_EQ(close_into(w, 120000, out), 1u);
    EXPECT_EQ((out[{60000, "/a"}]), 1u);
    EXPECT_EQ(w.open_cells(), 0u);
}

TEST(WindowState, CountsPerKeyAndWindow) {
    window_state w({60000}, 1024, 1024, 1 << 16);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(w.add(1000 + i, "/x"));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(w.add(2000, "/y"));
    ASSERT_TRUE(w.add(61000, "/x"));
    cells out;
    close_into(w, 60000, out);
    EXPECT_EQ((out[{0, "/x"}]), 10u);
    EXPECT_EQ((out[{0, "/y"}]), 3u);
    EXPECT_EQ(out.count({60000, "/x"}), 0u);
}

TEST(WindowState, FullStateIsReportedNotHidden) {
    window_state w({60000}, 4, 1024, 1 << 16);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(w.add(0, "/k" + std::to_string(i)));
    EXPECT_FALSE(w.add(0, "/k-more"));
    EXPECT_TRUE(w.add(0, "/k0")); // existing cells still count
}

// Property: random adds and closes agree with a std::map model.
TEST(WindowState, MatchesModelOnRandomStreams) {
    for (uint64_t seed = 1; seed <= 10; ++seed) {
        std::mt19937_64 rng(seed);
        window_state w({1000}, 1 << 14, 1 << 12, 1 << 20);
        cells model, got, want;
        int64_t watermark = INT64_MIN;
        int64_t t = 0;
        for (int i = 0; i < 50000; ++i) {
            t += int64_t(rng() % 20);
            int64_t et = t - int64_t(rng() % 3000);
            std::string key = "/p" + std::to_string(rng() % 50);
            if (watermark != INT64_MIN && window_start_of(et, 1000) + 1000 <= watermark) continue;
            ASSERT_TRUE(w.add(et, key));
            model[{window_start_of(et, 1000), key}]++;
            if (rng() % 100 == 0) {
                watermark = std::max(watermark, t - 3000);
                got.clear();
                want.clear();
                close_into(w, watermark, got);
                // The model is ordered by window start: the closed cells are a prefix.
                auto it = model.begin();
                while (it != model.end() && it->first.first + 1000 <= watermark) {
                    want[it->first] += it->second;
                    it = model.erase(it);
                }
                ASSERT_EQ(got, want) << "seed " << seed;
            }
        }
        got.clear();
        want.clear();
        close_into(w, INT64_MAX, got);
        for (auto& [k, v] : model) want[k] += v;
        EXPECT_EQ(got, want);
        EXPECT_EQ(w.open_cells(), 0u);
    }
}
