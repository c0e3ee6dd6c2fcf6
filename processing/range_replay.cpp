#include "processing/range_replay.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "processing/result_table.h"
#include "processing/window_assigner.h"

namespace sluice::processing {

result<void> run_replay(const replay_request& req, replay_progress& progress,
                        const std::atomic<bool>& cancel) {
    const compiled_query& q = *req.query;
    const window_def& wd = q.def.window;
    replay_scan scan{req.data_dir, req.to_ms, req.event_bytes_max, req.make_parser};
    // Sessions: read one gap earlier, so a session's true first event is always seen.
    const int64_t from = wd.kind == window_kind::session ? req.from_ms - wd.gap_ms : req.from_ms;
    auto merged =
        replay_events(scan, {replay_query{req.query, from, req.floors}}, progress, &cancel);
    if (!merged) return std::move(merged).err();

    // The windows wholly inside the range and closed live, in (end, start, key) order.
    std::vector<result_row> rows;
    merged->front()->take_all([&](int64_t s, int64_t e, std::string_view k, const uint8_t* b) {
        if (s < req.from_ms || e > req.to_ms || !window_closed(e, req.closed_until_ms)) return;
        result_row row{s, e, std::string(k), {}};
        q.aggs.finish(b, row.values);
        rows.push_back(std::move(row));
    });
    std::sort(rows.begin(), rows.end(), [](const result_row& a, const result_row& b) {
        return std::tie(a.end_ms, a.start_ms, a.key) < std::tie(b.end_ms, b.start_ms, b.key);
    });
    storage::writer_config wc = req.writer;
    wc.writer_name = "r" + std::to_string(req.revision);
    auto w = storage::segment_writer::open(wc, req.schema);
    if (!w) return std::move(w).err();
    for (const auto& row : rows) {
        write_result_row(**w, q, row, req.revision, req.event_bytes_max);
        progress.rows_written.fetch_add(1);
    }
    return (*w)->close();
}

} // namespace sluice::processing
