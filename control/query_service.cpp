#include "control/query_service.h"
#include "control/query_service_parts.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "control/checkpoint.h"
#include "control/query_config.h"
#include "control/replay.h"
#include "dataplane/eal_setup.h"
#include "dataplane/event_parse.h"
#include "processing/window_assigner.h"
#include "storage/segment_files.h"
#include "storage/table_reader.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice::control {

using namespace processing;
using query_detail::fail;

namespace {

constexpr uint32_t partial_buffers_per_worker = 8;
constexpr uint32_t partial_buffer_bytes = 256 * 1024;
constexpr int64_t checkpoint_interval_ns = 1'000'000'000;

} // namespace

namespace {
partial_batch* link_acquire(void* ctx) noexcept {
    auto* l = static_cast<query_service::link*>(ctx);
    void* obj = nullptr;
    idle_backoff backoff;
    while (rte_ring_sc_dequeue(l->free, &obj) != 0) backoff.wait();
    return static_cast<partial_batch*>(obj);
}
void link_publish(void* ctx, partial_batch* batch) noexcept {
    auto* l = static_cast<query_service::link*>(ctx);
    // Cannot fail: the ring holds more than all of this worker's buffers.
    SLUICE_ASSERT(rte_ring_sp_enqueue(l->to_merger, batch) == 0);
}
} // namespace

query_service::query_service(const query_service_config& config) : _config(config) {}

query_service::~query_service() { join(); }

result<std::unique_ptr<query_service::entry>> query_service::make_entry(const query_def& def,
                                                                          uint32_t start_generation) {
    auto q = compile(def, _catalog, _next_uid, start_generation, _config.event_bytes_max);
    if (!q) return std::move(q).err();
    ++_next_uid;
    auto e = std::make_unique<entry>();
    e->query = std::move(q.value());
    e->merger = std::make_unique<query_merger>(e->query, _config.workers);
    std::vector<storage::column_def> values;
    size_t i = 0;
    for (const auto& s : e->query->aggs.slots()) {
        size_t n = s.kind == agg_kind::quantile ? s.quantiles.size() : 1;
        bool integer = s.kind == agg_kind::count || s.kind == agg_kind::distinct;
        for (size_t k = 0; k < n; ++k, ++i)
            values.push_back({e->query->value_columns[i],
                              integer ? storage::column_type::u64 : storage::column_type::f64});
    }
    e->schema = storage::window_schema(def.name, e->query->group_columns, values);
    storage::writer_config wc = table_writer_config();
    wc.writer_name = "merger";
    auto w = storage::segment_writer::open(wc, e->schema);
    if (!w) return std::move(w).err();
    e->writer = std::move(w.value());
    return e;
}

storage::writer_config query_service::table_writer_config() const {
    storage::writer_config wc;
    wc.data_dir = _config.data_dir;
    wc.rows_per_block = 4096;
    wc.string_bytes_max = 1u << 20;
    wc.row_string_bytes_max = _config.event_bytes_max;
    wc.flush_interval_ms = _config.flush_interval_ms;
    wc.direct_io = _config.direct_io;
    wc.sync_bytes = _config.sync_bytes;
    wc.segment_bytes_max = _config.segment_bytes_max;
    wc.compression = _config.compression;
    wc.stop_flag = _config.storage_stop;
    return wc;
}

result<void> query_service::load_registry(std::vector<query_def>& queries) {
    std::string path = processing_dir(_config.data_dir) + "/queries.json";
    std::ifstream in(path);
    if (!in) return ok_result();
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return make_error(errc::corrupt, path + " is not valid JSON (fix or remove it; it lists the "
                                                "queries added and removed at run time)");
    for (const auto& n : j.value("removed", json::array()))
        if (n.is_string()) _removed.push_back(n.get<std::string>());
    for (const auto& d : j.value("added", json::array())) {
        auto q = query_from_json(d, _config.default_delay_ms);
        if (!q) return make_error(errc::corrupt, path + ": " + q.err().message);
        _added.push_back(q.value());
    }
    std::erase_if(queries, [&](const query_def& q) {
        return std::find(_removed.begin(), _removed.end(), q.name) != _removed.end();
    });
    for (const auto& a : _added) {
        std::erase_if(queries, [&](const query_def& q) { return q.name == a.name; });
        queries.push_back(a);
    }
    return ok_result();
}

