#include "dataplane/worker_lcore.h"

#include <time.h>

#include <algorithm>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "dataplane/eal_setup.h"

namespace sluice::dataplane {

worker_lcore::worker_lcore(processing::worker& worker, std::vector<rte_ring*> from_rx,
                           rte_mempool* slot_pool, worker_lcore_control* control)
    : _worker(worker), _rings(std::move(from_rx)), _pool(slot_pool), _control(control) {}

uint32_t worker_lcore::poll_rings() noexcept {
    void* objs[limits::ring_burst_max];
    uint32_t total = 0;
    for (rte_ring* r : _rings) {
        unsigned n = rte_ring_sc_dequeue_burst(r, objs, limits::ring_burst_max, nullptr);
        if (n == 0) continue;
        if (_bench_sink) [[unlikely]]
            _sunk.store(_sunk.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        else
            _worker.process(reinterpret_cast<processing::event_slot* const*>(objs), n);
        slot_pool_put(_pool, objs, n);
        total += n;
    }
    if (_test_delay_us != 0 && total != 0) [[unlikely]] {
        timespec ts{0, long(_test_delay_us) * 1000};
        nanosleep(&ts, nullptr);
    }
    return total;
}

// The last look before blocking (wait_idle): RX enqueues on these rings meanwhile, so
// the tails are read atomically (ring_count; DPDK's rte_ring_count reads them with plain
// loads: a data race TSan reported here, worker_idle_test); relaxed loads suffice after
// idle_wake's fence.
bool worker_lcore::rings_empty() const noexcept {
    for (rte_ring* r : _rings)
        if (ring_count(r) != 0) return false;
    return true;
}

// Blocks until a burst, a completion, the next group commit or _max_wait_ns. The flag is
// set before the last look at the rings and at slots_wanted (idle_wake: a producer that
// published after that look sees the flag and writes the eventfd). Slots wanted durable
// keep it awake only while no write or sync is in flight: with one in flight (a Kafka
// acks=all answer waiting for its fdatasync) the completion wakes it, and the next tick
// commits the rest; without that it spun through every sync, ticking (dedup reclaim,
// clocks) in a loop.
void worker_lcore::wait_idle() noexcept {
    const int64_t now = monotonic_ns();
    const int64_t until = std::min(now + _max_wait_ns, _worker.next_deadline_ns(now));
    if (until <= now) return;
    _wake->prepare();
    if (rings_empty() && (!_worker.durability_wanted() || _worker.io_in_flight())) {
        if (_test_before_block) [[unlikely]]
            _test_before_block();
        const int64_t t0 = monotonic_ns();
        (void)_wake->block(until - now);
        const uint64_t slept = uint64_t(monotonic_ns() - t0);
        if (slept > _slept_with_work_max_ns.load(std::memory_order_relaxed) && !rings_empty())
            _slept_with_work_max_ns.store(slept, std::memory_order_relaxed);
    }
    _wake->done();
}

int worker_lcore::run() noexcept {
    idle_backoff backoff;
    uint64_t flushes_seen = _control->flush_requested.load(std::memory_order_acquire);
    uint32_t bursts = 0;
    for (;;) {
        // Read before polling: if every RX had stopped before this poll and the poll
        // found nothing, nothing more can arrive.
        bool rx_done = _control->rx_running.load(std::memory_order_acquire) == 0;
        uint32_t n = poll_rings();
        if (n == 0 || ++bursts % 16 == 0) _worker.tick(monotonic_ns());
        uint64_t want = _control->flush_requested.load(std::memory_order_acquire);
        if (want != flushes_seen) {
            flushes_seen = want;
            auto r = _worker.flush();
            if (!r)
                SLUICE_LOG_ERROR("worker %u: flush failed: %s", _worker.index(),
                                 r.err().message.c_str());
            _flushes_done.store(want, std::memory_order_release);
        }
        if (n > 0) {
            backoff.reset();
            continue;
        }
        if (rx_done) break;
        if (_wake != nullptr && backoff.spun_out()) {
            wait_idle();
            continue;
        }
        backoff.wait();
    }
    auto r = _worker.finish();
    _finished.store(true, std::memory_order_release);
    if (!r) {
        SLUICE_LOG_ERROR("worker %u: final flush failed: %s", _worker.index(),
                         r.err().message.c_str());
        return -1;
    }
    return 0;
}

} // namespace sluice::dataplane
