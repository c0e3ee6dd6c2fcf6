// How long the owner thread of a segment_writer is held by the writer, burst by burst,
// across segment rotations (issue 14 target 3: the latency a rotation adds to every
// event queued behind it on a worker lcore).
//
//   bm_rotation_stall  a worker-shaped loop: bursts of 32 seed-shaped events appended as
//                      the worker appends them (events_schema, every column), commit_row()
//                      after each, poll() after each burst, on the default writer_config
//                      (zstd 1, 100 ms group commit) but for the rows per block,
//                      segment_bytes_max (MiB) and the write buffers. Each burst's time
//                      (append + commit_row + poll) is one sample; `rate` paces the bursts
//                      (events/s; 0: flat out, the writer's back-pressure then shows too).
//                      Blocks are encoded inline in commit_row (~0.7 µs a row at zstd 1):
//                      1024-row blocks keep that under a millisecond, so that what is
//                      left over 1 ms is the writer waiting (rotation, back-pressure) or
//                      the machine's scheduling.
// Counters: p50/p99/p99.9/max of the burst time in µs, bursts over 1 ms, segments
// written; blocked_*: the bursts in which the thread blocked (a voluntary context switch,
// getrusage(RUSAGE_THREAD): the writer waited for the disk — on a loaded machine the
// other slow bursts are preemption, which this does not count): how many, their total
// and longest wall time; and rot_max_us / rot_mean_us: the bursts in which segments_opened() changed
// (an inline rotation runs whole inside that burst; an asynchronous one only ends there). Files go to a fresh directory under $SLUICE_BENCH_DIR (default /var/tmp):
// use a real disk there (not tmpfs), since the stall is the disk's fdatasync latency.
// The loop uses only the writer's public interface, so it builds against older writers
// for a same-run A/B (docs/benchmarks.md).
#include <benchmark/benchmark.h>

#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/clock.h"
#include "bench/seed_events.h"
#include "bench/storage/events_table.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace {

using namespace sluice;

constexpr size_t burst = 32;
constexpr size_t rows_total = 2'000'000;

void bm_rotation_stall(benchmark::State& state) {
    const uint32_t rows_per_block = uint32_t(state.range(0));
    const uint64_t segment_mib = uint64_t(state.range(1));
    const uint32_t buffers = uint32_t(state.range(2));
    const int64_t rate = state.range(3);
    static const auto plain = bench::make_seed_events(100'000, false, 1);
    static const auto with_id = bench::make_seed_events(100'000, true, 2);
    std::vector<int64_t> samples;
    samples.reserve(rows_total / burst + 1);
    uint64_t segments = 0;
    int64_t rot_max = 0, rot_sum = 0, rot_n = 0;
    int64_t blocked_n = 0, blocked_sum = 0, blocked_max = 0;
    auto voluntary_switches = [] {
        rusage ru{};
        getrusage(RUSAGE_THREAD, &ru);
        return ru.ru_nvcsw;
    };
    for (auto _ : state) {
        state.PauseTiming();
        const char* base = std::getenv("SLUICE_BENCH_DIR");
        std::string dir = std::string(base ? base : "/var/tmp") + "/sluice-rot-XXXXXX";
        if (mkdtemp(dir.data()) == nullptr) {
            state.SkipWithError("cannot create a temporary directory (set SLUICE_BENCH_DIR)");
            return;
        }
        storage::writer_config cfg;
        cfg.data_dir = dir;
        cfg.writer_name = "w0";
        cfg.rows_per_block = rows_per_block;
        cfg.options.segment_bytes_max = segment_mib << 20;
        cfg.write_buffers = buffers;
        auto w = storage::segment_writer::open(cfg, storage::events_schema());
        if (!w) {
            state.SkipWithError(w.err().message.c_str());
            return;
        }
        samples.clear();
        rot_max = rot_sum = rot_n = 0;
        blocked_n = blocked_sum = blocked_max = 0;
        state.ResumeTiming();
        const int64_t start = monotonic_ns();
        int64_t time_ms = 1'700'000'000'000;
        for (size_t i = 0; i < rows_total; i += burst) {
            if (rate > 0) {
                const int64_t due = start + int64_t(i) * 1'000'000'000 / rate;
                while (monotonic_ns() < due) {
                }
            }
            const uint64_t opened = (*w)->segments_opened();
            const long switches = voluntary_switches();
            const int64_t t0 = monotonic_ns();
            for (size_t k = i; k < i + burst; ++k) {
                const auto& e = k % 2 ? with_id[(k / 2) % with_id.size()]
                                      : plain[(k / 2) % plain.size()];
                ++time_ms;
                sluice::bench::push_seed_row((*w)->batch(), e, k % 2 != 0, time_ms);
                (*w)->commit_row();
            }
            const int64_t t1 = monotonic_ns();
            (*w)->poll(t1);
            const int64_t took = monotonic_ns() - t0;
            samples.push_back(took);
            if (voluntary_switches() != switches) {
                ++blocked_n;
                blocked_sum += took;
                blocked_max = std::max(blocked_max, took);
            }
            if ((*w)->segments_opened() != opened) {
                rot_max = std::max(rot_max, took);
                rot_sum += took;
                ++rot_n;
            }
        }
        auto closed = (*w)->close();
        state.PauseTiming();
        if (!closed || (*w)->rows_durable() != rows_total) {
            state.SkipWithError(closed ? "not every row became durable"
                                       : closed.err().message.c_str());
            return;
        }
        segments = (*w)->segments_opened();
        w.value().reset();
        std::filesystem::remove_all(dir);
        state.ResumeTiming();
    }
    std::sort(samples.begin(), samples.end());
    auto pct = [&](double p) {
        return double(samples[std::min(samples.size() - 1, size_t(p * double(samples.size())))]) /
               1000.0;
    };
    state.counters["p50_us"] = pct(0.50);
    state.counters["p99_us"] = pct(0.99);
    state.counters["p99.9_us"] = pct(0.999);
    state.counters["max_us"] = double(samples.back()) / 1000.0;
    state.counters["over_1ms"] =
        double(samples.end() - std::upper_bound(samples.begin(), samples.end(), 1'000'000));
    state.counters["segments"] = double(segments);
    state.counters["blocked_n"] = double(blocked_n);
    state.counters["blocked_ms"] = double(blocked_sum) / 1e6;
    state.counters["blocked_max_us"] = double(blocked_max) / 1000.0;
    state.counters["rot_max_us"] = double(rot_max) / 1000.0;
    state.counters["rot_mean_us"] = rot_n ? double(rot_sum) / double(rot_n) / 1000.0 : 0.0;
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(rows_total));
}

BENCHMARK(bm_rotation_stall)->ArgNames({"block_rows", "segment_MiB", "buffers", "rate"})
    ->Args({1024, 1, 2, 200'000})->Args({1024, 1, 4, 200'000})
    ->Args({1024, 1, 2, 0})->Args({1024, 1, 4, 0})
    ->Args({16384, 1, 2, 200'000})->Args({16384, 16, 2, 200'000})
    ->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1);

} // namespace

BENCHMARK_MAIN();
