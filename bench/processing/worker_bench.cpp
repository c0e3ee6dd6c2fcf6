// The whole worker stage (issue 14, target 1): processing::worker::process() on bursts of
// already-parsed slots, then tick(), as a worker lcore runs them. Per event: dedup (burst
// probe + insert), the reference query's window add (per-minute count by page) and the
// closes the watermark brings, the row appended to the `events` column batch, and, per
// block, the segment encode (zstd 1, the default) and its io_uring write + group commit.
// Items are events; CPU time is the worker thread's (io_uring's kernel workers, if the
// kernel punts a write to one, are not in it: see real time beside it).
//
// The slots are the seed-shaped events (bench/seed_events.h) parsed by the RX's own
// event_parser, so their fields and identities are laid out as in production. A pool of
// `pool` slots (arg 2) is fed in bursts of limits::ring_burst_max; when the pool is used
// up (timing paused), the next `pool` of 65536 seed events' JSON is parsed into it. Each
// pass over the 65536 moves every event's RFC 3339 time one span of them later, so every
// pass brings new identities (no duplicates), the windows and the dedup horizon keep
// advancing in event time, and a block's rows are as varied as the seed events. With arg `dup_percent`,
// that share of each burst's slots are repeats of an earlier slot of the same refill
// (dropped as duplicates, as a client's retries are).
//
// Pool size: limits::ring_size (4096) slots is about what a worker has in flight behind
// its ring, freshly written by the RX (LIFO slot pool): their bytes are mostly still in
// cache, as in production. 65536 slots (~140 MB) are read cold from memory: an upper
// bound on what the slot copies cost.
//
// The store goes to a fresh directory under $SLUICE_BENCH_DIR (default /dev/shm, a
// tmpfs: the disk is not what this measures; segment_writer falls back from O_DIRECT).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/limits.h"
#include "base/tsc.h"
#include "bench/seed_events.h"
#include "dataplane/event_parse.h"
#include "processing/event.h"
#include "processing/field_catalog.h"
#include "processing/query.h"
#include "processing/query_runtime.h"
#include "processing/window_state.h"
#include "processing/worker.h"

namespace {

namespace sp = sluice::processing;
using sp::event_slot;
using sp::slot_kind;

constexpr uint32_t event_bytes_max = 1024;
constexpr uint32_t burst = sluice::limits::ring_burst_max;

std::string make_temp_dir() {
    const char* base = std::getenv("SLUICE_BENCH_DIR");
    std::string tmpl = std::string(base ? base : "/dev/shm") + "/sluice-worker-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return {};
    return tmpl;
}

// A partial_channel that drops what it is given (the merger is not the worker's cost).
struct null_channel {
    std::unique_ptr<char[]> mem;
    sp::partial_batch* batch;
    null_channel() {
        constexpr uint32_t capacity = 1 << 20;
        mem.reset(new char[sizeof(sp::partial_batch) + capacity]);
        batch = reinterpret_cast<sp::partial_batch*>(mem.get());
        batch->capacity = capacity;
        batch->reset(UINT32_MAX, 0);
    }
    static sp::partial_batch* acquire(void* ctx) noexcept { return static_cast<null_channel*>(ctx)->batch; }
    static void publish(void*, sp::partial_batch*) noexcept {}
    sp::partial_channel channel() { return {this, &acquire, &publish}; }
};

// The slots and the JSON they are parsed from: `text_events` seed events, parsed `slots`
// at a time into the same slots (refill()); each pass over the text moves every event's
// time one span of the text later.
class slot_pool {
  public:
    static constexpr size_t text_events = 65536;

    explicit slot_pool(size_t slots) : _events(sluice::bench::make_seed_events(text_events)) {
        _stride = sp::slot_bytes(event_bytes_max);
        _mem = static_cast<char*>(::operator new(_stride * slots, std::align_val_t{64}));
        for (size_t i = 0; i < slots; ++i) _slots.push_back(reinterpret_cast<event_slot*>(_mem + i * _stride));
        _span_ms = _events.back().time_ms - _events.front().time_ms + 16;
        for (auto& e : _events) {
            _stamp_at.push_back(e.json.find(sluice::bench::rfc3339_ms(e.time_ms)));
            if (_stamp_at.back() == std::string::npos) std::abort();
        }
    }
    ~slot_pool() { ::operator delete(_mem, std::align_val_t{64}); }

