// [lcores] idle = "wait": a worker lcore blocks on its idle_wake once idle. The RX lcore
// wakes it as it hands it a burst; its next group commit ends the wait on its own, so rows
// become durable and windows close on time while it is idle. The waits here are bounded
// by 30 s (not idle_wait_us): each check's 10 s deadline can only be met by the wake-up
// under test, never by the bound. On a real EAL (no hugepages, no PCI).
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <rte_eal.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "base/idle_wake.h"
#include "dataplane/eal_setup.h"
#include "dataplane/rx_lcore.h"
#include "dataplane/worker_lcore.h"
#include "processing/worker.h"
#include "storage/fault_injection.h"
#include "tests/processing/processing_test_util.h"

namespace sluice::dataplane {
namespace {

using namespace std::chrono_literals;
namespace pt = processing::testing;

constexpr uint32_t event_bytes_max = 4096;
constexpr int64_t minute_ms = 60'000;
constexpr int64_t t0 = 1'740'000'000'000; // a minute boundary, in the past
constexpr int64_t query_delay_ms = 1000;
constexpr int64_t long_wait_ns = 30'000'000'000; // the wait's own bound in these tests

std::string event_line(const std::string& event_id, int64_t time_ms) {
    return R"({"event_id":")" + event_id + R"(","user_id":"u","event_type":"page_view",)" +
           R"("timestamp":)" + std::to_string(time_ms) + R"(,"page":"/a"})";
}

bool eventually(const std::function<bool()>& cond, std::chrono::seconds within = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return cond();
}

class WorkerIdleWait : public ::testing::Test {
  protected:
    void SetUp() override {
        auto pool = slot_pool_create(pool_slots, processing::slot_bytes(event_bytes_max));
        ASSERT_TRUE(pool) << pool.err().message;
        _pool = pool.value();
        auto ring = spsc_ring_create("idle_" + std::to_string(_seq++), 1024);
        ASSERT_TRUE(ring) << ring.err().message;
        _ring = ring.value();
        ASSERT_TRUE(_wake.ok());
    }
    void TearDown() override {
        stop();
        _loop.reset();
        _worker.reset();
        if (_ring) rte_ring_free(_ring);
        if (_pool) rte_mempool_free(_pool);
    }
    // A worker (the reference query with a 1 s delay) on its loop thread, waiting on _wake.
    void start(uint32_t flush_interval_ms) {
        processing::worker_config c;
        c.index = 0;
        c.dedup_memory_bytes = 1 << 20;
        c.event_bytes_max = event_bytes_max;
        c.data_dir = _dir.path;
        c.storage.flush_interval_ms = flush_interval_ms;
        _channel = std::make_unique<pt::test_channel>();
        auto w = processing::worker::open(c, _channel->channel());
        ASSERT_TRUE(w) << w.err().message;
        _worker = std::move(w.value());
        processing::query_def q = processing::reference_query();
        q.memory_bytes = 1 << 20;
        q.watermark_delay_ms = query_delay_ms;
        _query = pt::compile_or_die(q, _catalog, 1, 0, event_bytes_max);
        ASSERT_NE(_query, nullptr);
        auto r = _worker->add_query(_query, std::make_unique<processing::window_state>(*_query),
                                    INT64_MIN);
        ASSERT_TRUE(r) << r.err().message;
        _catalog.publish();
        ASSERT_TRUE(_worker->wake_on_completion(_wake.fd()));

        rx_config rc;
        rc.parse.event_bytes_max = event_bytes_max;
        rc.parse.fields = &_catalog;
        _rx = std::make_unique<rx_lcore>(rc, _pool, std::vector<rte_ring*>{_ring}, &_stop);
        _rx->set_worker_wakes({&_wake});

        _control.rx_running.store(1);
        _loop = std::make_unique<worker_lcore>(*_worker, std::vector<rte_ring*>{_ring}, _pool,
                                               &_control);
        _loop->set_idle_wake(&_wake, long_wait_ns);
        _thread = std::thread([this] { _rc = _loop->run(); });
    }
    void send(const std::string& id, int64_t time_ms) {
        _rx->begin_burst();
        _rx->handle_event(event_line(id, time_ms));
        _rx->flush_all();
    }
    bool asleep() {
        return eventually([&] { return _wake.sleeping(); });
    }
    void stop() {
        if (!_thread.joinable()) return;
        _rx->drain();
        _control.rx_running.store(0);
        _wake.notify(); // the test's waits are long; the daemon's end by idle_wait_us
        _thread.join();
        EXPECT_EQ(_rc, 0);
    }
    const processing::worker_progress& progress() { return _query->shared->workers[0]; }

