#include "control/replay.h"

#include <algorithm>
#include <vector>

#include "dataplane/event_parse.h"

namespace sluice::control {

using namespace processing;

namespace {

class rx_parser final : public stored_event_parser {
  public:
    rx_parser(const field_catalog* catalog, uint32_t event_bytes_max)
        : _parser(dataplane::parse_config{event_bytes_max, 0, catalog}) {}
    // A stored event was in the past when received: no future-skew check now.
    void parse(std::string_view raw, event_slot& out) override {
        _parser.parse(raw, INT64_MAX / 2, out);
    }

  private:
    dataplane::event_parser _parser;
};

} // namespace

parser_factory rx_parser_factory(const field_catalog* catalog, uint32_t event_bytes_max) {
    return [catalog, event_bytes_max] {
        return std::make_unique<rx_parser>(catalog, event_bytes_max);
    };
}

void write_result_row(storage::segment_writer& writer, const compiled_query& q,
                      const result_row& row, uint64_t revision, uint32_t event_bytes_max) {
    auto& b = writer.batch();
    b.push_i64(storage::window_col::window_start_ms, row.start_ms);
    b.push_i64(storage::window_col::window_end_ms, row.end_ms);
    int col = storage::window_col::first_group;
    for (std::string_view part : split_key(q, row.key))
        b.push_string(col++, part.substr(0, event_bytes_max));
    for (const auto& v : row.values) {
        if (v.is_integer)
            b.push_u64(col++, v.integer);
        else
            b.push_f64(col++, v.real);
    }
    b.push_u64(col, revision);
    b.end_row();
    writer.commit_row();
}

result<void> run_replay(const replay_request& req, replay_progress& progress,
                        const std::atomic<bool>& cancel) {
    const compiled_query& q = *req.query;
    const window_def& wd = q.def.window;
    replay_scan scan{req.data_dir, req.to_ms, req.event_bytes_max,
                     rx_parser_factory(req.catalog, req.event_bytes_max)};
    // Sessions: read one gap earlier, so a session's true first event is always seen.
    const int64_t from = wd.kind == window_kind::session ? req.from_ms - wd.gap_ms : req.from_ms;
    auto merged =
        replay_events(scan, {replay_query{req.query, from, req.floors}}, progress, &cancel);
    if (!merged) return std::move(merged).err();

    // The windows wholly inside the range and closed live, in (end, start, key) order.
    std::vector<result_row> rows;
    merged->front()->take_all([&](int64_t s, int64_t e, std::string_view k, const uint8_t* b) {
        if (s < req.from_ms || e > req.to_ms || e > req.closed_until_ms) return;
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

} // namespace sluice::control
