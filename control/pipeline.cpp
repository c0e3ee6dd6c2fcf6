// Building the pipeline (pipeline.h): the lcore plan, slot pool, port or sockets or Kafka
// listener, rings, query service and workers, and what the store restores into them.
// Running it (launch, stop, flush) is pipeline_run.cpp's.
#include "control/pipeline.h"


#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "base/limits.h"
#include "base/log.h"
#include "control/fd_budget.h"
#include "processing/identity.h"
#include "processing/restore.h"
#include "storage/recovery.h"
#include "storage/segment_files.h"

namespace sluice::control {

namespace {

// "3" or "2-3": the CPUs EAL pinned an lcore to.
std::string lcore_cpus(unsigned lcore) {
    rte_cpuset_t set = rte_lcore_cpuset(lcore);
    std::string out;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &set)) continue;
        int last = c;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set))
            ++last;
        out += (out.empty() ? "" : ",") + std::to_string(c) +
               (last > c ? "-" + std::to_string(last) : "");
        c = last;
    }
    return out.empty() ? "?" : out;
}

} // namespace

result<std::unique_ptr<pipeline>> pipeline::prepare(const daemon_config& config) {
    std::unique_ptr<pipeline> p(new pipeline(config));
    SLUICE_TRY(p->plan_lcores());
    std::error_code ec;
    std::filesystem::create_directories(config.sluice.data_dir, ec);
    if (ec || access(config.sluice.data_dir.c_str(), W_OK) != 0)
        return make_error(errc::permission_denied,
                          "cannot use data dir " + config.sluice.data_dir + ": " +
                              (ec ? ec.message() : std::string(strerror(errno))) +
                              " (run as its owner or pass --data-dir)");

    // Validate what a previous run left: truncate torn tails, move corrupt segments aside.
    auto recovered = storage::recover_data_dir(config.sluice.data_dir);
    if (!recovered) return std::move(recovered).err();
    if (recovered->segments)
        SLUICE_LOG_INFO(
            "recovery: %llu segment(s), %llu row(s), %llu truncated, %llu moved aside, "
            "%llu removed unborn",
            (unsigned long long)recovered->segments, (unsigned long long)recovered->rows,
            (unsigned long long)recovered->truncated, (unsigned long long)recovered->moved_aside,
            (unsigned long long)recovered->removed_unborn);
    return p;
}