    static constexpr uint32_t pool_slots = 1023;
    static inline uint32_t _seq = 0;
    pt::temp_dir _dir{"worker-idle"};
    processing::field_catalog _catalog;
    std::shared_ptr<processing::compiled_query> _query;
    std::unique_ptr<pt::test_channel> _channel;
    std::unique_ptr<processing::worker> _worker;
    rte_mempool* _pool = nullptr;
    rte_ring* _ring = nullptr;
    std::atomic<bool> _stop{false};
    idle_wake _wake;
    std::unique_ptr<rx_lcore> _rx;
    worker_lcore_control _control;
    std::unique_ptr<worker_lcore> _loop;
    std::thread _thread;
    int _rc = -1;
};

// Without the RX's notify the worker would sleep out its 30 s bound.
TEST_F(WorkerIdleWait, AWaitingWorkerIsWokenByABurst) {
    start(60'000); // no group commit during the test
    for (int round = 1; round <= 3; ++round) {
        ASSERT_TRUE(asleep()) << "round " << round;
        send("e" + std::to_string(round), t0 + round);
        ASSERT_TRUE(eventually([&] {
            return _worker->counters().events_in.load() == uint64_t(round);
        })) << "round " << round;
    }
    // The RX wrote the eventfd (a round may also have found the worker between two waits).
    EXPECT_GE(_wake.wakes(), 1u);
}

// A busy worker is never written to: the hand-over pays no syscall unless it sleeps.
TEST_F(WorkerIdleWait, NotifyWritesOnlyToASleeper) {
    idle_wake w;
    ASSERT_TRUE(w.ok());
    w.notify();
    w.notify();
    EXPECT_EQ(w.wakes(), 0u);
    w.prepare();
    w.notify();
    w.notify(); // the first took the flag: one write per sleep
    EXPECT_EQ(w.wakes(), 1u);
    EXPECT_TRUE(w.block(0)); // readable: the wait ends at once
    w.done();
    EXPECT_FALSE(w.block(1'000'000)); // cleared by the read: times out
}

// Idle after its events, the worker still group-commits them on time (its wait ends at the
// writer's deadline, then the sync's completion wakes it), so the window the second event's
// watermark closed is published: windows close on time while it waits.
TEST_F(WorkerIdleWait, GroupCommitAndWindowsCloseWhileWaiting) {
    start(50);
    ASSERT_TRUE(asleep());
    send("a", t0 + 1000);
    send("b", t0 + minute_ms + query_delay_ms + 1); // W = t0 + 60001: [t0, t0 + 1 min) closes
    ASSERT_TRUE(eventually([&] { return _worker->counters().events_in.load() == 2; }));
    ASSERT_TRUE(eventually([&] { return _worker->rows_durable() == 2; }));
    ASSERT_TRUE(eventually([&] { return progress().closed_until_ms.load() >= t0 + minute_ms; }))
        << progress().closed_until_ms.load();
    // And it went back to sleep, with nothing left to do.
    EXPECT_TRUE(asleep());
}

// A Kafka RX waits for slots to be durable (acks=all): the worker commits them at once,
// and while that write and sync are in flight it sleeps until their completion instead of
// spinning through them (ticking, reading clocks: what a profile of the idempotent acks=all
// row showed). Fault injection holds the completions back 3 s (in the writer: the kernel's
// completion, and its eventfd write, come at once; the writer releases them at a reap
// after the delay). A worker that sleeps is seen asleep 20 times in a row within that
// time; one that spins sets its flag only for an instant per round, and sleeps only once
// the slots are durable.
TEST_F(WorkerIdleWait, SleepsWhileTheCommitAKafkaRxWantsIsInFlight) {
    start(60'000); // no group commit of its own during the test
    ASSERT_TRUE(asleep());
    send("a", t0 + 1);
    ASSERT_TRUE(eventually([&] { return _worker->counters().events_in.load() == 1; }));
    ASSERT_TRUE(asleep());
    storage::fault::arm({1, storage::fault::kind::delay, 0, 3000, true});
    struct disarm {
        ~disarm() { storage::fault::disarm(); }
    } disarm_at_end;
    _worker->slots_wanted(0).store(1, std::memory_order_release); // as the Kafka RX does
    _wake.notify();
    ASSERT_TRUE(eventually([&] { return storage::fault::injected() >= 1; }))
        << "no commit was submitted";
    int in_a_row = 0;
    ASSERT_TRUE(eventually([&] {
        in_a_row = _wake.sleeping() ? in_a_row + 1 : 0;
        std::this_thread::sleep_for(4ms);
        return in_a_row >= 20;
    })) << "the worker did not sleep";
    EXPECT_EQ(_worker->slots_durable(0).load(), 0u) << "it slept only once its commit was done";
    // Past the delay, a tick releases the held completions (woken here: the kernel's
    // eventfd write came long before; armed, so that the reap releases them); the slots
    // become durable.
    ASSERT_TRUE(eventually([&] {
        _wake.notify();
        return _worker->slots_durable(0).load() == 1;
    })) << "the held commit never completed";
    EXPECT_EQ(_worker->rows_durable(), 1u);
}

} // namespace
} // namespace sluice::dataplane
