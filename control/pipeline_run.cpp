// The built pipeline at run time (pipeline.h): its units launched on their lcores, the
// ordered stop, flushes, the totals the control handlers read, and the start-up map.
// Building it is pipeline.cpp's.
#include <algorithm>
#include <cstdio>
#include <string>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "base/tsan.h"
#include "control/pipeline.h"

namespace sluice::control {

namespace {

// Each unit's last act on its lcore is ordered before what stop() does once
// rte_eal_wait_lcore returned (tsan_release here, tsan_acquire there): EAL's wait polls the
// lcore's state with atomics inside librte_eal, invisible to ThreadSanitizer, which then
// took the release of the pipeline (port stop, freed RX state) for a race with the lcore.
int rx_main(void* arg) {
    auto* u = static_cast<rx_unit*>(arg);
    if (u->kafka)
        u->kafka->run();
    else if (u->kernel)
        u->rx->run_kernel(*u->kernel);
    else
        u->rx->run_port(u->port_id, u->queues);
    tsan_release(u);
    return 0;
}

int worker_main(void* arg) {
    int rc = static_cast<worker_unit*>(arg)->loop->run();
    tsan_release(arg);
    return rc;
}

} // namespace

void pipeline::launch() {
    _worker_control.rx_running.store(uint32_t(_rx.size()));
    for (auto& u : _workers)
        rte_eal_remote_launch(worker_main, &u, u.lcore);
    for (auto& u : _rx)
        rte_eal_remote_launch(rx_main, &u, u.lcore);
}

int pipeline::stop() {
    _stop_rx.store(true);
    for (auto& u : _rx) {
        rte_eal_wait_lcore(u.lcore);
        tsan_acquire(&u);
        _worker_control.rx_running.fetch_sub(1);
    }
    int rc = 0;
    for (auto& u : _workers)
        if (rte_eal_wait_lcore(u.lcore) != 0) rc = 1;
    for (auto& u : _workers) tsan_acquire(&u);
    _queries->join();
    for (auto& u : _workers)
        if (u.worker->storage_failed()) rc = 1;
    // A query table's writer that failed dropped window rows: not "all data synced".
    _queries->for_each_writer([&](const storage::segment_writer& w) {
        if (w.failed()) rc = 1;
    });
    return rc;
}

// The Kafka RX's fetch and group threads (started by attach_kafka()) read the workers' and
// the query tables' writers for their watermarks. Its loop stops them when it ends; a
// start-up that failed after attach_kafka() (a later I/O error, too low an RLIMIT_NOFILE)
// never ran that loop, and _queries and _workers, declared after _rx, would go first:
// the fetch thread's next topic refresh read a freed merger (SIGSEGV, found by the fault
// walk with 2 workers). The Kafka units go first.
pipeline::~pipeline() {
    for (auto& u : _rx)
        u.kafka.reset();
}

void pipeline::release() {
    if (_port) dataplane::port_stop(*_port);
}

uint64_t pipeline::request_flush() {
    return _worker_control.flush_requested.fetch_add(1) + 1;
}

bool pipeline::flush_done(uint64_t want) const {
    bool done = _queries->flushes_done() >= want || _queries->done();
    for (auto& u : _workers)
        done = done && (u.loop->flushes_done() >= want || u.loop->finished());
    return done;
}

uint64_t pipeline::rows_durable() const {
    uint64_t rows = 0;
    for (auto& u : _workers)
        rows += u.worker->rows_durable();
    return rows;
}

int64_t pipeline::max_event_time_ms() const {
    int64_t max_time = processing::no_time;
    for (const auto& u : _workers)
        max_time =
            std::max(max_time, u.worker->counters().max_time_ms.load(std::memory_order_relaxed));
    return max_time;
}

void pipeline::print_startup_map() const {
    std::printf(
        "sluiced %s: %s input%s, %zu RX lcore(s), %zu worker lcore(s), data dir %s\n",
        SLUICE_VERSION, input_mode_name(_config.input.mode),
        _port ? (" on port " + std::to_string(_port->port_id) + " (" + _port->driver + ")").c_str()
              : "",
        _rx.size(), _workers.size(), _config.sluice.data_dir.c_str());
    std::printf("sluiced:   lcore %u: main (control thread %s)\n", rte_get_main_lcore(),
                "sluice-control");
    // The input, its queues and how they are spread, then one line per lcore: the CPUs
    // EAL pinned it to and its role (every RX lcore feeds every worker over its own ring).
    for (const std::string& line : _map.describe())
        std::printf("sluiced: %s\n", line.c_str());
    if (const rx_unit* k = kafka()) {
        std::string ports;
        for (size_t i = 0; i < k->kafka_listener->addresses().size(); ++i)
            ports += (i ? ", " : "") + k->kafka_listener->addresses()[i] + " (port " +
                     std::to_string(k->kafka_listener->ports()[i]) + ")";
        std::printf("sluiced:   lcore %u: Kafka RX %d, listening on %s, advertised %s:%d\n",
                    k->lcore, _kafka_rx, ports.c_str(), k->kafka->config().advertised_host.c_str(),
                    k->kafka->config().advertised_port);
    }
    std::printf("sluiced: control socket %s (mode %04o)\n", _config.sluice.control_socket.c_str(),
                _config.control.socket_mode);
    if (_config.testing.hold_us != 0)
        std::printf("sluiced: TEST ONLY: workers hold each burst %u us\n", _config.testing.hold_us);
    if (_config.testing.bench_sink)
        std::printf("sluiced: BENCHMARK ONLY: workers discard every slot unprocessed\n");
    if (_config.testing.slow_worker_us != 0)
        std::printf("sluiced: TEST ONLY: workers sleep %u us after every burst\n",
                    _config.testing.slow_worker_us);
    std::fflush(stdout);
}

} // namespace sluice::control
