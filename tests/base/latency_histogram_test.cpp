#include "base/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/tsc.h"

namespace sluice {
namespace {

using H = latency_histogram;

TEST(LatencyHistogram, BucketsCoverEveryValueInOrder) {
    // Small values are exact.
    for (uint64_t v = 0; v < H::sub_count; ++v) {
        EXPECT_EQ(H::bucket_of(v), v);
        EXPECT_EQ(H::bucket_low(uint32_t(v)), v);
        EXPECT_EQ(H::bucket_high(uint32_t(v)), v);
    }
    // Adjacent buckets tile the range with no gap and no overlap.
    for (uint32_t b = 0; b + 1 < H::bucket_count; ++b) {
        ASSERT_EQ(H::bucket_high(b) + 1, H::bucket_low(b + 1)) << b;
        ASSERT_EQ(H::bucket_of(H::bucket_low(b)), b) << b;
        ASSERT_EQ(H::bucket_of(H::bucket_high(b)), b) << b;
    }
    EXPECT_EQ(H::bucket_of(UINT64_MAX), H::bucket_count - 1);
    EXPECT_EQ(H::bucket_high(H::bucket_count - 1), UINT64_MAX);
}

TEST(LatencyHistogram, BucketWidthIsAtMostAThirtySecondOfItsValue) {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 100000; ++i) {
        uint64_t v = rng() >> (rng() % 64);
        uint32_t b = H::bucket_of(v);
        ASSERT_LE(H::bucket_low(b), v);
        ASSERT_GE(H::bucket_high(b), v);
        if (v >= H::sub_count) {
            ASSERT_LE(H::bucket_high(b) - H::bucket_low(b), v / 32) << v;
        }
    }
}

TEST(LatencyHistogram, EmptySnapshotIsZero) {
    H h;
    auto s = h.snapshot();
    EXPECT_EQ(s.count(), 0u);
    EXPECT_EQ(s.quantile(0.5), 0u);
    EXPECT_EQ(s.max(), 0u);
    EXPECT_EQ(s.mean(), 0.0);
}

// Quantiles against a sorted copy of the same values: within the bucket resolution.
TEST(LatencyHistogram, QuantilesMatchSortedModel) {
    H h;
    std::mt19937_64 rng(11);
    std::lognormal_distribution<double> dist(std::log(50'000.0), 1.0);
    std::vector<uint64_t> values;
    for (int i = 0; i < 200000; ++i) {
        uint64_t v = uint64_t(dist(rng));
        values.push_back(v);
        h.record(v);
    }
    std::sort(values.begin(), values.end());
    auto s = h.snapshot();
    ASSERT_EQ(s.count(), values.size());
    for (double q : {0.01, 0.5, 0.9, 0.99, 0.999}) {
        uint64_t want = values[size_t(std::ceil(q * double(values.size()))) - 1];
        double got = double(s.quantile(q));
        EXPECT_NEAR(got, double(want), double(want) * 0.02) << "q=" << q;
    }
    EXPECT_EQ(s.quantile(1.0), values.back());
    EXPECT_EQ(s.max(), values.back());
    double sum = 0;
    for (uint64_t v : values)
        sum += double(v);
    EXPECT_NEAR(s.mean(), sum / double(values.size()), 1.0);
}

TEST(LatencyHistogram, RecordManyAtOnceEqualsRecordingEach) {
    H a, b;
    a.record(1000, 5);
    for (int i = 0; i < 5; ++i)
        b.record(1000);
    auto sa = a.snapshot(), sb = b.snapshot();
    EXPECT_EQ(sa.count(), 5u);
    EXPECT_EQ(sa.sum(), sb.sum());
    EXPECT_EQ(sa.bucket(H::bucket_of(1000)), sb.bucket(H::bucket_of(1000)));
}

TEST(LatencyHistogram, MergeIsTheHistogramOfTheUnion) {
    H a, b, both;
    for (uint64_t v = 1; v < 5000; v += 7) {
        a.record(v);
        both.record(v);
    }
    for (uint64_t v = 100000; v < 200000; v += 13) {
        b.record(v);
        both.record(v);
    }
    auto m = a.snapshot();
    m.merge(b.snapshot());
    auto u = both.snapshot();
    EXPECT_EQ(m.count(), u.count());
    EXPECT_EQ(m.sum(), u.sum());
    EXPECT_EQ(m.max(), u.max());
    for (double q : {0.1, 0.5, 0.99})
        EXPECT_EQ(m.quantile(q), u.quantile(q));
}

TEST(LatencyHistogram, SinceGivesTheInterval) {
    H h;
    for (int i = 0; i < 1000; ++i)
        h.record(10'000'000); // an old, slow second
    auto before = h.snapshot();
    for (int i = 0; i < 1000; ++i)
        h.record(2000);
    auto d = h.snapshot().since(before);
    EXPECT_EQ(d.count(), 1000u);
    EXPECT_EQ(d.sum(), 2'000'000u);
    EXPECT_NEAR(double(d.quantile(0.99)), 2000.0, 2000.0 / 32);
    // The interval's max is its own, not the old 10 ms.
    EXPECT_LE(d.max(), H::bucket_high(H::bucket_of(2000)));
    EXPECT_GE(d.max(), 2000u);
}

TEST(LatencyHistogram, ConcurrentReaderSeesMonotonicCounts) {
    H h;
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (uint64_t i = 0; i < 2'000'000; ++i)
            h.record(i % 100000);
        done = true;
    });
    uint64_t last = 0;
    while (!done) {
        uint64_t n = h.snapshot().count();
        ASSERT_GE(n, last);
        last = n;
    }
    writer.join();
    EXPECT_EQ(h.snapshot().count(), 2'000'000u);
}

TEST(PendingLatency, CompletesRowsInOrderWithTheirOwnStamps) {
    pending_latency p(8);
    H h;
    // Three bursts: 3 rows at 100, 2 rows at 200, 1 row at 300.
    for (uint64_t s : {100, 100, 100, 200, 200, 300})
        p.add_row(s);
    p.complete(4, 1100, h); // rows 0..3 durable at 1100
    auto s = h.snapshot();
    EXPECT_EQ(s.count(), 4u);
    EXPECT_EQ(s.bucket(H::bucket_of(1000)), 3u);
    EXPECT_EQ(s.bucket(H::bucket_of(900)), 1u);
    p.complete(4, 5000, h); // nothing new
    EXPECT_EQ(h.snapshot().count(), 4u);
    p.complete(6, 1300, h);
    s = h.snapshot();
    EXPECT_EQ(s.count(), 6u);
    EXPECT_EQ(s.sum(), 3 * 1000u + 900 + 1100 + 1000);
    EXPECT_EQ(p.rows_completed(), 6u);
    EXPECT_EQ(p.merged_rows(), 0u);
}

TEST(PendingLatency, UnstampedRowsAreCountedNotMeasured) {
    pending_latency p(4);
    H h;
    p.add_row(0);
    p.add_row(50);
    p.complete(2, 150, h);
    EXPECT_EQ(h.snapshot().count(), 1u);
    EXPECT_EQ(h.snapshot().sum(), 100u);
    EXPECT_EQ(p.rows_completed(), 2u);
}

TEST(PendingLatency, FullRingOverstatesNeverUnderstates) {
    pending_latency p(2);
    H h;
    p.add_row(10);
    p.add_row(20);
    p.add_row(30); // no room: joins the run stamped 20
    EXPECT_EQ(p.merged_rows(), 1u);
    p.complete(3, 100, h);
    auto s = h.snapshot();
    EXPECT_EQ(s.count(), 3u);
    EXPECT_EQ(s.sum(), 90u + 80 + 80); // the third row's true latency is 70
    // Room again: new stamps get their own runs.
    p.add_row(40);
    p.complete(4, 100, h);
    EXPECT_EQ(h.snapshot().sum(), 250u + 60);
}

TEST(PendingLatency, StampsFromAnotherCoreSlightlyAheadCountAsZero) {
    pending_latency p(4);
    H h;
    p.add_row(1000);
    p.complete(1, 990, h);
    EXPECT_EQ(h.snapshot().bucket(0), 1u);
}

TEST(Tsc, RateIsPlausibleAndTicksForward) {
    uint64_t hz = tsc_hz();
    EXPECT_GT(hz, 10'000'000u);       // > 10 MHz
    EXPECT_LT(hz, 100'000'000'000u);  // < 100 GHz
    // On a loaded machine the thread can be preempted between the two clock reads; a
    // longer interval shrinks that error, and a second or third try rules it out.
    double measured = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
        uint64_t a = tsc_now();
        int64_t t0 = monotonic_ns();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        uint64_t b = tsc_now();
        int64_t t1 = monotonic_ns();
        measured = double(b - a) / (double(t1 - t0) / 1e9);
        if (std::abs(measured - double(hz)) <= double(hz) * 0.05) break;
    }
    EXPECT_NEAR(measured, double(hz), double(hz) * 0.05);
}

} // namespace
} // namespace sluice
