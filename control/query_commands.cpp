// The continuous queries' control-socket commands: `queries` (list, add, remove),
// `windows` (closed rows from the store, open ones from a live snapshot) and `replay`.
// They run on the control server's pool threads (they wait for the merger or scan a
// table); what changes queries is queued to the merger thread and answered from there.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "base/clock.h"
#include "base/log.h"
#include "base/time_format.h"
#include "control/checkpoint.h"
#include "control/query_config.h"
#include "control/query_service.h"
#include "control/query_service_parts.h"
#include "control/replay.h"
#include "storage/table_reader.h"

namespace sluice::control {

using namespace processing;
using query_detail::fail;
using query_detail::op_timeout_ms;

namespace {

constexpr size_t window_rows_reply_max = 100'000;

// An epoch-ms integer or an RFC 3339 string.
result<int64_t> parse_time(const json& v, const char* what) {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_string())
        if (auto ms = parse_time_arg(v.get_ref<const std::string&>())) return *ms;
    return make_error(errc::invalid_argument,
                      std::string(what) +
                          " must be epoch milliseconds or an RFC 3339 time like 2025-02-28T15:00:00Z");
}

json value_json(const agg_value& v) {
    if (v.is_integer) return v.integer;
    if (!std::isfinite(v.real)) return nullptr;
    return v.real;
}

} // namespace

json query_service::submit(std::shared_ptr<op> o, int timeout_ms) {
    auto fut = o->reply.get_future();
    {
        std::lock_guard lock(_ops_mutex);
        if (_done.load()) return fail("sluiced is shutting down");
        _incoming.push_back(o);
    }
    if (fut.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready)
        return fail("the query service did not answer within " + std::to_string(timeout_ms / 1000) +
                    " s (is a worker stuck? see sluicectl stats)");
    return fut.get();
}

json query_service::stats() const {
    std::lock_guard lock(_list_mutex);
    json out = json::array();
    for (const auto& e : _queries) out.push_back(entry_stats(*e));
    return out;
}

json query_service::entry_stats(const entry& e) const {
    {
        uint64_t events = 0, late = 0, overflow = 0;
        int64_t closed = INT64_MAX;
        for (uint32_t w = 0; w < _config.workers; ++w) {
            const worker_progress& p = e.query->shared->workers[w];
            events += p.events.load(std::memory_order_relaxed);
            late += p.late_events.load(std::memory_order_relaxed);
            overflow += p.overflow.load(std::memory_order_relaxed);
            closed = std::min(closed, p.closed_until_ms.load(std::memory_order_relaxed));
        }
        return json{{"name", e.query->def.name},
                    {"window", window_kind_name(e.query->def.window.kind)},
                    {"events", events},
                    {"late_events", late},
                    {"window_overflow", overflow},
                    {"rows_emitted", e.rows_emitted.load(std::memory_order_relaxed)},
                    {"closed_until_ms", closed == INT64_MIN ? json(nullptr) : json(closed)}};
    }
}

json query_service::list_json() const {
    std::lock_guard lock(_list_mutex);
    json out = json::array();
    for (size_t i = 0; i < _queries.size(); ++i) {
        json q = query_to_json(_queries[i]->query->def);
        q["stats"] = entry_stats(*_queries[i]);
        json cols = json::array();
        for (const auto& c : _queries[i]->schema.columns) cols.push_back(c.name);
        q["columns"] = cols;
        out.push_back(q);
    }
    return out;
}

json query_service::handle_queries(const json& req) {
    std::string action = req.value("action", std::string("list"));
    if (action == "list") return json{{"queries", list_json()}};
    if (action == "add") return add_query(req);
    if (action == "remove") return remove_query(req);
    return fail("unknown queries action \"" + action + "\" (use list, add or remove)");
}

