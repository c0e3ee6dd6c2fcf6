// merger: replay jobs (range_replay.h), one at a time, each on its own thread.
#include "processing/merger.h"
#include "processing/merger_parts.h"

#include <algorithm>

#include "base/clock.h"
#include "base/log.h"

namespace sluice::processing {

namespace {

replay_status status_of(const merger::replay_job& j) {
    replay_status s;
    s.id = j.id;
    s.query = j.query;
    s.from_ms = j.from_ms;
    s.to_ms = j.to_ms;
    s.st = j.state.load();
    s.events_read = j.progress.events_read.load();
    s.rows_written = j.progress.rows_written.load();
    s.segments_done = j.progress.segments_done.load();
    s.segments_total = j.progress.segments_total.load();
    if (s.st == replay_status::state::failed) s.error = j.error;
    return s;
}

} // namespace

result<replay_status> merger::start_replay(const std::string& name, int64_t from_ms,
                                           int64_t to_ms) {
    if (from_ms >= to_ms)
        return make_error(errc::invalid_argument, "replay: from must be before to");
    replay_request r;
    {
        std::lock_guard lock(_list_mutex);
        entry* e = find(name);
        if (e == nullptr)
            return make_error(errc::not_found, "no running query named \"" + name +
                                                   "\" (see sluicectl queries list)");
        r.query = e->query;
        r.schema = e->schema;
        r.floors = e->floors;
        int64_t closed = INT64_MAX;
        for (uint32_t w = 0; w < _config.workers; ++w)
            closed = std::min(closed, e->query->shared->workers[w].closed_until_ms.load(
                                          std::memory_order_acquire));
        r.closed_until_ms = closed;
    }
    r.make_parser = _config.make_parser(&_catalog);
    r.data_dir = _config.data_dir;
    r.from_ms = from_ms;
    r.to_ms = to_ms;
    r.event_bytes_max = _config.event_bytes_max;
    r.writer = _config.table_writer;
    std::lock_guard lock(_replay_mutex);
    if (_stopping.load()) return make_error(errc::busy, "sluiced is shutting down");
    for (const auto& j : _replays)
        if (j->state.load() == replay_status::state::running)
            return make_error(errc::busy,
                              "replay " + std::to_string(j->id) +
                                  " is still running (one at a time; see replay status)");
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
                            (long long)jp->to_ms,
                            (unsigned long long)jp->progress.events_read.load(),
                            (unsigned long long)jp->progress.rows_written.load());
            jp->state.store(replay_status::state::done);
        } else {
            jp->error = res.err().message;
            SLUICE_LOG_WARN("replay %llu of %s failed: %s", (unsigned long long)jp->id,
                            jp->query.c_str(), jp->error.c_str());
            jp->state.store(replay_status::state::failed);
        }
    });
    _replays.push_back(std::move(job));
    return status_of(*jp);
}

std::optional<replay_status> merger::replay(uint64_t id) const {
    std::lock_guard lock(_replay_mutex);
    for (const auto& j : _replays)
        if (j->id == id) return status_of(*j);
    return std::nullopt;
}

std::vector<replay_status> merger::replays() const {
    std::lock_guard lock(_replay_mutex);
    std::vector<replay_status> out;
    for (const auto& j : _replays)
        out.push_back(status_of(*j));
    return out;
}

} // namespace sluice::processing
