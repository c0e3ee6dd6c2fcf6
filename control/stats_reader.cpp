#include "control/stats_reader.h"

#include <algorithm>
#include <map>

#include "base/clock.h"
#include "base/limits.h"
#include "dataplane/eal_setup.h"
#include "processing/event.h"

namespace sluice::control {

namespace {

uint64_t rd(const std::atomic<uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
}

// Frame verdicts past "ok", by name: what RX ignored.
template <class Counts> std::vector<labelled_count> by_verdict(const Counts& counts) {
    std::vector<labelled_count> out;
    for (size_t v = 1; v < dataplane::frame_verdict_count; ++v)
        out.push_back({std::string(dataplane::verdict_name(dataplane::frame_verdict(v))),
                       uint64_t(counts[v])});
    return out;
}

rx_core_stats read_rx(const rx_unit& u, uint32_t r) {
    const auto& c = u.rx->counters();
    rx_core_stats s;
    s.rx = r;
    s.lcore = u.lcore;
    s.input = input_mode_name(u.kafka    ? input_mode::kafka
                              : u.kernel ? input_mode::kernel_udp
                                         : input_mode::dpdk);
    s.queues = u.queues;
    s.rx_packets = rd(c.rx_packets);
    s.rx_bytes = rd(c.rx_bytes);
    s.ignored_packets = rd(c.ignored_packets);
    s.events_received = rd(c.events_received);
    s.rx_dead_letters = rd(c.dead_letters);
    s.binary_events = rd(c.binary_events);
    s.backpressure_waits = rd(c.backpressure_waits);
    s.rx_dropped = u.kernel ? u.kernel->kernel_drops() : 0;
    uint64_t ignored[dataplane::frame_verdict_count] = {};
    for (size_t v = 1; v < dataplane::frame_verdict_count; ++v)
        ignored[v] = rd(c.ignored_by_verdict[v]);
    s.ignored_by_reason = by_verdict(ignored);
    // Kernel mode: whether the socket is read by one multishot recvmsg over provided
    // buffers (kernel >= 6.0) or by single-shot requests (the fallback).
    if (u.kernel) s.kernel_multishot = u.kernel->multishot();
    return s;
}

worker_core_stats read_worker(const worker_unit& u, uint32_t w) {
    const auto& c = u.worker->counters();
    worker_core_stats s;
    s.worker = w;
    s.lcore = u.lcore;
    s.events_in = rd(c.events_in);
    s.events_accepted = rd(c.events_accepted);
    s.duplicates = rd(c.duplicates);
    s.late_events = rd(c.late_events);
    s.dead_letters = rd(c.dead_letters);
    s.window_overflow = rd(c.window_overflow);
    s.bench_sunk = u.loop->sunk();
    s.idle_slept_with_work_max_us = u.loop->idle_slept_with_work_max_ns() / 1000;
    s.dedup_tracked = rd(c.dedup_tracked);
    s.dedup_capacity = u.worker->dedup_capacity();
    s.dedup_horizon_ms =
        uint64_t(std::max<int64_t>(0, c.dedup_horizon_ms.load(std::memory_order_relaxed)));
    s.bytes_written = u.worker->bytes_written();
    s.rows_durable = u.worker->rows_durable();
    s.events_durable = u.worker->events_writer().rows_durable();
    s.dead_letters_durable = u.worker->dead_letters_writer().rows_durable();
    s.window_visible = u.worker->latency().window_visible.snapshot();
    s.durable = u.worker->latency().durable.snapshot();
    return s;
}

// What is durable, per table and in total, the writers' state (a full disk stalls them)
// and retention. totals gets rows_durable and durable_event_time_ms of the events table.
json storage_json(const pipeline& p, const storage::retention_manager& retention,
                  totals_stats& totals) {
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
    for (const auto& u : p.workers()) {
        add(u.worker->events_writer());
        add(u.worker->dead_letters_writer());
    }
    p.queries().for_each_writer(add);
    auto ret = retention.status();
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
            error = "disk full writing table " + name + " in " + p.config().sluice.data_dir +
                    ": not accepting events (back-pressure), retrying every " +
                    std::to_string(limits::disk_full_retry_ms) +
                    " ms; nothing accepted is lost (free space or lower retention)";
        }
        out.push_back(std::move(t));
    }
    const agg& ev = tables["events"];
    totals.rows_durable = ev.rows_durable;
    totals.durable_event_time_ms = ev.durable_time == INT64_MIN ? 0 : ev.durable_time;
    json s{{"state", state},
           {"tables", out},
           {"retention_passes", ret.passes},
           {"retention_last_pass_ms", ret.last_pass_ms}};
    if (!error.empty()) s["error"] = error;
    if (!ret.last_error.empty()) s["retention_error"] = ret.last_error;
    return s;
}

} // namespace