json query_service::add_query(const json& req) {
    if (!req.contains("query")) return fail("queries add needs \"query\": {name, window, ...}");
    auto def = query_from_json(req["query"], _config.default_delay_ms);
    if (!def) return fail(def.err().message);
    struct op_impl : op {
        query_def def;
        int phase = 0;
        std::vector<uint64_t> seqs;
        bool step(query_service& s) override {
            if (phase == 0) {
                if (s.find(def.name) != nullptr) {
                    reply.set_value(fail("a query named \"" + def.name +
                                         "\" exists (remove it first or pick another name)"));
                    return true;
                }
                if (s._queries.size() >= limits::queries_max) {
                    reply.set_value(fail("at most " + std::to_string(limits::queries_max) +
                                         " continuous queries run at once (remove one first)"));
                    return true;
                }
                // Events parsed from the next catalog generation on are this query's.
                auto e = s.make_entry(def, s._catalog.generation() + 1);
                if (!e) {
                    s._catalog.rollback();
                    reply.set_value(fail(e.err().message));
                    return true;
                }
                for (worker* w : s._workers) {
                    worker_command& cmd = w->mailbox().cmd();
                    cmd.what = worker_command::op::add_query;
                    cmd.query = e.value()->query;
                    cmd.state = std::make_unique<window_state>(*e.value()->query);
                    cmd.floor_ms = INT64_MIN;
                    seqs.push_back(w->mailbox().post());
                }
                std::lock_guard lock(s._list_mutex);
                s._queries.push_back(std::move(e.value()));
                phase = 1;
                return false;
            }
            for (size_t i = 0; i < seqs.size(); ++i)
                if (!s._workers[i]->mailbox().done(seqs[i])) return false;
            // Every worker runs it: let the RX extract its fields and stamp the new
            // generation from now on.
            s._catalog.publish();
            std::erase_if(s._removed, [&](const std::string& n) { return n == def.name; });
            s._added.push_back(def);
            auto r = s.save_registry();
            if (!r) SLUICE_LOG_WARN("query %s added but not saved: %s", def.name.c_str(),
                                    r.err().message.c_str());
            SLUICE_LOG_INFO("query %s added", def.name.c_str());
            reply.set_value(json{{"ok", true}, {"query", query_to_json(def)}, {"table", def.name}});
            return true;
        }
    };
    auto o = std::make_shared<op_impl>();
    o->def = def.value();
    return submit(o, op_timeout_ms);
}

json query_service::remove_query(const json& req) {
    std::string name = req.value("name", std::string());
    if (name.empty()) return fail("queries remove needs \"name\"");
    struct op_impl : op {
        std::string name;
        int phase = 0;
        uint32_t uid = 0;
        std::vector<uint64_t> seqs;
        bool step(query_service& s) override {
            if (phase == 0) {
                entry* e = find_or_reply(s, name);
                if (e == nullptr) return true;
                uid = e->query->uid;
                for (worker* w : s._workers) {
                    worker_command& cmd = w->mailbox().cmd();
                    cmd.what = worker_command::op::remove_query;
                    cmd.uid = uid;
                    seqs.push_back(w->mailbox().post());
                }
                phase = 1;
                return false;
            }
            for (size_t i = 0; i < seqs.size(); ++i)
                if (!s._workers[i]->mailbox().done(seqs[i])) return false;
            for (worker* w : s._workers) {
                // The worker handed its state back; free it here, off the lcore.
                w->mailbox().cmd().state.reset();
                w->mailbox().cmd().query.reset();
            }
            std::unique_ptr<entry> gone;
            {
                std::lock_guard lock(s._list_mutex);
                auto it = std::find_if(s._queries.begin(), s._queries.end(),
                                       [&](const auto& e) { return e->query->uid == uid; });
                gone = std::move(*it);
                s._queries.erase(it);
            }
            auto r = gone->writer->close();
            s._retired_bytes.fetch_add(gone->writer->bytes_written());
            std::erase_if(s._added, [&](const query_def& q) { return q.name == name; });
            if (std::find(s._removed.begin(), s._removed.end(), name) == s._removed.end())
                s._removed.push_back(name);
            auto saved = s.save_registry();
            if (!saved) SLUICE_LOG_WARN("query %s removed but not saved: %s", name.c_str(),
                                        saved.err().message.c_str());
            std::error_code ec;
            std::filesystem::remove(checkpoint_path(s._config.data_dir, name), ec);
            SLUICE_LOG_INFO("query %s removed (its table stays)", name.c_str());
            json out{{"ok", true}, {"removed", name}, {"rows_emitted", gone->rows_emitted.load()}};
            if (!r) out["warning"] = "closing its table failed: " + r.err().message;
            reply.set_value(out);
            return true;
        }
    };
    auto o = std::make_shared<op_impl>();
    o->name = name;
    return submit(o, op_timeout_ms);
}

