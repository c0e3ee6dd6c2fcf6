// Rows of the `events` table through segment_writer (encode + io_uring write, O_DIRECT
// where the filesystem allows, group commit every 100 ms) into a fresh temporary
// directory under $SLUICE_BENCH_DIR (default /var/tmp: /tmp may be a tmpfs without
// O_DIRECT). Each iteration appends a burst of 64 rows and polls, as a worker does.
// Items are rows. The timed loop ends with blocks still in flight, so `durable_rows_per_s`
// adds what the last flush_and_sync + close cost: rows / (loop + close) wall time.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/limits.h"
#include "bench/seed_events.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace {

namespace ev = sluice::storage::events_col;
constexpr size_t burst = sluice::limits::ring_burst_max;

struct row {
    const sluice::bench::seed_event* event;
};

std::string make_temp_dir() {
    const char* base = std::getenv("SLUICE_BENCH_DIR");
    std::string tmpl = std::string(base ? base : "/var/tmp") + "/sluice-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return {};
    return tmpl;
}

void bm_segment_writer(benchmark::State& state) {
    const auto events = sluice::bench::make_seed_events(sluice::limits::batch_rows_max);
    std::vector<row> rows;
    for (const auto& e : events) rows.push_back({&e});
    const std::string dir = make_temp_dir();
    if (dir.empty()) {
        state.SkipWithError("cannot create a temporary directory (set SLUICE_BENCH_DIR)");
        return;
    }
    sluice::storage::writer_config cfg;
    cfg.data_dir = dir;
    cfg.writer_name = "bench";
    cfg.options.compression = {state.range(0) == 0 ? sluice::storage::format::codec::none
                                            : sluice::storage::format::codec::zstd,
                       int(state.range(0))};
    const auto schema = sluice::storage::events_schema();
    auto opened = sluice::storage::segment_writer::open(cfg, schema);
    if (!opened) {
        state.SkipWithError(opened.err().message.c_str());
        std::filesystem::remove_all(dir);
        return;
    }
    auto& writer = *opened.value();
    const auto start = std::chrono::steady_clock::now();
    size_t next = 0;
    uint64_t appended = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < burst; ++i) {
            const row& r = rows[next];
            next = (next + 1) % rows.size();
            auto& b = writer.batch();
            b.push_i64(ev::event_time_ms, r.event->time_ms);
            b.push_null(ev::event_id);
            b.push_string(ev::user_id, r.event->user_id);
            b.push_string(ev::event_type, r.event->event_type);
            b.push_string(ev::page, r.event->page);
            b.push_u8(ev::late, 0);
            b.push_string(ev::raw, r.event->json);
            b.end_row();
            writer.commit_row();
        }
        appended += burst;
        writer.poll(sluice::monotonic_ns());
    }
    auto closed = writer.close();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool direct = writer.direct_io();
    const uint64_t durable = writer.rows_durable();
    const uint64_t bytes = writer.bytes_written();
    opened.value().reset();
    std::filesystem::remove_all(dir);
    if (!closed || durable != appended) {
        state.SkipWithError(closed ? "not every appended row became durable"
                                   : closed.err().message.c_str());
        return;
    }
    state.SetItemsProcessed(int64_t(appended));
    state.SetBytesProcessed(int64_t(bytes));
    state.counters["direct_io"] = direct;
    state.counters["bytes_per_row"] = double(bytes) / double(appended);
    state.counters["durable_rows_per_s"] = double(durable) / seconds;
}

BENCHMARK(bm_segment_writer)->ArgName("zstd")->Arg(0)->Arg(1)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
