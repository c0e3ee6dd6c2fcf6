// The fuzz target's body in every build: random JSON documents shaped like stats replies
// (right keys, wrong types, odd nesting) and byte mutations of them. Coverage-guided
// fuzzing runs with libFuzzer (tests/fuzz: fuzz_protocol, scripts/fuzz).
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "tests/control/protocol_fuzz.h"

namespace sluice::control {
namespace {

const char* const keys[] = {"ok", "v", "cmd", "uptime_s", "version", "watermark_ms",
                            "watermark_delay_ms", "totals", "rates", "latency", "lag",
                            "per_core", "rings", "control", "window_visible", "durable",
                            "recent", "le_us", "cumulative", "count", "p50_us", "p99_us",
                            "max_us", "sum_us", "interval_s", "role", "lcore", "rx", "worker",
                            "occupancy", "capacity", "dead_letters_by_reason",
                            "dead_letters_by_reason_per_s", "events_per_s", "text", "rx"};

json random_value(std::mt19937& rng, int depth) {
    switch (rng() % (depth > 4 ? 6 : 9)) {
    case 0: return nullptr;
    case 1: return bool(rng() % 2);
    case 2: return int64_t(rng()) - int64_t(rng());
    case 3: return double(rng()) / 7.0 * (rng() % 2 ? 1 : -1);
    case 4: return std::string(rng() % 5, char('a' + rng() % 26));
    case 5: return uint64_t(rng()) << 32;
    case 6:
    case 7: {
        json o = json::object();
        for (int i = int(rng() % 8); i > 0; --i)
            o[keys[rng() % std::size(keys)]] = random_value(rng, depth + 1);
        return o;
    }
    default: {
        json a = json::array();
        for (int i = int(rng() % 6); i > 0; --i)
            a.push_back(random_value(rng, depth + 1));
        return a;
    }
    }
}

TEST(ProtocolFuzz, RandomRepliesAndMutationsNeverThrowOrCrash) {
    std::mt19937 rng(20261127);
    for (int i = 0; i < 3000; ++i) {
        json doc = json::object();
        for (int k = int(rng() % 12); k > 0; --k)
            doc[keys[rng() % std::size(keys)]] = random_value(rng, 0);
        std::string text = doc.dump();
        ASSERT_NO_THROW(fuzz::one_input(reinterpret_cast<const uint8_t*>(text.data()), text.size()))
            << text;
        for (int m = 0; m < 3 && !text.empty(); ++m)
            text[rng() % text.size()] = char(rng());
        ASSERT_NO_THROW(fuzz::one_input(reinterpret_cast<const uint8_t*>(text.data()), text.size()))
            << text;
    }
}

} // namespace
} // namespace sluice::control