// A live view: every worker copies its open cells of the query into snapshot batches;
// the merger's own pending cells join them. Closed batches a worker sends after its
// snapshot are held back until the view is built, so no cell is counted twice.
json query_service::open_windows(const std::string& name) {
    struct op_impl : op {
        std::string name;
        int phase = 0;
        uint32_t uid = 0;
        uint64_t id = 0;
        std::vector<uint64_t> seqs;
        std::vector<bool> ended;
        std::unique_ptr<query_merger> view;
        bool wants(const partial_batch& b) const override {
            return phase == 1 && b.kind != batch_kind::closed && b.snapshot_id == id;
        }
        void take(const partial_batch& b) override {
            b.for_each([&](int64_t start, int64_t end, std::string_view key, const uint8_t* blob) {
                view->merge_cell(start, end, key, blob);
            });
            if (b.kind == batch_kind::snapshot_end) ended[b.worker] = true;
        }
        bool holds_back(const partial_batch& b) const override {
            return phase == 1 && b.kind == batch_kind::closed && b.query_uid == uid && ended[b.worker];
        }
        bool step(query_service& s) override {
            if (phase == 0) {
                entry* e = find_or_reply(s, name);
                if (e == nullptr) return true;
                uid = e->query->uid;
                id = s._next_snapshot++;
                view = std::make_unique<query_merger>(e->query, s._config.workers);
                ended.assign(s._workers.size(), false);
                for (worker* w : s._workers) {
                    worker_command& cmd = w->mailbox().cmd();
                    cmd.what = worker_command::op::snapshot;
                    cmd.uid = uid;
                    cmd.snapshot_id = id;
                    seqs.push_back(w->mailbox().post());
                }
                phase = 1;
                return false;
            }
            for (size_t i = 0; i < seqs.size(); ++i) {
                if (!s._workers[i]->mailbox().done(seqs[i])) return false;
                if (!s._workers[i]->mailbox().cmd().ok) ended[i] = true;
            }
            if (std::find(ended.begin(), ended.end(), false) != ended.end()) return false;
            entry* e = s.find(name);
            json rows = json::array();
            if (e != nullptr) {
                e->merger->copy_pending_to(*view);
                view->finalize_all([&](const result_row& r) {
                    json row = json::array({r.start_ms, r.end_ms});
                    for (auto part : split_key(*e->query, r.key)) row.push_back(std::string(part));
                    for (const auto& v : r.values) row.push_back(value_json(v));
                    rows.push_back(row);
                });
            }
            phase = 2;
            // The held-back cells go to the merger now.
            for (partial_batch* b : s._held) {
                s.merge_batch(*b);
                rte_ring_sp_enqueue(s._links[b->worker]->free, b);
            }
            s._held.clear();
            reply.set_value(json{{"ok", true}, {"rows", rows}});
            return true;
        }
    };
    auto o = std::make_shared<op_impl>();
    o->name = name;
    return submit(o, op_timeout_ms);
}

