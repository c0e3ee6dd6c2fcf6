// Where should the store's io_uring live: in every worker (what sluice does), or on a
// dedicated I/O lcore that all workers hand their blocks to? (issue 5, item 2)
//
// `workers` threads each append the same seed-shaped events rows as fast as they can
// and encode full 16384-row blocks (zstd 1) themselves, then:
//   bm_writer_per_worker  each owns a segment_writer: io_uring submit/reap and group
//                         commit (linked fdatasync every 100 ms) on the worker thread.
//   bm_dedicated_io       each hands its encoded block (pointer, length) through an SPSC
//                         ring to one I/O thread that owns a single io_uring with every
//                         worker's buffers registered, writes each worker's file with
//                         O_DIRECT, fdatasyncs every 100 ms, and hands buffers back. The
//                         I/O thread busy-polls, as an lcore would.
// Both use 2 block buffers per worker. Items are rows; real time, to the last fdatasync.
// Files go under $SLUICE_BENCH_DIR (default /var/tmp). Counter `threads` is what ran.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/limits.h"
#include "bench/seed_events.h"
#include "storage/schema.h"
#include "storage/segment_format.h"
#include "storage/segment_writer.h"
#include "storage/uring_writer.h"

namespace {

using namespace sluice::storage;
namespace ev = events_col;

constexpr uint64_t rows_per_worker = 400'000;
constexpr uint32_t block_rows = sluice::limits::batch_rows_max;
constexpr int64_t sync_interval_ns = 100'000'000;

const std::vector<sluice::bench::seed_event>& events() {
    static const auto e = sluice::bench::make_seed_events(block_rows);
    return e;
}

std::string make_temp_dir() {
    const char* base = std::getenv("SLUICE_BENCH_DIR");
    std::string tmpl = std::string(base ? base : "/var/tmp") + "/sluice-io-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return {};
    return tmpl;
}

inline void push_event(column_batch& b, const sluice::bench::seed_event& e) {
    b.push_i64(ev::event_time_ms, e.time_ms);
    b.push_null(ev::event_id);
    b.push_string(ev::user_id, e.user_id);
    b.push_string(ev::event_type, e.event_type);
    b.push_string(ev::page, e.page);
    b.push_u8(ev::late, 0);
    b.push_string(ev::raw, e.json);
    b.end_row();
}

void bm_writer_per_worker(benchmark::State& state) {
    const int workers = int(state.range(0));
    const auto schema = events_schema();
    for (auto _ : state) {
        state.PauseTiming();
        const std::string dir = make_temp_dir();
        std::vector<std::unique_ptr<segment_writer>> writers;
        for (int w = 0; w < workers; ++w) {
            writer_config cfg;
            cfg.data_dir = dir;
            cfg.writer_name = "w" + std::to_string(w);
            auto opened = segment_writer::open(cfg, schema);
            if (!opened) return state.SkipWithError(opened.err().message.c_str());
            writers.push_back(std::move(opened.value()));
        }
        std::atomic<bool> ok{true};
        state.ResumeTiming();
        std::vector<std::thread> threads;
        for (int w = 0; w < workers; ++w) {
            threads.emplace_back([&, w] {
                segment_writer& sw = *writers[size_t(w)];
                const auto& ev = events();
                for (uint64_t i = 0; i < rows_per_worker; ++i) {
                    push_event(sw.batch(), ev[i % ev.size()]);
                    sw.commit_row();
                    if ((i & 63) == 63) sw.poll(sluice::monotonic_ns());
                }
                if (!sw.close() || sw.rows_durable() != rows_per_worker) ok = false;
            });
        }
        for (auto& t : threads) t.join();
        state.PauseTiming();
        writers.clear();
        std::filesystem::remove_all(dir);
        if (!ok) return state.SkipWithError("a writer failed or lost rows");
        state.ResumeTiming();
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * workers * int64_t(rows_per_worker));
    state.counters["threads"] = workers;
}

// A single-producer single-consumer ring of block hand-offs.
struct handoff {
    uint8_t* buf;
    uint32_t len;
    uint32_t rows;
};
class spsc {
  public:
    bool push(const handoff& h) {
        size_t t = _tail.load(std::memory_order_relaxed);
        if (t - _head.load(std::memory_order_acquire) == size) return false;
        _slots[t % size] = h;
        _tail.store(t + 1, std::memory_order_release);
        return true;
    }
    bool pop(handoff& h) {
        size_t hd = _head.load(std::memory_order_relaxed);
        if (hd == _tail.load(std::memory_order_acquire)) return false;
        h = _slots[hd % size];
        _head.store(hd + 1, std::memory_order_release);
        return true;
    }

