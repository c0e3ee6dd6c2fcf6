#include "control/daemon.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/tsc.h"
#include "control/control_server.h"
#include "control/query_service.h"
#include "control/observability.h"
#include "control/service_notify.h"
#include "dataplane/eal_setup.h"
#include "dataplane/kafka/kafka_listener.h"
#include "dataplane/kafka/kafka_rx.h"
#include "dataplane/kernel_udp_rx.h"
#include "dataplane/rx_lcore.h"
#include "dataplane/worker_lcore.h"
#include "processing/identity.h"
#include "processing/restore.h"
#include "processing/worker.h"
#include "storage/recovery.h"
#include "storage/retention.h"
#include "storage/schema.h"
#include "storage/segment_files.h"
#include "storage/segment_writer.h"

namespace sluice::control {

namespace {

std::atomic<bool> g_signal_shutdown{false};
std::atomic<bool> g_signal_reload{false};

void on_signal(int) { g_signal_shutdown.store(true); }
void on_reload_signal(int) { g_signal_reload.store(true); }

// Dead-letter reason names, from their one home (processing/event.h), in its order.
std::vector<std::string> dead_letter_reason_names() {
    std::vector<std::string> names;
    for (int i = 0; i < processing::dead_letter_reason_count; ++i)
        names.emplace_back(processing::reason_name(processing::dead_letter_reason(i)));
    return names;
}
const std::vector<std::string> reason_names = dead_letter_reason_names();

uint64_t rd(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

struct rx_unit {
    unsigned lcore;
    std::unique_ptr<dataplane::rx_lcore> rx;
    std::unique_ptr<dataplane::kernel_udp_rx> kernel; // kernel_udp mode
    std::unique_ptr<dataplane::kafka::kafka_listener> kafka_listener; // the Kafka RX lcore
    std::unique_ptr<dataplane::kafka::kafka_rx> kafka;
    uint16_t port_id = 0;
    std::vector<uint16_t> queues; // dpdk mode: the port queues this lcore polls
};

struct worker_unit {
    unsigned lcore;
    std::unique_ptr<processing::worker> worker;
    std::unique_ptr<dataplane::worker_lcore> loop;
};

class daemon {
  public:
    daemon(const daemon_config& config, config_loader reload_config)
        : _config(config), _reload_config(std::move(reload_config)) {}
    result<void> start();
    int run();

  private:
    result<void> plan_lcores();
    result<void> start_control();
    void print_startup_map() const;
    // Observability, on the control thread.
    stats_sample take_sample() const;
    json stats();
    json rx_core_json(uint32_t r) const;
    json worker_core_json(uint32_t w) const;
    json per_core_json(const stats_sample& now, const stats_sample* rate_base) const;
    json totals_json(const stats_sample& now, int64_t watermark) const;
    json rings_json(json& lag, int64_t watermark, int64_t max_time) const;
    json control_json() const;
    int64_t max_event_time_ms() const;
    json rates_json(const stats_sample& now, const stats_sample* base) const;
    json latency_section(const stats_sample& now, const stats_sample* base) const;
    json status() const;
    json lcore_map_json() const;
    json ports_json() const;
    json kafka_json(const stats_sample& now, const stats_sample* rate_base,
                    const stats_sample* recent_base) const;
    bool kafka_configured() const { return !_config.kafka_listen.empty(); }
    result<void> open_kafka(rx_unit& u);
    result<void> attach_kafka();
    json flush();
    json storage_stats(json& totals) const;
    json retention(const json& req);
    // SIGHUP and the `reload` command. Each hook applies the keys it owns from the fresh
    // config and returns their names; queries add theirs here.
    json reload(const char* trigger);
    result<std::vector<std::string>> reload_control(const daemon_config& fresh);
    result<std::vector<std::string>> reload_retention(const daemon_config& fresh);
    using reload_hook = std::function<result<std::vector<std::string>>(const daemon_config&)>;
    std::vector<std::pair<std::string, reload_hook>> _reload_hooks;

    daemon_config _config;
    dataplane::lcore_map _map;
    std::vector<unsigned> _rx_lcores, _worker_lcores;
    int32_t _kafka_rx = -1; // index in _rx of the Kafka RX lcore (the last one), or -1
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
    std::atomic<control_server*> _control_view{nullptr}; // _control, for the server thread
    std::unique_ptr<storage::retention_manager> _retention;
    int64_t _started_ns = monotonic_ns();
    double _ticks_per_us = double(tsc_hz()) / 1e6;
    stats_history _history{limits::stats_samples_max}; // control thread only
    config_loader _reload_config;
    std::mutex _reload_mutex; // one reload at a time; guards _config's reloadable keys
    std::atomic<uint64_t> _reloads{0}; // read by status() on the control thread
    service_notifier _notify; // systemd Type=notify (control/service_notify.h)
};

// "3" or "2-3": the CPUs EAL pinned an lcore to.
std::string lcore_cpus(unsigned lcore) {
    rte_cpuset_t set = rte_lcore_cpuset(lcore);
    std::string out;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &set)) continue;
        int last = c;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
        out += (out.empty() ? "" : ",") + std::to_string(c) +
               (last > c ? "-" + std::to_string(last) : "");
        c = last;
    }
    return out.empty() ? "?" : out;
}