    // Parses the next size() events into the slots; false if one did not parse.
    bool refill() {
        const int64_t now = sluice::wall_clock_ms();
        for (event_slot* slot : _slots) {
            if (_next == _events.size()) {
                _next = 0;
                ++_pass;
            }
            const int64_t shift = int64_t(_pass) * _span_ms;
            const int64_t time_ms = _events[_next].time_ms + shift;
            std::string& json = _events[_next].json;
            const std::string stamp = sluice::bench::rfc3339_ms(time_ms);
            json.replace(_stamp_at[_next], stamp.size(), stamp);
            event_slot& s = *new (slot) event_slot{};
            _parser.parse(json, now, s);
            if (s.kind != slot_kind::event || s.event_time_ms != time_ms) return false;
            s.max_time_before_ms = _max_time_ms;
            s.rx_tsc = int64_t(sluice::tsc_now());
            if (time_ms > _max_time_ms || _max_time_ms == sp::no_time) _max_time_ms = time_ms;
            ++_next;
        }
        return true;
    }
    event_slot* const* slots() const { return _slots.data(); }
    size_t size() const { return _slots.size(); }

  private:
    static sluice::dataplane::parse_config parse_config() {
        sluice::dataplane::parse_config c;
        c.event_bytes_max = event_bytes_max;
        return c;
    }

    std::vector<sluice::bench::seed_event> _events;
    std::vector<size_t> _stamp_at;
    std::vector<event_slot*> _slots;
    size_t _stride;
    char* _mem;
    int64_t _span_ms;
    sluice::dataplane::event_parser _parser{parse_config()};
    size_t _next = 0;
    uint64_t _pass = 0;
    int64_t _max_time_ms = sp::no_time;
};

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void bm_worker(benchmark::State& state) {
    const uint32_t dup_percent = uint32_t(state.range(0));
    slot_pool pool(size_t(state.range(1)));
    if (!pool.refill()) {
        state.SkipWithError("a seed event did not parse as an event");
        return;
    }
    const std::string dir = make_temp_dir();
    if (dir.empty()) {
        state.SkipWithError("cannot create a temporary directory (set SLUICE_BENCH_DIR)");
        return;
    }
    null_channel channel;
    sp::worker_config cfg;
    cfg.data_dir = dir;
    cfg.event_bytes_max = event_bytes_max;
    auto opened = sp::worker::open(cfg, channel.channel());
    if (!opened) {
        state.SkipWithError(opened.err().message.c_str());
        std::filesystem::remove_all(dir);
        return;
    }
    auto& w = *opened.value();
    sp::field_catalog catalog;
    auto q = sp::compile(sp::reference_query(), catalog, 1, 0, event_bytes_max);
    auto windows = q ? std::make_unique<sp::window_state>(*q.value()) : nullptr;
    const sp::window_state* const open = windows.get(); // owned by the worker from here
    if (!q || !w.add_query(q.value(), std::move(windows), INT64_MIN)) {
        state.SkipWithError("cannot add the reference query");
        std::filesystem::remove_all(dir);
        return;
    }

    // Each burst: `burst` slots, dup_percent of them a repeat of the pool's slot 0..i-1.
    std::vector<event_slot*> feed(burst);
    uint64_t fed = 0, rng = 7;
    uint32_t open_max = 0;
    size_t next = 0;
    for (auto _ : state) {
        if (next + burst > pool.size()) {
            state.PauseTiming();
            if (!pool.refill()) {
                state.SkipWithError("a seed event did not parse as an event");
                break;
            }
            next = 0;
            state.ResumeTiming();
        }
        event_slot* const* slots = pool.slots() + next;
        if (dup_percent != 0) {
            for (uint32_t i = 0; i < burst; ++i) {
                const uint64_t r = sluice::bench::splitmix64(rng);
                feed[i] = (next + i > 0 && r % 100 < dup_percent) ? pool.slots()[(r >> 8) % (next + i)]
                                                                  : slots[i];
            }
            slots = feed.data();
        }
        w.process(slots, burst);
        w.tick(now_ns());
        open_max = std::max(open_max, open->open_cells());
        next += burst;
        fed += burst;
    }
    // The most window cells open after a burst.
    state.counters["cells_open_max"] = double(open_max);
    const auto t0 = std::chrono::steady_clock::now();
    auto closed = w.finish();
    const double close_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!closed) state.SkipWithError(closed.err().message.c_str());
    const auto& c = w.counters();
    state.SetItemsProcessed(int64_t(fed));
    state.counters["accepted"] = double(c.events_accepted.load());
    state.counters["dup"] = double(c.duplicates.load());
    state.counters["late"] = double(c.late_events.load());
    state.counters["dead"] = double(c.dead_letters.load());
    state.counters["B_per_row"] =
        c.events_accepted.load() ? double(w.bytes_written()) / double(c.events_accepted.load()) : 0;
    state.counters["close_s"] = close_s;
    std::filesystem::remove_all(dir);
}

BENCHMARK(bm_worker)
    ->ArgNames({"dup_percent", "pool"})
    ->Args({0, sluice::limits::ring_size})
    ->Args({10, sluice::limits::ring_size})
    ->Args({0, 65536})
    ->Unit(benchmark::kNanosecond);

} // namespace

BENCHMARK_MAIN();
