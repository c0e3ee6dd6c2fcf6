// event_parser::parse() over seed-shaped NDJSON events, a burst of 64 per iteration, as
// the RX lcore runs it: copy into the slot, simdjson on-demand, timestamp, identity
// (XXH3-128 of the bytes, or of event_id when present). Items are events; bytes are
// the events' JSON bytes.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "base/limits.h"
#include "bench/seed_events.h"
#include "dataplane/event_parse.h"

namespace {

using sluice::processing::event_slot;
using sluice::processing::slot_kind;

constexpr size_t pool_events = 4096;

struct slot_deleter {
    void operator()(event_slot* s) const { ::operator delete(s, std::align_val_t{64}); }
};

std::unique_ptr<event_slot, slot_deleter> make_slot(uint32_t event_bytes_max) {
    void* mem = ::operator new(sluice::processing::slot_bytes(event_bytes_max), std::align_val_t{64});
    return std::unique_ptr<event_slot, slot_deleter>(new (mem) event_slot{});
}

void bm_event_parse(benchmark::State& state, bool with_event_id) {
    const auto events = sluice::bench::make_seed_events(pool_events, with_event_id);
    sluice::dataplane::parse_config config;
    sluice::dataplane::event_parser parser(config);
    auto slot = make_slot(config.event_bytes_max);
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    // A benchmark of the dead-letter path by mistake would read as a fast parser.
    for (const auto& e : events) {
        parser.parse(e.json, now_ms, *slot);
        if (slot->kind != slot_kind::event || slot->event_time_ms != e.time_ms ||
            slot->field(slot->page) != e.page || bool(slot->has_event_id) != with_event_id) {
            state.SkipWithError("bench event does not parse as the generator meant it");
            return;
        }
    }
    constexpr size_t burst = sluice::limits::ring_burst_max;
    size_t next = 0;
    uint64_t bytes = 0;
    uint64_t parsed = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < burst; ++i) {
            const auto& e = events[next];
            next = (next + 1) % pool_events;
            parser.parse(e.json, now_ms, *slot);
            benchmark::DoNotOptimize(slot->id);
            bytes += e.json.size();
        }
        parsed += burst;
    }
    state.SetItemsProcessed(int64_t(parsed));
    state.SetBytesProcessed(int64_t(bytes));
    state.counters["event_bytes_mean"] = sluice::bench::mean_bytes(events);
}

BENCHMARK_CAPTURE(bm_event_parse, seed_bytes_identity, false);
BENCHMARK_CAPTURE(bm_event_parse, with_event_id, true);

} // namespace

BENCHMARK_MAIN();