result<void> daemon::plan_lcores() {
    std::vector<dataplane::lcore_info> lcores;
    unsigned id;
    RTE_LCORE_FOREACH_WORKER(id) lcores.push_back({id, lcore_cpus(id)});
    dataplane::rx_source_caps caps;
    dataplane::lcore_request req;
    unsigned kafka_lcore = 0;
    if (_config.mode == "kafka") {
        // The Kafka listener alone: its RX lcore is the map's only RX lcore.
        caps.name = "Kafka " + _config.kafka_listen.front();
        caps.max_rx_queues = 0;
        req.rx_count = 1;
        if (_config.kafka_lcore >= 0) req.rx_lcores = {unsigned(_config.kafka_lcore)};
    } else if (kafka_configured()) {
        // Beside another input: an lcore of its own, taken before the others are planned.
        bool found = false;
        for (size_t i = 0; i < lcores.size() && !found; ++i) {
            const unsigned l = lcores[i].lcore;
            const bool named = std::find(_config.rx_lcores.begin(), _config.rx_lcores.end(), l) !=
                                   _config.rx_lcores.end() ||
                               std::find(_config.worker_lcores.begin(),
                                         _config.worker_lcores.end(), l) != _config.worker_lcores.end();
            if (_config.kafka_lcore >= 0 ? l == unsigned(_config.kafka_lcore) : !named) {
                kafka_lcore = l;
                lcores.erase(lcores.begin() + ptrdiff_t(i));
                found = true;
            }
        }
        if (!found)
            return make_error(errc::bad_config,
                              _config.kafka_lcore >= 0
                                  ? "kafka.lcore = " + std::to_string(_config.kafka_lcore) +
                                        " is not an EAL worker lcore (add it to --lcores)"
                                  : std::string("the Kafka listener needs an lcore of its own "
                                                "beside the RX and worker lcores (add one to "
                                                "--lcores, e.g. '0@0,1@0,2@0,3@1')"));
    }
    if (_config.mode == "kafka") {
    } else if (_config.mode == "dpdk") {
        auto c = dataplane::port_caps(_config.port_id);
        if (!c) return std::move(c).err();
        caps = *c;
    } else {
        // One SO_REUSEPORT socket per RX lcore: the kernel hashes flows over them.
        caps.name = "kernel UDP " + _config.kernel_bind + ":" +
                    std::to_string(_config.udp_ports.front());
        caps.max_rx_queues = 0;
        caps.rss = true;
    }
    if (_config.mode != "kafka") {
        req.rx_lcores = _config.rx_lcores;
        req.rx_count = _config.rx_count;
    }
    req.worker_lcores = _config.worker_lcores;
    req.worker_count = _config.workers;
    req.rx_queues = _config.rx_queues;
    auto map = dataplane::plan_lcore_map(lcores, caps, req, limits::rx_lcores_max,
                                         limits::workers_max);
    if (!map) return std::move(map).err();
    _map = std::move(*map);
    for (const auto& r : _map.rx) _rx_lcores.push_back(r.lcore);
    for (const auto& w : _map.workers) _worker_lcores.push_back(w.lcore);
    if (_config.mode == "kafka") {
        _kafka_rx = 0;
    } else if (kafka_configured()) {
        _kafka_rx = int32_t(_rx_lcores.size());
        _rx_lcores.push_back(kafka_lcore);
    }
    if (_rx_lcores.size() > limits::rx_lcores_max)
        return make_error(errc::bad_config, "at most " + std::to_string(limits::rx_lcores_max) +
                                                " RX lcores (the Kafka one included) are "
                                                "supported, asked for " +
                                                std::to_string(_rx_lcores.size()));
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
        SLUICE_LOG_INFO("recovery: %llu segment(s), %llu row(s), %llu truncated, %llu moved aside, "
                        "%llu removed unborn",
                        (unsigned long long)recovered->segments, (unsigned long long)recovered->rows,
                        (unsigned long long)recovered->truncated,
                        (unsigned long long)recovered->moved_aside,
                        (unsigned long long)recovered->removed_unborn);

    _retention = std::make_unique<storage::retention_manager>(
        _config.data_dir, _config.retention, _config.retention_tables, [] {
            return int64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
        });
    _retention->start(_config.retention_interval_ms);

    const uint32_t rx_n = uint32_t(_rx_lcores.size()), workers_n = uint32_t(_map.workers.size());
    const uint32_t slots_min = dataplane::slots_min(rx_n, workers_n);
    if (_config.slots != 0 && _config.slots < slots_min)
        return make_error(errc::bad_config,
                          "input.slots = " + std::to_string(_config.slots) + " is too few for " +
                              std::to_string(rx_n) + " RX and " + std::to_string(workers_n) +
                              " worker lcores: the lcores' caches could hold them all and "
                              "stall RX (use at least " +
                              std::to_string(slots_min) + ", or 0 for the default)");
    const uint32_t slot_count =
        _config.slots ? _config.slots : dataplane::slots_default(rx_n, workers_n);
    auto slots = dataplane::slot_pool_create(slot_count,
                                             processing::slot_bytes(_config.event_bytes_max));
    if (!slots) return std::move(slots).err();
    _slots = slots.value();

    if (_config.mode == "dpdk") {
        dataplane::port_config pc;
        pc.port_id = _config.port_id;
        pc.rx_queues = _map.rx_queues;
        pc.rss = _map.rss;
        pc.mbufs = _config.mbufs;
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
    qc.sync_bytes = _config.sync_bytes;
    qc.segment_bytes_max = _config.segment_bytes_max;
    qc.compression = _config.compression;
    qc.storage_stop = &_stop_rx;
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
        u.port_id = _config.port_id;
        if (r < _map.rx.size()) u.queues = _map.rx[r].queues;
        u.rx = std::make_unique<dataplane::rx_lcore>(rc, _slots, std::move(to_workers), &_stop_rx);
        if (int32_t(r) == _kafka_rx) {
            u.queues.clear();
            SLUICE_TRY(open_kafka(u));
        } else if (_config.mode == "kernel_udp") {
            dataplane::kernel_rx_config kc;
            kc.bind_addr = _config.kernel_bind;
            kc.rcvbuf_bytes = int(_config.kernel_rcvbuf_bytes);
            kc.port = _config.udp_ports.front();
            kc.reuse_port = _rx_lcores.size() - (_kafka_rx >= 0 ? 1 : 0) > 1;
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
        wc.sync_bytes = _config.sync_bytes;
        wc.segment_bytes_max = _config.segment_bytes_max;
        wc.compression = _config.compression;
        wc.storage_stop = &_stop_rx;
        wc.test_hold_us = _config.test_hold_us;
        wc.restored_max_time_ms = restored_max_time;
        auto wk = processing::worker::open(wc, _queries->channel(w));
        if (!wk) return std::move(wk).err();
        u.worker = std::move(wk.value());
        u.loop = std::make_unique<dataplane::worker_lcore>(*u.worker, rings[w], _slots,
                                                           &_worker_control);
        u.loop->set_test_delay_us(_config.test_slow_worker_us);
        u.loop->set_bench_sink(_config.bench_sink);
        _workers.push_back(std::move(u));
    }
    SLUICE_TRY(attach_kafka());
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

    SLUICE_TRY(start_control());
    return ok_result();
}

namespace {

// Every Kafka connection holds a file descriptor. The soft RLIMIT_NOFILE is raised towards
// the hard one so that connections_max can be reached; where the hard limit is lower, fewer
// connections are accepted (the rest are refused like those beyond connections_max) and the
// start-up log says so, rather than accepts failing with EMFILE at run time.
result<uint32_t> kafka_connections_for_fd_limit(uint32_t wanted) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return wanted;
    const rlim_t need = rlim_t(wanted) + limits::kafka_fd_reserve;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : std::min<rlim_t>(need, rl.rlim_max);
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return wanted;
    const auto limit = static_cast<unsigned long long>(rl.rlim_cur);
    if (rl.rlim_cur <= limits::kafka_fd_reserve + 1)
        return make_error(errc::bad_config,
                          "RLIMIT_NOFILE is " + std::to_string(limit) +
                              ": too low for Kafka connections (raise it: ulimit -n, or "
                              "LimitNOFILE= in the systemd unit)");
    const uint32_t fit = uint32_t(rl.rlim_cur - limits::kafka_fd_reserve);
    SLUICE_LOG_WARN("kafka.connections_max = %u needs %llu file descriptors but RLIMIT_NOFILE "
                    "is %llu: accepting at most %u Kafka connections (raise the limit: ulimit -n, "
                    "or LimitNOFILE= in the systemd unit)",
                    wanted, static_cast<unsigned long long>(need), limit, fit);
    return fit;
}

} // namespace

