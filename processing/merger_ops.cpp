// merger: the operations queued to the merger thread (add, remove, a live view of open
// windows). Each runs in steps on that thread, posting to every worker's mailbox and
// waiting for them between rounds; the caller waits for its reply.
#include "processing/merger.h"
#include "processing/merger_parts.h"

#include <algorithm>
#include <chrono>

#include "base/limits.h"
#include "base/log.h"
#include "processing/state_dir.h"

namespace sluice::processing {

template <typename T, typename Op> result<T> merger::submit(std::shared_ptr<Op> o) {
    auto fut = o->reply.get_future();
    {
        std::lock_guard lock(_ops_mutex);
        if (_done.load()) return make_error(errc::busy, "sluiced is shutting down");
        _incoming.push_back(o);
    }
    if (fut.wait_for(std::chrono::milliseconds(op_timeout_ms)) != std::future_status::ready)
        return make_error(errc::busy, "the query service did not answer within " +
                                          std::to_string(op_timeout_ms / 1000) +
                                          " s (is a worker stuck? see sluicectl stats)");
    return fut.get();
}

result<query_def> merger::add_query(const query_def& def) {
    struct op_impl : merger_op<query_def> {
        query_def def;
        int phase = 0;
        std::vector<uint64_t> seqs;
        bool step(merger& m) override {
            if (phase == 0) {
                if (m.find(def.name) != nullptr) {
                    reply.set_value(
                        make_error(errc::invalid_argument,
                                   "a query named \"" + def.name +
                                       "\" exists (remove it first or pick another name)"));
                    return true;
                }
                if (m._queries.size() >= limits::queries_max) {
                    reply.set_value(make_error(
                        errc::no_space, "at most " + std::to_string(limits::queries_max) +
                                            " continuous queries run at once (remove one first)"));
                    return true;
                }
                // Events parsed from the next catalog generation on are this query's.
                auto e = m.make_entry(def, m._catalog.generation() + 1);
                if (!e) {
                    m._catalog.rollback();
                    reply.set_value(std::move(e).err());
                    return true;
                }
                for (worker* w : m._workers) {
                    worker_command& cmd = w->mailbox().cmd();
                    cmd.what = worker_command::op::add_query;
                    cmd.query = e.value()->query;
                    cmd.state = std::make_unique<window_state>(*e.value()->query);
                    cmd.floor_ms = INT64_MIN;
                    seqs.push_back(w->mailbox().post());
                }
                std::lock_guard lock(m._list_mutex);
                m._queries.push_back(std::move(e.value()));
                phase = 1;
                return false;
            }
            for (size_t i = 0; i < seqs.size(); ++i)
                if (!m._workers[i]->mailbox().done(seqs[i])) return false;
            // Every worker runs it: let the RX extract its fields and stamp the new
            // generation from now on.
            m._catalog.publish();
            if (m._config.on_added) {
                auto r = m._config.on_added(def);
                if (!r)
                    SLUICE_LOG_WARN("query %s added but not saved: %s", def.name.c_str(),
                                    r.err().message.c_str());
            }
            SLUICE_LOG_INFO("query %s added", def.name.c_str());
            reply.set_value(def);
            return true;
        }
    };
    auto o = std::make_shared<op_impl>();
    o->def = def;
    return submit<query_def>(o);
}

result<removed_query> merger::remove_query(const std::string& name) {
    struct op_impl : merger_op<removed_query> {
        std::string name;
        int phase = 0;
        uint32_t uid = 0;
        std::vector<uint64_t> seqs;
        bool step(merger& m) override {
            if (phase == 0) {
                entry* e = find_or_fail(m, name);
                if (e == nullptr) return true;
                uid = e->query->uid;
                for (worker* w : m._workers) {
                    worker_command& cmd = w->mailbox().cmd();
                    cmd.what = worker_command::op::remove_query;
                    cmd.uid = uid;
                    seqs.push_back(w->mailbox().post());
                }
                phase = 1;
                return false;
            }
            for (size_t i = 0; i < seqs.size(); ++i)
                if (!m._workers[i]->mailbox().done(seqs[i])) return false;
            for (worker* w : m._workers) {
                // The worker handed its state back; free it here, off the lcore.
                w->mailbox().cmd().state.reset();
                w->mailbox().cmd().query.reset();
            }
            std::unique_ptr<entry> gone;
            {
                std::lock_guard lock(m._list_mutex);
                auto it = std::find_if(m._queries.begin(), m._queries.end(),
                                       [&](const auto& e) { return e->query->uid == uid; });
                gone = std::move(*it);
                m._queries.erase(it);
            }
            auto r = gone->writer->close();
            m._retired_bytes.fetch_add(gone->writer->bytes_written());
            if (m._config.on_removed) {
                auto saved = m._config.on_removed(name);
                if (!saved)
                    SLUICE_LOG_WARN("query %s removed but not saved: %s", name.c_str(),
                                    saved.err().message.c_str());
            }
            remove_checkpoint(m._config.data_dir, name);
            SLUICE_LOG_INFO("query %s removed (its table stays)", name.c_str());
            removed_query out{name, gone->rows_emitted.load(), std::nullopt};
            if (!r) out.warning = "closing its table failed: " + r.err().message;
            reply.set_value(std::move(out));
            return true;
        }
    };
    auto o = std::make_shared<op_impl>();
    o->name = name;
    return submit<removed_query>(o);
}

// A live view: every worker copies its open cells of the query into snapshot batches;
// the merger's own pending cells join them. Closed batches a worker sends after its
// snapshot are held back until the view is built, so no cell is counted twice.
result<std::vector<window_row>> merger::open_windows(const std::string& name) {
    struct op_impl : merger_op<std::vector<window_row>> {
        std::string name;
        int phase = 0;
        uint32_t uid = 0;
        uint64_t id = 0;
        std::vector<uint64_t> seqs;
        std::vector<bool> ended;
        std::unique_ptr<window_merger> view;
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
            return phase == 1 && b.kind == batch_kind::closed && b.query_uid == uid &&
                   ended[b.worker];
        }
        bool step(merger& m) override {
            if (phase == 0) {
                entry* e = find_or_fail(m, name);
                if (e == nullptr) return true;
                uid = e->query->uid;
                id = m._next_snapshot++;
                view = std::make_unique<window_merger>(e->query, m._config.workers);
                ended.assign(m._workers.size(), false);
                for (worker* w : m._workers) {
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
                if (!m._workers[i]->mailbox().done(seqs[i])) return false;
                if (!m._workers[i]->mailbox().cmd().ok) ended[i] = true;
            }
            if (std::find(ended.begin(), ended.end(), false) != ended.end()) return false;
            std::vector<window_row> rows;
            if (entry* e = m.find(name)) {
                e->merger->copy_pending_to(*view);
                view->finalize_all([&](const result_row& r) {
                    window_row row{r.start_ms, r.end_ms, {}, r.values};
                    for (auto part : split_key(*e->query, r.key))
                        row.group.emplace_back(part);
                    rows.push_back(std::move(row));
                });
            }
            phase = 2;
            // The held-back cells go to the merger now.
            for (partial_batch* b : m._held) {
                m.merge_batch(*b);
                const partial_inbox& in = m._inboxes[b->worker];
                in.give_back(in.ctx, b);
            }
            m._held.clear();
            reply.set_value(std::move(rows));
            return true;
        }
    };
    auto o = std::make_shared<op_impl>();
    o->name = name;
    return submit<std::vector<window_row>>(o);
}

} // namespace sluice::processing