json kafka_groups_json(const pipeline& p) {
    const rx_unit* k = p.kafka();
    if (k == nullptr || k->kafka->groups() == nullptr) return nullptr;
    namespace dk = dataplane::kafka;
    const dk::group_snapshot snap = k->kafka->groups()->snapshot();
    json groups = json::array();
    for (const auto& g : snap.groups) {
        json members = json::array();
        for (const auto& m : g.info.members) {
            json assignment = json::array();
            if (auto a = dk::decode_consumer_assignment(m.assignment))
                for (const auto& [topic, part] : *a) {
                    if (assignment.empty() || assignment.back()["topic"] != topic)
                        assignment.push_back({{"topic", topic}, {"partitions", json::array()}});
                    assignment.back()["partitions"].push_back(part);
                }
            members.push_back({{"member_id", m.member_id},
                               {"client_id", m.client_id},
                               {"group_instance_id", m.group_instance_id
                                                         ? json(*m.group_instance_id)
                                                         : json(nullptr)},
                               {"session_timeout_ms", m.session_timeout_ms},
                               {"since_heard_ms", m.since_heard_ms},
                               {"assignment", std::move(assignment)}});
        }
        json parts = json::array();
        int64_t lag = 0;
        for (const auto& r : g.partitions) {
            auto opt = [](int64_t v) { return v < 0 ? json(nullptr) : json(v); };
            parts.push_back({{"topic", r.topic},
                             {"partition", r.partition},
                             {"committed", opt(r.committed)},
                             {"high_watermark", opt(r.high_watermark)},
                             {"lag", opt(r.lag)},
                             {"member", r.member}});
            if (r.lag > 0) lag += r.lag;
        }
        groups.push_back({{"group", g.info.group_id},
                          {"state", dk::group_state_name(g.info.state)},
                          {"generation", g.info.generation},
                          {"protocol_type", g.info.protocol_type},
                          {"protocol", g.info.protocol},
                          {"leader", g.info.leader},
                          {"members", std::move(members)},
                          {"partitions", std::move(parts)},
                          {"lag", lag}});
    }
    return groups;
}

