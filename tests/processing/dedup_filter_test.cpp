#include "processing/dedup_filter.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "processing/identity.h"

using namespace sluice::processing;

namespace {
constexpr int64_t hour = 3600 * 1000;
identity id_of(uint64_t n) { return identity_of_bytes(std::to_string(n)); }

// The obviously-correct reference: a map of id -> time of its accepted sighting, and the
// largest event time of the events that were not beyond the horizon.
struct dedup_model {
    int64_t horizon;
    std::map<uint64_t, int64_t> seen;
    int64_t max = no_time;

    // The verdict for id n at time t; updates the model as the filter should update.
    dedup_verdict see(uint64_t n, int64_t t) {
        int64_t cutoff = max == no_time ? INT64_MIN : max - horizon;
        if (t < cutoff) return dedup_verdict::beyond_horizon;
        if (max == no_time || t > max) max = t;
        if (auto it = seen.find(n); it != seen.end() && it->second >= cutoff)
            return dedup_verdict::duplicate;
        seen[n] = t;
        return dedup_verdict::accepted;
    }
};
} // namespace

TEST(DedupFilter, DropsDuplicateWithinHorizon) {
    dedup_filter f(1 << 20, hour);
    EXPECT_EQ(f.check_and_insert(id_of(1), 1000, no_time), dedup_verdict::accepted);
    EXPECT_EQ(f.check_and_insert(id_of(1), 1000, 1000), dedup_verdict::duplicate);
    EXPECT_EQ(f.check_and_insert(id_of(2), 1000, 1000), dedup_verdict::accepted);
    EXPECT_EQ(f.tracked(), 2u);
}

TEST(DedupFilter, RejectsEventsOlderThanHorizon) {
    dedup_filter f(1 << 20, hour);
    int64_t max = 10 * hour;
    EXPECT_EQ(f.check_and_insert(id_of(1), max - hour - 1, max), dedup_verdict::beyond_horizon);
    // Exactly at the cutoff is still inside the horizon.
    EXPECT_EQ(f.check_and_insert(id_of(2), max - hour, max), dedup_verdict::accepted);
}

TEST(DedupFilter, ExpiredEntryIsNotADuplicate) {
    dedup_filter f(1 << 20, hour);
    EXPECT_EQ(f.check_and_insert(id_of(1), 0, no_time), dedup_verdict::accepted);
    // Same identity (e.g. same event_id, other bytes) at a time when the first sighting
    // fell out of the horizon: accepted again.
    EXPECT_EQ(f.check_and_insert(id_of(1), 2 * hour, 2 * hour), dedup_verdict::accepted);
    EXPECT_EQ(f.check_and_insert(id_of(1), 2 * hour, 2 * hour), dedup_verdict::duplicate);
}

TEST(DedupFilter, BudgetForcesShorterHorizonAndReportsIt) {
    // 256 buckets of 4 slots: far fewer than the ids inserted below.
    dedup_filter f(256 * 64, hour);
    EXPECT_EQ(f.capacity(), 1024u);
    EXPECT_EQ(f.memory_bytes(), 256u * 64);
    int64_t t = 0;
    for (uint64_t i = 0; i < 5000; ++i, t += 10)
        ASSERT_EQ(f.check_and_insert(id_of(i), t, t), dedup_verdict::accepted) << i;
    EXPECT_LE(f.tracked(), 1024u);
    EXPECT_GT(f.horizon_cuts(), 0u);
    int64_t eff = f.effective_horizon_ms(t);
    EXPECT_LT(eff, hour);
    EXPECT_GT(eff, 0);
    // Older than the effective horizon: rejected, never silently stored.
    EXPECT_EQ(f.check_and_insert(id_of(999999), t - eff - 1, t), dedup_verdict::beyond_horizon);
    // Recent ids are still recognised.
    EXPECT_EQ(f.check_and_insert(id_of(4999), t - 10, t), dedup_verdict::duplicate);
    // Every id inside the effective horizon is still there (the cut takes the oldest).
    for (uint64_t i = 0; i < 5000; ++i) {
        int64_t ti = int64_t(i) * 10;
        if (ti >= t - eff)
            ASSERT_EQ(f.check_and_insert(id_of(i), ti, t), dedup_verdict::duplicate) << i;
    }
}

// The budget goes to identities, not to headroom: a table holds 90% of its slots as
// live identities (16 bytes a slot: 17.8 bytes per identity) without cutting the horizon,
// and recognises every one of them.
TEST(DedupFilter, HoldsNinetyPercentLiveLoadWithoutCutting) {
    dedup_filter f(4096 * 64, hour); // 16384 slots
    const uint64_t n = f.capacity() * 9 / 10;
    for (uint64_t i = 0; i < n; ++i)
        ASSERT_EQ(f.check_and_insert(id_of(i), int64_t(i), int64_t(i) - 1), dedup_verdict::accepted);
    EXPECT_EQ(f.horizon_cuts(), 0u);
    EXPECT_EQ(f.tracked(), n);
    EXPECT_LE(double(f.memory_bytes()) / double(n), 24.0);
    for (uint64_t i = 0; i < n; ++i)
        ASSERT_EQ(f.check_and_insert(id_of(i), int64_t(i), int64_t(n)), dedup_verdict::duplicate) << i;
    EXPECT_EQ(f.check_and_insert(id_of(n + 1), int64_t(n), int64_t(n)), dedup_verdict::accepted);
}