result<void> query_service::save_registry() {
    json added = json::array();
    for (const auto& a : _added) added.push_back(query_to_json(a));
    json j{{"version", 1}, {"added", added}, {"removed", _removed}};
    return write_file_atomically(processing_dir(_config.data_dir) + "/queries.json", j.dump(2) + "\n");
}

result<std::unique_ptr<query_service>> query_service::open(const query_service_config& config,
                                                           const std::vector<query_def>& configured) {
    std::unique_ptr<query_service> s(new query_service(config));
    std::error_code ec;
    std::filesystem::create_directories(processing_dir(config.data_dir) + "/checkpoints", ec);
    if (ec)
        return make_error(errc::io_error, "cannot create " + processing_dir(config.data_dir) + ": " +
                                              ec.message() + " (check the data dir's permissions)");
    std::vector<query_def> queries = configured;
    SLUICE_TRY(s->load_registry(queries));
    if (queries.size() > limits::queries_max)
        return make_error(errc::bad_config, "more than " + std::to_string(limits::queries_max) +
                                                " continuous queries configured and added");
    for (const auto& q : queries) {
        auto e = s->make_entry(q, 0);
        if (!e) return make_error(e.err().code, "query \"" + q.name + "\": " + e.err().message);
        s->_queries.push_back(std::move(e.value()));
    }
    s->_catalog.publish();
    for (uint32_t w = 0; w < config.workers; ++w) {
        auto l = std::make_unique<link>();
        l->worker = w;
        auto to_merger = dataplane::spsc_ring_create("w" + std::to_string(w) + "_merge", 64);
        if (!to_merger) return std::move(to_merger).err();
        auto free_ring = dataplane::spsc_ring_create("w" + std::to_string(w) + "_free", 64);
        if (!free_ring) return std::move(free_ring).err();
        l->to_merger = to_merger.value();
        l->free = free_ring.value();
        for (uint32_t b = 0; b < partial_buffers_per_worker; ++b) {
            l->buffers.emplace_back(new char[sizeof(partial_batch) + partial_buffer_bytes]);
            auto* batch = reinterpret_cast<partial_batch*>(l->buffers.back().get());
            batch->capacity = partial_buffer_bytes;
            batch->reset(w, 0);
            rte_ring_sp_enqueue(l->free, batch);
        }
        s->_links.push_back(std::move(l));
    }
    return s;
}

partial_channel query_service::channel(uint32_t worker) noexcept {
    return partial_channel{_links[worker].get(), link_acquire, link_publish};
}

result<void> query_service::attach(const std::vector<worker*>& workers) {
    SLUICE_ASSERT(workers.size() == _config.workers);
    _workers = workers;
    for (auto& e : _queries) {
        for (size_t i = 0; i < workers.size(); ++i) {
            auto state = std::make_unique<window_state>(*e->query);
            // Windows open at the last stop, rebuilt from the store (restore()), spread
            // over the workers: any worker may hold any partial, the merger adds them up.
            for (size_t c = i; c < e->reopened.size(); c += workers.size()) {
                const auto& cell = e->reopened[c];
                uint64_t h = XXH3_64bits(cell.key.data(), cell.key.size());
                if (!state->install(cell.start, cell.end, cell.key, h, cell.blob.data()))
                    return make_error(errc::no_space,
                                      "query " + e->query->def.name +
                                          ": the rebuilt open windows do not fit its memory (raise memory_mb)");
            }
            SLUICE_TRY(workers[i]->add_query(e->query, std::move(state), e->floor_ms));
        }
        e->reopened.clear();
    }
    // This run's floor joins each query's floor history from the workers' first events
    // segments on (processing/window_assigner.h): durable before any event is taken, so
    // a later rebuild or replay judges this run's events by the floor they met.
    floor_epoch epoch;
    for (worker* w : workers) {
        storage::segment_file f;
        std::string name = std::filesystem::path(w->events_segment_path()).filename().string();
        if (storage::parse_segment_name(name, f)) epoch.first_segment[f.writer] = f.seq;
    }
    for (auto& e : _queries) {
        if (!e->floors.add(floor_epoch{epoch.first_segment, e->floor_ms})) continue;
        SLUICE_TRY(write_checkpoint(_config.data_dir, e->query->def.name, e->checkpoint_written_from,
                                    e->checkpoint_written_closed, e->floors));
    }
    return ok_result();
}

