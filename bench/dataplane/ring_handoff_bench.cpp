// The (RX, worker) hand-off: an SPSC rte_ring of limits::ring_size slots, bursts of 64.
// The producer is the main lcore (the benchmark thread), the consumer a second EAL lcore
// that dequeues bursts until told to stop, checking that objects arrive once and in
// order. A full ring makes the producer spin, as RX back-pressure does, so the rate is
// that of the slower side. Items are objects (slot pointers). The same-thread variant,
// enqueue then dequeue on one core, is the floor without cross-core cache traffic.
//
// EAL runs without hugepages or PCI (--no-huge --no-pci -m 256) on lcores 0-1, with a
// per-process file prefix so that parallel runs do not collide.
#include <benchmark/benchmark.h>

#include <atomic>
#include <filesystem>
#include <cstdint>
#include <string>
#include <unistd.h>
#include <vector>

#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "base/limits.h"
#include "base/tsan.h"
#include "dataplane/eal_setup.h"

namespace {

constexpr unsigned burst = sluice::limits::ring_burst_max;

struct consumer_ctx {
    rte_ring* ring;
    std::atomic<bool> stop{false};
    uint64_t received = 0;
    uint64_t out_of_order = 0;
};

int consume(void* arg) {
    auto* ctx = static_cast<consumer_ctx*>(arg);
    void* objs[burst];
    uintptr_t expect = 1;
    for (;;) {
        unsigned n = rte_ring_dequeue_burst(ctx->ring, objs, burst, nullptr);
        if (n == 0) {
            // Stop only once the ring is empty: every enqueued object is counted. The tails
            // are read through ring_count (eal_setup.h), sluice's one reading of them:
            // rte_ring_empty's plain loads race with the other side's stores (here the
            // stop flag, acquired first, already orders the producer's last one).
            if (ctx->stop.load(std::memory_order_acquire) &&
                sluice::dataplane::ring_count(ctx->ring) == 0)
                break;
            rte_pause();
            continue;
        }
        for (unsigned i = 0; i < n; ++i, ++expect)
            ctx->out_of_order += reinterpret_cast<uintptr_t>(objs[i]) != expect;
        ctx->received += n;
    }
    // Ordered before what the producer does once rte_eal_wait_lcore returns (frees the
    // ring, reads the counts): EAL's wait is invisible to TSan, as in pipeline::stop().
    sluice::tsan_release(ctx);
    return 0;
}

rte_ring* make_ring() {
    static int rings = 0;
    auto r = sluice::dataplane::spsc_ring_create("bench_ring_" + std::to_string(rings++),
                                                 sluice::limits::ring_size);
    return r ? r.value() : nullptr;
}

void bm_ring_handoff(benchmark::State& state) {
    unsigned consumer_lcore = rte_get_next_lcore(-1, 1, 0);
    if (consumer_lcore >= RTE_MAX_LCORE) {
        state.SkipWithError("needs a second EAL lcore (-l 0-1)");
        return;
    }
    consumer_ctx ctx;
    ctx.ring = make_ring();
    if (ctx.ring == nullptr) {
        state.SkipWithError("cannot create the ring");
        return;
    }
    if (rte_eal_remote_launch(consume, &ctx, consumer_lcore) != 0) {
        state.SkipWithError("cannot launch the consumer lcore");
        rte_ring_free(ctx.ring);
        return;
    }
    void* objs[burst];
    uintptr_t seq = 1;
    uint64_t sent = 0, full_spins = 0;
    for (auto _ : state) {
        for (unsigned i = 0; i < burst; ++i) objs[i] = reinterpret_cast<void*>(seq++);
        unsigned done = 0;
        while (done < burst) {
            unsigned n = rte_ring_enqueue_burst(ctx.ring, objs + done, burst - done, nullptr);
            if (n == 0) {
                ++full_spins;
                rte_pause();
            }
            done += n;
        }
        sent += burst;
    }
    ctx.stop.store(true, std::memory_order_release);
    rte_eal_wait_lcore(consumer_lcore);
    sluice::tsan_acquire(&ctx);
    rte_ring_free(ctx.ring);
    if (ctx.received != sent || ctx.out_of_order != 0) {
        state.SkipWithError("the consumer did not get every object once, in order");
        return;
    }
    state.SetItemsProcessed(int64_t(sent));
    state.counters["full_spins_per_burst"] = double(full_spins) / double(state.iterations());
}

void bm_ring_same_thread(benchmark::State& state) {
    rte_ring* ring = make_ring();
    if (ring == nullptr) {
        state.SkipWithError("cannot create the ring");
        return;
    }
    void* objs[burst];
    void* back[burst];
    uintptr_t seq = 1;
    uint64_t moved = 0, wrong = 0;
    for (auto _ : state) {
        for (unsigned i = 0; i < burst; ++i) objs[i] = reinterpret_cast<void*>(seq++);
        unsigned in = rte_ring_enqueue_burst(ring, objs, burst, nullptr);
        unsigned out = rte_ring_dequeue_burst(ring, back, burst, nullptr);
        wrong += in != burst || out != burst || back[burst - 1] != objs[burst - 1];
        moved += out;
    }
    rte_ring_free(ring);
    if (wrong != 0) {
        state.SkipWithError("a burst did not go through whole");
        return;
    }
    state.SetItemsProcessed(int64_t(moved));
}

BENCHMARK(bm_ring_handoff)->UseRealTime();
BENCHMARK(bm_ring_same_thread);

} // namespace

int main(int argc, char** argv) {
    auto eal = sluice::dataplane::eal_init_deviceless("ring_handoff_bench", 256, "0-1");
    if (!eal) {
        fprintf(stderr, "%s\n", eal.err().message.c_str());
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    sluice::dataplane::eal_cleanup_deviceless();
    return 0;
}
