#include "processing/event_replayer.h"

#include <algorithm>
#include <mutex>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "base/assert.h"
#include "base/limits.h"
#include "processing/window_assigner.h"
#include "storage/column_batch.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"

namespace sluice::processing {

int64_t floor_history::floor_for(const std::string& writer, uint64_t seq) const noexcept {
    for (auto it = epochs.rbegin(); it != epochs.rend(); ++it) {
        auto f = it->first_segment.find(writer);
        if (f != it->first_segment.end() && f->second <= seq) return it->floor_ms;
    }
    return base_floor_ms;
}

bool floor_history::add(const floor_epoch& epoch) {
    if (epochs.empty() && epoch.floor_ms == base_floor_ms)
        return false; // the base covers every writer
    if (!epochs.empty() && epoch.floor_ms == epochs.back().floor_ms) {
        bool changed = false;
        for (const auto& [writer, seq] : epoch.first_segment)
            changed |= epochs.back().first_segment.emplace(writer, seq).second;
        return changed;
    }
    epochs.push_back(epoch);
    if (epochs.size() > limits::floor_epochs_max) epochs.erase(epochs.begin());
    return true;
}

namespace {

// What one TBB task owns: a parser, a slot, and per query the partial windows of the
// segments it read.
struct task_state {
    std::unique_ptr<stored_event_parser> parser;
    std::unique_ptr<char[]> slot_mem;
    event_slot* slot = nullptr;
    std::vector<char> key;
    std::vector<uint64_t> blob;
    std::vector<std::unique_ptr<window_merger>> partial;

    task_state(const replay_scan& scan, const std::vector<replay_query>& queries)
        : parser(scan.make_parser()),
          slot_mem(new char[slot_bytes(scan.event_bytes_max) + alignof(event_slot)]),
          key(scan.event_bytes_max + 64) {
        void* p = slot_mem.get();
        size_t space = slot_bytes(scan.event_bytes_max) + alignof(event_slot);
        slot =
            static_cast<event_slot*>(std::align(alignof(event_slot), sizeof(event_slot), p, space));
        for (const auto& q : queries)
            partial.push_back(std::make_unique<window_merger>(q.query, 1));
    }
};

// One parsed stored event into one query's partial windows, judged as it was live.
void replay_into(const compiled_query& q, task_state& ts, window_merger& into, int64_t t,
                 int64_t w) {
    const event_slot& s = *ts.slot;
    if (!q.matches(s)) return;
    const uint32_t len = q.build_key(s, ts.key.data());
    const std::string_view key(ts.key.data(), len);
    agg_input inputs[16];
    q.read_inputs(s, inputs);
    ts.blob.assign(q.aggs.blob_bytes() / 8, 0);
    auto* b = reinterpret_cast<uint8_t*>(ts.blob.data());
    q.aggs.init(b);
    q.aggs.update(b, inputs);
    for_each_window(q.def.window, t, w,
                    [&](int64_t start, int64_t end) { into.merge_cell(start, end, key, b); });
}

// The rows of one segment's blocks within [from, to).
uint64_t replay_segment(const replay_scan& scan, const std::vector<replay_query>& queries,
                        int64_t from, const storage::segment_file& seg,
                        storage::segment_reader& reader, task_state& ts,
                        const std::atomic<bool>* cancel) {
    const int raw = reader.schema().column_index("raw");
    const int tcol = reader.schema().column_index("event_time_ms");
    const int mcol = reader.schema().column_index("max_time_ms");
    if (raw < 0 || tcol < 0) return 0;
    // A closed segment wholly outside the range is skipped by its footer, unread.
    storage::format::footer footer;
    if (reader.schema().time_column >= 0 && reader.peek_footer(footer) &&
        (footer.rows == 0 || footer.max_time_ms < from || footer.min_time_ms >= scan.to_ms))
        return 0;
    // The floor each query had in the run that wrote this segment.
    std::vector<int64_t> floors;
    for (const auto& q : queries)
        floors.push_back(q.floors.floor_for(seg.writer, seg.seq));
    storage::column_batch batch(reader.schema(), 1, 0, 0);
    uint64_t events = 0;
    while (reader.next_block() && !(cancel && cancel->load())) {
        const auto& h = reader.block();
        if (h.rows == 0 || h.max_time_ms < from || h.min_time_ms >= scan.to_ms) continue;
        if (!reader.read_block(batch)) break;
        for (uint32_t r = 0; r < batch.rows(); ++r) {
            const int64_t t = batch.i64_at(tcol, r);
            if (t < from || t >= scan.to_ms) continue;
            const int64_t m = mcol < 0 ? no_time : batch.i64_at(mcol, r);
            bool parsed = false;
            for (size_t i = 0; i < queries.size(); ++i) {
                if (t < queries[i].from_ms) continue;
                if (!parsed) {
                    ts.parser->parse(batch.string_at(raw, r), *ts.slot);
                    if (ts.slot->kind != slot_kind::event) break;
                    parsed = true;
                    ++events;
                }
                const compiled_query& q = *queries[i].query;
                replay_into(q, ts, *ts.partial[i], t, query_watermark(m, q.delay_ms(), floors[i]));
            }
        }
    }
    return events;
}

} // namespace

result<std::vector<std::unique_ptr<window_merger>>>
replay_events(const replay_scan& scan, const std::vector<replay_query>& queries,
              replay_progress& progress, const std::atomic<bool>* cancel) {
    SLUICE_ASSERT(scan.make_parser != nullptr);
    int64_t from = INT64_MAX;
    for (const auto& q : queries)
        from = std::min(from, q.from_ms);
    auto files = storage::list_segments(scan.data_dir + "/events");
    if (!files && files.err().code != errc::not_found) return std::move(files).err();
    const std::vector<storage::segment_file> segments =
        files ? *files : std::vector<storage::segment_file>{};
    progress.segments_total.store(queries.empty() ? 0 : segments.size());
    if (queries.empty()) return std::vector<std::unique_ptr<window_merger>>{};

    tbb::enumerable_thread_specific<std::unique_ptr<task_state>> states;
    std::mutex error_mu;
    std::string first_error;
    tbb::parallel_for(size_t(0), segments.size(), [&](size_t i) {
        if (cancel && cancel->load()) return;
        auto& ts = states.local();
        if (!ts) ts = std::make_unique<task_state>(scan, queries);
        auto rd = storage::segment_reader::open(segments[i].path);
        if (!rd) {
            std::lock_guard lock(error_mu);
            if (first_error.empty()) first_error = rd.err().message;
            return;
        }
        progress.events_read.fetch_add(
            replay_segment(scan, queries, from, segments[i], **rd, *ts, cancel));
        progress.segments_done.fetch_add(1);
    });
    if (cancel && cancel->load())
        return make_error(errc::busy, "replay cancelled (sluiced is stopping)");
    if (!first_error.empty())
        return make_error(errc::corrupt,
                          "replay: " + first_error + " (run sluiced once to recover the store)");

    // The tasks' partials merge into one per query.
    std::vector<std::unique_ptr<window_merger>> out;
    for (size_t i = 0; i < queries.size(); ++i) {
        out.push_back(std::make_unique<window_merger>(queries[i].query, 1));
        for (auto& ts : states)
            if (ts)
                ts->partial[i]->take_all([&](int64_t s, int64_t e, std::string_view k,
                                             const uint8_t* b) { out[i]->merge_cell(s, e, k, b); });
    }
    return out;
}

} // namespace sluice::processing
