// block_encoder::encode() of one full `events` block (16384 seed-shaped rows, as the
// worker fills it; half of them with a 36-character event_id) with each codec: none,
// zstd 1 (the writer's default), zstd 3, lz4. Items are rows; bytes are the rows' event
// JSON bytes. bytes_per_row is the padded on-disk block size per row, the number §7's
// "bytes on disk per event" is made of (file header and footer excluded; they are
// < 0.01 B/row at 256 MiB segments).
//
// bm_encode_gen_block: the same with sluice-gen's events (tools/gen, seed 7 as
// bench/e2e/harness.py's default), the events the end-to-end harness sends: each line
// parsed by the RX's event_parser and appended as worker::store_event appends it (the
// fields, the places of raw's references), exact re-sends and dead letters left out.
// Their `raw` varies far more than the seed events' (timestamp renderings, optional
// metadata keys, escapes, key order), which is what zstd's cost follows.
//
// bm_encode_gen_binary_block: the same stream as binary batches (sluice-gen --format
// binary, docs/BINARY.md), each record parsed by dataplane's binary_batch as the RX
// parses it; `raw` is then the event's canonical binary form. Exact re-sends (the same
// canonical form) and dead letters left out. bytes are the canonical forms' bytes.
//
// Both gen benchmarks report, besides bytes_per_row, each column's stored bytes per row
// (chunk header included): B_<column>.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "base/limits.h"
#include "bench/seed_events.h"
#include "dataplane/binary_parse.h"
#include "dataplane/event_parse.h"
#include "processing/event.h"
#include "processing/event_row.h"
#include "storage/column_batch.h"
#include "storage/schema.h"
#include "storage/segment_format.h"
#include "tools/gen/generator.h"