result<query_service::restore_report> query_service::restore(int64_t restored_max_time_ms,
                                                             int64_t stored_max_time_ms) {
    restore_report report;
    struct rebuild {
        entry* e;
        std::set<std::pair<int64_t, std::string>> present; // (end, key) of live rows
    };
    std::vector<rebuild> work;
    std::vector<replay_query> replays;
    for (auto& e : _queries) {
        const query_def& def = e->query->def;
        auto ck = read_checkpoint(_config.data_dir, def.name);
        if (!ck) {
            // A query this data dir has not run: it starts now, from nothing. Its first
            // checkpoint says so until the merger writes real ones.
            int64_t from = stored_max_time_ms == no_time ? INT64_MIN : stored_max_time_ms + 1;
            SLUICE_TRY(write_checkpoint(_config.data_dir, def.name, from, INT64_MIN, e->floors));
            continue;
        }
        rebuild r{e.get(), {}};
        // The rows already in the table from the checkpoint on (live rows only).
        const size_t groups = e->query->group.size();
        int64_t last_end = INT64_MIN;
        auto scanned = storage::scan_table(_config.data_dir, def.name, ck->rebuild_from_ms, INT64_MAX,
                                           [&](const storage::column_batch& b) {
            const auto& cols = b.schema().columns;
            const int rev = b.schema().column_index("revision");
            if (cols.size() != e->schema.columns.size() || rev < 0) return; // another definition
            for (uint32_t i = 0; i < b.rows(); ++i) {
                if (b.u64_at(rev, i) != 0) continue;
                std::vector<std::string_view> parts;
                for (size_t g = 0; g < groups; ++g)
                    parts.push_back(b.string_at(int(storage::window_col::first_group + g), i));
                int64_t end = b.i64_at(storage::window_col::window_end_ms, i);
                r.present.insert({end, encode_key(*e->query, parts)});
                last_end = std::max(last_end, end);
            }
        });
        if (!scanned && scanned.err().code != errc::not_found) return std::move(scanned).err();
        // This run's watermark floor: windows that closed (and, for tumbling and hopping,
        // were emitted) before the stop stay closed, whatever M this run starts from.
        const bool sessions = def.window.kind == window_kind::session;
        e->floor_ms = sessions ? ck->closed_until_ms : std::max(ck->closed_until_ms, last_end);
        // The stored events are judged with the floors their own runs had. A checkpoint
        // from before floor histories: this rebuild keeps the rule it had then (this
        // floor for tumbling and hopping, none for sessions), and the history starts now.
        floor_history judged;
        if (ck->floors) e->floors = judged = *ck->floors;
        else judged.base_floor_ms = sessions ? INT64_MIN : e->floor_ms;
        e->checkpoint_written_from = ck->rebuild_from_ms;
        e->checkpoint_written_closed = ck->closed_until_ms;
        replays.push_back(replay_query{e->query, ck->rebuild_from_ms, std::move(judged)});
        work.push_back(std::move(r));
    }
    if (work.empty()) return report;

    // The stored events from the earliest checkpoint on, through each query's windows
    // again (processing/event_replayer.h).
    replay_progress progress;
    replay_scan scan{_config.data_dir, INT64_MAX, _config.event_bytes_max,
                     rx_parser_factory(&_catalog, _config.event_bytes_max)};
    auto merged = replay_events(scan, replays, progress);
    if (!merged) return std::move(merged).err();
    report.events_replayed = progress.events_read.load();

    for (size_t i = 0; i < work.size(); ++i) {
        entry& e = *work[i].e;
        const int64_t w = query_watermark(restored_max_time_ms, e.query->delay_ms(), e.floor_ms);
        uint64_t emitted = 0, reopened = 0;
        (*merged)[i]->take_all([&](int64_t start, int64_t end, std::string_view k, const uint8_t* b) {
            if (work[i].present.count({end, std::string(k)}) != 0) return; // emitted before the stop
            if (end <= w) {
                // Closed before the stop, but its row was not durable yet: emit it now.
                result_row row{start, end, std::string(k), {}};
                e.query->aggs.finish(b, row.values);
                write_row(e, row, 0);
                ++emitted;
                return;
            }
            e.reopened.push_back(entry::cell{start, end, std::string(k),
                                             std::vector<uint8_t>(b, b + e.query->aggs.blob_bytes())});
            ++reopened;
        });
        e.rows_emitted.fetch_add(emitted);
        _window_rows.fetch_add(emitted);
        report.rows_emitted += emitted;
        report.cells_reopened += reopened;
        ++report.queries_rebuilt;
        SLUICE_LOG_INFO("query %s: rebuilt from event time %lld (watermark floor %lld): %llu closed "
                        "window(s) emitted, %llu reopened",
                        e.query->def.name.c_str(), (long long)replays[i].from_ms, (long long)e.floor_ms,
                        (unsigned long long)emitted, (unsigned long long)reopened);
    }
    return report;
}

