// RFC 3339 parsing (base/time_format.h) per timestamp: rfc3339_reader (fixed-layout
// fast path reusing the last minute, as the RX parser calls it) beside parse_rfc3339_ms
// (the general parser), in the same binary and run, on the seed events' timestamps
// (`…T15:22:31.123Z`, rising a few ms per event, as events of a datagram do) and on sluice-gen's
// mix of renderings (UTC to the second, fractions of 1-9 digits, offsets) at random times of a day
// (every minute new: the reader's worst case). Items are timestamps.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/time_format.h"
#include "bench/seed_events.h"
#include "tools/gen/timestamp.h"

namespace {

constexpr size_t pool = 4096;

std::vector<std::string> seed_stamps() {
    std::vector<std::string> out;
    for (const auto& e : sluice::bench::make_seed_events(pool))
        out.push_back(sluice::bench::rfc3339_ms(e.time_ms));
    return out;
}

// sluice-gen's string renderings in its proportions (tools/gen: 40% seconds, 20%
// fractions, 15% offsets; its epoch-ms integers never reach this parser).
std::vector<std::string> gen_stamps() {
    using sluice::tools::ts_format;
    std::vector<std::string> out;
    uint64_t rng = 42;
    for (size_t i = 0; i < pool; ++i) {
        const uint64_t r = sluice::bench::splitmix64(rng);
        const int64_t t = sluice::bench::base_time_ms + int64_t(r % 86400000);
        const uint32_t pick = uint32_t(r >> 40) % 75;
        const ts_format f = pick < 40   ? ts_format::utc_seconds
                            : pick < 60 ? ts_format::utc_fraction
                                        : ts_format::offset;
        // As tools/gen/generator.cpp: 1-9 fraction digits, 0-3 with an offset.
        const int digits = f == ts_format::offset ? int((r >> 20) % 4) : 1 + int((r >> 20) % 9);
        std::string json =
            sluice::tools::render_timestamp(t, f, digits, r >> 8, (r >> 30) % 2 ? 120 : -330).json;
        json.pop_back(); // the quotes
        json.erase(0, 1);
        out.push_back(std::move(json));
    }
    return out;
}

using parse_fn = bool (*)(std::string_view, int64_t*) noexcept;

sluice::rfc3339_reader reader;
bool read(std::string_view s, int64_t* ms) noexcept {
    return reader.parse(s, ms);
}

void bm_parse(benchmark::State& state, parse_fn parse, bool gen) {
    const auto stamps = gen ? gen_stamps() : seed_stamps();
    for (const auto& s : stamps) {
        int64_t a = 0, b = 0;
        if (!parse(s, &a) || !sluice::parse_rfc3339_ms(s, &b) || a != b) {
            state.SkipWithError(("timestamp does not parse: " + s).c_str());
            return;
        }
    }
    constexpr size_t burst = 64;
    size_t next = 0;
    uint64_t n = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < burst; ++i) {
            int64_t ms;
            bool ok = parse(stamps[next], &ms);
            benchmark::DoNotOptimize(ok);
            benchmark::DoNotOptimize(ms);
            next = (next + 1) % pool;
        }
        n += burst;
    }
    state.SetItemsProcessed(int64_t(n));
}

BENCHMARK_CAPTURE(bm_parse, seed_general, sluice::parse_rfc3339_ms, false);
BENCHMARK_CAPTURE(bm_parse, seed_reader, read, false);
BENCHMARK_CAPTURE(bm_parse, gen_mix_general, sluice::parse_rfc3339_ms, true);
BENCHMARK_CAPTURE(bm_parse, gen_mix_reader, read, true);

} // namespace

BENCHMARK_MAIN();
