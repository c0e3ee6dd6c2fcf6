// Sequential write bandwidth of the store's io_uring path, to read beside fio on the same
// disk in the same run (bench/storage/fio_compare.sh runs both):
//   bm_writer_bandwidth   segment_writer end to end with encoding reduced to copies (one
//                         `bytes` column of distinct, incompressible 4000-byte rows, no
//                         codec):
//                         blocks of ~1 or ~4 MiB, 2 or 4 write buffers (= writes in flight),
//                         O_DIRECT, group commit by size (fdatasync linked to the write
//                         every 64 MiB), until close() made it durable.
//   bm_uring_sequential   the writer's I/O pattern without the writer: registered aligned
//                         buffers of 1 MiB written at sequential offsets, `depth` in flight,
//                         an fdatasync every 64 MiB and at the end.
// Files go to a fresh directory under $SLUICE_BENCH_DIR (default /var/tmp). Bytes are
// what reached the file; the time includes the final fdatasync.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/clock.h"
#include "storage/segment_writer.h"
#include "storage/uring_writer.h"

namespace {

using namespace sluice::storage;

std::string make_temp_dir() {
    const char* base = std::getenv("SLUICE_BENCH_DIR");
    std::string tmpl = std::string(base ? base : "/var/tmp") + "/sluice-bw-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return {};
    return tmpl;
}

constexpr size_t row_bytes = 4000;
constexpr uint64_t total_bytes = 1ull << 30; // per iteration
constexpr uint64_t sync_every = 64ull << 20;

void bm_writer_bandwidth(benchmark::State& state) {
    const uint32_t rows_per_block = uint32_t(state.range(0));
    // Every row distinct and incompressible: windows into 64 MiB of random bytes (a
    // repeated payload would be stored once, in a dictionary).
    std::string noise(64u << 20, '\0');
    std::mt19937_64 rng(1);
    for (size_t i = 0; i + 8 <= noise.size(); i += 8) {
        uint64_t v = rng();
        std::memcpy(noise.data() + i, &v, 8);
    }
    const size_t windows = (noise.size() - row_bytes) / 61;
    const table_schema schema{"bandwidth",
                              {{"t", column_type::i64}, {"payload", column_type::bytes}},
                              0};
    uint64_t bytes = 0;
    bool direct = true, fixed = true;
    for (auto _ : state) {
        state.PauseTiming();
        const std::string dir = make_temp_dir();
        writer_config cfg;
        cfg.data_dir = dir;
        cfg.writer_name = "bench";
        cfg.rows_per_block = rows_per_block;
        cfg.string_bytes_max = size_t(rows_per_block) * row_bytes;
        cfg.row_string_bytes_max = row_bytes;
        cfg.options.compression = {format::codec::none, 0};
        cfg.options.flush_interval_ms = 60'000;
        cfg.options.sync_bytes = sync_every;
        cfg.options.segment_bytes_max = 1ull << 30;
        cfg.write_buffers = uint32_t(state.range(1));
        auto w = segment_writer::open(cfg, schema);
        if (!w) {
            state.SkipWithError(w.err().message.c_str());
            return;
        }
        state.ResumeTiming();
        const uint64_t rows = total_bytes / row_bytes;
        for (uint64_t i = 0; i < rows; ++i) {
            auto& b = (*w)->batch();
            b.push_i64(0, int64_t(i));
            b.push_string(1, std::string_view(noise).substr((i % windows) * 61, row_bytes));
            b.end_row();
            (*w)->commit_row();
            if ((i & 63) == 0) (*w)->poll(sluice::monotonic_ns());
        }
        auto closed = (*w)->close();
        state.PauseTiming();
        if (!closed || (*w)->rows_durable() != rows) {
            state.SkipWithError(closed ? "not every row became durable" : closed.err().message.c_str());
            return;
        }
        if ((*w)->bytes_written() < rows * row_bytes) {
            state.SkipWithError("fewer bytes written than appended: the rows were compressed");
            return;
        }
        bytes += (*w)->bytes_written();
        direct &= (*w)->direct_io();
        fixed &= (*w)->fixed_buffers();
        w.value().reset();
        std::filesystem::remove_all(dir);
        state.ResumeTiming();
    }
    state.SetBytesProcessed(int64_t(bytes));
    state.counters["direct_io"] = direct;
    state.counters["registered_buffers"] = fixed;
    state.counters["block_KiB"] = double(size_t(rows_per_block) * row_bytes) / 1024;
}

void bm_uring_sequential(benchmark::State& state) {
    const unsigned depth = unsigned(state.range(0));
    constexpr size_t buf_bytes = 1u << 20;
    std::vector<iovec> iov(depth);
    for (auto& v : iov) {
        v.iov_base = std::aligned_alloc(4096, buf_bytes);
        v.iov_len = buf_bytes;
        std::memset(v.iov_base, 0x5a, buf_bytes);
    }
    uint64_t bytes = 0;
    bool fixed = true;
    for (auto _ : state) {
        state.PauseTiming();
        const std::string dir = make_temp_dir();
        const std::string path = dir + "/seq.dat";
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0640);
        uring_writer io;
        if (fd < 0 || !io.init(64, iov)) {
            state.SkipWithError("cannot open with O_DIRECT or set up io_uring");
            return;
        }
        fixed &= io.fixed_buffers();
        state.ResumeTiming();
        uint64_t offset = 0, in_flight = 0, since_sync = 0, next = 0;
        bool error = false;
        auto on_cqe = [&](uint64_t, int res) {
            --in_flight;
            if (res < 0) error = true;
        };
        while (offset < total_bytes && !error) {
            while (in_flight < depth && offset < total_bytes) {
                io.prep_write(fd, static_cast<uint8_t*>(iov[next].iov_base), buf_bytes, offset,
                              int(next), next);
                next = (next + 1) % depth;
                offset += buf_bytes;
                since_sync += buf_bytes;
                ++in_flight;
            }
            io.submit();
            io.reap(true, on_cqe);
            if (since_sync >= sync_every) {
                // As the writer: sync what has completed (wait for the rest first).
                while (in_flight > 0) io.reap(true, on_cqe);
                io.prep_fdatasync(fd, 1000);
                ++in_flight;
                io.submit();
                while (in_flight > 0) io.reap(true, on_cqe);
                since_sync = 0;
            }
        }
        while (in_flight > 0) io.reap(true, on_cqe);
        io.prep_fdatasync(fd, 1000);
        ++in_flight;
        io.submit();
        while (in_flight > 0) io.reap(true, on_cqe);
        state.PauseTiming();
        ::close(fd);
        std::filesystem::remove_all(dir);
        if (error) {
            state.SkipWithError("a write failed");
            return;
        }
        bytes += offset;
        state.ResumeTiming();
    }
    for (auto& v : iov) std::free(v.iov_base);
    state.SetBytesProcessed(int64_t(bytes));
    state.counters["registered_buffers"] = fixed;
}

BENCHMARK(bm_writer_bandwidth)->ArgNames({"rows_per_block", "buffers"})
    ->Args({256, 2})->Args({256, 4})->Args({1024, 2})
    ->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(bm_uring_sequential)->ArgName("depth")->Arg(2)->Arg(4)
    ->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);

} // namespace

BENCHMARK_MAIN();