result<void> daemon::open_kafka(rx_unit& u) {
    dataplane::kafka::kafka_listener_config lc;
    lc.listen = _config.kafka_listen;
    auto connections = kafka_connections_for_fd_limit(_config.kafka_connections_max);
    if (!connections) return std::move(connections).err();
    lc.connections_max = connections.value();
    lc.request_bytes_max = _config.kafka_request_bytes_max;
    lc.idle_timeout_ms = _config.kafka_idle_timeout_ms;
    auto l = dataplane::kafka::kafka_listener::open(lc);
    if (!l) return std::move(l).err();
    u.kafka_listener = std::move(l.value());
    return ok_result();
}

// After the workers exist: the Kafka RX reads their durable marks (acks=all).
result<void> daemon::attach_kafka() {
    if (_kafka_rx < 0) return ok_result();
    rx_unit& u = _rx[size_t(_kafka_rx)];
    dataplane::kafka::kafka_rx_config kc;
    const auto& ports = u.kafka_listener->ports();
    std::string advertised = _config.kafka_advertised;
    if (advertised.empty()) {
        // The first listen address, with the port the kernel bound (listen port 0).
        const std::string& first = _config.kafka_listen.front();
        advertised = first.substr(0, first.rfind(':')) + ":" + std::to_string(ports.front());
    }
    const auto colon = advertised.rfind(':');
    kc.advertised_host = advertised.substr(0, colon);
    if (kc.advertised_host.size() >= 2 && kc.advertised_host.front() == '[')
        kc.advertised_host = kc.advertised_host.substr(1, kc.advertised_host.size() - 2);
    kc.advertised_port = colon == std::string::npos ? 9092 : std::atoi(advertised.c_str() + colon + 1);
    kc.auto_create_topics = _config.kafka_auto_create_topics;
    kc.default_partitions = int32_t(_workers.size());
    for (const auto& t : _config.kafka_topics) kc.topics.push_back({t.name, t.partitions});
    std::vector<const std::atomic<uint64_t>*> durable;
    for (auto& w : _workers) durable.push_back(&w.worker->slots_durable(uint32_t(_kafka_rx)));
    auto ids = dataplane::kafka::producer_ids::open(_config.data_dir);
    if (!ids) return std::move(ids).err();
    u.kafka = std::make_unique<dataplane::kafka::kafka_rx>(kc, *u.kafka_listener, *u.rx,
                                                           std::move(durable), &_stop_rx);
    u.kafka->set_producer_ids(std::move(ids.value()));
    return ok_result();
}

json daemon::kafka_json(const stats_sample& now, const stats_sample* rate_base,
                        const stats_sample* recent_base) const {
    if (_kafka_rx < 0) return nullptr;
    // Produce-ack latency per acks mode, since start (with buckets) and recent, as the
    // `latency` section has them.
    static const char* const modes[] = {"0", "1", "all"};
    json ack{{"unit", "us"}};
    for (size_t i = 0; i < now.kafka_ack.size(); ++i)
        ack[modes[i]] = latency_json(now.kafka_ack[i], _ticks_per_us, true);
    if (recent_base != nullptr) {
        json recent{{"interval_s", double(now.at_ns - recent_base->at_ns) / 1e9}};
        for (size_t i = 0; i < now.kafka_ack.size(); ++i)
            recent[modes[i]] = latency_json(now.kafka_ack[i].since(recent_base->kafka_ack[i]),
                                            _ticks_per_us, false);
        ack["recent"] = std::move(recent);
    }
    json rates{{"interval_s", rate_base ? double(now.at_ns - rate_base->at_ns) / 1e9 : 0.0}};
    for (const char* k : {"requests", "records", "errors"})
        rates[std::string(k) + "_per_s"] =
            rate_base ? rate_per_s(now, *rate_base, std::string("kafka.") + k) : 0.0;
    const rx_unit& u = _rx[size_t(_kafka_rx)];
    const auto& lc = u.kafka_listener->counters();
    const auto& kc = u.kafka->counters();
    json closed = json::object();
    for (int r = 0; r < dataplane::kafka::close_reason_count; ++r)
        closed[dataplane::kafka::close_reason_name(dataplane::kafka::close_reason(r))] =
            rd(lc.closed[r]);
    auto api_name = [](int k) -> std::string {
        namespace ak = dataplane::kafka::api_key;
        switch (k) {
        case ak::produce: return "produce";
        case ak::fetch: return "fetch";
        case ak::metadata: return "metadata";
        case ak::api_versions: return "api_versions";
        case ak::init_producer_id: return "init_producer_id";
        case ak::find_coordinator: return "find_coordinator";
        default: return "api_" + std::to_string(k);
        }
    };
    json requests = json::object();
    uint64_t requests_total = rd(kc.requests_other);
    for (int k = 0; k < dataplane::kafka::kafka_api_keys; ++k) {
        const uint64_t n = rd(kc.requests[k]);
        requests_total += n;
        if (n != 0) requests[api_name(k)] = n;
    }
    if (rd(kc.requests_other) != 0) requests["other"] = rd(kc.requests_other);
    json errors = json::object();
    for (int e = 0; e < dataplane::kafka::kafka_error_codes; ++e)
        if (rd(kc.errors[e]) != 0) errors[std::to_string(e)] = rd(kc.errors[e]);
    json topics = json::array();
    for (const auto& t : u.kafka->topics())
        topics.push_back({{"name", t.name}, {"partitions", t.partitions}, {"records", t.records}});
    const auto& cfg = u.kafka->config();
    return json{{"listen", u.kafka_listener->addresses()},
                {"ports", u.kafka_listener->ports()},
                {"advertised", cfg.advertised_host + ":" + std::to_string(cfg.advertised_port)},
                {"rx", _kafka_rx},
                {"lcore", u.lcore},
                {"multishot_recv", u.kafka_listener->multishot()},
                {"connections_open", rd(lc.connections_open)},
                {"connections_total", rd(lc.connections_total)},
                {"connections_refused", rd(lc.connections_refused)},
                {"connections_max", u.kafka_listener->connections_max()},
                {"accept_errors", rd(lc.accept_errors)},
                {"connections_closed", std::move(closed)},
                {"connections_paused", rd(lc.paused)},
                {"bytes_in", rd(lc.bytes_in)},
                {"bytes_out", rd(lc.bytes_out)},
                {"requests", requests_total},
                {"requests_by_api", std::move(requests)},
                {"errors_by_code", std::move(errors)},
                {"produce_by_acks",
                 {{"0", rd(kc.produce_by_acks[0])},
                  {"1", rd(kc.produce_by_acks[1])},
                  {"all", rd(kc.produce_by_acks[2])}}},
                {"records", rd(kc.records)},
                {"record_bytes", rd(kc.record_bytes)},
                {"null_values", rd(kc.null_values)},
                {"acks_parked", rd(kc.acks_parked)},
                {"backpressure", rd(kc.backpressure)},
                {"unknown_api", rd(kc.unknown_api)},
                {"bad_requests", rd(kc.bad_requests)},
                {"producer_ids", rd(kc.producer_ids)},
                {"duplicate_sequences", rd(kc.duplicate_sequences)},
                {"out_of_order_sequences", rd(kc.out_of_order_sequences)},
                {"fenced_epochs", rd(kc.fenced_epochs)},
                {"producer_states", rd(kc.producer_states)},
                {"producer_state_evictions", rd(kc.producer_state_evictions)},
                {"batches_by_compression",
                 {{"none", rd(kc.batches_by_compression[0])},
                  {"gzip", rd(kc.batches_by_compression[1])},
                  {"snappy", rd(kc.batches_by_compression[2])},
                  {"lz4", rd(kc.batches_by_compression[3])},
                  {"zstd", rd(kc.batches_by_compression[4])}}},
                {"batches_by_magic",
                 {{"0", rd(kc.batches_by_magic[0])},
                  {"1", rd(kc.batches_by_magic[1])},
                  {"2", rd(kc.batches_by_magic[2])}}},
                {"auto_create_topics", cfg.auto_create_topics},
                {"topics", std::move(topics)},
                {"rates", std::move(rates)},
                {"ack_latency", std::move(ack)}};
}

