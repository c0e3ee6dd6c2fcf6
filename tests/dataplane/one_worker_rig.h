// One worker lcore fed by one rx_lcore, the real pieces on a deviceless EAL (the test's
// main() from eal_test_main.cpp): a slot pool, one SPSC ring, a worker running the reference
// query on a temporary data dir, the rx_lcore that parses events into the ring and the
// worker_lcore loop that takes them, on a thread of its own. Shared by the unit tests that
// need a whole one-worker data path (worker_idle_test, kafka_rx_storage_test).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "base/idle_wake.h"
#include "dataplane/rx_lcore.h"
#include "dataplane/worker_lcore.h"
#include "processing/worker.h"
#include "tests/processing/processing_test_util.h"

namespace sluice::dataplane::testing {

inline constexpr uint32_t rig_event_bytes_max = 4096;

// One NDJSON event of the reference schema (a page_view of user "u" on "/a").
std::string event_line(const std::string& event_id, int64_t time_ms);

struct rig_options {
    std::string name;                    // the temporary dir's and the ring's prefix
    uint32_t flush_interval_ms = 60'000; // the worker's group commit
    int64_t watermark_delay_ms = -1;     // the reference query's; -1 leaves its default
};

class one_worker_rig {
  public:
    one_worker_rig() = default;
    one_worker_rig(const one_worker_rig&) = delete;
    one_worker_rig& operator=(const one_worker_rig&) = delete;
    // Stops the worker's thread if it still runs, then frees everything.
    ~one_worker_rig();

    // Builds the pool, the ring, the worker (its query added, the catalog published), the
    // rx_lcore and the worker_lcore. Fails with gtest assertions: callers check
    // HasFatalFailure().
    void open(const rig_options& o);
    // Before start(): the worker blocks on `wake` once idle (at most max_wait_ns), the RX
    // wakes it as it hands it a burst, and its writer's completions wake it.
    void wait_when_idle(idle_wake& wake, int64_t max_wait_ns);
    // The worker_lcore loop on its own thread.
    void start();
    // Ends the loop and joins it: the RX drained and marked stopped (from the thread that
    // drives the RX, or once that thread has ended), the idle wake, if any, notified.
    // Returns the loop's exit status (-1 if it was not running).
    int stop();

    processing::worker& worker() { return *_worker; }
    rx_lcore& rx() { return *_rx; }
    worker_lcore& loop() { return *_loop; } // before start(): its test hooks
    std::atomic<bool>& stop_flag() { return _stop; }
    const processing::worker_progress& progress() const { return _query->shared->workers[0]; }

    // One event through the RX: a burst of one, handed to the ring (and the worker woken).
    void send(const std::string& event_id, int64_t time_ms);

  private:
    static inline uint32_t _seq = 0;
    std::unique_ptr<processing::testing::temp_dir> _dir;
    processing::field_catalog _catalog;
    std::shared_ptr<processing::compiled_query> _query;
    std::unique_ptr<processing::testing::test_channel> _channel;
    std::unique_ptr<processing::worker> _worker;
    rte_mempool* _pool = nullptr;
    rte_ring* _ring = nullptr;
    std::atomic<bool> _stop{false};
    std::unique_ptr<rx_lcore> _rx;
    worker_lcore_control _control;
    std::unique_ptr<worker_lcore> _loop;
    idle_wake* _wake = nullptr;
    std::thread _thread;
    int _rc = -1;
};

} // namespace sluice::dataplane::testing