void query_service::start(const std::atomic<uint64_t>* flush_requested,
                          std::function<bool()> workers_finished) {
    _flush_requested = flush_requested;
    _workers_finished = std::move(workers_finished);
    _thread = std::thread([this] { run(); });
}

void query_service::join() {
    if (_thread.joinable()) _thread.join();
    _stopping.store(true);
    std::lock_guard lock(_replay_mutex);
    for (auto& j : _replays)
        if (j->thread.joinable()) j->thread.join();
}

void query_service::for_each_writer(
    const std::function<void(const storage::segment_writer&)>& fn) const {
    std::lock_guard lock(_list_mutex);
    for (const auto& e : _queries) fn(*e->writer);
}

uint64_t query_service::bytes_written() const noexcept {
    std::lock_guard lock(_list_mutex);
    uint64_t n = _retired_bytes.load();
    for (const auto& e : _queries) n += e->writer->bytes_written();
    return n;
}

query_service::entry* query_service::find(const std::string& name) const {
    for (const auto& e : _queries)
        if (e->query->def.name == name) return e.get();
    return nullptr;
}

// ---- merger thread ----

void query_service::write_row(entry& e, const result_row& row, uint64_t revision) {
    write_result_row(*e.writer, *e.query, row, revision, _config.event_bytes_max);
    ++e.rows_written;
}

void query_service::finalize(entry& e) {
    uint32_t n = e.merger->finalize([&](const result_row& r) { write_row(e, r, 0); });
    if (n) {
        e.rows_emitted.fetch_add(n, std::memory_order_relaxed);
        _window_rows.fetch_add(n, std::memory_order_relaxed);
    }
}