  private:
    static constexpr size_t size = 8;
    handoff _slots[size];
    alignas(64) std::atomic<size_t> _head{0};
    alignas(64) std::atomic<size_t> _tail{0};
};

void bm_dedicated_io(benchmark::State& state) {
    const int workers = int(state.range(0));
    const auto schema = events_schema();
    for (auto _ : state) {
        state.PauseTiming();
        const std::string dir = make_temp_dir();
        struct worker_side {
            std::unique_ptr<format::block_encoder> encoder;
            std::unique_ptr<column_batch> batch;
            std::vector<uint8_t*> buffers;
            spsc to_io, back;
            int fd = -1;
            uint64_t offset = 0;
        };
        std::vector<std::unique_ptr<worker_side>> ws;
        std::vector<iovec> iov;
        for (int w = 0; w < workers; ++w) {
            auto s = std::make_unique<worker_side>();
            s->encoder = std::make_unique<format::block_encoder>(
                schema, block_rows, sluice::limits::batch_string_bytes_max, format::compression{});
            s->batch = std::make_unique<column_batch>(schema, block_rows,
                                                       sluice::limits::batch_string_bytes_max,
                                                       sluice::limits::event_bytes_max);
            for (int b = 0; b < 2; ++b) {
                auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, s->encoder->block_bytes_max()));
                std::memset(p, 0, s->encoder->block_bytes_max());
                s->buffers.push_back(p);
                iov.push_back({p, s->encoder->block_bytes_max()});
                s->back.push({p, 0, 0});
            }
            std::string path = dir + "/w" + std::to_string(w) + ".seg";
            s->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0640);
            if (s->fd < 0) return state.SkipWithError("cannot open a file with O_DIRECT");
            ws.push_back(std::move(s));
        }
        uring_writer io;
        if (!io.init(sluice::limits::uring_depth, iov))
            return state.SkipWithError("cannot set up io_uring");
        std::atomic<int> producing{workers};
        std::atomic<bool> ok{true};
        state.ResumeTiming();

        std::thread io_thread([&] {
            // user_data: worker index << 32 | buffer index; syncs: top bit set.
            uint32_t in_flight = 0;
            int64_t last_sync = sluice::monotonic_ns();
            std::vector<handoff> pending(size_t(workers) * 2);
            auto reap = [&](bool wait) {
                io.reap(wait, [&](uint64_t ud, int res) {
                    --in_flight;
                    if (res < 0) ok = false;
                    if (ud >> 63) return;
                    const size_t w = size_t(ud >> 32), b = size_t(ud & 0xffffffff);
                    ws[w]->back.push(pending[w * 2 + b]);
                });
            };
            for (;;) {
                // Read before draining: a worker pushes its last block, then counts down.
                const bool done = producing.load(std::memory_order_acquire) == 0;
                bool any = false;
                for (size_t w = 0; w < ws.size(); ++w) {
                    handoff h;
                    while (ws[w]->to_io.pop(h)) {
                        size_t b = h.buf == ws[w]->buffers[0] ? 0 : 1;
                        pending[w * 2 + b] = h;
                        io.prep_write(ws[w]->fd, h.buf, h.len, ws[w]->offset, int(w * 2 + b),
                                      (uint64_t(w) << 32) | b);
                        ws[w]->offset += h.len;
                        ++in_flight;
                        any = true;
                    }
                }
                const int64_t now = sluice::monotonic_ns();
                if (now - last_sync >= sync_interval_ns) {
                    for (auto& s : ws) {
                        io.prep_fdatasync(s->fd, 1ull << 63);
                        ++in_flight;
                    }
                    last_sync = now;
                    any = true;
                }
                if (any) io.submit();
                if (in_flight > 0) reap(false);
                if (done && !any && in_flight == 0) break;
                if (done && in_flight > 0) reap(true);
            }
            // Everything handed off is written; a final sync covers it.
            for (auto& s : ws) {
                io.prep_fdatasync(s->fd, 1ull << 63);
                ++in_flight;
            }
            io.submit();
            while (in_flight > 0) reap(true);
        });
        std::vector<std::thread> threads;
        for (int w = 0; w < workers; ++w) {
            threads.emplace_back([&, w] {
                worker_side& s = *ws[size_t(w)];
                const auto& ev = events();
                uint64_t block_index = 0;
                auto seal = [&] {
                    handoff h;
                    while (!s.back.pop(h)) std::this_thread::yield(); // back-pressure
                    auto hdr = s.encoder->encode(*s.batch, block_index++, h.buf);
                    h.len = uint32_t(format::block_bytes(hdr.payload_bytes));
                    h.rows = s.batch->rows();
                    s.batch->clear();
                    while (!s.to_io.push(h)) std::this_thread::yield();
                };
                for (uint64_t i = 0; i < rows_per_worker; ++i) {
                    push_event(*s.batch, ev[i % ev.size()]);
                    if (s.batch->full()) seal();
                }
                if (!s.batch->empty()) seal();
                producing.fetch_sub(1, std::memory_order_release);
            });
        }
        for (auto& t : threads) t.join();
        io_thread.join();
        state.PauseTiming();
        for (auto& s : ws) {
            ::close(s->fd);
            for (auto* p : s->buffers) std::free(p);
        }
        std::filesystem::remove_all(dir);
        if (!ok) return state.SkipWithError("a write or sync failed");
        state.ResumeTiming();
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * workers * int64_t(rows_per_worker));
    state.counters["threads"] = workers + 1;
}

BENCHMARK(bm_writer_per_worker)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()
    ->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(bm_dedicated_io)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()
    ->Unit(benchmark::kMillisecond)->Iterations(3);

} // namespace

BENCHMARK_MAIN();
