#include "processing/window_merger.h"

#include <gtest/gtest.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "tests/processing/processing_test_util.h"

using namespace sluice::processing;
using namespace sluice::processing::testing;

namespace {

struct batch_buf {
    std::unique_ptr<char[]> mem;
    uint32_t capacity;
    explicit batch_buf(uint32_t cap = 1 << 20) : mem(new char[sizeof(partial_batch) + cap]), capacity(cap) {}
    partial_batch* get(uint32_t worker, uint32_t uid) {
        auto* b = reinterpret_cast<partial_batch*>(mem.get());
        b->capacity = capacity;
        b->reset(worker, uid);
        return b;
    }
};

void add(partial_batch* b, int64_t start, int64_t end, std::string_view key, uint64_t count) {
    b->append(start, end, key, reinterpret_cast<const uint8_t*>(&count), 8);
}

struct rows_t {
    std::vector<result_row> rows;
    window_merger::emit_fn sink() {
        return [this](const result_row& r) { rows.push_back(r); };
    }
};

std::shared_ptr<compiled_query> query_of(field_catalog& c, window_def w, uint32_t uid = 1) {
    query_def d = reference_query();
    d.window = w;
    d.memory_bytes = 1 << 20;
    return compile_or_die(d, c, uid);
}

void publish(compiled_query& q, uint32_t worker, int64_t closed, int64_t hold_all = INT64_MAX) {
    auto& p = q.shared->workers[worker];
    for (auto& h : p.holds_ms) h.store(hold_all);
    p.closed_until_ms.store(closed);
}

} // namespace

TEST(WindowMerger, EmitsOnlyWhenEveryWorkerClosed) {
    field_catalog c;
    auto q = query_of(c, {window_kind::tumbling, 60000, 0, 0});
    window_merger m(q, 2);
    rows_t out;
    batch_buf buf;
    auto* b = buf.get(0, 1);
    add(b, 0, 60000, "/a", 3);
    m.merge(*b);
    publish(*q, 0, 60000);
    m.read_progress();
    EXPECT_EQ(m.finalize(out.sink()), 0u); // worker 1 has published nothing yet
    b = buf.get(1, 1);
    add(b, 0, 60000, "/a", 2);
    add(b, 0, 60000, "/b", 1);
    m.merge(*b);
    publish(*q, 1, 59999);
    m.read_progress();
    EXPECT_EQ(m.finalize(out.sink()), 0u); // 59999 < end
    publish(*q, 1, 60000);
    m.read_progress();
    EXPECT_EQ(m.finalize(out.sink()), 2u);
    ASSERT_EQ(out.rows.size(), 2u);
    EXPECT_EQ(out.rows[0].key, "/a");
    EXPECT_EQ(out.rows[0].values[0].integer, 5u);
    EXPECT_EQ(out.rows[1].key, "/b");
    EXPECT_EQ(out.rows[1].end_ms, 60000);
    EXPECT_EQ(m.rows_emitted(), 2u);
    EXPECT_FALSE(m.done());
    publish(*q, 0, INT64_MAX);
    publish(*q, 1, INT64_MAX);
    m.read_progress();
    EXPECT_TRUE(m.done());
}

TEST(WindowMerger, SessionPiecesFromWorkersMergeAndWaitForHolds) {
    field_catalog c;
    auto q = query_of(c, {window_kind::session, 0, 0, 100});
    window_merger m(q, 2);
    rows_t out;
    batch_buf buf;
    // Worker 0 closed [1000, 1100); worker 1 still has [1050, 1200) open (its hold).
    auto* b = buf.get(0, 1);
    add(b, 1000, 1100, "/a", 1);
    m.merge(*b);
    publish(*q, 0, 1150);
    publish(*q, 1, 1150, /*hold_all=*/1050);
    m.read_progress();
    EXPECT_EQ(m.finalize(out.sink()), 0u); // the open piece at worker 1 may bridge it
    b = buf.get(1, 1);
    add(b, 1050, 1200, "/a", 2);
    m.merge(*b);
    publish(*q, 1, 1200);
    publish(*q, 0, 1200);
    m.read_progress();
    EXPECT_EQ(m.finalize(out.sink()), 1u);
    ASSERT_EQ(out.rows.size(), 1u);
    EXPECT_EQ(out.rows[0].start_ms, 1000);
    EXPECT_EQ(out.rows[0].end_ms, 1200);
    EXPECT_EQ(out.rows[0].values[0].integer, 3u);
}

TEST(WindowMerger, RebuildFromCoversEveryWindowNotEmitted) {
    field_catalog c;
    auto q = query_of(c, {window_kind::tumbling, 1000, 0, 0});
    window_merger m(q, 1);
    rows_t out;
    batch_buf buf;
    auto* b = buf.get(0, 1);
    add(b, 5000, 6000, "/a", 1);
    m.merge(*b);
    publish(*q, 0, 5500);
    q->shared->workers[0].open_min_start_ms.store(7000);
    m.read_progress();
    m.finalize(out.sink());
    // A window opened after C = 5500 ends after it: it may start at 4501 (the bound
    // does not assume aligned windows), before pending [5000, 6000).
    EXPECT_EQ(m.rebuild_from_ms(), 4501);
    publish(*q, 0, 6000);
    m.read_progress();
    m.finalize(out.sink());
    // Nothing pending; a window opened later ends after C = 6000, so starts after 5000.
    EXPECT_EQ(m.rebuild_from_ms(), 5001);
}