json query_service::handle_replay(const json& req) {
    auto job_json = [](const replay_job& j) {
        static const char* states[] = {"running", "done", "failed"};
        json o{{"id", j.id},
               {"query", j.query},
               {"from_ms", j.from_ms},
               {"to_ms", j.to_ms},
               {"state", states[j.state.load()]},
               {"events_read", j.progress.events_read.load()},
               {"rows_written", j.progress.rows_written.load()},
               {"segments_done", j.progress.segments_done.load()},
               {"segments_total", j.progress.segments_total.load()}};
        if (j.state.load() == 2) o["error"] = j.error;
        return o;
    };
    std::string action = req.value("action", std::string("start"));
    if (action == "status" || action == "list") {
        std::lock_guard lock(_replay_mutex);
        json out = json::array();
        for (const auto& j : _replays)
            if (action == "list" || (req.contains("id") && req["id"] == j->id)) out.push_back(job_json(*j));
        if (action == "status") {
            if (out.empty()) return fail("no replay with that id (see replay list)");
            return json{{"replay", out[0]}};
        }
        return json{{"replays", out}};
    }
    if (action != "start") return fail("unknown replay action \"" + action + "\" (use start, status or list)");
    std::string name = req.value("query", std::string());
    if (name.empty() || !req.contains("from") || !req.contains("to"))
        return fail("replay needs \"query\", \"from\" and \"to\" (epoch ms or RFC 3339)");
    auto from = parse_time(req["from"], "from");
    if (!from) return fail(from.err().message);
    auto to = parse_time(req["to"], "to");
    if (!to) return fail(to.err().message);
    if (*from >= *to) return fail("replay: from must be before to");
    replay_request r;
    {
        std::lock_guard lock(_list_mutex);
        entry* e = find(name);
        if (e == nullptr) return fail("no running query named \"" + name + "\" (see sluicectl queries list)");
        r.query = e->query;
        r.schema = e->schema;
        r.floors = e->floors;
        int64_t closed = INT64_MAX;
        for (uint32_t w = 0; w < _config.workers; ++w)
            closed = std::min(closed, e->query->shared->workers[w].closed_until_ms.load(std::memory_order_acquire));
        r.closed_until_ms = closed;
    }
    r.catalog = &_catalog;
    r.data_dir = _config.data_dir;
    r.from_ms = *from;
    r.to_ms = *to;
    r.event_bytes_max = _config.event_bytes_max;
    r.writer = table_writer_config();
    std::lock_guard lock(_replay_mutex);
    if (_stopping.load()) return fail("sluiced is shutting down");
    for (const auto& j : _replays)
        if (j->state.load() == 0)
            return fail("replay " + std::to_string(j->id) + " is still running (one at a time; see replay status)");
    // Revisions only grow, across restarts too: later replays' rows win.
    r.revision = _last_revision = std::max<uint64_t>(_last_revision + 1, uint64_t(wall_clock_ms()));
    auto job = std::make_unique<replay_job>();
    job->id = r.revision;
    job->query = name;
    job->from_ms = r.from_ms;
    job->to_ms = r.to_ms;
    replay_job* jp = job.get();
    job->thread = std::thread([this, jp, r] {
        auto res = run_replay(r, jp->progress, _stopping);
        if (res) {
            SLUICE_LOG_INFO("replay %llu of %s [%lld, %lld): %llu events read, %llu rows written",
                            (unsigned long long)jp->id, jp->query.c_str(), (long long)jp->from_ms,
                            (long long)jp->to_ms, (unsigned long long)jp->progress.events_read.load(),
                            (unsigned long long)jp->progress.rows_written.load());
            jp->state.store(1);
        } else {
            jp->error = res.err().message;
            SLUICE_LOG_WARN("replay %llu of %s failed: %s", (unsigned long long)jp->id, jp->query.c_str(),
                            jp->error.c_str());
            jp->state.store(2);
        }
    });
    _replays.push_back(std::move(job));
    return json{{"replay", job_json(*jp)}};
}

