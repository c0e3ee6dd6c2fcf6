#pragma once
// The benchmarks that read the store back (table_scan_bench, dedup_reload_bench) read an
// `events` table of seed-shaped rows: half with an event_id, half without, written once by
// one segment_writer "w0" with the default writer_config (zstd 1, 16384-row blocks), every
// column filled as a worker fills it (max_time_ms: the row's own time), in a fresh
// directory under $SLUICE_BENCH_DIR (default /var/tmp) that goes with the table.
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "bench/seed_events.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace sluice::bench {

// One seed event as an `events` row, every column filled as a worker fills it, at
// `time_ms` (event time and max_time_ms). with_id: the event carries an event_id (the seed
// generator puts it first: "{\"event_id\":\"<36>\",...").
inline void push_seed_row(storage::column_batch& b, const seed_event& e, bool with_id,
                          int64_t time_ms) {
    namespace ev = storage::events_col;
    b.push_i64(ev::event_time_ms, time_ms);
    if (with_id)
        b.push_string(ev::event_id, std::string_view(e.json).substr(13, 36));
    else
        b.push_null(ev::event_id);
    b.push_string(ev::user_id, e.user_id);
    b.push_string(ev::event_type, e.event_type);
    b.push_string(ev::page, e.page);
    b.push_u8(ev::late, 0);
    b.push_string(ev::raw, e.json);
    b.push_i64(ev::max_time_ms, time_ms);
    b.end_row();
}

struct events_table {
    std::string dir;
    uint64_t raw_bytes = 0;        // the rows' raw JSON bytes
    int64_t min_ms = 0, max_ms = 0; // the first row's event time, the largest
    std::string error;             // not empty: no table (the benchmark skips)

    // `rows` rows in $SLUICE_BENCH_DIR/sluice-<name>-XXXXXX.
    events_table(size_t rows, const char* name) {
        const char* base = std::getenv("SLUICE_BENCH_DIR");
        std::string tmpl = std::string(base ? base : "/var/tmp") + "/sluice-" + name + "-XXXXXX";
        if (mkdtemp(tmpl.data()) == nullptr) {
            error = "cannot create a temporary directory (set SLUICE_BENCH_DIR)";
            return;
        }
        dir = tmpl;
        auto plain = make_seed_events(rows / 2, false, 1);
        auto with_id = make_seed_events(rows / 2, true, 2);
        storage::writer_config cfg;
        cfg.data_dir = dir;
        cfg.writer_name = "w0";
        auto w = storage::segment_writer::open(cfg, storage::events_schema());
        if (!w) {
            error = w.err().message;
            return;
        }
        min_ms = plain.front().time_ms;
        for (size_t i = 0; i < rows; ++i) {
            const auto& e = i % 2 ? with_id[i / 2] : plain[i / 2];
            push_seed_row((*w)->batch(), e, i % 2 != 0, e.time_ms);
            (*w)->commit_row();
            raw_bytes += e.json.size();
            max_ms = std::max(max_ms, e.time_ms);
        }
        if (auto r = (*w)->close(); !r) error = r.err().message;
    }
    ~events_table() {
        if (!dir.empty()) std::filesystem::remove_all(dir);
    }
    events_table(const events_table&) = delete;
    events_table& operator=(const events_table&) = delete;
};

} // namespace sluice::bench
