// Window update (window_state::add) per query kind and aggregate set, the steady state
// with closing, and the merges the merger does per cell (aggregate blobs, HyperLogLog,
// quantile sketch). Events are bench/seed_events.h's, pages Zipf(1) over 500 paths;
// items are events (add) or merges. Keys are hashed as the worker hashes them (XXH3).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/limits.h"
#include "bench/seed_events.h"
#include "processing/hll.h"
#include "processing/quantile_sketch.h"
#include "processing/query_runtime.h"
#include "processing/window_merger.h"
#include "processing/window_state.h"

namespace {

using namespace sluice::processing;

constexpr size_t pool_events = 65536;
constexpr size_t burst = sluice::limits::ring_burst_max;

struct prepared {
    int64_t time_ms;
    std::string key;
    uint64_t hash;
    agg_input inputs[2];
};

// The query each benchmark argument runs.
query_def query_for(int64_t which) {
    query_def q = reference_query(); // 0: tumbling 1 min by page, count
    q.memory_bytes = 256ull << 20;
    switch (which) {
    case 1: // hopping 10 min / 1 min: ten windows per event
        q.name = "hopping";
        q.window = {window_kind::hopping, 600'000, 60'000, 0};
        break;
    case 2: // sessions with a 30 s gap per user
        q.name = "sessions";
        q.window = {window_kind::session, 0, 0, 30'000};
        q.group_by = {"user_id"};
        break;
    case 3: // every aggregate kind, by page
        q.name = "all_aggregates";
        q.aggregates = {parse_aggregate("count").value(), parse_aggregate("sum(latency)").value(),
                        parse_aggregate("min(latency)").value(), parse_aggregate("max(latency)").value(),
                        parse_aggregate("mean(latency)").value(),
                        parse_aggregate("distinct(user_id)").value(),
                        parse_aggregate("quantile(latency, 0.5, 0.99)").value()};
        break;
    }
    return q;
}

const char* label_for(int64_t which) {
    static const char* labels[] = {"tumbling_1m_count", "hopping_10m_1m_count", "session_30s_by_user",
                                   "tumbling_1m_all_aggregates"};
    return labels[which];
}

std::vector<prepared> prepare(const compiled_query& q, const std::vector<sluice::bench::seed_event>& events) {
    std::vector<prepared> out(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
        const auto& e = events[i];
        prepared& p = out[i];
        p.time_ms = e.time_ms;
        p.key = q.def.group_by[0] == "user_id" ? e.user_id : e.page;
        p.hash = XXH3_64bits(p.key.data(), p.key.size());
        // values: latency (a number) and user_id, in the order compile() resolved them
        p.inputs[0] = agg_input{{}, true, true, double(e.time_ms % 977)};
        p.inputs[1] = agg_input{e.user_id, true, false, 0};
    }
    return out;
}

// Adds and, after each burst, closes what the watermark (max time - 10 min) passed: the
// steady state of a worker. The pool's event time rises for ever (lap after lap).
void bm_window_update(benchmark::State& state) {
    const auto events = sluice::bench::make_seed_events(pool_events);
    field_catalog catalog;
    auto q = compile(query_for(state.range(0)), catalog, 1, 0, 4096);
    if (!q) {
        state.SkipWithError(q.err().message.c_str());
        return;
    }
    auto pool = prepare(**q, events);
    window_state windows(**q);
    const int64_t lap_ms = events.back().time_ms - events.front().time_ms + 8;
    size_t next = 0;
    int64_t lap = 0, max_time = INT64_MIN;
    uint64_t added = 0, overflow = 0, closed = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < burst; ++i) {
            const prepared& e = pool[next];
            int64_t t = e.time_ms + lap * lap_ms;
            if (++next == pool_events) next = 0, ++lap;
            max_time = t > max_time ? t : max_time;
            overflow += windows.add(t, e.key, e.hash, max_time - 600'000, e.inputs).overflow;
        }
        added += burst;
        closed += windows.close_until(max_time - 600'000,
                                      [](int64_t, int64_t, std::string_view, const uint8_t*) {});
    }
    state.SetItemsProcessed(int64_t(added));
    state.SetLabel(label_for(state.range(0)));
    state.counters["open_cells"] = windows.open_cells();
    state.counters["cells_closed"] = double(closed);
    state.counters["blob_bytes"] = (*q)->aggs.blob_bytes();
    if (overflow != 0) state.SkipWithError("window_state overflowed: state sized too small");
}

// One cell's aggregate blob into another, as the merger does per record.
void bm_blob_merge(benchmark::State& state) {
    field_catalog catalog;
    auto q = compile(query_for(state.range(0)), catalog, 1, 0, 4096);
    const agg_layout& aggs = (*q)->aggs;
    std::vector<uint64_t> a(aggs.blob_bytes() / 8), b(aggs.blob_bytes() / 8);
    auto* pa = reinterpret_cast<uint8_t*>(a.data());
    auto* pb = reinterpret_cast<uint8_t*>(b.data());
    aggs.init(pa);
    aggs.init(pb);
    const auto events = sluice::bench::make_seed_events(4096);
    auto pool = prepare(**q, events);
    for (size_t i = 0; i < pool.size(); ++i) aggs.update(i % 2 ? pa : pb, pool[i].inputs);
    uint64_t merges = 0;
    for (auto _ : state) {
        aggs.merge(pa, pb);
        benchmark::DoNotOptimize(a.data());
        ++merges;
    }
    state.SetItemsProcessed(int64_t(merges));
    state.SetLabel(label_for(state.range(0)));
    state.counters["blob_bytes"] = aggs.blob_bytes();
}

// HyperLogLog registers (precision 14, 16 KiB) merged: register-wise max.
void bm_hll_merge(benchmark::State& state) {
    const uint32_t p = hll::precision_default;
    std::vector<uint8_t> a(hll::registers(p)), b(hll::registers(p));
    uint64_t rng = 1;
    for (int i = 0; i < 100000; ++i) hll::add((i % 2 ? a : b).data(), p, sluice::bench::splitmix64(rng));
    uint64_t merges = 0;
    for (auto _ : state) {
        hll::merge(a.data(), b.data(), p);
        benchmark::DoNotOptimize(a.data());
        ++merges;
    }
    state.SetItemsProcessed(int64_t(merges));
    state.SetBytesProcessed(int64_t(merges) * hll::registers(p));
}

// Quantile sketches (1024 bins per sign) merged bin by bin; range(0) values each.
void bm_qsketch_merge(benchmark::State& state) {
    auto a = std::make_unique<qsketch::sketch>();
    auto b = std::make_unique<qsketch::sketch>();
    qsketch::init(*a);
    qsketch::init(*b);
    uint64_t rng = 2;
    for (int64_t i = 0; i < state.range(0); ++i) {
        double x = double(sluice::bench::splitmix64(rng) % 100000) / 10.0 + 0.1;
        qsketch::add(i % 2 ? *a : *b, x);
    }
    uint64_t merges = 0;
    for (auto _ : state) {
        qsketch::merge(*a, *b);
        benchmark::DoNotOptimize(a.get());
        ++merges;
    }
    state.SetItemsProcessed(int64_t(merges));
    state.counters["bins_used"] = double(b->positive.hi - b->positive.lo + 1);
}

// The merger side: one batch of closed cells (8192 records, 2000 keys, 4 windows) from
// each of 4 workers merged and finished, serial (small batches) or with TBB (one big
// batch per worker). Items are records merged.
void bm_merger_round(benchmark::State& state) {
    const bool big = state.range(0) != 0;
    field_catalog catalog;
    auto q = compile(query_for(0), catalog, 1, 0, 4096);
    constexpr uint32_t records = 8192;
    constexpr uint32_t cap = 1u << 20;
    std::vector<std::unique_ptr<char[]>> mem;
    std::vector<partial_batch*> batches;
    uint64_t rng = 3;
    for (uint32_t w = 0; w < 4; ++w) {
        // Big: one batch of 8192 records (TBB path); small: 32 batches of 256 (serial).
        uint32_t per = big ? records : 256;
        for (uint32_t n = 0; n < records; n += per) {
            mem.emplace_back(new char[sizeof(partial_batch) + cap]);
            auto* b = reinterpret_cast<partial_batch*>(mem.back().get());
            b->capacity = cap;
            b->reset(w, 1);
            for (uint32_t i = 0; i < per; ++i) {
                uint64_t count = 1 + sluice::bench::splitmix64(rng) % 5;
                int64_t start = int64_t(sluice::bench::splitmix64(rng) % 4) * 60'000;
                std::string key = sluice::bench::page_path(uint32_t(sluice::bench::splitmix64(rng) % 2000));
                b->append(start, start + 60'000, key, reinterpret_cast<const uint8_t*>(&count), 8);
            }
            batches.push_back(b);
        }
    }
    for (uint32_t w = 0; w < 4; ++w) (*q)->shared->workers[w].closed_until_ms.store(INT64_MAX);
    uint64_t merged = 0, rows = 0;
    for (auto _ : state) {
        window_merger m(*q, 4);
        m.read_progress();
        for (auto* b : batches) m.merge(*b);
        rows += m.finalize([](const result_row&) {});
        merged += uint64_t(records) * 4;
    }
    state.SetItemsProcessed(int64_t(merged));
    state.SetLabel(big ? "4 batches of 8192 records (TBB shards)" : "128 batches of 256 records (serial)");
    state.counters["rows_per_round"] = double(rows) / double(state.iterations());
}

// The merger's round for sessions while one hold bucket is kept back: `held` finished
// pieces wait in that bucket (an open session elsewhere started before they ended, and
// goes on: a user who never pauses for the gap), and each round merges and emits 256
// closed pieces of other buckets. Items are pieces emitted; the held ones stay. A round
// that walks past the held pieces costs in proportion to them.
void bm_merger_session_held(benchmark::State& state) {
    const uint32_t held = uint32_t(state.range(0));
    field_catalog catalog;
    auto q = compile(query_for(2), catalog, 1, 0, 4096);
    constexpr uint32_t per_round = 256;
    constexpr uint32_t cap = 1u << 20;
    std::unique_ptr<char[]> mem(new char[sizeof(partial_batch) + cap]);
    auto* b = reinterpret_cast<partial_batch*>(mem.get());
    b->capacity = cap;
    const uint32_t pinned = 0; // the held bucket
    auto bucket = [](const std::string& k) { return hold_bucket_of(XXH3_64bits(k.data(), k.size())); };
    worker_progress& p = (*q)->shared->workers[0];
    p.holds_ms[pinned].store(0); // the open session in bucket 0 started at t = 0
    p.closed_until_ms.store(INT64_MAX);
    window_merger m(*q, 1);
    m.read_progress();
    uint64_t count = 1;
    uint32_t next_key = 0;
    b->reset(0, 1);
    for (uint32_t n = 0; n < held; ++next_key) {
        std::string k = "held-" + std::to_string(next_key);
        if (bucket(k) != pinned) continue;
        if (!b->fits(k.size(), 8)) {
            m.merge(*b);
            b->reset(0, 1);
        }
        b->append(1000, 2000, k, reinterpret_cast<const uint8_t*>(&count), 8);
        ++n;
    }
    m.merge(*b);
    // Keys of the other buckets, each round's pieces a new session of them.
    std::vector<std::string> keys;
    for (uint32_t i = 0; keys.size() < 4096; ++i) {
        std::string k = "user-" + std::to_string(i);
        if (bucket(k) != pinned) keys.push_back(std::move(k));
    }
    int64_t t = 10'000;
    uint64_t emitted = 0;
    for (auto _ : state) {
        b->reset(0, 1);
        for (uint32_t i = 0; i < per_round; ++i)
            b->append(t, t + 30'000, keys[(emitted + i) % keys.size()],
                      reinterpret_cast<const uint8_t*>(&count), 8);
        t += 100'000;
        m.merge(*b);
        m.read_progress();
        emitted += m.finalize([](const result_row&) {});
    }
    state.SetItemsProcessed(int64_t(emitted));
    state.counters["pending"] = double(m.pending_cells());
    if (emitted != uint64_t(per_round) * uint64_t(state.iterations()) || m.pending_cells() != held)
        state.SkipWithError("a round did not emit exactly its own pieces");
}

BENCHMARK(bm_window_update)->DenseRange(0, 3);
BENCHMARK(bm_merger_session_held)->Arg(0)->Arg(10'000)->Arg(100'000);
BENCHMARK(bm_merger_round)->Arg(0)->Arg(1)->UseRealTime();
BENCHMARK(bm_blob_merge)->Arg(0)->Arg(3);
BENCHMARK(bm_hll_merge);
BENCHMARK(bm_qsketch_merge)->Arg(1000)->Arg(100000);

} // namespace

BENCHMARK_MAIN();