result<void> daemon::start_control() {
    server_config sc;
    sc.socket_path = _config.control_socket;
    sc.mode = _config.socket_mode;
    sc.group_gid = _config.socket_group_gid;
    sc.access = {_config.allow_uids, _config.allow_gids, _config.requests_per_s,
                 _config.connection_requests_per_s};
    sc.idle_timeout_ms = _config.idle_timeout_ms;
    // One sample a second feeds the rates and the recent latency percentiles; the first
    // is taken now, before the server thread exists, so every reply has a base.
    _history.push(take_sample());
    sc.on_tick = [this] { _history.push(take_sample()); };
    sc.tick_interval_ms = 1000;
    std::map<std::string, handler> handlers;
    handlers["stats"] = [this](const json&) { return stats(); };
    handlers["status"] = [this](const json&) { return status(); };
    handlers["metrics"] = [this](const json&) {
        return json{{"content_type", prometheus_content_type}, {"text", prometheus_text(stats())}};
    };
    handlers["flush"] = [this](const json&) { return flush(); };
    handlers["queries"] = [this](const json& req) { return _queries->handle_queries(req); };
    handlers["windows"] = [this](const json& req) { return _queries->handle_windows(req); };
    handlers["replay"] = [this](const json& req) { return _queries->handle_replay(req); };
    handlers["reload"] = [this](const json&) { return reload("reload command"); };
    handlers["retention"] = [this](const json& req) { return retention(req); };
    handlers["shutdown"] = [this](const json&) {
        _shutdown_requested.store(true);
        return json{{"ok", true},
                    {"state", "stopping"},
                    {"message", "shutting down: stop RX, drain, close windows, fsync"}};
    };
    // Hooks first: a reload may arrive as soon as the server runs.
    _reload_hooks.emplace_back("control", [this](const daemon_config& c) { return reload_control(c); });
    _reload_hooks.emplace_back("retention", [this](const daemon_config& c) { return reload_retention(c); });
    auto server = control_server::start(sc, std::move(handlers));
    if (!server) return std::move(server).err();
    _control = std::move(server.value());
    _control_view.store(_control.get(), std::memory_order_release);
    return ok_result();
}


stats_sample daemon::take_sample() const {
    stats_sample smp;
    smp.at_ns = monotonic_ns();
    auto& m = smp.counters;
    for (uint32_t r = 0; r < _rx.size(); ++r) {
        const auto& c = _rx[r].rx->counters();
        std::string k = "rx" + std::to_string(r);
        m[k + ".events"] = rd(c.events_received);
        m[k + ".bytes"] = rd(c.rx_bytes);
        m["events_received"] += rd(c.events_received);
        m["rx_packets"] += rd(c.rx_packets);
        m["rx_bytes"] += rd(c.rx_bytes);
        if (_rx[r].kernel) m["rx_dropped"] += _rx[r].kernel->kernel_drops();
    }
    if (_port) m["rx_dropped"] += dataplane::port_rx_dropped(_port->port_id);
    for (uint32_t w = 0; w < _workers.size(); ++w) {
        const auto& u = _workers[w];
        const auto& c = u.worker->counters();
        std::string k = "w" + std::to_string(w);
        m[k + ".events"] = rd(c.events_in);
        m[k + ".bytes"] = u.worker->bytes_written();
        m["events_accepted"] += rd(c.events_accepted);
        m["duplicates"] += rd(c.duplicates);
        m["late_events"] += rd(c.late_events);
        m["dead_letters"] += rd(c.dead_letters);
        m["bytes_written"] += u.worker->bytes_written();
        for (int i = 0; i < processing::dead_letter_reason_count; ++i)
            m["dead_letters." + reason_names[i]] += rd(c.dead_letters_by_reason[i]);
        smp.window_visible.merge(u.worker->latency().window_visible.snapshot());
        smp.durable.merge(u.worker->latency().durable.snapshot());
    }
    if (_queries) m["bytes_written"] += _queries->bytes_written();
    if (_kafka_rx >= 0) {
        const auto& kafka = *_rx[size_t(_kafka_rx)].kafka;
        const auto& kc = kafka.counters();
        // Errors: codes answered, and requests that closed their connection.
        uint64_t requests = rd(kc.requests_other),
                 errors = rd(kc.bad_requests) + rd(kc.unknown_api);
        for (const auto& n : kc.requests)
            requests += rd(n);
        for (const auto& n : kc.errors)
            errors += rd(n);
        m["kafka.requests"] = requests;
        m["kafka.records"] = rd(kc.records);
        m["kafka.errors"] = errors;
        for (int i = 0; i < dataplane::kafka::kafka_acks_modes; ++i)
            smp.kafka_ack[size_t(i)] = kafka.ack_latency(i).snapshot();
    }
    return smp;
}

