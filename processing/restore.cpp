#include "processing/restore.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <sstream>
#include <vector>

#include "base/log.h"
#include "processing/identity.h"
#include "processing/state_dir.h"
#include "storage/column_batch.h"
#include "storage/schema.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"
#include "storage/table_reader.h"

namespace sluice::processing {

namespace {

// The largest max_time_ms of a segment's last block with rows (a worker's M only grows
// within a segment), or no_time.
int64_t last_max_time(const std::string& path) {
    auto rd = storage::segment_reader::open(path);
    if (!rd) return no_time;
    auto& reader = **rd;
    const int col = reader.schema().column_index("max_time_ms");
    if (col < 0) return no_time;
    // Two walks: headers to find the last block with rows, then its payload.
    uint64_t last = UINT64_MAX, index = 0;
    while (reader.next_block()) {
        if (reader.block().rows != 0) last = index;
        ++index;
    }
    if (last == UINT64_MAX) return no_time;
    auto again = storage::segment_reader::open(path);
    if (!again) return no_time;
    storage::column_batch batch((*again)->schema(), 1, 0, 0);
    for (index = 0; (*again)->next_block(); ++index) {
        if (index != last) continue;
        if (!(*again)->read_block(batch)) return no_time;
        int64_t m = no_time;
        for (uint32_t r = 0; r < batch.rows(); ++r) m = std::max(m, batch.i64_at(col, r));
        return m;
    }
    return no_time;
}

} // namespace

result<int64_t> stored_max_event_time(const std::string& data_dir) {
    auto files = storage::list_segments(data_dir + "/events");
    if (!files) {
        if (files.err().code == errc::not_found) return no_time;
        return std::move(files).err();
    }
    int64_t m = no_time;
    for (const auto& f : *files) {
        auto rd = storage::segment_reader::open(f.path);
        if (!rd) continue; // recovery moved it aside or reported it
        while ((*rd)->next_block())
            if ((*rd)->block().rows != 0) m = std::max(m, (*rd)->block().max_time_ms);
    }
    return m;
}

result<std::optional<run_record>> read_run_record(const std::string& data_dir) {
    auto text = read_small_file(run_path(data_dir));
    if (!text) return std::optional<run_record>();
    std::istringstream in(*text);
    run_record run;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string key;
        words >> key;
        auto bad_line = [&] {
            return make_error(errc::corrupt, run_path(data_dir) + ": bad line \"" + line +
                                                 "\" (remove the file to restart without it)");
        };
        if (key == "start_max_time_ms") {
            std::string v;
            words >> v;
            if (v == "none") {
                run.start_max_time_ms = no_time;
                continue;
            }
            int64_t m = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), m);
            if (ec != std::errc() || end != v.data() + v.size() || v.empty()) return bad_line();
            run.start_max_time_ms = m;
        } else if (key == "writer") {
            std::string name;
            uint64_t seq = 0;
            words >> name >> seq;
            if (!words) return bad_line();
            run.first_segment[name] = seq;
        }
    }
    return std::optional<run_record>(std::move(run));
}

result<void> write_run_record(const std::string& data_dir, const run_record& run) {
    std::string text = "start_max_time_ms " +
                       (run.start_max_time_ms == no_time ? std::string("none")
                                                         : std::to_string(run.start_max_time_ms)) +
                       "\n";
    for (const auto& [w, seq] : run.first_segment) text += "writer " + w + " " + std::to_string(seq) + "\n";
    return write_file_atomically(run_path(data_dir), text);
}

result<int64_t> restored_max_time(const std::string& data_dir, const std::optional<run_record>& last) {
    auto files = storage::list_segments(data_dir + "/events");
    if (!files) {
        if (files.err().code == errc::not_found) return last ? last->start_max_time_ms : no_time;
        return std::move(files).err();
    }
    // Per writer, the M of its last durable event among the segments that count.
    std::map<std::string, int64_t> last_m;
    for (auto it = files->rbegin(); it != files->rend(); ++it) {
        if (last) {
            auto first = last->first_segment.find(it->writer);
            if (first == last->first_segment.end() || it->seq < first->second) continue;
        }
        if (last_m.count(it->writer) != 0 && last_m[it->writer] != no_time) continue; // newer one had rows
        last_m[it->writer] = last_max_time(it->path);
    }
    int64_t m = INT64_MAX;
    if (last) {
        for (const auto& [writer, seq] : last->first_segment) {
            auto it = last_m.find(writer);
            int64_t w = it == last_m.end() || it->second == no_time ? last->start_max_time_ms : it->second;
            m = std::min(m, w);
        }
        if (last->first_segment.empty()) m = last->start_max_time_ms;
    } else {
        for (const auto& [writer, w] : last_m)
            if (w != no_time) m = std::min(m, w);
    }
    return m == INT64_MAX ? no_time : m;
}

result<uint64_t> reload_dedup(const std::string& data_dir, int64_t from_ms, int64_t max_time_ms,
                              std::span<dedup_filter* const> filters) {
    // The store derives identities from event_id / raw with the very function the RX
    // hashes by (storage/event_identity.h); blocks decode in parallel and arrive in order.
    const uint32_t workers = uint32_t(filters.size());
    std::vector<std::vector<dedup_request>> per_worker(workers);
    std::vector<dedup_verdict> verdicts;
    uint64_t n = 0;
    auto r = storage::scan_event_identities(
        data_dir, from_ms, INT64_MAX, [&](std::span<const storage::identity_row> rows) {
            for (auto& v : per_worker) v.clear();
            for (const auto& row : rows) {
                const identity id{row.id.hi, row.id.lo};
                per_worker[owner_worker(id, workers)].push_back(
                    dedup_request{id, row.event_time_ms, max_time_ms});
            }
            for (uint32_t w = 0; w < workers; ++w) {
                const auto& req = per_worker[w];
                verdicts.resize(req.size());
                filters[w]->check_and_insert_burst(req.data(), uint32_t(req.size()), verdicts.data());
            }
            n += rows.size();
        });
    if (!r) {
        if (r.err().code == errc::not_found) return uint64_t(0);
        return std::move(r).err();
    }
    return n;
}

} // namespace sluice::processing
