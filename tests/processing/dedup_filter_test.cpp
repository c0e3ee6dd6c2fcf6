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
        if (ti >= t - eff) {
            ASSERT_EQ(f.check_and_insert(id_of(i), ti, t), dedup_verdict::duplicate) << i;
        }
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

namespace {
// Runs `req` through `single` one event at a time and through `burst` in bursts of
// random sizes (1 to 150: some cross the filter's 64-event chunks); expects the same
// verdicts, and the same verdicts as `want` when given. Returns the verdicts.
std::vector<dedup_verdict> expect_burst_equals_single(dedup_filter& single, dedup_filter& burst,
                                                      const std::vector<dedup_request>& req,
                                                      std::mt19937_64& rng) {
    std::vector<dedup_verdict> one(req.size()), many(req.size());
    for (size_t i = 0; i < req.size(); ++i)
        one[i] = single.check_and_insert(req[i].id, req[i].event_time_ms, req[i].max_time_ms);
    for (size_t i = 0; i < req.size();) {
        uint32_t n = uint32_t(std::min<size_t>(1 + rng() % 150, req.size() - i));
        burst.check_and_insert_burst(req.data() + i, n, many.data() + i);
        i += n;
    }
    for (size_t i = 0; i < req.size(); ++i) {
        EXPECT_EQ(many[i], one[i]) << "event " << i;
        if (many[i] != one[i]) break;
    }
    EXPECT_EQ(burst.tracked(), single.tracked());
    EXPECT_EQ(burst.horizon_cuts(), single.horizon_cuts());
    EXPECT_EQ(burst.rebases(), single.rebases());
    return one;
}
} // namespace

// A duplicate of an event earlier in the same burst is a duplicate; an identity whose
// first sighting in the burst expires as M rises within the burst is new again; the
// cutoff is each event's own.
TEST(DedupFilter, BurstSeesItsOwnEarlierEvents) {
    dedup_filter f(1 << 20, hour);
    const int64_t t = 10 * hour;
    std::vector<dedup_request> req = {
        {id_of(1), t, no_time},                     // accepted
        {id_of(2), t + 1, t},                       // accepted
        {id_of(1), t + 2, t + 1},                   // duplicate of event 0
        {id_of(1), t, t + 2},                       // again
        {id_of(3), t + 2 - hour, t + 2},            // exactly at the cutoff: accepted
        {id_of(2), t + 3, t + 2},                   // duplicate of event 1
        {id_of(3), t + 7 - hour, t + 2},            // duplicate of event 4
        {id_of(4), t + 1 - hour, t + 2},            // just below the cutoff: beyond
        {id_of(4), t + 2 - hour, t + 2},            // at it: accepted
        {id_of(3), t + hour + 3, t + hour + 3},     // M rose: event 4 expired, accepted
        {id_of(3), t + 4, t + hour + 3},            // duplicate of event 9
        {id_of(4), t + 2 - hour, t + hour + 3},     // now beyond the horizon
        {id_of(1), t + 5, t + hour + 3},            // event 0 (at t) expired: accepted
    };
    std::vector<dedup_verdict> got(req.size());
    f.check_and_insert_burst(req.data(), uint32_t(req.size()), got.data());
    using v = dedup_verdict;
    EXPECT_EQ(got, (std::vector<dedup_verdict>{v::accepted, v::accepted, v::duplicate,
                                               v::duplicate, v::accepted, v::duplicate,
                                               v::duplicate, v::beyond_horizon, v::accepted,
                                               v::accepted, v::duplicate, v::beyond_horizon,
                                               v::accepted}));
    EXPECT_EQ(f.tracked(), 4u);
    // A burst of one identity 100 times (across the filter's 64-event chunks): one
    // accepted, the rest duplicates.
    std::vector<dedup_request> same(100, dedup_request{id_of(9), t + hour, t + hour + 3});
    std::vector<dedup_verdict> out(same.size());
    f.check_and_insert_burst(same.data(), uint32_t(same.size()), out.data());
    EXPECT_EQ(out[0], v::accepted);
    for (size_t i = 1; i < out.size(); ++i) EXPECT_EQ(out[i], v::duplicate) << i;
    // An empty burst changes nothing.
    f.check_and_insert_burst(nullptr, 0, nullptr);
    EXPECT_EQ(f.tracked(), 5u);
}