json daemon::rx_core_json(uint32_t r) const {
    const rx_unit& u = _rx[r];
    const auto& c = u.rx->counters();
    json by_verdict = json::object();
    for (size_t v = 1; v < dataplane::frame_verdict_count; ++v)
        by_verdict[std::string(dataplane::verdict_name(dataplane::frame_verdict(v)))] =
            rd(c.ignored_by_verdict[v]);
    json core{{"lcore", u.lcore},
                {"role", "rx"},
                {"input", u.kafka ? "kafka" : u.kernel ? "kernel_udp" : "dpdk"},
                {"rx", r},
                {"queue", u.queues.empty() ? json(nullptr) : json(u.queues.front())},
                {"queues", u.queues},
                {"rx_packets", rd(c.rx_packets)},
                {"rx_bytes", rd(c.rx_bytes)},
                {"ignored_packets", rd(c.ignored_packets)},
                {"ignored_by_reason", std::move(by_verdict)},
                {"events_received", rd(c.events_received)},
                {"rx_dead_letters", rd(c.dead_letters)},
                {"binary_events", rd(c.binary_events)},
                {"backpressure_waits", rd(c.backpressure_waits)},
                {"rx_dropped", u.kernel ? u.kernel->kernel_drops() : 0}};
    // Kernel mode: whether the socket is read by one multishot recvmsg over provided
    // buffers (kernel >= 6.0) or by single-shot requests (the fallback).
    if (u.kernel) core["kernel_multishot"] = u.kernel->multishot();
    return core;
}

// The port's own counters: rx_dropped are the frames it could not hand to sluice because
// RX had stopped pulling (imissed) or it had no mbuf (rx_nombuf).
json daemon::ports_json() const {
    json ports = json::array();
    if (!_port) return ports;
    dataplane::port_counters pc = dataplane::port_stats(_port->port_id);
    ports.push_back({{"port_id", _port->port_id},
                     {"driver", _port->driver},
                     {"rx_queues", _port->rx_queues},
                     {"rss", _port->rss},
                     {"ipackets", pc.ipackets},
                     {"imissed", pc.imissed},
                     {"rx_nombuf", pc.rx_nombuf},
                     {"ierrors", pc.ierrors},
                     {"rx_dropped", pc.rx_dropped()}});
    return ports;
}

json daemon::worker_core_json(uint32_t w) const {
    const worker_unit& u = _workers[w];
    const auto& c = u.worker->counters();
    const auto& lat = u.worker->latency();
    return json{{"lcore", u.lcore},
                {"role", "worker"},
                {"worker", w},
                {"events_in", rd(c.events_in)},
                {"events_accepted", rd(c.events_accepted)},
                {"duplicates", rd(c.duplicates)},
                {"late_events", rd(c.late_events)},
                {"dead_letters", rd(c.dead_letters)},
                {"window_overflow", rd(c.window_overflow)},
                {"bench_sunk", u.loop->sunk()},
                {"dedup_tracked", rd(c.dedup_tracked)},
                {"dedup_capacity", u.worker->dedup_capacity()},
                {"dedup_horizon_ms", c.dedup_horizon_ms.load(std::memory_order_relaxed)},
                {"bytes_written", u.worker->bytes_written()},
                {"rows_durable", u.worker->rows_durable()},
                {"events_durable", u.worker->events_writer().rows_durable()},
                {"dead_letters_durable", u.worker->dead_letters_writer().rows_durable()},
                {"latency",
                 {{"window_visible", latency_json(lat.window_visible.snapshot(), _ticks_per_us, false)},
                  {"durable", latency_json(lat.durable.snapshot(), _ticks_per_us, false)}}}};
}

// Per-second rates between the newest sample at least a second old and now.
json daemon::rates_json(const stats_sample& now, const stats_sample* base) const {
    if (base == nullptr) return json{{"interval_s", 0}};
    json r{{"interval_s", double(now.at_ns - base->at_ns) / 1e9}};
    for (const char* k : {"events_received", "events_accepted", "duplicates", "late_events",
                          "dead_letters", "rx_packets", "rx_bytes", "bytes_written", "rx_dropped"})
        r[std::string(k) + "_per_s"] = rate_per_s(now, *base, k);
    json by_reason = json::object();
    for (const std::string& reason : reason_names)
        by_reason[reason] = rate_per_s(now, *base, "dead_letters." + reason);
    r["dead_letters_by_reason_per_s"] = std::move(by_reason);
    return r;
}

// Since start (with histogram buckets) and over the recent interval (the oldest sample
// kept, about stats_samples_max - 1 seconds ago).
json daemon::latency_section(const stats_sample& now, const stats_sample* base) const {
    json lat{{"unit", "us"},
             {"window_visible", latency_json(now.window_visible, _ticks_per_us, true)},
             {"durable", latency_json(now.durable, _ticks_per_us, true)}};
    if (base != nullptr) {
        lat["recent"] = {
            {"interval_s", double(now.at_ns - base->at_ns) / 1e9},
            {"window_visible",
             latency_json(now.window_visible.since(base->window_visible), _ticks_per_us, false)},
            {"durable", latency_json(now.durable.since(base->durable), _ticks_per_us, false)}};
    }
    return lat;
}

int64_t daemon::max_event_time_ms() const {
    int64_t max_time = processing::no_time;
    for (const auto& u : _workers)
        max_time = std::max(max_time, u.worker->counters().max_time_ms.load(std::memory_order_relaxed));
    return max_time;
}

json daemon::per_core_json(const stats_sample& now, const stats_sample* rate_base) const {
    json per_core = json::array();
    auto add = [&](json core, const std::string& key) {
        if (rate_base) {
            core["events_per_s"] = rate_per_s(now, *rate_base, key + ".events");
            core["bytes_per_s"] = rate_per_s(now, *rate_base, key + ".bytes");
        }
        per_core.push_back(std::move(core));
    };
    for (uint32_t r = 0; r < _rx.size(); ++r)
        add(rx_core_json(r), "rx" + std::to_string(r));
    for (uint32_t w = 0; w < _workers.size(); ++w)
        add(worker_core_json(w), "w" + std::to_string(w));
    return per_core;
}

json daemon::totals_json(const stats_sample& now, int64_t watermark) const {
    auto get = [&](const std::string& k) {
        auto it = now.counters.find(k);
        return it == now.counters.end() ? uint64_t(0) : it->second;
    };
    json reasons = json::object();
    for (const std::string& reason : reason_names)
        reasons[reason] = get("dead_letters." + reason);
    uint64_t ignored = 0;
    uint64_t ignored_n[dataplane::frame_verdict_count] = {};
    for (const auto& u : _rx) {
        ignored += rd(u.rx->counters().ignored_packets);
        for (size_t v = 1; v < dataplane::frame_verdict_count; ++v)
            ignored_n[v] += rd(u.rx->counters().ignored_by_verdict[v]);
    }
    json ignored_by = json::object();
    for (size_t v = 1; v < dataplane::frame_verdict_count; ++v)
        ignored_by[std::string(dataplane::verdict_name(dataplane::frame_verdict(v)))] = ignored_n[v];
    return {{"rx_packets", get("rx_packets")},
            {"rx_bytes", get("rx_bytes")},
            {"ignored_packets", ignored},
            {"ignored_by_reason", std::move(ignored_by)},
            {"events_received", get("events_received")},
            {"events_accepted", get("events_accepted")},
            {"duplicates", get("duplicates")},
            {"late_events", get("late_events")},
            {"dead_letters", get("dead_letters")},
            {"dead_letters_by_reason", reasons},
            {"rx_dropped", get("rx_dropped")},
            {"bytes_written", get("bytes_written")},
            {"watermark_ms", watermark},
            {"window_rows", _queries->window_rows()}};
}