// Big batches take the TBB path; the rows must equal the serial path's.
TEST(WindowMerger, ParallelMergeEqualsSerial) {
    field_catalog c;
    auto q = query_of(c, {window_kind::tumbling, 1000, 0, 0});
    window_merger big(q, 1), small(q, 1);
    rows_t a, b;
    batch_buf buf(8 << 20);
    std::mt19937_64 rng(3);
    auto* batch = buf.get(0, 1);
    for (int i = 0; i < 5000; ++i)
        add(batch, int64_t(rng() % 5) * 1000, int64_t(rng() % 5) * 1000 + 1000,
            "k" + std::to_string(rng() % 700), 1 + rng() % 3);
    big.merge(*batch); // >= 512 records: parallel
    batch_buf one;
    batch->for_each([&](int64_t s, int64_t e, std::string_view k, const uint8_t* blob) {
        auto* x = one.get(0, 1);
        x->append(s, e, k, blob, 8);
        small.merge(*x);
    });
    publish(*q, 0, INT64_MAX);
    big.read_progress();
    small.read_progress();
    big.finalize(a.sink());
    small.finalize(b.sink());
    ASSERT_EQ(a.rows.size(), b.rows.size());
    for (size_t i = 0; i < a.rows.size(); ++i) {
        EXPECT_EQ(a.rows[i].key, b.rows[i].key);
        EXPECT_EQ(a.rows[i].start_ms, b.rows[i].start_ms);
        EXPECT_EQ(a.rows[i].values, b.rows[i].values);
    }
}

// Sessions wait per hold bucket: a piece is emitted once every worker closed past its end
// and its own bucket's hold (no open piece of that bucket starts before it ends) allows
// it. A model of that rule over random pieces, holds and rounds; each round must emit
// exactly the pieces the model says and keep the rest pending, in (end, start, key) order.
TEST(WindowMerger, SessionPiecesWaitForTheirOwnBucketsHoldOnly) {
    field_catalog c;
    auto q = query_of(c, {window_kind::session, 0, 0, 10});
    window_merger m(q, 1);
    rows_t out;
    batch_buf buf;
    std::mt19937_64 rng(11);
    struct piece_model {
        int64_t start, end;
        std::string key;
        uint32_t bucket;
    };
    std::vector<piece_model> pending;
    // One piece per key (distinct keys never merge), spread over every bucket.
    auto* b = buf.get(0, 1);
    for (int i = 0; i < 3000; ++i) {
        std::string key = "u" + std::to_string(i);
        int64_t start = int64_t(rng() % 10'000);
        int64_t end = start + 10 + int64_t(rng() % 500);
        add(b, start, end, key, 1);
        pending.push_back({start, end, key,
                           hold_bucket_of(XXH3_64bits(key.data(), key.size()))});
    }
    m.merge(*b);
    uint64_t emitted = 0;
    for (int round = 0; round < 12; ++round) {
        const int64_t closed = round == 11 ? INT64_MAX : int64_t(round) * 1000 + int64_t(rng() % 1000);
        auto& p = q->shared->workers[0];
        int64_t holds[hold_buckets];
        for (uint32_t h = 0; h < hold_buckets; ++h) {
            // Some buckets held far back (a long session), some a little, some not at all.
            const uint64_t r = rng() % 4;
            holds[h] = round == 11 || r == 0 ? INT64_MAX : r == 1 ? 0 : closed - int64_t(rng() % 2000);
            p.holds_ms[h].store(holds[h]);
        }
        p.closed_until_ms.store(closed);
        m.read_progress();
        std::vector<piece_model> want, keep;
        for (auto& x : pending)
            (x.end <= closed && x.end <= holds[x.bucket] ? want : keep).push_back(x);
        std::sort(want.begin(), want.end(), [](const piece_model& a, const piece_model& b) {
            return std::tie(a.end, a.start, a.key) < std::tie(b.end, b.start, b.key);
        });
        out.rows.clear();
        ASSERT_EQ(m.finalize(out.sink()), want.size()) << "round " << round;
        for (size_t i = 0; i < want.size(); ++i) {
            EXPECT_EQ(out.rows[i].key, want[i].key) << "round " << round << " row " << i;
            EXPECT_EQ(out.rows[i].start_ms, want[i].start);
            EXPECT_EQ(out.rows[i].end_ms, want[i].end);
        }
        emitted += want.size();
        pending = std::move(keep);
        EXPECT_EQ(m.pending_cells(), pending.size()) << "round " << round;
    }
    EXPECT_EQ(emitted, 3000u);
    EXPECT_TRUE(pending.empty());
}
