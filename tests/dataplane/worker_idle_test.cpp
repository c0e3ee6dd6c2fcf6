// [lcores] idle = "wait": a worker lcore blocks on its idle_wake once idle. The RX lcore
// wakes it as it hands it a burst; its next group commit ends the wait on its own, so rows
// become durable and windows close on time while it is idle. The waits here are bounded
// by 30 s (not idle_wait_us): each check's 10 s deadline can only be met by the wake-up
// under test, never by the bound. On a real EAL (no hugepages, no PCI).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "base/idle_wake.h"
#include "storage/fault_injection.h"
#include "tests/dataplane/one_worker_rig.h"

namespace sluice::dataplane {
namespace {

using namespace std::chrono_literals;

constexpr int64_t minute_ms = 60'000;
constexpr int64_t t0 = 1'740'000'000'000; // a minute boundary, in the past
constexpr int64_t query_delay_ms = 1000;
constexpr int64_t long_wait_ns = 30'000'000'000; // the wait's own bound in these tests

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
    void SetUp() override { ASSERT_TRUE(_wake.ok()); }
    void TearDown() override {
        const int rc = _rig.stop();
        if (rc != -1) EXPECT_EQ(rc, 0);
    }
    // A worker (the reference query with a 1 s delay) on its loop thread, waiting on _wake.
    // `max_wait_ns`: the wait's bound; `before_block`: worker_lcore's test hook, run on the
    // worker's thread between its last look and block().
    void start(uint32_t flush_interval_ms, int64_t max_wait_ns = long_wait_ns,
               std::function<void()> before_block = {}) {
        _rig.open({"idle", flush_interval_ms, query_delay_ms});
        ASSERT_FALSE(HasFatalFailure());
        _rig.wait_when_idle(_wake, max_wait_ns);
        ASSERT_FALSE(HasFatalFailure());
        if (before_block) _rig.loop().set_test_before_block(std::move(before_block));
        _rig.start();
    }
    void send(const std::string& id, int64_t time_ms) { _rig.send(id, time_ms); }
    bool asleep() {
        return eventually([&] { return _wake.sleeping(); });
    }
    processing::worker& worker() { return _rig.worker(); }
    const processing::worker_progress& progress() { return _rig.progress(); }

    idle_wake _wake; // outlives the rig's loop thread
    testing::one_worker_rig _rig;
};

// Without the RX's notify the worker would sleep out its 30 s bound.
TEST_F(WorkerIdleWait, AWaitingWorkerIsWokenByABurst) {
    start(60'000); // no group commit during the test
    for (int round = 1; round <= 3; ++round) {
        ASSERT_TRUE(asleep()) << "round " << round;
        send("e" + std::to_string(round), t0 + round);
        ASSERT_TRUE(eventually([&] {
            return worker().counters().events_in.load() == uint64_t(round);
        })) << "round " << round;
    }
    // The RX wrote the eventfd (a round may also have found the worker between two waits).
    EXPECT_GE(_wake.wakes(), 1u);
}

// The lost wake-up window, made deterministic: a burst is handed over (ring enqueue, then
// notify) after the worker's last look found its ring empty and before it blocks. Its flag,
// set before that look, makes the RX's notify() write the eventfd, so block() returns at
// once. A worker that set the flag after its look (or a notify() that did not read it after
// its fence) would sleep out its 30 s bound here and miss the 10 s deadline.
TEST_F(WorkerIdleWait, ABurstHandedOverBetweenTheLastLookAndTheBlockWakesIt) {
    std::atomic<bool> sent{false};
    // On the worker's thread; the test's thread leaves the RX alone until `sent`.
    start(60'000, long_wait_ns, [&] {
        if (sent.load(std::memory_order_acquire)) return;
        send("between", t0 + 1);
        sent.store(true, std::memory_order_release);
    });
    ASSERT_TRUE(eventually([&] { return sent.load(std::memory_order_acquire); }))
        << "the worker never reached its block";
    ASSERT_TRUE(eventually([&] { return worker().counters().events_in.load() == 1; }))
        << "the wake-up was lost: events_in " << worker().counters().events_in.load()
        << ", eventfd writes " << _wake.wakes() << ", asleep " << _wake.sleeping()
        << ", sent to the ring " << _rig.rx().sent_to(0);
    EXPECT_EQ(_wake.wakes(), 1u) << "the RX's notify saw the sleeper's flag";
}

// A hand-over that skips notify() (a lost wake-up outright): the wait still ends at its
// bound (limits::idle_wait_us in sluiced; 20 ms here) and the next look takes the burst.
// Every idle wait of sluiced has such a bound, so a lost wake-up delays by at most that
// (docs/RELIABILITY.md, "Stalls with both lcores idle").
TEST_F(WorkerIdleWait, ABurstHandedOverWithoutNotifyIsTakenAtTheBound) {
    start(60'000, 20'000'000);
    ASSERT_TRUE(asleep());
    _rig.rx().set_worker_wakes({}); // this RX now hands over without waking the worker
    send("unannounced", t0 + 1);
    ASSERT_TRUE(eventually([&] { return worker().counters().events_in.load() == 1; }));
    EXPECT_EQ(_wake.wakes(), 0u) << "no notify was made: the bound ended the wait";
    // The stall detector saw it: that wait ran its whole bound (ppoll sleeps at least its
    // timeout when nothing wakes it) and ended with the event in the ring.
    EXPECT_TRUE(eventually([&] {
        return _rig.loop().idle_slept_with_work_max_ns() >= 20'000'000;
    })) << _rig.loop().idle_slept_with_work_max_ns();
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
    ASSERT_TRUE(eventually([&] { return worker().counters().events_in.load() == 2; }));
    ASSERT_TRUE(eventually([&] { return worker().rows_durable() == 2; }));
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
    ASSERT_TRUE(eventually([&] { return worker().counters().events_in.load() == 1; }));
    ASSERT_TRUE(asleep());
    storage::fault::arm({1, storage::fault::kind::delay, 0, 3000, true});
    struct disarm {
        ~disarm() { storage::fault::disarm(); }
    } disarm_at_end;
    worker().slots_wanted(0).store(1, std::memory_order_release); // as the Kafka RX does
    _wake.notify();
    ASSERT_TRUE(eventually([&] { return storage::fault::injected() >= 1; }))
        << "no commit was submitted";
    int in_a_row = 0;
    ASSERT_TRUE(eventually([&] {
        in_a_row = _wake.sleeping() ? in_a_row + 1 : 0;
        std::this_thread::sleep_for(4ms);
        return in_a_row >= 20;
    })) << "the worker did not sleep";
    EXPECT_EQ(worker().slots_durable(0).load(), 0u) << "it slept only once its commit was done";
    // Past the delay, a tick releases the held completions (woken here: the kernel's
    // eventfd write came long before; armed, so that the reap releases them); the slots
    // become durable.
    ASSERT_TRUE(eventually([&] {
        _wake.notify();
        return worker().slots_durable(0).load() == 1;
    })) << "the held commit never completed";
    EXPECT_EQ(worker().rows_durable(), 1u);
}

} // namespace
} // namespace sluice::dataplane