void query_service::maybe_checkpoint(entry& e, int64_t now_ns, bool force) {
    if (!e.checkpoint_pending && (force || now_ns - e.checkpoint_last_ns >= checkpoint_interval_ns)) {
        int64_t closed = e.merger->closed_until_ms();
        int64_t from = e.merger->rebuild_from_ms();
        // A finished merger (shutdown closed everything) has no meaningful watermark to
        // keep: the last real checkpoint stays.
        if (closed != INT64_MAX && closed != INT64_MIN &&
            (from != e.checkpoint_written_from || closed != e.checkpoint_written_closed)) {
            e.checkpoint_pending = true;
            e.checkpoint_rows = e.rows_written;
            e.checkpoint_from = from;
            e.checkpoint_closed = closed;
        }
        e.checkpoint_last_ns = now_ns;
    }
    if (!e.checkpoint_pending || e.writer->rows_durable() < e.checkpoint_rows) return;
    auto r = write_checkpoint(_config.data_dir, e.query->def.name, e.checkpoint_from,
                              e.checkpoint_closed, e.floors);
    if (!r) SLUICE_LOG_WARN("query %s: checkpoint not written: %s", e.query->def.name.c_str(),
                            r.err().message.c_str());
    e.checkpoint_pending = false;
    e.checkpoint_written_from = e.checkpoint_from;
    e.checkpoint_written_closed = e.checkpoint_closed;
}

void query_service::merge_batch(const partial_batch& batch) {
    for (const auto& e : _queries) {
        if (e->query->uid != batch.query_uid) continue;
        if (batch.kind == batch_kind::closed) e->merger->merge(batch);
        return;
    }
    // A removed query's last cells: dropped with it.
}

bool query_service::drain() {
    bool any = false;
    op* front = _ops.empty() ? nullptr : _ops.front().get();
    for (auto& l : _links) {
        void* obj;
        while (rte_ring_sc_dequeue(l->to_merger, &obj) == 0) {
            auto* batch = static_cast<partial_batch*>(obj);
            any = true;
            if (front != nullptr && front->wants(*batch)) {
                front->take(*batch);
            } else if (front != nullptr && front->holds_back(*batch)) {
                _held.push_back(batch);
                continue;
            } else {
                merge_batch(*batch);
            }
            rte_ring_sp_enqueue(l->free, batch);
        }
    }
    return any;
}

void query_service::run() {
    idle_backoff backoff;
    uint64_t flushes_seen = _flush_requested->load();
    for (;;) {
        // Read before the round: if the workers had finished, this round sees all they sent.
        const bool finished = _workers_finished();
        bool busy = false;
        {
            std::lock_guard lock(_ops_mutex);
            while (!_incoming.empty()) {
                _ops.push_back(std::move(_incoming.front()));
                _incoming.pop_front();
            }
        }
        if (!_ops.empty() && _ops.front()->step(*this)) {
            _ops.erase(_ops.begin());
            busy = true;
        }
        for (auto& e : _queries) e->merger->read_progress();
        busy |= drain();
        const int64_t now = monotonic_ns();
        bool all_done = true;
        for (auto& e : _queries) {
            finalize(*e);
            e->writer->poll(now);
            maybe_checkpoint(*e, now, false);
            all_done = all_done && e->merger->done();
        }
        uint64_t want = _flush_requested->load();
        if (want != flushes_seen) {
            flushes_seen = want;
            for (auto& e : _queries) {
                auto r = e->writer->flush_and_sync();
                if (!r) SLUICE_LOG_ERROR("query %s: flush failed: %s", e->query->def.name.c_str(),
                                         r.err().message.c_str());
            }
            _flushes_done.store(want);
        }
        if (finished && all_done && !busy && _ops.empty()) break;
        if (busy) backoff.reset();
        else backoff.wait();
    }
    {
        std::lock_guard lock(_ops_mutex);
        for (auto& o : _incoming) o->reply.set_value(fail("sluiced is shutting down"));
        _incoming.clear();
    }
    for (auto& o : _ops) o->reply.set_value(fail("sluiced is shutting down"));
    _ops.clear();
    for (auto& e : _queries) {
        auto r = e->writer->close();
        if (!r) SLUICE_LOG_ERROR("closing the %s table failed: %s", e->query->def.name.c_str(),
                                 r.err().message.c_str());
    }
    _done.store(true);
}

} // namespace sluice::control