// Property: in bursts the filter gives the verdicts it gives one event at a time, which
// the model gives, on random streams with many repeats inside a burst, disorder, events
// at and around the cutoff, and events beyond the horizon.
TEST(DedupFilter, BurstMatchesSingleAndModelOnRandomStreams) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        std::mt19937_64 rng(seed);
        const int64_t horizon = 1000;
        dedup_filter single(64 * 1024 * 24, horizon), burst(64 * 1024 * 24, horizon);
        dedup_model model{horizon};
        std::vector<dedup_request> req;
        std::vector<dedup_verdict> want;
        std::vector<uint64_t> ids;
        for (int i = 0; i < 20000; ++i) {
            int64_t max = model.max;
            int64_t base = max == no_time ? 0 : max;
            int64_t t = base + int64_t(rng() % 50) - 40;  // mostly forward, some disorder
            switch (rng() % 25) {
            case 0: t -= 1500; break;                     // beyond the horizon
            case 1: if (max != no_time) t = max - horizon; break;     // at the cutoff
            case 2: if (max != no_time) t = max - horizon - 1; break; // just below it
            default: break;
            }
            // Half the ids from the last few events (duplicates in the same burst), the
            // others from a wider set.
            uint64_t n = rng() % 2 == 0 && !ids.empty()
                             ? ids[ids.size() - 1 - rng() % std::min<size_t>(ids.size(), 8)]
                             : rng() % 3000;
            ids.push_back(n);
            want.push_back(model.see(n, t));
            req.push_back({id_of(n), t, max});
        }
        auto got = expect_burst_equals_single(single, burst, req, rng);
        EXPECT_EQ(got, want) << "seed " << seed;
        EXPECT_EQ(single.horizon_cuts(), 0u);
    }
}

// Under budget pressure (the table full of live entries: kick walks and horizon cuts)
// and across moves of the time base, bursts still agree with single events.
TEST(DedupFilter, BurstMatchesSingleUnderCutsAndRebases) {
    std::mt19937_64 rng(3);
    {
        dedup_filter single(256 * 64, hour), burst(256 * 64, hour); // 1024 slots
        std::vector<dedup_request> req;
        int64_t t = 0;
        for (uint64_t i = 0; i < 20000; ++i, t += 10) {
            uint64_t n = rng() % 4 == 0 ? i - rng() % std::min<uint64_t>(i + 1, 2000) : i;
            req.push_back({id_of(n), t - int64_t(rng() % 100), t - 1});
        }
        expect_burst_equals_single(single, burst, req, rng);
        EXPECT_GT(burst.horizon_cuts(), 0u);
    }
    {
        const int64_t day = 24 * hour;
        dedup_filter single(1 << 20, 20 * day), burst(1 << 20, 20 * day);
        std::vector<dedup_request> req;
        int64_t max = no_time;
        for (int i = 0; i < 40000; ++i) {
            int64_t base = max == no_time ? 1'700'000'000'000 : max;
            int64_t t = base + int64_t(rng() % (day / 150));
            if (rng() % 10 == 0) t -= int64_t(rng() % (25 * day));
            req.push_back({id_of(rng() % 5000), t, max});
            max = std::max(max, t);
        }
        expect_burst_equals_single(single, burst, req, rng);
        EXPECT_GE(burst.rebases(), 2u);
    }
}

// Both page kinds give the same table: same capacity, same verdicts.
TEST(DedupFilter, PageKindsGiveTheSameTable) {
    std::mt19937_64 rng(5);
    std::vector<dedup_request> req;
    int64_t max = no_time;
    for (int i = 0; i < 50000; ++i) {
        int64_t t = int64_t(i) - int64_t(rng() % 20);
        req.push_back({id_of(rng() % 30000), t, max});
        max = std::max(max, t);
    }
    const uint64_t bytes = (4u << 20) + 64; // 4 MiB and one bucket: not whole pages
    dedup_filter normal(bytes, 10000, dedup_pages::normal);
    dedup_filter huge(bytes, 10000);
    EXPECT_EQ(normal.pages(), dedup_pages::normal);
    EXPECT_EQ(huge.pages(), dedup_pages::transparent_huge);
    EXPECT_EQ(huge.capacity(), normal.capacity());
    EXPECT_EQ(huge.memory_bytes(), bytes);
    expect_burst_equals_single(normal, huge, req, rng);
    // The last bucket is usable: fill the table to its cut.
    for (dedup_filter* f : {&normal, &huge})
        for (uint64_t i = 0; i < huge.capacity(); ++i)
            (void)f->check_and_insert(id_of(1'000'000 + i), max, max);
    EXPECT_GT(huge.horizon_cuts(), 0u);
    EXPECT_EQ(huge.tracked(), normal.tracked());
    EXPECT_EQ(huge.horizon_cuts(), normal.horizon_cuts());
}
