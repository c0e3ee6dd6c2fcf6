#pragma once
// job_handover: how the Kafka RX lcore hands a request to a server thread of its own and
// takes the answer back, without a lock, an allocation or a copy on the RX side beyond the
// frame itself. fetch_server (its reader) and group_server (its group thread) both use it.
//
// A fixed number of jobs (`Jobs`). The RX lcore takes a free one (none free =
// back-pressure: the caller leaves the frame unread and counts it), copies the frame into
// it and queues its index (submit); the server thread takes it (take), writes the whole
// answer into it, holding it as long as it needs (a long poll, a JoinGroup waiting for its
// group), and queues it back (finish); the RX lcore calls complete(), which hands each
// answer over (it may be swapped out) and frees the job. Request and answer buffers keep
// their capacity between requests.
//
// The server thread runs `step()` in a loop until stop(): each call serves what was
// submitted and what it holds, and returns how long it may sleep (ms); a submit or stop()
// wakes it sooner.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <semaphore>
#include <thread>
#include <utility>
#include <vector>

#include <tbb/concurrent_queue.h>

#include "dataplane/kafka/kafka_codec.h"
#include "dataplane/kafka/kafka_listener.h"

namespace sluice::dataplane::kafka {

/// One request in a server thread's hands. The RX lcore touches it only while it is free or
/// after the thread queued it back.
struct handover_job {
    conn_ref conn;
    int32_t slot = -1;            // the connection's reserved response slot
    std::vector<uint8_t> request; // the frame, header included (no size prefix)
    std::vector<uint8_t> answer;  // the whole response frame (empty: malformed, close)
};

template <typename Job, uint32_t Jobs>
class job_handover {
  public:
    job_handover() : _jobs(new Job[Jobs]) {
        _free.reserve(Jobs);
        for (uint32_t i = Jobs; i > 0; --i) _free.push_back(i - 1);
    }
    ~job_handover() { stop(); }
    job_handover(const job_handover&) = delete;
    job_handover& operator=(const job_handover&) = delete;

    /// Starts the server thread: calls step() (returning the ms it may sleep) until stop().
    template <typename Step> void start(Step step) {
        _thread = std::thread([this, step = std::move(step)]() mutable {
            while (!_stop.load(std::memory_order_relaxed))
                (void)_wake.try_acquire_for(std::chrono::milliseconds(step()));
        });
    }
    /// Stops and joins the thread (jobs in its hands are never answered). Idempotent; the
    /// owner calls it before the state step() uses goes away.
    void stop() {
        _stop.store(true);
        _wake.release();
        if (_thread.joinable()) _thread.join();
    }

    // ---- RX lcore side ----
    bool has_free() const noexcept { return !_free.empty(); }
    /// Jobs given to the thread and not yet completed.
    uint32_t in_flight() const noexcept { return Jobs - uint32_t(_free.size()); }
    /// Queues (conn, slot)'s request (a frame with its header). Needs has_free().
    void submit(conn_ref conn, int32_t slot, bytes_view frame) noexcept {
        const uint32_t i = _free.back();
        _free.pop_back();
        Job& j = _jobs[i];
        j.conn = conn;
        j.slot = slot;
        j.request.assign(frame.begin(), frame.end()); // capacity is kept between requests
        _inbox.push(i);
        _wake.release();
    }
    /// Calls done(conn, slot, answer) for each finished job; `answer` may be swapped out.
    template <typename Done> uint32_t complete(Done&& done) noexcept {
        uint32_t n = 0, i = 0;
        while (_done.try_pop(i)) {
            Job& j = _jobs[i];
            done(j.conn, j.slot, j.answer);
            _free.push_back(i);
            ++n;
        }
        return n;
    }

    // ---- the server thread ----
    /// The next submitted job's index, in submit order.
    bool take(uint32_t& i) noexcept { return _inbox.try_pop(i); }
    Job& job(uint32_t i) noexcept { return _jobs[i]; }
    /// Queues job i, its answer written, back to the RX lcore.
    void finish(uint32_t i) noexcept { _done.push(i); }

  private:
    std::unique_ptr<Job[]> _jobs;
    std::vector<uint32_t> _free; // RX lcore only
    tbb::concurrent_queue<uint32_t> _inbox, _done;
    std::counting_semaphore<> _wake{0};
    std::atomic<bool> _stop{false};
    std::thread _thread;
};

} // namespace sluice::dataplane::kafka
