#include "processing/merger.h"
#include "processing/merger_parts.h"

#include <pthread.h>

#include <algorithm>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "processing/result_table.h"
#include "processing/state_dir.h"

namespace sluice::processing {

namespace {
constexpr int64_t checkpoint_interval_ns = 1'000'000'000;
} // namespace

const char* replay_state_name(replay_status::state s) noexcept {
    switch (s) {
    case replay_status::state::running: return "running";
    case replay_status::state::done: return "done";
    case replay_status::state::failed: return "failed";
    }
    return "unknown";
}

merger::merger(merger_config config) : _config(std::move(config)) {}

merger::~merger() {
    join();
}

result<std::unique_ptr<merger>> merger::open(merger_config config,
                                             const std::vector<query_def>& queries) {
    SLUICE_TRY(create_state_dir(config.data_dir));
    if (queries.size() > limits::queries_max)
        return make_error(errc::bad_config, "more than " + std::to_string(limits::queries_max) +
                                                " continuous queries configured and added");
    std::unique_ptr<merger> m(new merger(std::move(config)));
    for (const auto& q : queries) {
        auto e = m->make_entry(q, 0);
        if (!e) return make_error(e.err().code, "query \"" + q.name + "\": " + e.err().message);
        m->_queries.push_back(std::move(e.value()));
    }
    m->_catalog.publish();
    return m;
}

result<std::unique_ptr<merger::entry>> merger::make_entry(const query_def& def,
                                                          uint32_t start_generation) {
    auto q = compile(def, _catalog, _next_uid, start_generation, _config.event_bytes_max);
    if (!q) return std::move(q).err();
    ++_next_uid;
    auto e = std::make_unique<entry>();
    e->query = std::move(q.value());
    e->merger = std::make_unique<window_merger>(e->query, _config.workers);
    e->schema = result_table_schema(*e->query);
    storage::writer_config wc = _config.table_writer;
    wc.writer_name = "merger";
    auto w = storage::segment_writer::open(wc, e->schema);
    if (!w) return std::move(w).err();
    e->writer = std::move(w.value());
    return e;
}

void merger::start(const std::atomic<uint64_t>* flush_requested,
                   std::function<bool()> workers_finished) {
    _flush_requested = flush_requested;
    _workers_finished = std::move(workers_finished);
    _thread = std::thread([this] { run(); });
    pthread_setname_np(_thread.native_handle(), "sluice-merger"); // top -H, perf, the soak
}

void merger::join() {
    if (_thread.joinable()) _thread.join();
    _stopping.store(true);
    std::lock_guard lock(_replay_mutex);
    for (auto& j : _replays)
        if (j->thread.joinable()) j->thread.join();
}

// ---- reads (any thread) ----

void merger::for_each_writer(const std::function<void(const storage::segment_writer&)>& fn) const {
    std::lock_guard lock(_list_mutex);
    for (const auto& e : _queries)
        fn(*e->writer);
}

void merger::for_each_table(
    const std::function<void(const std::string&, const storage::segment_writer&)>& fn) const {
    std::lock_guard lock(_list_mutex);
    for (const auto& e : _queries)
        fn(e->query->def.name, *e->writer);
}

uint64_t merger::bytes_written() const noexcept {
    std::lock_guard lock(_list_mutex);
    uint64_t n = _retired_bytes.load();
    for (const auto& e : _queries)
        n += e->writer->bytes_written();
    return n;
}

merger::entry* merger::find(const std::string& name) const {
    for (const auto& e : _queries)
        if (e->query->def.name == name) return e.get();
    return nullptr;
}

query_stats merger::entry_stats(const entry& e) const {
    query_stats s;
    s.name = e.query->def.name;
    s.window = e.query->def.window.kind;
    int64_t closed = INT64_MAX;
    for (uint32_t w = 0; w < _config.workers; ++w) {
        const worker_progress& p = e.query->shared->workers[w];
        s.events += p.events.load(std::memory_order_relaxed);
        s.late_events += p.late_events.load(std::memory_order_relaxed);
        s.window_overflow += p.overflow.load(std::memory_order_relaxed);
        closed = std::min(closed, p.closed_until_ms.load(std::memory_order_relaxed));
    }
    s.rows_emitted = e.rows_emitted.load(std::memory_order_relaxed);
    s.pending_cells = e.pending_cells.load(std::memory_order_relaxed);
    s.closed_until_ms = closed;
    return s;
}

std::vector<query_stats> merger::stats() const {
    std::lock_guard lock(_list_mutex);
    std::vector<query_stats> out;
    for (const auto& e : _queries)
        out.push_back(entry_stats(*e));
    return out;
}

std::vector<query_info> merger::list() const {
    std::lock_guard lock(_list_mutex);
    std::vector<query_info> out;
    for (const auto& e : _queries) {
        query_info q{e->query->def, entry_stats(*e), {}};
        for (const auto& c : e->schema.columns)
            q.columns.push_back(c.name);
        out.push_back(std::move(q));
    }
    return out;
}

std::optional<std::vector<std::string>> merger::columns(const std::string& name) const {
    std::lock_guard lock(_list_mutex);
    const entry* e = find(name);
    if (e == nullptr) return std::nullopt;
    std::vector<std::string> out;
    for (size_t c = 0; c + 1 < e->schema.columns.size(); ++c)
        out.push_back(e->schema.columns[c].name);
    return out;
}

// ---- merger thread ----

void merger::write_row(entry& e, const result_row& row, uint64_t revision) {
    write_result_row(*e.writer, *e.query, row, revision, _config.event_bytes_max);
    ++e.rows_written;
}

void merger::finalize(entry& e) {
    uint32_t n = e.merger->finalize([&](const result_row& r) { write_row(e, r, 0); });
    e.pending_cells.store(e.merger->pending_cells(), std::memory_order_relaxed);
    if (n) {
        e.rows_emitted.fetch_add(n, std::memory_order_relaxed);
        _window_rows.fetch_add(n, std::memory_order_relaxed);
    }
}

void merger::maybe_checkpoint(entry& e, int64_t now_ns, bool force) {
    if (!e.checkpoint_pending &&
        (force || now_ns - e.checkpoint_last_ns >= checkpoint_interval_ns)) {
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
    if (!r)
        SLUICE_LOG_WARN("query %s: checkpoint not written: %s", e.query->def.name.c_str(),
                        r.err().message.c_str());
    e.checkpoint_pending = false;
    e.checkpoint_written_from = e.checkpoint_from;
    e.checkpoint_written_closed = e.checkpoint_closed;
}

void merger::merge_batch(const partial_batch& batch) {
    for (const auto& e : _queries) {
        if (e->query->uid != batch.query_uid) continue;
        if (batch.kind == batch_kind::closed) e->merger->merge(batch);
        return;
    }
    // A removed query's last cells: dropped with it.
}

bool merger::drain() {
    bool any = false;
    op* front = _ops.empty() ? nullptr : _ops.front().get();
    for (auto& in : _inboxes) {
        while (partial_batch* batch = in.receive(in.ctx)) {
            any = true;
            if (front != nullptr && front->wants(*batch)) {
                front->take(*batch);
            } else if (front != nullptr && front->holds_back(*batch)) {
                _held.push_back(batch);
                continue;
            } else {
                merge_batch(*batch);
            }
            in.give_back(in.ctx, batch);
        }
    }
    return any;
}

void merger::run() {
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
        for (auto& e : _queries)
            e->merger->read_progress();
        busy |= drain();
        const int64_t now = monotonic_ns();
        bool all_done = true;
        for (auto& e : _queries) {
            finalize(*e);
            e->writer->poll(now);
            maybe_checkpoint(*e, now, false);
            all_done = all_done && (e->merger->done() || (finished && e->merger->abandoned()));
        }
        uint64_t want = _flush_requested->load();
        if (want != flushes_seen) {
            flushes_seen = want;
            for (auto& e : _queries) {
                auto r = e->writer->flush_and_sync();
                if (!r)
                    SLUICE_LOG_ERROR("query %s: flush failed: %s", e->query->def.name.c_str(),
                                     r.err().message.c_str());
            }
            _flushes_done.store(want);
        }
        if (finished && all_done && !busy && _ops.empty()) break;
        if (busy) {
            backoff.reset();
        } else if (_wake != nullptr && backoff.spun_out() && _ops.empty()) {
            if (wait_idle(now)) backoff.reset();
        } else {
            backoff.wait();
        }
    }
    fail_pending_ops();
    for (auto& e : _queries) {
        auto r = e->writer->close();
        if (!r)
            SLUICE_LOG_ERROR("closing the %s table failed: %s", e->query->def.name.c_str(),
                             r.err().message.c_str());
    }
    _done.store(true);
}

// Blocks until a worker publishes a batch or window progress, the first table writer's
// group commit is due or _max_wait_ns pass (limits::idle_wait_us in the daemon). The last look (drain) is after the flag is set (idle_wake).
// Returns whether that look found batches.
bool merger::wait_idle(int64_t now_ns) {
    int64_t until = now_ns + _max_wait_ns;
    for (auto& e : _queries)
        until = std::min(until, e->writer->next_deadline_ns(now_ns));
    if (until <= now_ns) return false;
    _wake->prepare();
    const bool got = drain();
    if (!got) (void)_wake->block(until - now_ns);
    _wake->done();
    return got;
}

void merger::fail_pending_ops() {
    {
        std::lock_guard lock(_ops_mutex);
        for (auto& o : _incoming)
            o->fail("sluiced is shutting down");
        _incoming.clear();
    }
    for (auto& o : _ops)
        o->fail("sluiced is shutting down");
    _ops.clear();
}

} // namespace sluice::processing