// The rings' occupancy (consumer lag per (RX, worker)) and the watermark's delay.
json daemon::rings_json(json& lag, int64_t watermark, int64_t max_time) const {
    json rings = json::array();
    uint64_t occupancy_total = 0, occupancy_max = 0;
    for (uint32_t r = 0; r < _rx.size(); ++r)
        for (uint32_t w = 0; w < _workers.size(); ++w) {
            rte_ring* ring = _rings[w][r];
            uint64_t used = rte_ring_count(ring);
            occupancy_total += used;
            occupancy_max = std::max(occupancy_max, used);
            rings.push_back({{"rx", r},
                             {"worker", w},
                             {"occupancy", used},
                             {"capacity", rte_ring_get_capacity(ring)}});
        }
    lag = {{"watermark_lag_ms", watermark > 0 ? json(wall_clock_ms() - watermark) : json(nullptr)},
           {"max_event_time_ms", max_time == processing::no_time ? json(nullptr) : json(max_time)},
           {"ring_occupancy_total", occupancy_total},
           {"ring_occupancy_max", occupancy_max}};
    return rings;
}

json daemon::control_json() const {
    // The server thread may serve a request before start() has returned the server
    // to the main thread: it reads the server through this pointer, published once.
    control_server* server = _control_view.load(std::memory_order_acquire);
    if (server == nullptr) return json::object();
    auto c = server->counters();
    return {{"requests", c.requests},
            {"refused_peers", c.refused_peers},
            {"refused_clients", c.refused_clients},
            {"rate_limited", c.rate_limited},
            {"oversize", c.oversize},
            {"malformed", c.malformed},
            {"idle_closed", c.idle_closed},
            {"connections", c.connections},
            {"connections_open", c.connections_open}};
}

json daemon::stats() {
    stats_sample now = take_sample();
    const stats_sample* rate_base = _history.base_for_rates(now.at_ns, 900'000'000);
    const stats_sample* recent_base = _history.oldest();
    int64_t max_time = max_event_time_ms();
    int64_t watermark = max_time == processing::no_time ? 0 : max_time - _config.watermark_delay_ms;
    json lag;
    json rings = rings_json(lag, watermark, max_time);
    json totals = totals_json(now, watermark);
    json storage = storage_stats(totals);
    return json{{"ok", true},
                {"v", protocol_version},
                {"version", SLUICE_VERSION},
                {"uptime_s", double(monotonic_ns() - _started_ns) / 1e9},
                {"watermark_ms", watermark},
                {"watermark_delay_ms", _config.watermark_delay_ms},
                {"totals", std::move(totals)},
                {"rates", rates_json(now, rate_base)},
                {"latency", latency_section(now, recent_base)},
                {"lag", std::move(lag)},
                {"per_core", per_core_json(now, rate_base)},
                {"ports", ports_json()},
                {"rings", std::move(rings)},
                {"storage", std::move(storage)},
                {"control", control_json()},
                {"kafka", kafka_json(now, rate_base, recent_base)},
                {"queries", _queries->stats()}};
}

json daemon::lcore_map_json() const {
    json rx = json::array(), workers = json::array();
    for (size_t r = 0; r < _map.rx.size(); ++r)
        rx.push_back({{"rx", r},
                      {"lcore", _map.rx[r].lcore},
                      {"cpus", _map.rx[r].cpus},
                      {"queue", _map.rx[r].queues.front()},
                      {"queues", _map.rx[r].queues}});
    for (size_t w = 0; w < _map.workers.size(); ++w)
        workers.push_back(
            {{"worker", w}, {"lcore", _map.workers[w].lcore}, {"cpus", _map.workers[w].cpus}});
    return json{{"source", _map.source},
                {"rx_queues", _map.rx_queues},
                {"rss", _map.rss},
                {"rx", rx},
                {"workers", workers},
                {"unused", _map.unused}};
}

// What is durable, per table and in total, the writers' state (a full disk stalls them)
// and retention. totals gets rows_durable and durable_event_time_ms of the events table.
json daemon::storage_stats(json& totals) const {
    struct agg {
        uint64_t rows_durable = 0, bytes_written = 0, rows_dropped = 0, stalls = 0, syncs = 0;
        int64_t durable_time = INT64_MIN;
        bool stalled = false;
        const error* failure = nullptr;
    };
    std::map<std::string, agg> tables;
    auto add = [&](const storage::segment_writer& w) {
        agg& a = tables[w.schema().name];
        a.rows_durable += w.rows_durable();
        a.bytes_written += w.bytes_written();
        a.rows_dropped += w.rows_dropped();
        a.stalls += w.disk_full_stalls();
        a.syncs += w.syncs();
        a.durable_time = std::max(a.durable_time, w.durable_max_time_ms());
        a.stalled |= w.stalled();
        if (w.failed() && !a.failure) a.failure = &w.failure();
    };
    for (const auto& u : _workers) {
        add(u.worker->events_writer());
        add(u.worker->dead_letters_writer());
    }
    _queries->for_each_writer(add);
    auto ret = _retention->status();
    std::string state = "ok", error;
    json out = json::array();
    for (const auto& [name, a] : tables) {
        std::string ts = a.failure ? "failed" : a.stalled ? "disk_full" : "ok";
        json t{{"table", name},
               {"state", ts},
               {"rows_durable", a.rows_durable},
               {"durable_event_time_ms", a.durable_time == INT64_MIN ? 0 : a.durable_time},
               {"bytes_written", a.bytes_written},
               {"syncs", a.syncs},
               {"rows_dropped", a.rows_dropped},
               {"disk_full_stalls", a.stalls}};
        for (const auto& r : ret.tables) {
            if (r.table != name) continue;
            t["segments"] = r.segments;
            t["bytes_on_disk"] = r.bytes;
            t["retention_max_age_ms"] = r.policy.max_age_ms;
            t["retention_max_bytes"] = r.policy.max_bytes;
            t["segments_deleted"] = r.segments_deleted;
            t["rows_deleted"] = r.rows_deleted;
        }
        if (a.failure) {
            state = "failed";
            error = a.failure->message;
        } else if (a.stalled && state == "ok") {
            state = "disk_full";
            error = "disk full writing table " + name + " in " + _config.data_dir +
                    ": not accepting events (back-pressure), retrying every " +
                    std::to_string(limits::disk_full_retry_ms) +
                    " ms; nothing accepted is lost (free space or lower retention)";
        }
        out.push_back(std::move(t));
    }
    const agg& ev = tables["events"];
    totals["rows_durable"] = ev.rows_durable;
    totals["durable_event_time_ms"] = ev.durable_time == INT64_MIN ? 0 : ev.durable_time;
    json s{{"state", state},
           {"tables", out},
           {"retention_passes", ret.passes},
           {"retention_last_pass_ms", ret.last_pass_ms}};
    if (!error.empty()) s["error"] = error;
    if (!ret.last_error.empty()) s["retention_error"] = ret.last_error;
    return s;
}

