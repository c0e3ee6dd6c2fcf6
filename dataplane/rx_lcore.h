#pragma once
// rx_lcore: pulls frames from a DPDK port queue (or datagrams from the kernel UDP
// socket), splits NDJSON payloads, parses each event into a slot and routes it to the
// worker owning hash(identity) mod workers, in bursts over one SPSC rte_ring per
// (RX, worker) pair. A full ring or an empty slot pool stops it from pulling more:
// back-pressure, never a loss inside sluice.
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "base/idle_wake.h"
#include "base/limits.h"
#include "dataplane/event_parse.h"
#include "dataplane/frame_parse.h"
#include "processing/event.h"

namespace sluice::dataplane {

class kernel_udp_rx;

struct alignas(64) rx_counters {
    std::atomic<uint64_t> rx_packets{0};
    std::atomic<uint64_t> rx_bytes{0}; // frame (DPDK) or datagram (kernel) bytes
    std::atomic<uint64_t> ignored_packets{0};
    std::atomic<uint64_t> ignored_by_verdict[frame_verdict_count]{};
    std::atomic<uint64_t> events_received{0};
    std::atomic<uint64_t> binary_events{0}; // of events_received: records of binary batches
    std::atomic<uint64_t> dead_letters{0};      // rejected at RX (also counted by workers)
    std::atomic<uint64_t> backpressure_waits{0}; // polls spent waiting for ring or slot room
    std::atomic<int64_t> max_time_ms{processing::no_time};
};

struct rx_config {
    uint32_t index = 0;
    port_filter ports;
    parse_config parse;
};

class rx_lcore {
  public:
    rx_lcore(const rx_config& config, rte_mempool* slot_pool, std::vector<rte_ring*> to_workers,
             const std::atomic<bool>* stop);

    // Loops until *stop, polling `queues` of the port in turn; returns after handing
    // every parsed event to the rings.
    void run_port(uint16_t port_id, const std::vector<uint16_t>& queues) noexcept;
    void run_kernel(kernel_udp_rx& source) noexcept;

    // One frame / one datagram's payload (also used by tests and benchmarks).
    void handle_frame(const uint8_t* frame, uint32_t len) noexcept;
    void handle_payload(std::string_view payload) noexcept;
    // The wall clock used for future_timestamp checks; the run loops set it per burst.
    void set_clock_ms(int64_t now_ms) noexcept { _now_ms = now_ms; }
    // Hands every pending slot to its ring and tells idle workers the watermark.
    void flush_all() noexcept;

    // For sources that deliver one event at a time (dataplane/kafka/kafka_rx.h):
    // one event's bytes (a Kafka record value; no NDJSON split), parsed and routed.
    void handle_event(std::string_view event) noexcept;
    // Stamps the clock for the events that follow (wall clock, TSC), once per burst.
    void begin_burst() noexcept;
    // Every pending burst to its ring (no watermark): after it, sent_to() counts slots
    // that are in the rings.
    void flush_pending() noexcept;
    // Whether `slots` more events could be taken without waiting for a worker: the pool
    // has them and no ring to a worker is nearly full. A source that can hold its input
    // back (Kafka: stop reading the connection) asks before it takes a request.
    bool has_room(uint32_t slots) const noexcept;
    // Event and dead-letter slots routed to worker `w` since start (watermarks excluded).
    uint64_t sent_to(uint32_t w) const noexcept { return _sent[w]; }
    uint32_t workers() const noexcept { return _workers; }
    // [lcores] idle = "wait": worker w blocks on wakes[w] when idle (worker_lcore::
    // set_idle_wake); each hand-over to its ring notifies it, which costs a fence and a
    // load while it is busy and one eventfd write per sleep. Before the lcores run.
    void set_worker_wakes(std::vector<idle_wake*> wakes) noexcept { _wakes = std::move(wakes); }
    // After publishing something worker w acts on that is not in its ring (a Kafka RX's
    // slots_wanted): wakes it if it sleeps.
    void wake_worker(uint32_t w) noexcept {
        if (!_wakes.empty() && _wakes[w] != nullptr) _wakes[w]->notify();
    }
    // On stop: hand over everything pending and give unused slots back to the pool.
    void drain() noexcept;

    const rx_counters& counters() const noexcept { return _counters; }
    const rx_config& config() const noexcept { return _config; }

  private:
    void handle_burst(rte_mbuf** mbufs, uint16_t n) noexcept;
    void handle_binary(std::string_view payload) noexcept; // docs/BINARY.md
    void route(processing::event_slot* slot) noexcept;
    processing::event_slot* take_slot() noexcept;
    void push(uint32_t worker, processing::event_slot* slot) noexcept;
    void flush(uint32_t worker) noexcept;
    void broadcast_watermark() noexcept;

    rx_config _config;
    rx_counters _counters;
    event_parser _parser;
    rte_mempool* _pool;
    std::vector<rte_ring*> _rings;
    uint32_t _workers;
    const std::atomic<bool>* _stop;
    int64_t _max_time_ms = processing::no_time;
    int64_t _broadcast_max_ms = processing::no_time;
    int64_t _now_ms = 0;
    uint64_t _now_tsc = 0; // tsc_now() once per burst: every slot's rx_tsc

    void* _free_slots[limits::ring_burst_max];
    uint32_t _free_count = 0;
    struct pending {
        void* slots[limits::ring_burst_max];
        uint32_t count = 0;
    };
    std::vector<pending> _pending;
    std::vector<uint64_t> _sent; // per worker: event and dead-letter slots routed
    std::vector<idle_wake*> _wakes; // per worker, or empty (workers poll)
    std::unique_ptr<uint8_t[]> _scratch; // linearised multi-segment frames
};

} // namespace sluice::dataplane