// Property: the table agrees with an obviously-correct model (a std::map) on random
// streams with disorder, repeats and expiry, across many sweeps.
TEST(DedupFilter, MatchesModelOnRandomStreams) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        std::mt19937_64 rng(seed);
        const int64_t horizon = 1000;
        dedup_filter f(64 * 1024 * 24, horizon);
        dedup_model model{horizon};
        for (int i = 0; i < 20000; ++i) {
            int64_t base = model.max == no_time ? 0 : model.max;
            int64_t t = base + int64_t(rng() % 50) - 40; // mostly forward, some disorder
            if (rng() % 50 == 0) t -= 1500;              // some beyond the horizon
            uint64_t n = rng() % 3000;
            int64_t max = model.max;
            dedup_verdict want = model.see(n, t);
            ASSERT_EQ(f.check_and_insert(id_of(n), t, max), want) << "seed " << seed << " i " << i;
        }
        EXPECT_EQ(f.horizon_cuts(), 0u);
    }
}

// Expired slots are reused in place and reclaimed in passing: neither may ever lose a
// live entry, and reclaiming keeps tracked() close to the live count.
TEST(DedupFilter, ReusingAndReclaimingExpiredSlotsKeepsLiveEntries) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        std::mt19937_64 rng(seed);
        const int64_t horizon = 1000;
        dedup_filter f(1024 * 64, horizon); // 4096 slots, ~900 live ids at a time
        std::map<uint64_t, int64_t> model;
        for (int64_t t = 0; t < 50000; ++t) {
            uint64_t n = uint64_t(t / 2) + rng() % 400; // a sliding set of recent ids
            int64_t cutoff = t == 0 ? INT64_MIN : t - 1 - horizon;
            dedup_verdict want;
            if (auto it = model.find(n); it != model.end() && it->second >= cutoff) {
                want = dedup_verdict::duplicate;
            } else {
                want = dedup_verdict::accepted;
                model[n] = t;
            }
            ASSERT_EQ(f.check_and_insert(id_of(n), t, t == 0 ? no_time : t - 1), want)
                << "seed " << seed << " t " << t;
            if (t % 7 == 0) f.reclaim_some(t);
        }
        EXPECT_EQ(f.horizon_cuts(), 0u);
        for (int k = 0; k < 16; ++k) f.reclaim_some(50000); // one full pass: 1024 buckets
        uint64_t live = 0;
        for (const auto& [n, t] : model) live += t >= 50000 - horizon;
        EXPECT_EQ(f.tracked(), live);
    }
}

// Event time runs for 100 days (the 32-bit offsets overflow every ~50): the base moves,
// and the filter still agrees with the model, also for disordered events arriving below
// the base.
TEST(DedupFilter, TimeBaseMovesOverLongSpansWithoutLosingEntries) {
    std::mt19937_64 rng(7);
    const int64_t horizon = 20 * 24 * hour; // 20 days
    const int64_t day = 24 * hour;
    dedup_filter f(1 << 20, horizon);
    dedup_model model{horizon};
    for (int i = 0; i < 40000; ++i) {
        int64_t base = model.max == no_time ? 1'700'000'000'000 : model.max;
        int64_t t = base + int64_t(rng() % (day / 150)); // ~day/300 forward per event
        if (rng() % 10 == 0) t -= int64_t(rng() % (25 * day)); // disorder, some beyond
        uint64_t n = rng() % 5000;
        int64_t max = model.max;
        dedup_verdict want = model.see(n, t);
        ASSERT_EQ(f.check_and_insert(id_of(n), t, max), want) << "i " << i;
    }
    EXPECT_GT(model.max - 1'700'000'000'000, 100 * day);
    EXPECT_GE(f.rebases(), 2u);
    EXPECT_EQ(f.horizon_cuts(), 0u);
}

// A jump in event time wider than the offsets can span is cut like a budget cut:
// reported, and what falls below the cut is beyond the horizon, never a false accept.
TEST(DedupFilter, EventTimeJumpBeyondTheOffsetsCutsAndReports) {
    dedup_filter f(1 << 20, hour);
    const int64_t t0 = 1'700'000'000'000;
    const int64_t jump = 60LL * 24 * hour;
    EXPECT_EQ(f.check_and_insert(id_of(1), t0, no_time), dedup_verdict::accepted);
    // An RX that has not seen t0 yet still stamps no max: the jump arrives with no max.
    EXPECT_EQ(f.check_and_insert(id_of(2), t0 + jump, no_time), dedup_verdict::accepted);
    EXPECT_EQ(f.horizon_cuts(), 1u);
    EXPECT_EQ(f.check_and_insert(id_of(1), t0, no_time), dedup_verdict::beyond_horizon);
    EXPECT_EQ(f.check_and_insert(id_of(2), t0 + jump, no_time), dedup_verdict::duplicate);
    EXPECT_EQ(f.check_and_insert(id_of(3), t0 + jump - 1000, t0 + jump),
              dedup_verdict::accepted);
}

TEST(DedupFilter, HorizonIsCappedToWhatTheOffsetsHold) {
    dedup_filter f(1 << 20, 100LL * 24 * hour);
    EXPECT_EQ(f.effective_horizon_ms(no_time), dedup_filter::horizon_ms_max);
}
