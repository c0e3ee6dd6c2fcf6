#include "processing/window_merger.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

using namespace sluice::processing;

namespace {
struct batch_buf {
    std::unique_ptr<char[]> mem{new char[sizeof(partial_batch) + 4096]};
    partial_batch* get(uint32_t worker) {
        auto* b = reinterpret_cast<partial_batch*>(mem.get());
        b->capacity = 4096;
        b->reset(worker);
        return b;
    }
};
} // namespace

TEST(WindowMerger, FinalizesOnlyWhenEveryWorkerClosed) {
    std::vector<window_row> rows;
    window_merger m(2, 60000, [&](const window_row& r) { rows.push_back(r); });
    batch_buf buf;
    auto* b = buf.get(0);
    b->append(0, "/a", 3);
    b->closed_until_ms = 60000;
    m.merge(*b);
    EXPECT_TRUE(rows.empty()); // worker 1 has not closed [0, 60000) yet

    b = buf.get(1);
    b->append(0, "/a", 2);
    b->append(0, "/b", 1);
    b->closed_until_ms = 60000;
    EXPECT_EQ(m.merge(*b), 2u);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].key, "/a");
    EXPECT_EQ(rows[0].count, 5u);
    EXPECT_EQ(rows[0].window_end_ms, 60000);
    EXPECT_EQ(rows[1].key, "/b");
    EXPECT_EQ(rows[1].count, 1u);
}

TEST(WindowMerger, FinalBatchesCloseEverything) {
    std::vector<window_row> rows;
    window_merger m(2, 1000, [&](const window_row& r) { rows.push_back(r); });
    batch_buf buf;
    for (uint32_t w = 0; w < 2; ++w) {
        auto* b = buf.get(w);
        b->append(5000, "/k", 1);
        b->closed_until_ms = INT64_MAX;
        b->final = true;
        m.merge(*b);
    }
    EXPECT_TRUE(m.all_final());
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].count, 2u);
    EXPECT_EQ(rows[0].window_start_ms, 5000);
}

TEST(PartialBatch, RecordsRoundTrip) {
    batch_buf buf;
    auto* b = buf.get(0);
    std::string big(100, 'x');
    b->append(-1000, "", 7);
    b->append(42, big, 1);
    std::vector<std::tuple<int64_t, std::string, uint64_t>> seen;
    b->for_each([&](int64_t s, std::string_view k, uint64_t c) { seen.emplace_back(s, std::string(k), c); });
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0], std::make_tuple(int64_t(-1000), std::string(), uint64_t(7)));
    EXPECT_EQ(seen[1], std::make_tuple(int64_t(42), big, uint64_t(1)));
    EXPECT_FALSE(b->fits(4096));
}
