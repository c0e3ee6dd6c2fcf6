// merger: the restart rebuild of open windows (§7.5) and handing the queries to the
// workers before they run.
#include "processing/merger.h"
#include "processing/merger_parts.h"

#include <algorithm>
#include <filesystem>
#include <set>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/log.h"
#include "processing/state_dir.h"
#include "processing/window_assigner.h"
#include "storage/segment_files.h"
#include "storage/table_reader.h"

namespace sluice::processing {

result<void> merger::attach(const std::vector<worker*>& workers,
                            std::vector<partial_inbox> inboxes) {
    SLUICE_ASSERT(workers.size() == _config.workers && inboxes.size() == _config.workers);
    _workers = workers;
    _inboxes = std::move(inboxes);
    for (auto& e : _queries) {
        for (size_t i = 0; i < workers.size(); ++i) {
            auto state = std::make_unique<window_state>(*e->query);
            // Windows open at the last stop, rebuilt from the store (restore()), spread
            // over the workers: any worker may hold any partial, the merger adds them up.
            for (size_t c = i; c < e->reopened.size(); c += workers.size()) {
                const auto& cell = e->reopened[c];
                uint64_t h = XXH3_64bits(cell.key.data(), cell.key.size());
                if (!state->install(cell.start, cell.end, cell.key, h, cell.blob.data()))
                    return make_error(
                        errc::no_space,
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
        SLUICE_TRY(write_checkpoint(_config.data_dir, e->query->def.name,
                                    e->checkpoint_written_from, e->checkpoint_written_closed,
                                    e->floors));
    }
    return ok_result();
}

result<restore_report> merger::restore(int64_t restored_max_time_ms, int64_t stored_max_time_ms) {
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
        auto scanned = storage::scan_table(
            _config.data_dir, def.name, ck->rebuild_from_ms, INT64_MAX,
            [&](const storage::column_batch& b) {
                const auto& cols = b.schema().columns;
                const int rev = b.schema().column_index("revision");
                if (cols.size() != e->schema.columns.size() || rev < 0)
                    return; // another definition
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
        if (ck->floors)
            e->floors = judged = *ck->floors;
        else
            judged.base_floor_ms = sessions ? INT64_MIN : e->floor_ms;
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
                     _config.make_parser(&_catalog)};
    auto merged = replay_events(scan, replays, progress);
    if (!merged) return std::move(merged).err();
    report.events_replayed = progress.events_read.load();

    for (size_t i = 0; i < work.size(); ++i) {
        entry& e = *work[i].e;
        const int64_t w = query_watermark(restored_max_time_ms, e.query->delay_ms(), e.floor_ms);
        uint64_t emitted = 0, reopened = 0;
        (*merged)[i]->take_all(
            [&](int64_t start, int64_t end, std::string_view k, const uint8_t* b) {
                if (work[i].present.count({end, std::string(k)}) != 0)
                    return; // emitted before the stop
                if (window_closed(end, w)) {
                    // Closed before the stop, but its row was not durable yet: emit it now.
                    result_row row{start, end, std::string(k), {}};
                    e.query->aggs.finish(b, row.values);
                    write_row(e, row, 0);
                    ++emitted;
                    return;
                }
                e.reopened.push_back(
                    entry::cell{start, end, std::string(k),
                                std::vector<uint8_t>(b, b + e.query->aggs.blob_bytes())});
                ++reopened;
            });
        e.rows_emitted.fetch_add(emitted);
        _window_rows.fetch_add(emitted);
        report.rows_emitted += emitted;
        report.cells_reopened += reopened;
        ++report.queries_rebuilt;
        SLUICE_LOG_INFO(
            "query %s: rebuilt from event time %lld (watermark floor %lld): %llu closed "
            "window(s) emitted, %llu reopened",
            e.query->def.name.c_str(), (long long)replays[i].from_ms, (long long)e.floor_ms,
            (unsigned long long)emitted, (unsigned long long)reopened);
    }
    return report;
}

} // namespace sluice::processing