// retention: lists every table's policy and state; with "table" (or "*" for the
// default) and max_age_ms / max_bytes, sets that policy first ("clear": true drops a
// table's own policy). The background pass applies a change at once.
json daemon::retention(const json& req) {
    auto it = req.find("table");
    if (it != req.end()) {
        if (!it->is_string()) return json{{"ok", false}, {"error", "retention: table must be a string"}};
        std::string table = it->get<std::string>();
        if (req.value("clear", false)) {
            _retention->clear_policy(table);
        } else {
            // Unset fields keep their current value (for a table without its own
            // policy: the default's).
            auto now = _retention->status();
            storage::retention_policy p = now.default_policy;
            for (const auto& t : now.tables)
                if (t.table == table) p = t.policy;
            auto age = req.find("max_age_ms");
            auto bytes = req.find("max_bytes");
            if (age == req.end() && bytes == req.end())
                return json{{"ok", false},
                            {"error", "retention: give max_age_ms and/or max_bytes (0 = no limit) "
                                      "with table, or clear"}};
            if (age != req.end()) {
                if (!age->is_number_integer() || age->get<int64_t>() < 0)
                    return json{{"ok", false}, {"error", "retention: max_age_ms must be an integer >= 0"}};
                p.max_age_ms = age->get<int64_t>();
            }
            if (bytes != req.end()) {
                if (!bytes->is_number_integer() || bytes->get<int64_t>() < 0)
                    return json{{"ok", false}, {"error", "retention: max_bytes must be an integer >= 0"}};
                p.max_bytes = bytes->get<uint64_t>();
            }
            auto r = _retention->set_policy(table, p);
            if (!r) return json{{"ok", false}, {"error", "retention: " + r.err().message}};
        }
    }
    auto st = _retention->status();
    json tables = json::array();
    for (const auto& t : st.tables)
        tables.push_back({{"table", t.table},
                          {"max_age_ms", t.policy.max_age_ms},
                          {"max_bytes", t.policy.max_bytes},
                          {"policy", t.policy_is_default ? "default" : "table"},
                          {"segments", t.segments},
                          {"bytes", t.bytes},
                          {"rows", t.rows},
                          {"oldest_time_ms", t.oldest_time_ms == INT64_MIN ? 0 : t.oldest_time_ms},
                          {"segments_deleted", t.segments_deleted},
                          {"bytes_deleted", t.bytes_deleted},
                          {"rows_deleted", t.rows_deleted}});
    return json{{"ok", true},
                {"default", {{"max_age_ms", st.default_policy.max_age_ms},
                             {"max_bytes", st.default_policy.max_bytes}}},
                {"passes", st.passes},
                {"tables", tables}};
}

// Absolute, so that a client in another directory (sluicectl export) finds it.
std::string absolute_path(const std::string& path) {
    std::error_code ec;
    auto p = std::filesystem::absolute(path, ec);
    return ec ? path : p.lexically_normal().string();
}

json daemon::status() const {
    // Before start() has handed the server over (_control_view: see control_json), the
    // policy is the configured one the server started with.
    // The reload count is read before the policy: reload() bumps it after its hooks have
    // applied, so a reply that shows a reload also shows what that reload applied.
    const uint64_t reloads = _reloads.load();
    const control_server* server = _control_view.load(std::memory_order_acquire);
    access_policy access = server ? server->access()
                                  : access_policy{_config.allow_uids, _config.allow_gids,
                                                  _config.requests_per_s,
                                                  _config.connection_requests_per_s};
    return json{{"ok", true},
                {"v", protocol_version},
                {"state", _shutdown_requested.load() || g_signal_shutdown.load() ? "stopping"
                                                                                : "running"},
                {"version", SLUICE_VERSION},
                {"pid", int64_t(::getpid())},
                {"mode", _config.mode},
                {"port", _port ? json(_port->driver) : json(nullptr)},
                {"rx_lcores", _rx_lcores},
                {"worker_lcores", _worker_lcores},
                {"lcore_map", lcore_map_json()},
                {"data_dir", absolute_path(_config.data_dir)},
                {"udp_ports", _config.udp_ports},
                {"kafka", _kafka_rx < 0 ? json(nullptr) : json(_rx[size_t(_kafka_rx)].kafka_listener->addresses())},
                {"queries", _queries->stats().size()},
                {"socket", _config.control_socket},
                {"config", _config.config_path.empty() ? json(nullptr) : json(_config.config_path)},
                {"reloads", reloads},
                {"control",
                 {{"allow_uids", access.allow_uids},
                  {"allow_gids", access.allow_gids},
                  {"requests_per_s", access.requests_per_s},
                  {"connection_requests_per_s", access.connection_requests_per_s}}},
                {"memory", {{"mode", dataplane::eal_memory_mode().name()},
                            {"page_bytes", dataplane::eal_memory_mode().page_bytes}}},
                {"tsc_hz", tsc_hz()},
                {"uptime_s", double(monotonic_ns() - _started_ns) / 1e9}};
}

// Applies the control keys of a reloaded config: the allow lists and rate limits.
result<std::vector<std::string>> daemon::reload_control(const daemon_config& c) {
    std::vector<std::string> applied;
    control_server* server = _control_view.load(std::memory_order_acquire);
    if (server == nullptr) return make_error(errc::busy, "the control server is still starting");
    access_policy old_access = server->access();
    access_policy access{c.allow_uids, c.allow_gids, c.requests_per_s, c.connection_requests_per_s};
    if (access.allow_uids != old_access.allow_uids) applied.push_back("control.allow_uids");
    if (access.allow_gids != old_access.allow_gids) applied.push_back("control.allow_gids");
    if (access.requests_per_s != old_access.requests_per_s)
        applied.push_back("control.requests_per_s");
    if (access.connection_requests_per_s != old_access.connection_requests_per_s)
        applied.push_back("control.connection_requests_per_s");
    server->update_access(access);
    return applied;
}