namespace {

json kafka_json(const pipeline& p) {
    const rx_unit* k = p.kafka();
    if (k == nullptr) return nullptr;
    const rx_unit& u = *k;
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
        case ak::list_offsets: return "list_offsets";
        case ak::metadata: return "metadata";
        case ak::api_versions: return "api_versions";
        case ak::init_producer_id: return "init_producer_id";
        case ak::find_coordinator: return "find_coordinator";
        case ak::join_group: return "join_group";
        case ak::sync_group: return "sync_group";
        case ak::heartbeat: return "heartbeat";
        case ak::leave_group: return "leave_group";
        case ak::offset_commit: return "offset_commit";
        case ak::offset_fetch: return "offset_fetch";
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
    // {"produce": {"7": n, ...}, ...}: the versions clients negotiated, as they asked.
    json by_version = json::object();
    for (int k = 0; k < dataplane::kafka::kafka_api_keys; ++k)
        for (int v = 0; v < dataplane::kafka::kafka_api_versions_counted; ++v)
            if (const uint64_t n = rd(kc.requests_by_version[k][v]); n != 0)
                by_version[api_name(k)]
                          [v == dataplane::kafka::kafka_api_versions_counted - 1
                               ? std::to_string(v) + "+"
                               : std::to_string(v)] = n;
    json errors = json::object();
    for (int e = 0; e < dataplane::kafka::kafka_error_codes; ++e)
        if (rd(kc.errors[e]) != 0) errors[std::to_string(e)] = rd(kc.errors[e]);
    json topics = json::array();
    for (const auto& t : u.kafka->topics())
        topics.push_back({{"name", t.name}, {"partitions", t.partitions}, {"records", t.records}});
    const auto& cfg = u.kafka->config();
    json fetch = nullptr;
    if (const auto* f = u.kafka->fetch()) {
        const auto& fc = f->counters();
        fetch = {{"fetches", rd(fc.fetches)},           {"list_offsets", rd(fc.list_offsets)},
                 {"records_sent", rd(fc.records_sent)}, {"bytes_sent", rd(fc.bytes_sent)},
                 {"long_polls", rd(fc.long_polls)},     {"out_of_range", rd(fc.out_of_range)},
                 {"read_errors", rd(fc.read_errors)},   {"jobs_full", rd(fc.jobs_full)},
                 {"leader_epochs", rd(fc.leader_epochs)}, {"describe_configs", rd(fc.describe_configs)},
                 {"cache_hits", rd(fc.cache_hits)},     {"cache_misses", rd(fc.cache_misses)},
                 {"cache_evictions", rd(fc.cache_evictions)}, {"cache_bytes", rd(fc.cache_bytes)}};
    }
    json groups = nullptr;
    if (const auto* g = u.kafka->groups()) {
        const auto& gc = g->counters();
        groups = {{"join_groups", rd(gc.join_groups)},
                  {"sync_groups", rd(gc.sync_groups)},
                  {"heartbeats", rd(gc.heartbeats)},
                  {"leave_groups", rd(gc.leave_groups)},
                  {"offset_commits", rd(gc.offset_commits)},
                  {"offsets_committed", rd(gc.offsets_committed)},
                  {"offset_fetches", rd(gc.offset_fetches)},
                  {"commit_errors", rd(gc.commit_errors)},
                  {"offsets_refused", rd(gc.offsets_refused)},
                  {"rebalances", rd(gc.rebalances)},
                  {"expired_members", rd(gc.expired_members)},
                  {"jobs_full", rd(gc.jobs_full)},
                  {"groups", kafka_groups_json(p)}};
    }
    return json{{"listen", u.kafka_listener->addresses()},
                {"consume", std::move(fetch)},
                {"groups", std::move(groups)},
                {"ports", u.kafka_listener->ports()},
                {"advertised", cfg.advertised_host + ":" + std::to_string(cfg.advertised_port)},
                {"rx", p.kafka_rx_index()},
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
                {"requests_by_version", std::move(by_version)},
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
                {"sequences_restored", rd(kc.sequences_restored)},
                {"sequences_journaled", rd(kc.sequences_journaled)},
                {"sequence_journal_errors", rd(kc.sequence_journal_errors)},
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
                {"topics", std::move(topics)}};
}

} // namespace

