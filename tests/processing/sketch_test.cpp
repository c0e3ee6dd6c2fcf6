// HyperLogLog and the quantile sketch: accuracy against exact answers, and merges that
// give the same state in any order (what lets partials from 1, 2 or 4 workers agree).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "processing/hll.h"
#include "processing/quantile_sketch.h"

using namespace sluice::processing;

namespace {

uint64_t hash_of(const std::string& s) { return XXH3_64bits(s.data(), s.size()); }

double exact_quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[size_t(std::floor(q * double(v.size() - 1)))];
}

std::unique_ptr<qsketch::sketch> new_sketch() {
    auto s = std::make_unique<qsketch::sketch>();
    qsketch::init(*s);
    return s;
}

} // namespace

TEST(HyperLogLog, WithinTwoPercentAtOneMillionDistinct) {
    const uint32_t p = hll::precision_default;
    std::vector<uint8_t> regs(hll::registers(p), 0);
    for (int i = 0; i < 1'000'000; ++i) {
        std::string user = "user-" + std::to_string(i);
        hll::add(regs.data(), p, hash_of(user));
        if (i % 3 == 0) hll::add(regs.data(), p, hash_of(user)); // repeats change nothing
    }
    double e = hll::estimate(regs.data(), p);
    EXPECT_NEAR(e, 1e6, 0.02 * 1e6) << "estimate " << e;
}

TEST(HyperLogLog, SmallCardinalitiesUseLinearCounting) {
    const uint32_t p = hll::precision_default;
    for (int n : {0, 1, 10, 1000, 20000}) {
        std::vector<uint8_t> regs(hll::registers(p), 0);
        for (int i = 0; i < n; ++i) hll::add(regs.data(), p, hash_of("k" + std::to_string(i)));
        double e = hll::estimate(regs.data(), p);
        EXPECT_NEAR(e, n, std::max(1.0, 0.02 * n)) << n;
    }
}

TEST(HyperLogLog, MergeIsRegisterMaxInAnyOrder) {
    const uint32_t p = 12;
    std::vector<uint8_t> all(hll::registers(p)), a(all), b(all), ab(all), ba(all);
    for (int i = 0; i < 50000; ++i) {
        uint64_t h = hash_of(std::to_string(i));
        hll::add(all.data(), p, h);
        hll::add(i % 3 ? a.data() : b.data(), p, h);
    }
    hll::merge(ab.data(), a.data(), p);
    hll::merge(ab.data(), b.data(), p);
    hll::merge(ba.data(), b.data(), p);
    hll::merge(ba.data(), a.data(), p);
    EXPECT_EQ(ab, all);
    EXPECT_EQ(ba, all);
}

TEST(QuantileSketch, RelativeErrorWithinOnePercent) {
    std::mt19937_64 rng(11);
    std::lognormal_distribution<double> lat(3.0, 1.5);
    std::uniform_real_distribution<double> signed_uniform(-500, 1000);
    for (int dist = 0; dist < 2; ++dist) {
        auto s = new_sketch();
        std::vector<double> v;
        for (int i = 0; i < 100000; ++i) {
            double x = dist == 0 ? lat(rng) : signed_uniform(rng);
            if (i % 1000 == 0) x = 0;
            v.push_back(x);
            qsketch::add(*s, x);
        }
        for (double q : {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0}) {
            double exact = exact_quantile(v, q);
            double got = qsketch::quantile(*s, q);
            EXPECT_LE(std::abs(got - exact), qsketch::relative_accuracy * std::abs(exact) * (1 + 1e-9))
                << "q " << q << " exact " << exact << " got " << got;
        }
    }
    EXPECT_TRUE(std::isnan(qsketch::quantile(*new_sketch(), 0.5)));
}

TEST(QuantileSketch, MergeGivesTheSameSketchInAnyOrder) {
    std::mt19937_64 rng(5);
    std::lognormal_distribution<double> lat(0, 6); // a range wide enough to fold bins
    auto whole = new_sketch();
    std::vector<std::unique_ptr<qsketch::sketch>> parts;
    for (int i = 0; i < 4; ++i) parts.push_back(new_sketch());
    for (int i = 0; i < 20000; ++i) {
        double x = lat(rng) * (i % 7 == 0 ? -1 : 1);
        qsketch::add(*whole, x);
        qsketch::add(*parts[rng() % 4], x);
    }
    for (int order = 0; order < 4; ++order) {
        auto merged = new_sketch();
        for (int k = 0; k < 4; ++k) qsketch::merge(*merged, *parts[(k + order) % 4]);
        for (double q = 0; q <= 1.0; q += 0.05)
            EXPECT_EQ(qsketch::quantile(*merged, q), qsketch::quantile(*whole, q)) << q;
        EXPECT_EQ(merged->count, whole->count);
        EXPECT_EQ(merged->positive.lo, whole->positive.lo);
        EXPECT_EQ(merged->positive.hi, whole->positive.hi);
    }
}

TEST(QuantileSketch, FoldsOnlyTheSmallestMagnitudesBeyondItsRange) {
    auto s = new_sketch();
    std::vector<double> v;
    // 1e-12 .. 1e12 spans far more than gamma^1023 (about 7e8).
    for (int e = -12; e <= 12; ++e)
        for (int k = 1; k <= 9; ++k) {
            double x = k * std::pow(10.0, e);
            v.push_back(x);
            qsketch::add(*s, x);
        }
    EXPECT_EQ(s->positive.hi - s->positive.lo, qsketch::bins - 1);
    // Values below 9e12 / gamma^1023 (about 1.3e4) folded into the lowest kept bin;
    // quantiles above it keep the bound.
    const double fold = qsketch::value_of(s->positive.lo);
    EXPECT_GT(fold, 1e4);
    EXPECT_LT(fold, 2e4);
    for (double q : {0.75, 0.9, 0.99, 1.0}) {
        double exact = exact_quantile(v, q);
        EXPECT_LE(std::abs(qsketch::quantile(*s, q) - exact), 0.01 * exact * (1 + 1e-9)) << q;
    }
    // The smallest values now read as the lowest kept bin: larger than they were.
    EXPECT_EQ(qsketch::quantile(*s, 0.0), fold);
    EXPECT_EQ(qsketch::quantile(*s, 0.5), fold);
}