result<void> pipeline::plan_lcores() {
    std::vector<dataplane::lcore_info> lcores;
    unsigned id;
    RTE_LCORE_FOREACH_WORKER(id) lcores.push_back({id, lcore_cpus(id)});
    dataplane::rx_source_caps caps;
    dataplane::lcore_request req;
    unsigned kafka_lcore = 0;
    if (_config.input.mode == input_mode::kafka) {
        // The Kafka listener alone: its RX lcore is the map's only RX lcore.
        caps.name = "Kafka " + _config.kafka.listen.front();
        caps.max_rx_queues = 0;
        req.rx_count = 1;
        if (_config.kafka.lcore >= 0) req.rx_lcores = {unsigned(_config.kafka.lcore)};
    } else if (kafka_configured()) {
        // Beside another input: an lcore of its own, taken before the others are planned.
        bool found = false;
        for (size_t i = 0; i < lcores.size() && !found; ++i) {
            const unsigned l = lcores[i].lcore;
            const bool named =
                std::find(_config.lcores.rx.begin(), _config.lcores.rx.end(), l) !=
                    _config.lcores.rx.end() ||
                std::find(_config.lcores.workers.begin(), _config.lcores.workers.end(), l) !=
                    _config.lcores.workers.end();
            if (_config.kafka.lcore >= 0 ? l == unsigned(_config.kafka.lcore) : !named) {
                kafka_lcore = l;
                lcores.erase(lcores.begin() + ptrdiff_t(i));
                found = true;
            }
        }
        if (!found)
            return make_error(errc::bad_config,
                              _config.kafka.lcore >= 0
                                  ? "kafka.lcore = " + std::to_string(_config.kafka.lcore) +
                                        " is not an EAL worker lcore (add it to --lcores)"
                                  : std::string("the Kafka listener needs an lcore of its own "
                                                "beside the RX and worker lcores (add one to "
                                                "--lcores, e.g. '0@0,1@0,2@0,3@1')"));
    }
    if (_config.input.mode == input_mode::kafka) {
    } else if (_config.input.mode == input_mode::dpdk) {
        auto c = dataplane::port_caps(_config.input.port_id);
        if (!c) return std::move(c).err();
        caps = *c;
    } else {
        // One SO_REUSEPORT socket per RX lcore: the kernel hashes flows over them.
        caps.name = "kernel UDP " + _config.input.kernel_bind + ":" +
                    std::to_string(_config.input.udp_ports.front());
        caps.max_rx_queues = 0;
        caps.rss = true;
    }
    if (_config.input.mode != input_mode::kafka) {
        req.rx_lcores = _config.lcores.rx;
        req.rx_count = _config.lcores.rx_count;
    }
    req.worker_lcores = _config.lcores.workers;
    req.worker_count = _config.lcores.worker_count;
    req.rx_queues = _config.input.rx_queues;
    auto map =
        dataplane::plan_lcore_map(lcores, caps, req, limits::rx_lcores_max, limits::workers_max);
    if (!map) return std::move(map).err();
    _map = std::move(*map);
    for (const auto& r : _map.rx)
        _rx_lcores.push_back(r.lcore);
    for (const auto& w : _map.workers)
        _worker_lcores.push_back(w.lcore);
    if (_config.input.mode == input_mode::kafka) {
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

result<void> pipeline::open_slots_and_port() {
    const uint32_t rx_n = uint32_t(_rx_lcores.size()), workers_n = uint32_t(_map.workers.size());
    const uint32_t slots_min = dataplane::slots_min(rx_n, workers_n);
    if (_config.input.slots != 0 && _config.input.slots < slots_min)
        return make_error(errc::bad_config,
                          "input.slots = " + std::to_string(_config.input.slots) +
                              " is too few for " + std::to_string(rx_n) + " RX and " +
                              std::to_string(workers_n) +
                              " worker lcores: the lcores' caches could hold them all and "
                              "stall RX (use at least " +
                              std::to_string(slots_min) + ", or 0 for the default)");
    const uint32_t slot_count =
        _config.input.slots ? _config.input.slots : dataplane::slots_default(rx_n, workers_n);
    auto slots = dataplane::slot_pool_create(slot_count,
                                             processing::slot_bytes(_config.input.event_bytes_max));
    if (!slots) return std::move(slots).err();
    _slots = slots.value();

    if (_config.input.mode == input_mode::dpdk) {
        dataplane::port_config pc;
        pc.port_id = _config.input.port_id;
        pc.rx_queues = _map.rx_queues;
        pc.rss = _map.rss;
        pc.mbufs = _config.input.mbufs;
        auto port = dataplane::port_start(pc);
        if (!port) return std::move(port).err();
        _port = port.value();
    }
    return ok_result();
}

result<void> pipeline::build() {
    SLUICE_TRY(open_slots_and_port());
    const uint32_t nworkers = uint32_t(_worker_lcores.size());
    // Continuous queries first: the RX parsers read their field catalog.
    query_service_config qc;
    qc.data_dir = _config.sluice.data_dir;
    qc.event_bytes_max = _config.input.event_bytes_max;
    qc.storage = _config.storage;
    qc.storage_stop = &_stop_rx;
    qc.default_delay_ms = _config.processing.watermark_delay_ms;
    qc.workers = nworkers;
    qc.idle_wait = _config.lcores.idle == idle_mode::wait;
    auto queries = query_service::open(qc, _config.queries);
    if (!queries) return std::move(queries).err();
    _queries = std::move(queries.value());
    // Restart: the workers start from the M the store implies, the queries rebuild the
    // windows that were open from the stored events (processing/restore.h).
    auto stored_max = processing::stored_max_event_time(_config.sluice.data_dir);
    if (!stored_max) return std::move(stored_max).err();
    auto last_run = processing::read_run_record(_config.sluice.data_dir);
    if (!last_run) return std::move(last_run).err();
    auto restored = processing::restored_max_time(_config.sluice.data_dir, *last_run);
    if (!restored) return std::move(restored).err();
    const int64_t restored_max_time = *restored;
    auto rebuilt = _queries->restore(restored_max_time, *stored_max);
    if (!rebuilt) return std::move(rebuilt).err();

    SLUICE_TRY(open_rx(nworkers));
    SLUICE_TRY(open_workers(restored_max_time));
    SLUICE_TRY(attach_kafka());
    // Dedup state from the events table: every identity within the previous run's horizon.
    if (*stored_max != processing::no_time) {
        const int64_t cutoff = *stored_max - _config.processing.dedup_horizon_ms;
        for (auto& u : _workers)
            u.worker->dedup().set_restored_cutoff(cutoff);
        std::vector<processing::dedup_filter*> filters;
        for (auto& u : _workers)
            filters.push_back(&u.worker->dedup());
        auto loaded = processing::reload_dedup(_config.sluice.data_dir, cutoff, *stored_max, filters);
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
    SLUICE_TRY(processing::write_run_record(_config.sluice.data_dir, run));
    std::vector<processing::worker*> worker_ptrs;
    for (auto& u : _workers)
        worker_ptrs.push_back(u.worker.get());
    SLUICE_TRY(_queries->attach(worker_ptrs));
    SLUICE_TRY(plan_descriptors());
    _queries->start(&_worker_control.flush_requested, [this] {
        for (auto& u : _workers)
            if (!u.loop->finished()) return false;
        return true;
    });
    return ok_result();
}

// The store is up (every writer open, the Kafka listener bound) and no client is connected
// yet: what is open now is what the store holds; the clients get what is left of
// RLIMIT_NOFILE beside its reserve (control/fd_budget.h). Before the merger starts: a
// start-up error must find no thread to stop.
result<void> pipeline::plan_descriptors() {
    fd_budget_input in;
    uint32_t query_tables = 0;
    _queries->for_each_table(
        [&](const std::string&, const storage::segment_writer&) { ++query_tables; });
    const uint32_t worker_writers = 2 * uint32_t(_workers.size()); // events, dead_letters
    in.writers = worker_writers + query_tables;
    // Queries may be added up to queries_max, and a replay writes a table of its own.
    in.writers_max = worker_writers + std::max(query_tables, limits::queries_max) + 1;
    in.metrics = !_config.metrics.listen.empty();
    const auto* kafka = this->kafka();
    in.kafka = kafka != nullptr;
    in.kafka_wanted = in.kafka ? kafka->kafka_listener->connections_max() : 0;
    in.open = count_open_fds();
    raise_fd_limit(uint64_t(in.open) + fd_reserve(in) + limits::control_clients_max + in.kafka_wanted,
                   in);
    auto b = plan_fd_budget(in);
    if (!b) return std::move(b).err();
    if (b->kafka_cut)
        SLUICE_LOG_WARN("kafka.connections_max = %u needs %llu file descriptors but RLIMIT_NOFILE "
                        "is %llu: accepting at most %u Kafka connections (raise the limit: ulimit "
                        "-n, or LimitNOFILE= in the systemd unit)",
                        in.kafka_wanted, static_cast<unsigned long long>(b->needed),
                        static_cast<unsigned long long>(b->limit), b->kafka_connections);
    if (b->control_clients < limits::control_clients_max)
        SLUICE_LOG_WARN("RLIMIT_NOFILE is %llu: accepting at most %u control clients (a limit of %llu would "
                        "fit every client; raise the limit: ulimit -n, or LimitNOFILE= in the "
                        "systemd unit)",
                        static_cast<unsigned long long>(b->limit), b->control_clients,
                        static_cast<unsigned long long>(b->needed));
    if (in.kafka) kafka->kafka_listener->limit_connections(b->kafka_connections);
    _control_clients_max = b->control_clients;
    SLUICE_LOG_INFO("%s", describe(b.value()).c_str());
    return ok_result();
}

// One ring per (RX, worker) pair, then each RX lcore with its input.
result<void> pipeline::open_rx(uint32_t nworkers) {
    _rings.assign(nworkers, {});
    std::vector<idle_wake*> wakes;
    if (_config.lcores.idle == idle_mode::wait) {
        for (uint32_t w = 0; w < nworkers; ++w) {
            _worker_wakes.push_back(std::make_unique<idle_wake>());
            if (!_worker_wakes.back()->ok())
                return make_error(errc::io_error, std::string("cannot create a worker's wake "
                                                              "eventfd: ") + std::strerror(errno));
            wakes.push_back(_worker_wakes.back().get());
        }
    }
    dataplane::rx_config rc;
    for (uint16_t p : _config.input.udp_ports)
        rc.ports.add(p);
    rc.parse.fields = &_queries->catalog();
    rc.parse.event_bytes_max = _config.input.event_bytes_max;
    rc.parse.max_future_skew_ms = _config.input.max_future_skew_ms;
    for (uint32_t r = 0; r < _rx_lcores.size(); ++r) {
        std::vector<rte_ring*> to_workers;
        for (uint32_t w = 0; w < nworkers; ++w) {
            auto ring = dataplane::spsc_ring_create(
                "rx" + std::to_string(r) + "_w" + std::to_string(w), limits::ring_size);
            if (!ring) return std::move(ring).err();
            to_workers.push_back(ring.value());
            _rings[w].push_back(ring.value());
        }
        rc.index = r;
        rx_unit u;
        u.lcore = _rx_lcores[r];
        u.port_id = _config.input.port_id;
        if (r < _map.rx.size()) u.queues = _map.rx[r].queues;
        u.rx = std::make_unique<dataplane::rx_lcore>(rc, _slots, std::move(to_workers), &_stop_rx);
        u.rx->set_worker_wakes(wakes);
        if (int32_t(r) == _kafka_rx) {
            u.queues.clear();
            SLUICE_TRY(open_kafka(u));
        } else if (_config.input.mode == input_mode::kernel_udp) {
            dataplane::kernel_rx_config kc;
            kc.bind_addr = _config.input.kernel_bind;
            kc.rcvbuf_bytes = int(_config.input.kernel_rcvbuf_bytes);
            kc.port = _config.input.udp_ports.front();
            kc.reuse_port = _rx_lcores.size() - (_kafka_rx >= 0 ? 1 : 0) > 1;
            auto k = dataplane::kernel_udp_rx::open(kc);
            if (!k) return std::move(k).err();
            u.kernel = std::move(k.value());
        }
        _rx.push_back(std::move(u));
    }
    return ok_result();
}

result<void> pipeline::open_workers(int64_t restored_max_time) {
    const uint32_t nworkers = uint32_t(_worker_lcores.size());
    uint64_t dedup_bytes = (_config.processing.dedup_memory_mb << 20) / nworkers;
    for (uint32_t w = 0; w < nworkers; ++w) {
        worker_unit u;
        u.lcore = _worker_lcores[w];
        processing::worker_config wc;
        wc.index = w;
        wc.watermark_delay_ms = _config.processing.watermark_delay_ms;
        wc.dedup_horizon_ms = _config.processing.dedup_horizon_ms;
        wc.dedup_memory_bytes = dedup_bytes;
        wc.event_bytes_max = _config.input.event_bytes_max;
        wc.data_dir = _config.sluice.data_dir;
        wc.storage = _config.storage;
        wc.storage_stop = &_stop_rx;
        wc.test_hold_us = _config.testing.hold_us;
        wc.restored_max_time_ms = restored_max_time;
        auto wk = processing::worker::open(wc, _queries->channel(w));
        if (!wk) return std::move(wk).err();
        u.worker = std::move(wk.value());
        u.loop = std::make_unique<dataplane::worker_lcore>(*u.worker, _rings[w], _slots,
                                                           &_worker_control);
        u.loop->set_test_delay_us(_config.testing.slow_worker_us);
        u.loop->set_bench_sink(_config.testing.bench_sink);
        if (!_worker_wakes.empty()) {
            idle_wake& wake = *_worker_wakes[w];
            u.loop->set_idle_wake(&wake);
            if (!u.worker->wake_on_completion(wake.fd()))
                SLUICE_LOG_WARN("worker %u: io_uring_register_eventfd refused: its idle waits "
                                "end by their %u us bound, not by its writes' completions",
                                w, limits::idle_wait_us);
        }
        _workers.push_back(std::move(u));
    }
    return ok_result();
}


result<void> pipeline::open_kafka(rx_unit& u) {
    dataplane::kafka::kafka_listener_config lc;
    lc.listen = _config.kafka.listen;
    // Lowered to what the descriptor budget fits once the store is up (control/fd_budget.h).
    lc.connections_max = _config.kafka.connections_max;
    lc.request_bytes_max = _config.kafka.request_bytes_max;
    lc.idle_timeout_ms = _config.kafka.idle_timeout_ms;
    auto l = dataplane::kafka::kafka_listener::open(lc);
    if (!l) return std::move(l).err();
    u.kafka_listener = std::move(l.value());
    return ok_result();
}

// After the workers exist: the Kafka RX reads their durable marks (acks=all).
result<void> pipeline::attach_kafka() {
    if (_kafka_rx < 0) return ok_result();
    rx_unit& u = _rx[size_t(_kafka_rx)];
    dataplane::kafka::kafka_rx_config kc;
    const auto& ports = u.kafka_listener->ports();
    std::string advertised = _config.kafka.advertised;
    if (advertised.empty()) {
        // The first listen address, with the port the kernel bound (listen port 0).
        const std::string& first = _config.kafka.listen.front();
        advertised = first.substr(0, first.rfind(':')) + ":" + std::to_string(ports.front());
    }
    const auto colon = advertised.rfind(':');
    kc.advertised_host = advertised.substr(0, colon);
    if (kc.advertised_host.size() >= 2 && kc.advertised_host.front() == '[')
        kc.advertised_host = kc.advertised_host.substr(1, kc.advertised_host.size() - 2);
    kc.advertised_port =
        colon == std::string::npos ? 9092 : std::atoi(advertised.c_str() + colon + 1);
    kc.auto_create_topics = _config.kafka.auto_create_topics;
    kc.default_partitions = int32_t(_workers.size());
    for (const auto& t : _config.kafka.topics)
        kc.topics.push_back({t.name, t.partitions});
    kc.idle_wait = _config.lcores.idle == idle_mode::wait;
    std::vector<dataplane::kafka::worker_durability> durable;
    for (auto& w : _workers) {
        durable.push_back({&w.worker->slots_durable(uint32_t(_kafka_rx)),
                           &w.worker->slots_wanted(uint32_t(_kafka_rx)), w.worker.get()});
        if (kc.idle_wait)
            w.worker->set_durable_wake(uint32_t(_kafka_rx), u.kafka_listener->wake_fd());
    }
    auto ids = dataplane::kafka::producer_ids::open(_config.sluice.data_dir);
    if (!ids) return std::move(ids).err();
    u.kafka = std::make_unique<dataplane::kafka::kafka_rx>(kc, *u.kafka_listener, *u.rx,
                                                           std::move(durable), &_stop_rx);
    u.kafka->set_producer_ids(std::move(ids.value()));
    SLUICE_TRY(u.kafka->open_sequence_journal(_config.sluice.data_dir));
    // Consumers: events-topic partition p is worker p's events log (docs/KAFKA.md "Consuming").
    dataplane::kafka::fetch_server_config fc;
    fc.data_dir = _config.sluice.data_dir;
    fc.partitions = uint32_t(_workers.size());
    fc.high_watermark = [this](uint32_t p) {
        return _workers[p].worker->events_writer().row_offset_durable_end();
    };
    // dead_letters the same way; each query table is a topic of its own (the merger's rows).
    fc.dead_letters_watermark = [this](uint32_t p) {
        return _workers[p].worker->dead_letters_writer().row_offset_durable_end();
    };
    fc.queries = [this](const std::function<void(const std::string&, uint64_t)>& each) {
        _queries->for_each_table([&](const std::string& name, const storage::segment_writer& w) {
            each(name, w.row_offset_durable_end());
        });
    };
    fc.producer_topic = [rx = u.kafka.get()](std::string_view name) {
        for (const auto& t : rx->topics())
            if (t.name == name) return true;
        return false;
    };
    u.kafka->set_fetch_server(std::make_unique<dataplane::kafka::fetch_server>(std::move(fc)));
    // Consumer groups: sluiced is their coordinator; committed offsets in _processing/.
    dataplane::kafka::group_server_config gc;
    gc.data_dir = _config.sluice.data_dir;
    gc.partitions = uint32_t(_workers.size());
    gc.high_watermark = [this](uint32_t p) {
        return _workers[p].worker->events_writer().row_offset_durable_end();
    };
    auto groups = dataplane::kafka::group_server::open(std::move(gc));
    if (!groups) return std::move(groups).err();
    u.kafka->set_group_server(std::move(groups.value()));
    return ok_result();
}

} // namespace sluice::control