json query_service::handle_windows(const json& req) {
    std::string name = req.value("query", std::string());
    if (name.empty()) return fail("windows needs \"query\" (see sluicectl queries list)");
    int64_t from = INT64_MIN, to = INT64_MAX;
    if (req.contains("from") && !req["from"].is_null()) {
        auto t = parse_time(req["from"], "from");
        if (!t) return fail(t.err().message);
        from = *t;
    }
    if (req.contains("to") && !req["to"].is_null()) {
        auto t = parse_time(req["to"], "to");
        if (!t) return fail(t.err().message);
        to = *t;
    }
    size_t limit = std::min<size_t>(req.value("limit", window_rows_reply_max), window_rows_reply_max);
    json columns = json::array();
    bool known = false;
    {
        std::lock_guard lock(_list_mutex);
        if (entry* e = find(name)) {
            known = true;
            for (size_t c = 0; c + 1 < e->schema.columns.size(); ++c)
                columns.push_back(e->schema.columns[c].name);
        }
    }
    // Closed windows: what the store holds, the newest revision of each (a replay's
    // rows replace the live ones).
    std::map<std::tuple<int64_t, int64_t, std::string>, std::pair<uint64_t, json>> closed;
    auto scanned = storage::scan_table(_config.data_dir, name, from, to, [&](const storage::column_batch& b) {
        const auto& cols = b.schema().columns;
        if (cols.size() < 3 || cols.back().name != "revision") return;
        if (columns.empty())
            for (size_t c = 0; c + 1 < cols.size(); ++c) columns.push_back(cols[c].name);
        for (uint32_t r = 0; r < b.rows(); ++r) {
            json row = json::array();
            std::string group;
            for (size_t c = 0; c + 1 < cols.size(); ++c) {
                switch (cols[c].type) {
                case storage::column_type::i64: row.push_back(b.i64_at(int(c), r)); break;
                case storage::column_type::u64: row.push_back(b.u64_at(int(c), r)); break;
                case storage::column_type::u8: row.push_back(b.u8_at(int(c), r)); break;
                case storage::column_type::f64: {
                    double v = b.f64_at(int(c), r);
                    row.push_back(std::isfinite(v) ? json(v) : json(nullptr));
                    break;
                }
                case storage::column_type::string:
                case storage::column_type::bytes: {
                    std::string s(b.string_at(int(c), r));
                    if (c >= size_t(storage::window_col::first_group)) group += s + '\0';
                    row.push_back(std::move(s));
                    break;
                }
                }
            }
            uint64_t revision = b.u64_at(int(cols.size() - 1), r);
            auto k = std::make_tuple(b.i64_at(storage::window_col::window_end_ms, r),
                                     b.i64_at(storage::window_col::window_start_ms, r), group);
            auto it = closed.find(k);
            if (it == closed.end() || it->second.first <= revision) closed[k] = {revision, row};
        }
    });
    if (!scanned && scanned.err().code != errc::not_found) return fail(scanned.err().message);
    if (!scanned && !known) return fail("no query or table named \"" + name + "\" (see sluicectl queries list)");
    json rows = json::array();
    bool truncated = false;
    // Newest first (by end, then start, then group, descending): with a limit, the
    // newest windows are the ones kept.
    for (auto it = closed.rbegin(); it != closed.rend(); ++it) {
        if (rows.size() == limit) {
            truncated = true;
            break;
        }
        rows.push_back(std::move(it->second.second));
    }
    json out{{"query", name}, {"columns", columns}, {"rows", rows}, {"truncated", truncated}};
    if (req.value("open", false)) {
        if (!known) return fail("no running query named \"" + name + "\": no open windows to show");
        json open = open_windows(name);
        if (!open.value("ok", false)) return open;
        out["open_rows"] = open["rows"];
    }
    return out;
}

} // namespace sluice::control
