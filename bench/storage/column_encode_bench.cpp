// block_encoder::encode() of one full `events` block (16384 seed-shaped rows, as the
// worker fills it) at zstd levels 0 (no compression), 1 (the writer's default) and 3.
// Items are rows; bytes are the rows' event JSON bytes. bytes_per_row is the padded
// on-disk block size per row, the number §7's "bytes on disk per event" is made of.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "base/limits.h"
#include "bench/seed_events.h"
#include "storage/column_batch.h"
#include "storage/schema.h"
#include "storage/segment_format.h"

namespace {

namespace ev = sluice::storage::events_col;
namespace format = sluice::storage::format;
using sluice::storage::column_batch;

// Fills `batch` until it is full; returns the JSON bytes of the rows it took.
uint64_t fill_events(column_batch& batch, const std::vector<sluice::bench::seed_event>& events) {
    uint64_t bytes = 0;
    for (size_t i = 0; !batch.full(); ++i) {
        const auto& e = events[i % events.size()];
        batch.push_i64(ev::event_time_ms, e.time_ms);
        batch.push_null(ev::event_id);
        batch.push_string(ev::user_id, e.user_id);
        batch.push_string(ev::event_type, e.event_type);
        batch.push_string(ev::page, e.page);
        batch.push_u8(ev::late, 0);
        batch.push_string(ev::raw, e.json);
        batch.end_row();
        bytes += e.json.size();
    }
    return bytes;
}

void bm_encode_events_block(benchmark::State& state) {
    const int zstd_level = int(state.range(0));
    const auto schema = sluice::storage::events_schema();
    const uint32_t rows_max = sluice::limits::batch_rows_max;
    const size_t string_bytes_max = sluice::limits::batch_string_bytes_max;
    column_batch batch(schema, rows_max, string_bytes_max, sluice::limits::event_bytes_max);
    const uint64_t json_bytes = fill_events(batch, sluice::bench::make_seed_events(rows_max));
    format::compression comp{zstd_level == 0 ? format::codec::none : format::codec::zstd, zstd_level};
    format::block_encoder encoder(schema, rows_max, string_bytes_max, comp);
    std::vector<uint8_t> out(encoder.block_bytes_max());
    format::block_header h;
    uint64_t block_index = 0;
    for (auto _ : state) {
        h = encoder.encode(batch, block_index++, out.data());
        benchmark::DoNotOptimize(out.data());
    }
    // A block that does not decode back to the batch would make every number here moot.
    format::block_header back;
    column_batch decoded(schema, rows_max, string_bytes_max, sluice::limits::event_bytes_max);
    format::block_decoder decoder;
    if (!format::read_block_header(out.data(), back) || back.rows != batch.rows() ||
        !decoder.decode(back, out.data() + format::block_header_bytes, decoded) ||
        decoded.string_at(ev::raw, batch.rows() - 1) != batch.string_at(ev::raw, batch.rows() - 1)) {
        state.SkipWithError("encoded block does not decode back to the batch");
        return;
    }
    const double rows = batch.rows();
    state.SetItemsProcessed(int64_t(state.iterations() * batch.rows()));
    state.SetBytesProcessed(int64_t(state.iterations() * json_bytes));
    state.counters["rows"] = rows;
    state.counters["bytes_per_row"] = double(format::block_bytes(h.payload_bytes)) / rows;
    state.counters["json_bytes_per_row"] = double(json_bytes) / rows;
}

BENCHMARK(bm_encode_events_block)->ArgName("zstd")->Arg(0)->Arg(1)->Arg(3);

} // namespace

BENCHMARK_MAIN();