// Re-reads the config file (with the same command-line overrides), lets every reload
// hook apply what it can change safely while running, lists what needs a restart, and
// keeps everything else. A hook that fails is reported; the others still apply.
// Retention from the file replaces the running policies (sluicectl retention changes are
// run-time only).
result<std::vector<std::string>> daemon::reload_retention(const daemon_config& c) {
    if (c.retention == _config.retention && c.retention_tables == _config.retention_tables)
        return std::vector<std::string>{};
    SLUICE_TRY(_retention->set_policy("*", c.retention));
    for (const auto& [table, p] : _config.retention_tables)
        if (!c.retention_tables.contains(table)) _retention->clear_policy(table);
    for (const auto& [table, p] : c.retention_tables) SLUICE_TRY(_retention->set_policy(table, p));
    _config.retention = c.retention;
    _config.retention_tables = c.retention_tables;
    return std::vector<std::string>{"retention"};
}

json daemon::reload(const char* trigger) {
    std::lock_guard lock(_reload_mutex);
    auto fresh = _reload_config();
    if (!fresh) {
        SLUICE_LOG_ERROR("reload (%s) failed, the running config stays: %s", trigger,
                         fresh.err().message.c_str());
        return json{{"ok", false},
                    {"error", "reload failed, the running config stays: " + fresh.err().message}};
    }
    const daemon_config& c = fresh.value();
    std::vector<std::string> restart = restart_required(_config, c);
    std::vector<std::string> applied;
    json failed = json::object();
    for (const auto& [name, hook] : _reload_hooks) {
        auto r = hook(c);
        if (!r) {
            failed[name] = r.err().message;
            SLUICE_LOG_ERROR("reload (%s): %s kept its running config: %s", trigger, name.c_str(),
                             r.err().message.c_str());
            continue;
        }
        applied.insert(applied.end(), r->begin(), r->end());
    }
    ++_reloads;
    std::string a, r;
    for (const auto& k : applied) a += (a.empty() ? "" : ", ") + k;
    for (const auto& k : restart) r += (r.empty() ? "" : ", ") + k;
    SLUICE_LOG_INFO("reloaded %s (%s): applied %s; %s", c.config_path.empty() ? "defaults" :
                    c.config_path.c_str(), trigger, a.empty() ? "no changes" : a.c_str(),
                    r.empty() ? "nothing needs a restart" : ("needs a restart, kept: " + r).c_str());
    json reply{{"config", c.config_path.empty() ? json(nullptr) : json(c.config_path)},
               {"applied", applied},
               {"restart_required", restart},
               {"reloads", _reloads.load()}};
    if (!failed.empty()) {
        reply["ok"] = false;
        reply["error"] = "reload applied only in part: " + failed.dump();
        reply["failed"] = std::move(failed);
    }
    return reply;
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

// Which lcore does what, and where to reach the daemon: what an operator needs first.
void daemon::print_startup_map() const {
    std::printf("sluiced %s: %s input%s, %zu RX lcore(s), %zu worker lcore(s), data dir %s\n",
                SLUICE_VERSION, _config.mode.c_str(),
                _port ? (" on port " + std::to_string(_port->port_id) + " (" + _port->driver + ")")
                            .c_str()
                      : "",
                _rx.size(), _workers.size(), _config.data_dir.c_str());
    std::printf("sluiced:   lcore %u: main (control thread %s)\n", rte_get_main_lcore(),
                "sluice-control");
    // The input, its queues and how they are spread, then one line per lcore: the CPUs
    // EAL pinned it to and its role (every RX lcore feeds every worker over its own ring).
    for (const std::string& line : _map.describe()) std::printf("sluiced: %s\n", line.c_str());
    if (_kafka_rx >= 0) {
        const rx_unit& k = _rx[size_t(_kafka_rx)];
        std::string ports;
        for (size_t i = 0; i < k.kafka_listener->addresses().size(); ++i)
            ports += (i ? ", " : "") + k.kafka_listener->addresses()[i] + " (port " +
                     std::to_string(k.kafka_listener->ports()[i]) + ")";
        std::printf("sluiced:   lcore %u: Kafka RX %d, listening on %s, advertised %s:%d\n",
                    k.lcore, _kafka_rx, ports.c_str(), k.kafka->config().advertised_host.c_str(),
                    k.kafka->config().advertised_port);
    }
    std::printf("sluiced: control socket %s (mode %04o)\n", _config.control_socket.c_str(),
                _config.socket_mode);
    if (_config.test_hold_us != 0)
        std::printf("sluiced: TEST ONLY: workers hold each burst %u us\n", _config.test_hold_us);
    if (_config.bench_sink)
        std::printf("sluiced: BENCHMARK ONLY: workers discard every slot unprocessed\n");
    if (_config.test_slow_worker_us != 0)
        std::printf("sluiced: TEST ONLY: workers sleep %u us after every burst\n",
                    _config.test_slow_worker_us);
    std::fflush(stdout);
}

int rx_main(void* arg) {
    auto* u = static_cast<rx_unit*>(arg);
    if (u->kafka) u->kafka->run();
    else if (u->kernel) u->rx->run_kernel(*u->kernel);
    else u->rx->run_port(u->port_id, u->queues);
    return 0;
}

int worker_main(void* arg) { return static_cast<worker_unit*>(arg)->loop->run(); }

int daemon::run() {
    _worker_control.rx_running.store(uint32_t(_rx.size()));
    for (auto& u : _workers) rte_eal_remote_launch(worker_main, &u, u.lcore);
    for (auto& u : _rx) rte_eal_remote_launch(rx_main, &u, u.lcore);

    print_startup_map();
    _notify.ready(_config.mode + " input, " + std::to_string(_workers.size()) +
                  " worker(s), control socket " + _config.control_socket);

    while (!_shutdown_requested.load() && !g_signal_shutdown.load()) {
        if (g_signal_reload.exchange(false)) {
            _notify.reloading();
            reload("SIGHUP");
            _notify.reloaded();
        }
        _notify.tick(monotonic_ns());
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    _notify.stopping();
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
    // Every counter is final now (RX stopped, rings drained, workers done): one line
    // for logs and for tests that compare exact counts after a run.
    std::printf("sluiced: final stats %s\n", stats().dump().c_str());
    std::fflush(stdout);
    _control->stop();
    _retention->stop();
    if (_port) dataplane::port_stop(*_port);
    SLUICE_LOG_INFO("stopped: %s", rc == 0 ? "all data flushed and synced" : "with storage errors");
    return rc;
}

} // namespace

int run_daemon(const daemon_config& config, config_loader reload_config) {
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    struct sigaction hup{};
    hup.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &hup, nullptr);
    daemon d(config, std::move(reload_config));
    if (auto r = d.start(); !r) {
        std::fprintf(stderr, "sluiced: %s\n", r.err().message.c_str());
        return 1;
    }
    return d.run();
}

} // namespace sluice::control