stats_sample read_sample(const pipeline& p) {
    stats_sample smp;
    smp.at_ns = monotonic_ns();
    totals_counters& t = smp.totals;
    for (const auto& u : p.rx()) {
        const auto& c = u.rx->counters();
        smp.rx.push_back({rd(c.events_received), rd(c.rx_bytes)});
        t.events_received += rd(c.events_received);
        t.rx_packets += rd(c.rx_packets);
        t.rx_bytes += rd(c.rx_bytes);
        if (u.kernel) t.rx_dropped += u.kernel->kernel_drops();
    }
    if (p.port()) t.rx_dropped += dataplane::port_rx_dropped(p.port()->port_id);
    for (int i = 0; i < processing::dead_letter_reason_count; ++i)
        t.dead_letters_by_reason.push_back(
            {std::string(processing::reason_name(processing::dead_letter_reason(i))), 0});
    for (const auto& u : p.workers()) {
        const auto& c = u.worker->counters();
        smp.workers.push_back({rd(c.events_in), u.worker->bytes_written()});
        t.events_accepted += rd(c.events_accepted);
        t.duplicates += rd(c.duplicates);
        t.late_events += rd(c.late_events);
        t.dead_letters += rd(c.dead_letters);
        t.bytes_written += u.worker->bytes_written();
        for (int i = 0; i < processing::dead_letter_reason_count; ++i)
            t.dead_letters_by_reason[size_t(i)].value += rd(c.dead_letters_by_reason[i]);
        smp.window_visible.merge(u.worker->latency().window_visible.snapshot());
        smp.durable.merge(u.worker->latency().durable.snapshot());
    }
    t.bytes_written += p.queries().bytes_written();
    if (const rx_unit* k = p.kafka()) {
        const auto& kafka = *k->kafka;
        const auto& kc = kafka.counters();
        kafka_sample& ks = smp.kafka;
        ks.present = true;
        // Errors: codes answered, and requests that closed their connection.
        ks.requests = rd(kc.requests_other);
        ks.errors = rd(kc.bad_requests) + rd(kc.unknown_api);
        for (const auto& n : kc.requests)
            ks.requests += rd(n);
        for (const auto& n : kc.errors)
            ks.errors += rd(n);
        ks.records = rd(kc.records);
        for (int i = 0; i < dataplane::kafka::kafka_acks_modes; ++i)
            ks.ack[size_t(i)] = kafka.ack_latency(i).snapshot();
    }
    return smp;
}

void read_snapshot(const pipeline& p, const storage::retention_manager& retention,
                   const control_server* server, stats_snapshot& s) {
    s.version = SLUICE_VERSION;
    s.watermark_delay_ms = p.config().processing.watermark_delay_ms;
    const int64_t max_time = p.max_event_time_ms();
    s.watermark_ms = max_time == processing::no_time ? 0 : max_time - s.watermark_delay_ms;
    if (s.watermark_ms > 0) s.watermark_lag_ms = wall_clock_ms() - s.watermark_ms;
    if (max_time != processing::no_time) s.max_event_time_ms = max_time;
    uint64_t ignored[dataplane::frame_verdict_count] = {};
    for (uint32_t r = 0; r < p.rx().size(); ++r) {
        s.rx.push_back(read_rx(p.rx()[r], r));
        s.totals.ignored_packets += s.rx.back().ignored_packets;
        for (size_t v = 1; v < dataplane::frame_verdict_count; ++v)
            ignored[v] += rd(p.rx()[r].rx->counters().ignored_by_verdict[v]);
    }
    s.totals.ignored_by_reason = by_verdict(ignored);
    for (uint32_t w = 0; w < p.workers().size(); ++w)
        s.workers.push_back(read_worker(p.workers()[w], w));
    for (uint32_t r = 0; r < p.rx().size(); ++r)
        for (uint32_t w = 0; w < p.workers().size(); ++w) {
            const rte_ring* ring = p.ring(r, w);
            s.rings.push_back({r, w, dataplane::ring_count(ring), rte_ring_get_capacity(ring)});
        }
    // The port's own counters: rx_dropped are the frames it could not hand to sluice
    // because RX had stopped pulling (imissed) or it had no mbuf (rx_nombuf).
    if (const auto& port = p.port()) {
        dataplane::port_counters pc = dataplane::port_stats(port->port_id);
        s.ports.push_back({port->port_id, port->rx_queues, port->driver, port->rss, pc.ipackets,
                           pc.imissed, pc.rx_nombuf, pc.ierrors, pc.rx_dropped()});
    }
    s.totals.window_rows = p.queries().window_rows();
    s.storage = storage_json(p, retention, s.totals);
    if (server != nullptr) {
        s.control = server->counters();
        s.control_up = true;
    }
    s.kafka = kafka_json(p);
    s.queries = p.queries().stats();
}

} // namespace sluice::control
