#pragma once
// The running pipeline: plans the lcore map, creates the slot pool, the port (or kernel
// sockets, or the Kafka listener), the RX -> worker rings, the workers and the query
// service, restores what a previous run left, launches every unit on its lcore and stops
// them in order (stop RX, drain, close windows, flush). The daemon holds one; the control
// handlers read it (counters through relaxed atomics) and never change its wiring.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "control/config.h"
#include "control/query_service.h"
#include "dataplane/eal_setup.h"
#include "dataplane/kafka/kafka_listener.h"
#include "dataplane/kafka/kafka_rx.h"
#include "dataplane/kernel_udp_rx.h"
#include "dataplane/lcore_map.h"
#include "dataplane/rx_lcore.h"
#include "dataplane/worker_lcore.h"
#include "processing/worker.h"

namespace sluice::control {

/// One RX lcore: the DPDK port queues it polls, its kernel socket, or the Kafka listener.
struct rx_unit {
    unsigned lcore;
    std::unique_ptr<dataplane::rx_lcore> rx;
    std::unique_ptr<dataplane::kernel_udp_rx> kernel;                 // kernel_udp mode
    std::unique_ptr<dataplane::kafka::kafka_listener> kafka_listener; // the Kafka RX lcore
    std::unique_ptr<dataplane::kafka::kafka_rx> kafka;
    uint16_t port_id = 0;
    std::vector<uint16_t> queues; // dpdk mode: the port queues this lcore polls
};

/// One worker lcore: its processing::worker and the loop that feeds it from the rings.
struct worker_unit {
    unsigned lcore;
    std::unique_ptr<processing::worker> worker;
    std::unique_ptr<dataplane::worker_lcore> loop;
};

class pipeline {
  public:
    /// Plans the lcore map, creates the data dir and recovers what a previous run left
    /// (torn tails truncated, corrupt segments moved aside). Nothing runs yet.
    static result<std::unique_ptr<pipeline>> prepare(const daemon_config& config);
    /// Stops the Kafka RX's fetch and group threads before anything they read goes.
    ~pipeline();
    /// Creates the pools, port, rings, query service and workers, restores dedup and the
    /// open windows from the store and writes this run's record.
    result<void> build();
    /// Starts every worker and RX unit on its lcore.
    void launch();
    /// Graceful stop: RX stops pulling, the workers drain their rings and flush, the
    /// merger closes. Returns 0, or 1 when a worker's storage failed.
    int stop();
    /// Stops the port, after the last stats were read.
    void release();

    /// Asks every worker and the merger to flush, and returns the number to wait for.
    uint64_t request_flush();
    /// Whether flush `want` (from request_flush) is durable everywhere (or all stopped).
    bool flush_done(uint64_t want) const;
    uint64_t rows_durable() const;
    /// The largest event time any worker has seen (processing::no_time before any).
    int64_t max_event_time_ms() const;

    /// Which lcore does what, and where to reach the daemon: printed once at start.
    void print_startup_map() const;

    const daemon_config& config() const noexcept { return _config; }
    const dataplane::lcore_map& map() const noexcept { return _map; }
    const std::vector<unsigned>& rx_lcores() const noexcept { return _rx_lcores; }
    const std::vector<unsigned>& worker_lcores() const noexcept { return _worker_lcores; }
    const std::vector<rx_unit>& rx() const noexcept { return _rx; }
    const std::vector<worker_unit>& workers() const noexcept { return _workers; }
    /// The ring from RX `r` to worker `w`.
    const rte_ring* ring(uint32_t r, uint32_t w) const noexcept { return _rings[w][r]; }
    const std::optional<dataplane::port_state>& port() const noexcept { return _port; }
    /// The Kafka RX lcore's unit, or nullptr without a Kafka listener.
    const rx_unit* kafka() const noexcept {
        return _kafka_rx < 0 ? nullptr : &_rx[size_t(_kafka_rx)];
    }
    int32_t kafka_rx_index() const noexcept { return _kafka_rx; }
    query_service& queries() noexcept { return *_queries; }
    /// Control clients the descriptor budget fits (control/fd_budget.h), after build().
    uint32_t control_clients_max() const noexcept { return _control_clients_max; }
    const query_service& queries() const noexcept { return *_queries; }

  private:
    explicit pipeline(const daemon_config& config) : _config(config) {}
    result<void> plan_lcores();
    result<void> open_slots_and_port();
    result<void> open_rx(uint32_t workers_n);
    result<void> open_workers(int64_t restored_max_time);
    result<void> open_kafka(rx_unit& u);
    result<void> attach_kafka();
    result<void> plan_descriptors();
    bool kafka_configured() const { return !_config.kafka.listen.empty(); }

    daemon_config _config;
    dataplane::lcore_map _map;
    std::vector<unsigned> _rx_lcores, _worker_lcores;
    int32_t _kafka_rx = -1; // index in _rx of the Kafka RX lcore (the last one), or -1
    uint32_t _control_clients_max = limits::control_clients_max; // plan_descriptors()
    std::vector<std::vector<rte_ring*>> _rings; // [worker][rx]
    rte_mempool* _slots = nullptr;
    // [lcores] idle = "wait": one per worker lcore (the RX lcores notify it, its writers'
    // rings write it); empty with "poll". Declared before the units that point at them.
    std::vector<std::unique_ptr<idle_wake>> _worker_wakes;
    std::optional<dataplane::port_state> _port;
    std::vector<rx_unit> _rx;
    std::vector<worker_unit> _workers;
    dataplane::worker_lcore_control _worker_control;
    std::atomic<bool> _stop_rx{false};
    // Continuous queries: catalog, merger thread, result tables (query_service.h).
    std::unique_ptr<query_service> _queries;
};

} // namespace sluice::control