namespace {

namespace ev = sluice::storage::events_col;
namespace format = sluice::storage::format;
using sluice::storage::column_batch;

// Fills `batch` until it is full; returns the JSON bytes of the rows it took.
uint64_t fill_events(column_batch& batch) {
    static const auto plain = sluice::bench::make_seed_events(sluice::limits::batch_rows_max, false, 1);
    static const auto with_id = sluice::bench::make_seed_events(sluice::limits::batch_rows_max, true, 2);
    uint64_t bytes = 0;
    for (size_t i = 0; !batch.full(); ++i) {
        const auto& e = i % 2 ? with_id[i / 2 % with_id.size()] : plain[i / 2 % plain.size()];
        batch.push_i64(ev::event_time_ms, e.time_ms);
        if (i % 2) {
            batch.push_string(ev::event_id, std::string_view(e.json).substr(13, 36));
        } else {
            batch.push_null(ev::event_id);
        }
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

// Fills `batch` with sluice-gen events until it is full, as the worker stores them
// (processing::append_event_row: the places the RX found go with raw); returns
// the rows' JSON bytes, 0 when the generator ran out first.
uint64_t fill_gen_events(column_batch& batch) {
    namespace sp = sluice::processing;
    constexpr uint32_t event_bytes_max = 4096; // sluice's default limit
    sluice::tools::gen_config gc;
    gc.events = 2 * sluice::limits::batch_rows_max;
    gc.seed = 7;
    std::vector<std::string> lines;
    sluice::tools::traffic_generator gen(gc);
    gen.run([&lines](const sluice::tools::gen_frame& f) {
        if (f.ignored) return;
        std::string_view p = f.payload;
        while (!p.empty()) {
            const size_t nl = p.find('\n');
            const std::string_view line = p.substr(0, nl);
            if (!line.empty()) lines.emplace_back(line);
            p.remove_prefix(nl == std::string_view::npos ? p.size() : nl + 1);
        }
    });
    sluice::dataplane::parse_config pc;
    pc.event_bytes_max = event_bytes_max;
    sluice::dataplane::event_parser parser(pc);
    const size_t stride = sp::slot_bytes(event_bytes_max);
    std::unique_ptr<char[]> mem(new char[stride + 64]);
    char* at = mem.get() + (64 - reinterpret_cast<uintptr_t>(mem.get()) % 64) % 64;
    std::unordered_set<std::string> seen;
    const int64_t now = sluice::wall_clock_ms();
    uint64_t bytes = 0;
    for (const auto& line : lines) {
        if (batch.full()) break;
        if (!seen.insert(line).second) continue;
        sp::event_slot& s = *new (at) sp::event_slot{};
        parser.parse(line, now, s);
        if (s.kind != sp::slot_kind::event) continue;
        sp::append_event_row(batch, s, false, s.event_time_ms);
        bytes += s.raw_len;
    }
    return batch.full() ? bytes : 0;
}

// Fills `batch` with sluice-gen's binary events until it is full, as the worker stores
// them; returns the rows' canonical bytes, 0 when the generator ran out first.
uint64_t fill_gen_binary_events(column_batch& batch) {
    namespace sp = sluice::processing;
    constexpr uint32_t event_bytes_max = 4096;
    sluice::tools::gen_config gc;
    gc.events = 2 * sluice::limits::batch_rows_max;
    gc.seed = 7;
    gc.binary = true;
    gc.event_bytes_max = event_bytes_max;
    std::vector<std::string> payloads;
    sluice::tools::traffic_generator gen(gc);
    gen.run([&payloads](const sluice::tools::gen_frame& f) {
        if (!f.ignored) payloads.emplace_back(f.payload);
    });
    sluice::dataplane::parse_config pc;
    pc.event_bytes_max = event_bytes_max;
    const size_t stride = sp::slot_bytes(event_bytes_max);
    std::unique_ptr<char[]> mem(new char[stride + 64]);
    char* at = mem.get() + (64 - reinterpret_cast<uintptr_t>(mem.get()) % 64) % 64;
    std::unordered_set<std::string> seen;
    const int64_t now = sluice::wall_clock_ms();
    uint64_t bytes = 0;
    for (const auto& payload : payloads) {
        sluice::dataplane::binary_batch bb;
        if (!sluice::dataplane::is_binary_batch(payload) || !bb.open(payload)) continue;
        for (uint32_t i = 0; i < bb.events() && !batch.full(); ++i) {
            sp::event_slot& s = *new (at) sp::event_slot{};
            bb.parse_event(i, pc, now, s);
            if (s.kind != sp::slot_kind::event) continue;
            if (!seen.emplace(s.raw()).second) continue;
            sp::append_event_row(batch, s, false, s.event_time_ms);
            bytes += s.raw_len;
        }
        if (batch.full()) break;
    }
    return batch.full() ? bytes : 0;
}

const format::compression codecs[] = {
    {format::codec::none, 0}, {format::codec::zstd, 1}, {format::codec::zstd, 3}, {format::codec::lz4, 1}};

void encode_block(benchmark::State& state, uint64_t (*fill)(column_batch&)) {
    const format::compression comp = codecs[state.range(0)];
    const auto schema = sluice::storage::events_schema();
    const uint32_t rows_max = sluice::limits::batch_rows_max;
    const size_t string_bytes_max = sluice::limits::batch_string_bytes_max;
    column_batch batch(schema, rows_max, string_bytes_max, sluice::limits::event_bytes_max);
    const uint64_t json_bytes = fill(batch);
    if (json_bytes == 0) {
        state.SkipWithError("too few events to fill a block");
        return;
    }
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
        !decoder.decode(back, out.data() + format::block_header_bytes, decoded)) {
        state.SkipWithError("encoded block does not decode");
        return;
    }
    for (uint32_t r = 0; r < batch.rows(); ++r)
        if (decoded.string_at(ev::raw, r) != batch.string_at(ev::raw, r) ||
            decoded.is_null(ev::event_id, r) != batch.is_null(ev::event_id, r)) {
            state.SkipWithError("encoded block does not decode back to the batch");
            return;
        }
    const double rows = batch.rows();
    state.SetItemsProcessed(int64_t(state.iterations() * batch.rows()));
    state.SetBytesProcessed(int64_t(state.iterations() * json_bytes));
    state.counters["rows"] = rows;
    state.counters["bytes_per_row"] = double(format::block_bytes(h.payload_bytes)) / rows;
    state.counters["json_bytes_per_row"] = double(json_bytes) / rows;
    // Each column's stored bytes per row, chunk header included.
    if (auto infos = format::read_chunk_infos(h, out.data() + format::block_header_bytes)) {
        for (size_t c = 0; c < infos->size(); ++c)
            state.counters["B_" + schema.columns[c].name] =
                double(format::chunk_header_bytes + (*infos)[c].stored_len) / rows;
    }
    state.SetLabel(comp.kind == format::codec::none ? "none"
                   : comp.kind == format::codec::lz4 ? "lz4"
                                                      : "zstd" + std::to_string(comp.level));
}

void bm_encode_events_block(benchmark::State& state) { encode_block(state, fill_events); }
void bm_encode_gen_block(benchmark::State& state) { encode_block(state, fill_gen_events); }
void bm_encode_gen_binary_block(benchmark::State& state) {
    encode_block(state, fill_gen_binary_events);
}

// Decoding the same block back (what every scan does per block).
void bm_decode_events_block(benchmark::State& state) {
    const format::compression comp = codecs[state.range(0)];
    const auto schema = sluice::storage::events_schema();
    const uint32_t rows_max = sluice::limits::batch_rows_max;
    column_batch batch(schema, rows_max, sluice::limits::batch_string_bytes_max,
                       sluice::limits::event_bytes_max);
    const uint64_t json_bytes = fill_events(batch);
    format::block_encoder encoder(schema, rows_max, sluice::limits::batch_string_bytes_max, comp);
    std::vector<uint8_t> out(encoder.block_bytes_max());
    format::block_header h = encoder.encode(batch, 0, out.data());
    column_batch decoded(schema, 1, 0, 0);
    format::block_decoder decoder;
    for (auto _ : state) {
        if (!decoder.decode(h, out.data() + format::block_header_bytes, decoded)) {
            state.SkipWithError("block does not decode");
            return;
        }
        benchmark::DoNotOptimize(decoded.rows());
    }
    state.SetItemsProcessed(int64_t(state.iterations() * batch.rows()));
    state.SetBytesProcessed(int64_t(state.iterations() * json_bytes));
    state.SetLabel(comp.kind == format::codec::none ? "none"
                   : comp.kind == format::codec::lz4 ? "lz4"
                                                      : "zstd" + std::to_string(comp.level));
}

BENCHMARK(bm_encode_events_block)->ArgName("codec")->DenseRange(0, 3);
BENCHMARK(bm_encode_gen_block)->ArgName("codec")->DenseRange(0, 3);
BENCHMARK(bm_encode_gen_binary_block)->ArgName("codec")->DenseRange(0, 3);
BENCHMARK(bm_decode_events_block)->ArgName("codec")->DenseRange(0, 3);

} // namespace

BENCHMARK_MAIN();
