#include "control/replay.h"

#include <algorithm>
#include <mutex>
#include <vector>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "dataplane/event_parse.h"
#include "storage/column_batch.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"
#include "storage/table_reader.h"

namespace sluice::control {

using namespace processing;

namespace {

int column_named(const storage::table_schema& s, const char* name) {
    for (size_t i = 0; i < s.columns.size(); ++i)
        if (s.columns[i].name == name) return int(i);
    return -1;
}

// What one TBB task owns: a parser, a slot, and the partial windows of the segments it read.
struct task_state {
    dataplane::event_parser parser;
    std::unique_ptr<char[]> slot_mem;
    event_slot* slot;
    std::vector<char> key;
    std::vector<uint64_t> blob;
    std::unique_ptr<query_merger> partial;

    task_state(const replay_request& req)
        : parser(dataplane::parse_config{req.event_bytes_max, 0, req.catalog}),
          slot_mem(new char[slot_bytes(req.event_bytes_max) + alignof(event_slot)]),
          key(req.event_bytes_max + 64), partial(std::make_unique<query_merger>(req.query, 1)) {
        void* p = slot_mem.get();
        size_t space = slot_bytes(req.event_bytes_max) + alignof(event_slot);
        slot = static_cast<event_slot*>(std::align(alignof(event_slot), sizeof(event_slot), p, space));
    }
};

// One stored event into the task's partial windows, judged as it was live.
void replay_event(const compiled_query& q, task_state& ts, std::string_view raw, int64_t t, int64_t m) {
    ts.parser.parse(raw, INT64_MAX / 2, *ts.slot);
    const event_slot& s = *ts.slot;
    if (s.kind != slot_kind::event || !q.matches(s)) return;
    uint32_t len = q.build_key(s, ts.key.data());
    std::string_view key(ts.key.data(), len);
    agg_input inputs[16];
    q.read_inputs(s, inputs);
    ts.blob.assign(q.aggs.blob_bytes() / 8, 0);
    auto* b = reinterpret_cast<uint8_t*>(ts.blob.data());
    q.aggs.init(b);
    q.aggs.update(b, inputs);
    const int64_t w = m == no_time ? INT64_MIN : m - q.delay_ms();
    const window_def& wd = q.def.window;
    if (wd.kind == window_kind::session) {
        if (t >= w) ts.partial->merge_cell(t, t + wd.gap_ms, key, b);
        return;
    }
    for (int64_t start = first_window_start(wd, t); start <= t; start += window_slide_ms(wd))
        if (start + wd.size_ms > w) ts.partial->merge_cell(start, start + wd.size_ms, key, b);
}

} // namespace

void write_result_row(storage::segment_writer& writer, const compiled_query& q, const result_row& row,
                      uint64_t revision, uint32_t event_bytes_max) {
    auto& b = writer.batch();
    b.push_i64(storage::window_col::window_start_ms, row.start_ms);
    b.push_i64(storage::window_col::window_end_ms, row.end_ms);
    int col = storage::window_col::first_group;
    for (std::string_view part : split_key(q, row.key)) b.push_string(col++, part.substr(0, event_bytes_max));
    for (const auto& v : row.values) {
        if (v.is_integer) b.push_u64(col++, v.integer);
        else b.push_f64(col++, v.real);
    }
    b.push_u64(col, revision);
    b.end_row();
    writer.commit_row();
}

result<void> run_replay(const replay_request& req, replay_progress& progress, const std::atomic<bool>& cancel) {
    const compiled_query& q = *req.query;
    const window_def& wd = q.def.window;
    // Sessions: read one gap earlier, so a session's true first event is always seen.
    const int64_t scan_from = wd.kind == window_kind::session ? req.from_ms - wd.gap_ms : req.from_ms;
    auto files = storage::list_segments(req.data_dir + "/events");
    if (!files && files.err().code != errc::not_found) return std::move(files).err();
    std::vector<storage::segment_file> segments = files ? *files : std::vector<storage::segment_file>{};
    progress.segments_total.store(segments.size());

    tbb::enumerable_thread_specific<std::unique_ptr<task_state>> states;
    std::mutex error_mu;
    std::string first_error;
    tbb::parallel_for(size_t(0), segments.size(), [&](size_t i) {
        if (cancel.load()) return;
        auto& ts = states.local();
        if (!ts) ts = std::make_unique<task_state>(req);
        auto rd = storage::segment_reader::open(segments[i].path);
        if (!rd) {
            std::lock_guard lock(error_mu);
            if (first_error.empty()) first_error = rd.err().message;
            return;
        }
        auto& reader = **rd;
        const int raw = column_named(reader.schema(), "raw");
        const int tcol = column_named(reader.schema(), "event_time_ms");
        const int mcol = column_named(reader.schema(), "max_time_ms");
        if (raw < 0 || tcol < 0) return;
        storage::column_batch batch(reader.schema(), 1, 0, 0);
        uint64_t events = 0;
        while (reader.next_block() && !cancel.load()) {
            const auto& h = reader.block();
            if (h.rows == 0 || h.max_time_ms < scan_from || h.min_time_ms >= req.to_ms) continue;
            if (!reader.read_block(batch)) break;
            for (uint32_t r = 0; r < batch.rows(); ++r) {
                int64_t t = batch.i64_at(tcol, r);
                if (t < scan_from || t >= req.to_ms) continue;
                replay_event(q, *ts, batch.string_at(raw, r), t, mcol < 0 ? no_time : batch.i64_at(mcol, r));
                ++events;
            }
        }
        progress.events_read.fetch_add(events);
        progress.segments_done.fetch_add(1);
    });
    if (cancel.load()) return make_error(errc::busy, "replay cancelled (sluiced is stopping)");
    if (!first_error.empty())
        return make_error(errc::corrupt, "replay: " + first_error + " (run sluiced once to recover the store)");

    // The tasks' partials merge into one; then the windows wholly inside the range and
    // closed live are finished, in (end, start, key) order.
    query_merger all(req.query, 1);
    for (auto& ts : states)
        if (ts) ts->partial->take_all([&](int64_t s, int64_t e, std::string_view k, const uint8_t* b) {
            all.merge_cell(s, e, k, b);
        });
    std::vector<result_row> rows;
    all.take_all([&](int64_t s, int64_t e, std::string_view k, const uint8_t* b) {
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
