#include "control/daemon.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "control/control_server.h"
#include "control/query_service.h"
#include "dataplane/eal_setup.h"
#include "dataplane/kernel_udp_rx.h"
#include "dataplane/rx_lcore.h"
#include "dataplane/worker_lcore.h"
#include "processing/identity.h"
#include "processing/restore.h"
#include "processing/worker.h"
#include "storage/recovery.h"
#include "storage/schema.h"
#include "storage/segment_files.h"
#include "storage/segment_writer.h"

namespace sluice::control {

namespace {

std::atomic<bool> g_signal_shutdown{false};

void on_signal(int) { g_signal_shutdown.store(true); }

struct rx_unit {
    unsigned lcore;
    std::unique_ptr<dataplane::rx_lcore> rx;
    std::unique_ptr<dataplane::kernel_udp_rx> kernel; // kernel_udp mode
    uint16_t queue = 0;
};

struct worker_unit {
    unsigned lcore;
    std::unique_ptr<processing::worker> worker;
    std::unique_ptr<dataplane::worker_lcore> loop;
};

class daemon {
  public:
    explicit daemon(const daemon_config& config) : _config(config) {}
    result<void> start();
    int run();

  private:
    result<void> plan_lcores();
    json stats() const;
    json status() const;
    json flush();

    daemon_config _config;
    std::vector<unsigned> _rx_lcores, _worker_lcores;
    std::vector<std::vector<rte_ring*>> _rings; // [worker][rx]
    rte_mempool* _slots = nullptr;
    std::optional<dataplane::port_state> _port;
    std::vector<rx_unit> _rx;
    std::vector<worker_unit> _workers;
    dataplane::worker_lcore_control _worker_control;
    std::atomic<bool> _stop_rx{false};
    std::atomic<bool> _shutdown_requested{false};
    // Continuous queries: catalog, merger thread, result tables (query_service.h).
    std::unique_ptr<query_service> _queries;
    std::unique_ptr<control_server> _control;
    int64_t _started_ns = monotonic_ns();
};

result<void> daemon::plan_lcores() {
    std::vector<unsigned> lcores;
    unsigned id;
    RTE_LCORE_FOREACH_WORKER(id) lcores.push_back(id);
    uint32_t rx = 1;
    uint32_t workers = _config.workers ? _config.workers : uint32_t(lcores.size()) - rx;
    if (lcores.size() < rx + 1 || lcores.size() < rx + workers)
        return make_error(errc::bad_config,
                          "sluiced needs 1 RX lcore and " + std::to_string(std::max(workers, 1u)) +
                              " worker lcore(s) besides the main lcore, but EAL gave " +
                              std::to_string(lcores.size()) +
                              " (pass e.g. --lcores '0@0,1@0,2@1' — lcores may share a core)");
    if (workers > limits::workers_max)
        return make_error(errc::bad_config, "at most " + std::to_string(limits::workers_max) +
                                                " workers are supported");
    _rx_lcores.assign(lcores.begin(), lcores.begin() + rx);
    _worker_lcores.assign(lcores.begin() + rx, lcores.begin() + rx + workers);
    return ok_result();
}

result<void> daemon::start() {
    SLUICE_TRY(plan_lcores());
    std::error_code ec;
    std::filesystem::create_directories(_config.data_dir, ec);
    if (ec || access(_config.data_dir.c_str(), W_OK) != 0)
        return make_error(errc::permission_denied,
                          "cannot use data dir " + _config.data_dir + ": " +
                              (ec ? ec.message() : std::string(strerror(errno))) +
                              " (run as its owner or pass --data-dir)");

    // Validate what a previous run left: truncate torn tails, move corrupt segments aside.
    auto recovered = storage::recover_data_dir(_config.data_dir);
    if (!recovered) return std::move(recovered).err();
    if (recovered->segments)
        SLUICE_LOG_INFO("recovery: %llu segment(s), %llu row(s), %llu truncated, %llu moved aside",
                        (unsigned long long)recovered->segments, (unsigned long long)recovered->rows,
                        (unsigned long long)recovered->truncated,
                        (unsigned long long)recovered->moved_aside);

    auto slots = dataplane::slot_pool_create(_config.slots,
                                             processing::slot_bytes(_config.event_bytes_max));
    if (!slots) return std::move(slots).err();
    _slots = slots.value();

    if (_config.mode == "dpdk") {
        dataplane::port_config pc;
        pc.port_id = _config.port_id;
        pc.rx_queues = uint16_t(_rx_lcores.size());
        auto port = dataplane::port_start(pc);
        if (!port) return std::move(port).err();
        _port = port.value();
    }

    uint32_t nworkers = uint32_t(_worker_lcores.size());
    auto& rings = _rings; // [worker][rx]
    rings.assign(nworkers, {});
    // --- continuous queries (before the RX parsers: they read the field catalog) ---
    query_service_config qc;
    qc.data_dir = _config.data_dir;
    qc.event_bytes_max = _config.event_bytes_max;
    qc.flush_interval_ms = _config.flush_interval_ms;
    qc.direct_io = _config.direct_io;
    qc.default_delay_ms = _config.watermark_delay_ms;
    qc.workers = nworkers;
    auto queries = query_service::open(qc, _config.queries);
    if (!queries) return std::move(queries).err();
    _queries = std::move(queries.value());
    // Restart: the workers start from the M the store implies, the queries rebuild the
    // windows that were open from the stored events (processing/restore.h).
    auto stored_max = processing::stored_max_event_time(_config.data_dir);
    if (!stored_max) return std::move(stored_max).err();
    auto last_run = processing::read_run_record(_config.data_dir);
    if (!last_run) return std::move(last_run).err();
    auto restored = processing::restored_max_time(_config.data_dir, *last_run);
    if (!restored) return std::move(restored).err();
    const int64_t restored_max_time = *restored;
    auto rebuilt = _queries->restore(restored_max_time, *stored_max);
    if (!rebuilt) return std::move(rebuilt).err();
    // ---

    dataplane::rx_config rc;
    for (uint16_t p : _config.udp_ports) rc.ports.add(p);
    rc.parse.fields = &_queries->catalog();
    rc.parse.event_bytes_max = _config.event_bytes_max;
    rc.parse.max_future_skew_ms = _config.max_future_skew_ms;
    for (uint32_t r = 0; r < _rx_lcores.size(); ++r) {
        std::vector<rte_ring*> to_workers;
        for (uint32_t w = 0; w < nworkers; ++w) {
            auto ring = dataplane::spsc_ring_create(
                "rx" + std::to_string(r) + "_w" + std::to_string(w), limits::ring_size);
            if (!ring) return std::move(ring).err();
            to_workers.push_back(ring.value());
            rings[w].push_back(ring.value());
        }
        rc.index = r;
        rx_unit u;
        u.lcore = _rx_lcores[r];
        u.queue = uint16_t(r);
        u.rx = std::make_unique<dataplane::rx_lcore>(rc, _slots, std::move(to_workers), &_stop_rx);
        if (_config.mode == "kernel_udp") {
            dataplane::kernel_rx_config kc;
            kc.bind_addr = _config.kernel_bind;
            kc.port = _config.udp_ports.front();
            auto k = dataplane::kernel_udp_rx::open(kc);
            if (!k) return std::move(k).err();
            u.kernel = std::move(k.value());
        }
        _rx.push_back(std::move(u));
    }

    uint64_t dedup_bytes = (_config.dedup_memory_mb << 20) / nworkers;
    for (uint32_t w = 0; w < nworkers; ++w) {
        worker_unit u;
        u.lcore = _worker_lcores[w];
        processing::worker_config wc;
        wc.index = w;
        wc.watermark_delay_ms = _config.watermark_delay_ms;
        wc.dedup_horizon_ms = _config.dedup_horizon_ms;
        wc.dedup_memory_bytes = dedup_bytes;
        wc.event_bytes_max = _config.event_bytes_max;
        wc.data_dir = _config.data_dir;
        wc.flush_interval_ms = _config.flush_interval_ms;
        wc.direct_io = _config.direct_io;
        wc.restored_max_time_ms = restored_max_time;
        auto wk = processing::worker::open(wc, _queries->channel(w));
        if (!wk) return std::move(wk).err();
        u.worker = std::move(wk.value());
        u.loop = std::make_unique<dataplane::worker_lcore>(*u.worker, rings[w], _slots,
                                                           &_worker_control);
        _workers.push_back(std::move(u));
    }
    // Dedup state from the events table: every identity within the previous run's horizon.
    if (*stored_max != processing::no_time) {
        const int64_t cutoff = *stored_max - _config.dedup_horizon_ms;
        for (auto& u : _workers) u.worker->dedup().set_restored_cutoff(cutoff);
        auto loaded = processing::scan_identities(
            _config.data_dir, cutoff, [&](const processing::identity& id, int64_t t) {
                auto& d = _workers[processing::owner_worker(id, nworkers)].worker->dedup();
                (void)d.check_and_insert(id, t, *stored_max);
            });
        if (!loaded) return std::move(loaded).err();
        SLUICE_LOG_INFO("restart: M %lld, %llu identities reloaded into dedup, %llu stored events "
                        "replayed into %llu queries: %llu windows emitted, %llu reopened",
                        (long long)restored_max_time, (unsigned long long)*loaded,
                        (unsigned long long)rebuilt->events_replayed,
                        (unsigned long long)rebuilt->queries_rebuilt,
                        (unsigned long long)rebuilt->rows_emitted,
                        (unsigned long long)rebuilt->cells_reopened);
    }
    // This run's record, durable before any event is taken: the next restart reads it.
    processing::run_record run;
    run.start_max_time_ms = restored_max_time;
    for (auto& u : _workers) {
        storage::segment_file f;
        if (storage::parse_segment_name(
                std::filesystem::path(u.worker->events_segment_path()).filename().string(), f))
            run.first_segment[f.writer] = f.seq;
    }
    SLUICE_TRY(processing::write_run_record(_config.data_dir, run));
    std::vector<processing::worker*> worker_ptrs;
    for (auto& u : _workers) worker_ptrs.push_back(u.worker.get());
    SLUICE_TRY(_queries->attach(worker_ptrs));
    _queries->start(&_worker_control.flush_requested, [this] {
        for (auto& u : _workers)
            if (!u.loop->finished()) return false;
        return true;
    });

    server_config sc;
    sc.socket_path = _config.control_socket;
    sc.group_gid = _config.socket_group_gid;
    sc.allow_uids = _config.allow_uids;
    sc.allow_gids = _config.allow_gids;
    std::map<std::string, handler> handlers;
    handlers["stats"] = [this](const json&) { return stats(); };
    handlers["status"] = [this](const json&) { return status(); };
    handlers["flush"] = [this](const json&) { return flush(); };
    handlers["queries"] = [this](const json& req) { return _queries->handle_queries(req); };
    handlers["windows"] = [this](const json& req) { return _queries->handle_windows(req); };
    handlers["shutdown"] = [this](const json&) {
        _shutdown_requested.store(true);
        return json{{"ok", true}, {"message", "shutting down: stop RX, drain, close windows, fsync"}};
    };
    auto server = control_server::start(sc, std::move(handlers));
    if (!server) return std::move(server).err();
    _control = std::move(server.value());
    return ok_result();
}

json daemon::stats() const {
    static const char* reasons[] = {"parse_error",      "missing_timestamp",    "bad_timestamp",
                                    "future_timestamp", "oversize", "beyond_dedup_horizon",
                                    "schema_mismatch"};
    auto rd = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    json totals;
    uint64_t rx_packets = 0, ignored = 0, received = 0, accepted = 0, dups = 0, late = 0, dead = 0,
             bytes = 0, dropped = 0;
    uint64_t by_reason[processing::dead_letter_reason_count] = {};
    json per_core = json::array();
    for (const auto& u : _rx) {
        const auto& c = u.rx->counters();
        uint64_t drop = 0;
        if (u.kernel) drop = u.kernel->kernel_drops();
        json core{{"lcore", u.lcore},
                  {"role", "rx"},
                  {"rx_packets", rd(c.rx_packets)},
                  {"ignored_packets", rd(c.ignored_packets)},
                  {"events_received", rd(c.events_received)},
                  {"rx_dead_letters", rd(c.dead_letters)},
                  {"backpressure_waits", rd(c.backpressure_waits)},
                  {"rx_dropped", drop}};
        rx_packets += rd(c.rx_packets);
        ignored += rd(c.ignored_packets);
        received += rd(c.events_received);
        dropped += drop;
        per_core.push_back(core);
    }
    if (_port) dropped += dataplane::port_rx_dropped(_port->port_id);
    int64_t max_time = processing::no_time;
    for (const auto& u : _workers) {
        const auto& c = u.worker->counters();
        json core{{"lcore", u.lcore},
                  {"role", "worker"},
                  {"events_accepted", rd(c.events_accepted)},
                  {"duplicates", rd(c.duplicates)},
                  {"late_events", rd(c.late_events)},
                  {"dead_letters", rd(c.dead_letters)},
                  {"window_overflow", rd(c.window_overflow)},
                  {"dedup_tracked", rd(c.dedup_tracked)},
                  {"dedup_horizon_ms", c.dedup_horizon_ms.load(std::memory_order_relaxed)},
                  {"bytes_written", u.worker->bytes_written()},
                  {"rows_durable", u.worker->rows_durable()}};
        accepted += rd(c.events_accepted);
        dups += rd(c.duplicates);
        late += rd(c.late_events);
        dead += rd(c.dead_letters);
        bytes += u.worker->bytes_written();
        for (int r = 0; r < processing::dead_letter_reason_count; ++r)
            by_reason[r] += rd(c.dead_letters_by_reason[r]);
        max_time = std::max(max_time, c.max_time_ms.load(std::memory_order_relaxed));
        per_core.push_back(core);
    }
    if (_queries) bytes += _queries->bytes_written();
    int64_t watermark = max_time == processing::no_time ? 0 : max_time - _config.watermark_delay_ms;
    json reasons_json;
    for (int r = 0; r < processing::dead_letter_reason_count; ++r) reasons_json[reasons[r]] = by_reason[r];
    totals = {{"rx_packets", rx_packets},   {"ignored_packets", ignored},
              {"events_received", received}, {"events_accepted", accepted},
              {"duplicates", dups},          {"late_events", late},
              {"dead_letters", dead},        {"dead_letters_by_reason", reasons_json},
              {"rx_dropped", dropped},       {"bytes_written", bytes},
              {"watermark_ms", watermark},   {"window_rows", _queries->window_rows()}};
    json rings = json::array();
    for (uint32_t r = 0; r < _rx.size(); ++r)
        for (uint32_t w = 0; w < _workers.size(); ++w) {
            rte_ring* ring = _rings[w][r];
            rings.push_back({{"rx", r},
                             {"worker", w},
                             {"occupancy", rte_ring_count(ring)},
                             {"capacity", rte_ring_get_capacity(ring)}});
        }
    return json{{"ok", true},
                {"v", protocol_version},
                {"uptime_s", double(monotonic_ns() - _started_ns) / 1e9},
                {"watermark_ms", watermark},
                {"watermark_delay_ms", _config.watermark_delay_ms},
                {"totals", totals},
                {"per_core", per_core},
                {"rings", rings},
                {"queries", _queries->stats()}};
}

json daemon::status() const {
    return json{{"ok", true},
                {"v", protocol_version},
                {"state", _shutdown_requested.load() ? "stopping" : "running"},
                {"version", SLUICE_VERSION},
                {"mode", _config.mode},
                {"port", _port ? json(_port->driver) : json(nullptr)},
                {"rx_lcores", _rx_lcores},
                {"worker_lcores", _worker_lcores},
                {"data_dir", _config.data_dir},
                {"udp_ports", _config.udp_ports},
                {"queries", _queries->stats().size()},
                {"uptime_s", double(monotonic_ns() - _started_ns) / 1e9}};
}

json daemon::flush() {
    uint64_t want = _worker_control.flush_requested.fetch_add(1) + 1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        bool done = _queries->flushes_done() >= want || _queries->done();
        for (auto& u : _workers) done = done && (u.loop->flushes_done() >= want || u.loop->finished());
        if (done) break;
        if (std::chrono::steady_clock::now() > deadline)
            return json{{"ok", false}, {"error", "flush did not complete within 10 s (is the disk stuck?)"}};
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    uint64_t rows = 0;
    for (auto& u : _workers) rows += u.worker->rows_durable();
    return json{{"ok", true}, {"rows_durable", rows}};
}

int rx_main(void* arg) {
    auto* u = static_cast<rx_unit*>(arg);
    if (u->kernel) u->rx->run_kernel(*u->kernel);
    else u->rx->run_port(0, u->queue);
    return 0;
}

int worker_main(void* arg) { return static_cast<worker_unit*>(arg)->loop->run(); }

int daemon::run() {
    _worker_control.rx_running.store(uint32_t(_rx.size()));
    for (auto& u : _workers) rte_eal_remote_launch(worker_main, &u, u.lcore);
    for (auto& u : _rx) rte_eal_remote_launch(rx_main, &u, u.lcore);

    std::printf("sluiced: %s input, %zu RX lcore(s) %s, %zu worker lcore(s), data dir %s\n",
                _config.mode.c_str(), _rx.size(), _port ? ("on port " + _port->driver).c_str() : "",
                _workers.size(), _config.data_dir.c_str());
    for (auto& u : _rx) std::printf("sluiced:   lcore %u: rx %u (queue %u)\n", u.lcore, u.rx->config().index, u.queue);
    for (uint32_t w = 0; w < _workers.size(); ++w) std::printf("sluiced:   lcore %u: worker %u\n", _workers[w].lcore, w);
    std::printf("sluiced: control socket %s\n", _config.control_socket.c_str());
    std::fflush(stdout);

    while (!_shutdown_requested.load() && !g_signal_shutdown.load())
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    SLUICE_LOG_INFO("graceful shutdown: stopping RX, draining rings, closing windows");

    _stop_rx.store(true);
    for (auto& u : _rx) {
        rte_eal_wait_lcore(u.lcore);
        _worker_control.rx_running.fetch_sub(1);
    }
    int rc = 0;
    for (auto& u : _workers)
        if (rte_eal_wait_lcore(u.lcore) != 0) rc = 1;
    _queries->join();
    for (auto& u : _workers)
        if (u.worker->storage_failed()) rc = 1;
    _control->stop();
    if (_port) dataplane::port_stop(*_port);
    SLUICE_LOG_INFO("stopped: %s", rc == 0 ? "all data flushed and synced" : "with storage errors");
    return rc;
}

} // namespace

int run_daemon(const daemon_config& config) {
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    daemon d(config);
    if (auto r = d.start(); !r) {
        std::fprintf(stderr, "sluiced: %s\n", r.err().message.c_str());
        return 1;
    }
    return d.run();
}

} // namespace sluice::control
