#include "processing/dedup_filter.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "processing/identity.h"

using namespace sluice::processing;

namespace {
constexpr int64_t hour = 3600 * 1000;
identity id_of(uint64_t n) { return identity_of_bytes(std::to_string(n)); }
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
    // 1024 slots of 24 bytes: far fewer than the ids inserted below.
    dedup_filter f(1024 * 24, hour);
    EXPECT_EQ(f.capacity(), 1024u);
    int64_t t = 0;
    for (uint64_t i = 0; i < 5000; ++i, t += 10)
        ASSERT_EQ(f.check_and_insert(id_of(i), t, t), dedup_verdict::accepted) << i;
    EXPECT_LE(f.tracked(), 1024u * 3 / 4);
    EXPECT_GT(f.forced_sweeps(), 0u);
    int64_t eff = f.effective_horizon_ms(t);
    EXPECT_LT(eff, hour);
    EXPECT_GT(eff, 0);
    // Older than the effective horizon: rejected, never silently stored.
    EXPECT_EQ(f.check_and_insert(id_of(999999), t - eff - 1, t), dedup_verdict::beyond_horizon);
    // Recent ids are still recognised.
    EXPECT_EQ(f.check_and_insert(id_of(4999), t - 10, t), dedup_verdict::duplicate);
}

// Property: the table agrees with an obviously-correct model (a std::map) on random
// streams with disorder, repeats and expiry, across many sweeps.
TEST(DedupFilter, MatchesModelOnRandomStreams) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        std::mt19937_64 rng(seed);
        const int64_t horizon = 1000;
        dedup_filter f(64 * 1024 * 24, horizon);
        std::map<uint64_t, int64_t> model; // id -> time of accepted sighting
        int64_t max = no_time;
        for (int i = 0; i < 20000; ++i) {
            int64_t base = max == no_time ? 0 : max;
            int64_t t = base + int64_t(rng() % 50) - 40; // mostly forward, some disorder
            if (rng() % 50 == 0) t -= 1500;              // some beyond the horizon
            uint64_t n = rng() % 3000;
            dedup_verdict want;
            int64_t cutoff = max == no_time ? INT64_MIN : max - horizon;
            if (t < cutoff) {
                want = dedup_verdict::beyond_horizon;
            } else if (auto it = model.find(n); it != model.end() && it->second >= cutoff) {
                want = dedup_verdict::duplicate;
            } else {
                want = dedup_verdict::accepted;
                model[n] = t;
            }
            ASSERT_EQ(f.check_and_insert(id_of(n), t, max), want) << "seed " << seed << " i " << i;
            if (want != dedup_verdict::beyond_horizon && (max == no_time || t > max)) max = t;
        }
        EXPECT_EQ(f.forced_sweeps(), 0u);
    }
}

// Many sweeps of expired entries (backward-shift deletion) must never lose a live entry.
TEST(DedupFilter, SweepsKeepLiveEntries) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        std::mt19937_64 rng(seed);
        const int64_t horizon = 1000;
        dedup_filter f(4096 * 24, horizon);
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
        }
        EXPECT_EQ(f.forced_sweeps(), 0u);
        EXPECT_LT(f.tracked(), 4096u);
    }
}
