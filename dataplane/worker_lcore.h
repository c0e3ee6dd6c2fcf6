#pragma once
// The worker lcore's loop: dequeue bursts from every RX ring, run them through the
// processing::worker, give the slots back to the pool; stop once every RX lcore has
// stopped and the rings are drained, then close every window and flush the store.
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "base/idle_wake.h"
#include "base/limits.h"
#include "processing/worker.h"

namespace sluice::dataplane {

struct worker_lcore_control {
    std::atomic<uint32_t> rx_running{0};     // RX lcores still pulling
    std::atomic<uint64_t> flush_requested{0}; // bumped by the control thread
};

class worker_lcore {
  public:
    worker_lcore(processing::worker& worker, std::vector<rte_ring*> from_rx, rte_mempool* slot_pool,
                 worker_lcore_control* control);

    // Returns 0 on a clean stop, -1 if the final flush failed.
    int run() noexcept;
    // TEST ONLY (--test-slow-worker-us): sleep this long after every burst, so that tests
    // can make a worker slower than its RX and watch back-pressure reach the NIC.
    void set_test_delay_us(uint32_t us) noexcept { _test_delay_us = us; }
    // BENCH ONLY (--bench-sink): take slots off the rings and give them back without
    // processing them, to measure RX -> rings -> workers alone. Nothing is stored.
    void set_bench_sink(bool sink) noexcept { _bench_sink = sink; }
    // [lcores] idle = "wait": once idle (the back-off's spin rounds found nothing), block
    // on `wake` instead of sleeping in 10-200 us steps. The RX lcores notify it as they hand
    // it a burst (rx_lcore::set_worker_wakes), a Kafka RX as it asks for durability, and
    // the worker's writers' completions write its eventfd. A wait ends by the worker's next
    // group commit, and after max_wait_ns at most (the stop flag, flush requests and
    // mailbox commands have no wake-up of their own). nullptr: poll (the back-off).
    void set_idle_wake(idle_wake* wake,
                       int64_t max_wait_ns = int64_t(limits::idle_wait_us) * 1000) noexcept {
        _wake = wake;
        _max_wait_ns = max_wait_ns;
    }
    // TEST ONLY: called in an idle wait once the last look found nothing, right before
    // the worker blocks: a producer that publishes there must still wake it (the lost
    // wake-up window of base/idle_wake.h, made deterministic). Never set in sluiced.
    void set_test_before_block(std::function<void()> fn) { _test_before_block = std::move(fn); }
    // Stall detector (stats: per worker `idle_slept_with_work_max_us`): the longest idle
    // wait, from block() to running again, after which the worker found work in its rings.
    // A wait ends by notify() within microseconds, or at its bound (max_wait_ns, 1 ms in
    // sluiced) when the work came without one, so anything far longer is a sleeper that
    // slept on with work waiting: a timer that fired late, or a thread not run after it
    // woke. Two clock reads per idle wait, never on the busy path.
    uint64_t idle_slept_with_work_max_ns() const noexcept {
        return _slept_with_work_max_ns.load(std::memory_order_relaxed);
    }
    uint64_t sunk() const noexcept { return _sunk.load(std::memory_order_relaxed); }
    uint64_t flushes_done() const noexcept { return _flushes_done.load(std::memory_order_acquire); }
    bool finished() const noexcept { return _finished.load(std::memory_order_acquire); }

  private:
    uint32_t poll_rings() noexcept;
    bool rings_empty() const noexcept;
    void wait_idle() noexcept;

    processing::worker& _worker;
    std::vector<rte_ring*> _rings;
    rte_mempool* _pool;
    worker_lcore_control* _control;
    std::atomic<uint64_t> _flushes_done{0};
    std::atomic<bool> _finished{false};
    uint32_t _test_delay_us = 0;
    bool _bench_sink = false;
    std::atomic<uint64_t> _sunk{0};
    idle_wake* _wake = nullptr;
    int64_t _max_wait_ns = 0;
    std::function<void()> _test_before_block;
    std::atomic<uint64_t> _slept_with_work_max_ns{0};
};

} // namespace sluice::dataplane
