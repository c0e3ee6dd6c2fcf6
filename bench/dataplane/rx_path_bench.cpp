// The RX lcore's per-event work, over the same seed-shaped events packed into ~1400-byte
// datagrams two ways: NDJSON and binary batches (docs/BINARY.md). Items are events.
//
// - bm_ndjson_parse: split a datagram into lines, event_parser::parse each into a slot
//   (copy, simdjson on-demand, RFC 3339, identity).
// - bm_binary_parse: binary_batch::open per datagram, parse_event per record into a slot
//   (canonical copy, UTF-8 via one simdjson pass per batch, identity).
// - bm_simdjson_datagram: simdjson alone, per-line iterate vs one iterate_many document
//   stream per datagram (issue 14: the stream did not win; see docs/benchmarks.md).
// - bm_copy_to_slot: only the copy of each NDJSON line into a slot (+ the zero padding
//   simdjson may read): what parsing in the mbuf instead would save at most.
// - bm_rx_lcore: the whole RX path per event, rx_lcore::handle_frame on Ethernet/IPv4/UDP
//   frames: frame parse, split, parse, identity, slot from the rte_mempool, route, bursts
//   onto two SPSC rte_rings; the rings are drained on the same thread after each burst
//   (dequeue + mempool put, what a worker does before processing). EAL runs without
//   hugepages on one lcore.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "base/limits.h"
#include "bench/seed_events.h"
#include "dataplane/binary_parse.h"
#include "dataplane/eal_setup.h"
#include "dataplane/event_parse.h"
#include "dataplane/rx_lcore.h"
#include "processing/event.h"
#include "tools/gen/binary_batch.h"
#include "tools/gen/frames.h"

namespace {

using sluice::processing::event_slot;
using sluice::processing::slot_kind;

constexpr size_t pool_events = 8192;
constexpr size_t pack_bytes = 1400;
constexpr uint16_t udp_port = 9000;

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct slot_deleter {
    void operator()(event_slot* s) const { ::operator delete (s, std::align_val_t{64}); }
};
std::unique_ptr<event_slot, slot_deleter> make_slot(uint32_t event_bytes_max) {
    void* mem =
        ::operator new (sluice::processing::slot_bytes(event_bytes_max), std::align_val_t{64});
    return std::unique_ptr<event_slot, slot_deleter>(new (mem) event_slot{});
}

struct datagrams {
    std::vector<std::string> payloads;
    std::vector<uint32_t> events; // per payload
    uint64_t total_events = 0;
    double bytes_per_event() const {
        double b = 0;
        for (const auto& p : payloads)
            b += double(p.size());
        return b / double(total_events);
    }
};

datagrams ndjson_datagrams(const std::vector<sluice::bench::seed_event>& events) {
    datagrams d;
    std::string cur;
    uint32_t n = 0;
    for (const auto& e : events) {
        if (!cur.empty() && cur.size() + 1 + e.json.size() > pack_bytes) {
            d.payloads.push_back(cur);
            d.events.push_back(n);
            cur.clear();
            n = 0;
        }
        if (!cur.empty()) cur += '\n';
        cur += e.json;
        ++n;
    }
    d.payloads.push_back(cur);
    d.events.push_back(n);
    d.total_events = events.size();
    return d;
}

datagrams binary_datagrams(const std::vector<sluice::bench::seed_event>& events) {
    datagrams d;
    sluice::tools::bin_batch_encoder enc;
    uint32_t n = 0;
    for (const auto& s : events) {
        sluice::tools::bin_event e;
        e.timestamp_ms = s.time_ms;
        if (!s.event_id.empty()) e.event_id = s.event_id;
        e.user_id = s.user_id;
        e.event_type = s.event_type;
        e.page = s.page;
        e.metadata = s.metadata;
        if (!enc.empty() && enc.size_with(e) > pack_bytes) {
            d.payloads.push_back(enc.finish());
            d.events.push_back(n);
            n = 0;
        }
        enc.add(e);
        ++n;
    }
    d.payloads.push_back(enc.finish());
    d.events.push_back(n);
    d.total_events = events.size();
    return d;
}

void bm_ndjson_parse(benchmark::State& state, bool with_event_id) {
    const auto events = sluice::bench::make_seed_events(pool_events, with_event_id);
    const datagrams d = ndjson_datagrams(events);
    sluice::dataplane::parse_config config;
    sluice::dataplane::event_parser parser(config);
    auto slot = make_slot(config.event_bytes_max);
    const int64_t now = now_ms();
    uint64_t parsed = 0, good = 0;
    size_t next = 0;
    for (auto _ : state) {
        const std::string& p = d.payloads[next];
        next = (next + 1) % d.payloads.size();
        const char* c = p.data();
        const char* end = c + p.size();
        while (c < end) {
            const char* nl = static_cast<const char*>(std::memchr(c, '\n', size_t(end - c)));
            const char* line_end = nl ? nl : end;
            parser.parse(std::string_view(c, size_t(line_end - c)), now, *slot);
            good += slot->kind == slot_kind::event;
            benchmark::DoNotOptimize(slot->id);
            c = nl ? nl + 1 : end;
            ++parsed;
        }
    }
    if (good != parsed) state.SkipWithError("a bench event did not parse as an event");
    state.SetItemsProcessed(int64_t(parsed));
    state.counters["wire_bytes_per_event"] = d.bytes_per_event();
}

void bm_binary_parse(benchmark::State& state, bool with_event_id) {
    const auto events = sluice::bench::make_seed_events(pool_events, with_event_id);
    const datagrams d = binary_datagrams(events);
    sluice::dataplane::parse_config config;
    auto slot = make_slot(config.event_bytes_max);
    const int64_t now = now_ms();
    uint64_t parsed = 0, good = 0;
    size_t next = 0;
    for (auto _ : state) {
        const std::string& p = d.payloads[next];
        next = (next + 1) % d.payloads.size();
        sluice::dataplane::binary_batch batch;
        if (!batch.open(p)) {
            state.SkipWithError("a bench batch was refused");
            return;
        }
        const uint32_t n = batch.events();
        for (uint32_t i = 0; i < n; ++i) {
            batch.parse_event(i, config, now, *slot);
            good += slot->kind == slot_kind::event;
            benchmark::DoNotOptimize(slot->id);
        }
        parsed += n;
    }
    if (good != parsed) state.SkipWithError("a bench record did not parse as an event");
    state.SetItemsProcessed(int64_t(parsed));
    state.counters["wire_bytes_per_event"] = d.bytes_per_event();
}

void bm_copy_to_slot(benchmark::State& state) {
    const auto events = sluice::bench::make_seed_events(pool_events, false);
    auto slot = make_slot(4096);
    uint64_t copied = 0;
    size_t next = 0;
    for (auto _ : state) {
        for (int i = 0; i < 64; ++i) {
            const std::string& j = events[next].json;
            next = (next + 1) % events.size();
            std::memcpy(slot->data(), j.data(), j.size());
            std::memset(slot->data() + j.size(), 0, sluice::processing::slot_parse_padding);
            benchmark::ClobberMemory();
        }
        copied += 64;
    }
    state.SetItemsProcessed(int64_t(copied));
}

// simdjson alone, the two ways a datagram's NDJSON lines can reach it, with the same walk
// of every document (each field's key unescaped, string values read) and the same copy
// of each event's bytes into a slot, which the worker needs either way:
// - per_line: copy the line into the slot (+ zero padding), parser.iterate on the slot.
// - iterate_many: one document stream over the (padded) datagram, then copy each
//   document's bytes (to the end of its line) into the slot. simdjson 3.0.1 allocates a stage-1 worker per stream
//   when built with threads (this build), so that cost is in it too.
// No identity, timestamp or dead-letter rules: this only asks which front end is cheaper.
template <class Doc> size_t walk_document(Doc& doc) noexcept {
    using namespace simdjson;
    size_t n = 0;
    ondemand::object obj;
    if (doc.get_object().get(obj)) return 0;
    for (auto field_result : obj) {
        if (field_result.error()) return 0;
        ondemand::field& field = field_result.value_unsafe();
        std::string_view key;
        if (field.unescaped_key().get(key)) return 0;
        ondemand::value& v = field.value();
        ondemand::json_type type;
        if (v.type().get(type)) return 0;
        std::string_view text;
        if (type == ondemand::json_type::string && v.get_string().get(text) == SUCCESS)
            n += text.size();
        n += key.size();
    }
    return n;
}

void bm_simdjson_datagram(benchmark::State& state, bool many) {
    using namespace simdjson;
    const auto events = sluice::bench::make_seed_events(pool_events, false);
    const datagrams d = ndjson_datagrams(events);
    std::vector<padded_string> padded;
    for (const auto& p : d.payloads) padded.emplace_back(p);
    constexpr uint32_t capacity = 4096 + sluice::processing::slot_parse_padding;
    ondemand::parser parser;
    if (parser.allocate(capacity) != SUCCESS) {
        state.SkipWithError("simdjson allocate");
        return;
    }
    auto slot = make_slot(4096);
    uint64_t docs = 0, walked = 0;
    size_t next = 0;
    for (auto _ : state) {
        const size_t i = next;
        next = (next + 1) % d.payloads.size();
        if (!many) {
            const char* c = d.payloads[i].data();
            const char* end = c + d.payloads[i].size();
            while (c < end) {
                const char* nl = static_cast<const char*>(std::memchr(c, '\n', size_t(end - c)));
                const size_t len = size_t((nl ? nl : end) - c);
                std::memcpy(slot->data(), c, len);
                std::memset(slot->data() + len, 0, sluice::processing::slot_parse_padding);
                ondemand::document doc;
                if (parser.iterate(slot->data(), len, len + sluice::processing::slot_parse_padding)
                        .get(doc) == SUCCESS)
                    walked += walk_document(doc);
                benchmark::DoNotOptimize(slot->data());
                ++docs;
                c = nl ? nl + 1 : end;
            }
        } else {
            ondemand::document_stream stream;
            // batch_size == capacity: the parser is never reallocated.
            if (parser.iterate_many(padded[i], capacity).get(stream)) continue;
            for (auto it = stream.begin(); it != stream.end(); ++it) {
                ondemand::document_reference doc;
                if ((*it).get(doc)) break;
                walked += walk_document(doc);
                // The event's bytes run to the end of its line.
                const char* start = padded[i].data() + it.current_index();
                const char* end = padded[i].data() + padded[i].size();
                const char* nl = static_cast<const char*>(std::memchr(start, '\n', size_t(end - start)));
                std::memcpy(slot->data(), start, size_t((nl ? nl : end) - start));
                benchmark::DoNotOptimize(slot->data());
                ++docs;
            }
        }
    }
    if (docs == 0 || walked == 0) state.SkipWithError("nothing walked");
    state.SetItemsProcessed(int64_t(docs));
}

BENCHMARK_CAPTURE(bm_simdjson_datagram, per_line, false);
BENCHMARK_CAPTURE(bm_simdjson_datagram, iterate_many, true);

BENCHMARK_CAPTURE(bm_ndjson_parse, bytes_identity, false);
BENCHMARK_CAPTURE(bm_ndjson_parse, with_event_id, true);
BENCHMARK_CAPTURE(bm_binary_parse, bytes_identity, false);
BENCHMARK_CAPTURE(bm_binary_parse, with_event_id, true);
BENCHMARK(bm_copy_to_slot);

// The full RX path on one lcore, the rings drained in place.
void bm_rx_lcore(benchmark::State& state, bool binary) {
    static int instance = 0;
    const int me = instance++;
    constexpr uint32_t workers = 2;
    const auto events = sluice::bench::make_seed_events(pool_events, false);
    const datagrams d = binary ? binary_datagrams(events) : ndjson_datagrams(events);
    std::vector<std::vector<uint8_t>> frames(d.payloads.size());
    for (size_t i = 0; i < d.payloads.size(); ++i) {
        sluice::tools::frame_addr addr;
        addr.src_host = uint8_t(1 + i % 8);
        sluice::tools::build_udp_frame(frames[i], addr, 40000, udp_port, uint16_t(i),
                                       d.payloads[i]);
    }
    sluice::dataplane::rx_config rc;
    rc.ports.add(udp_port);
    // sluiced's default pool for 1 RX + 2 workers.
    auto pool = sluice::dataplane::slot_pool_create(
        sluice::dataplane::slots_default(1, workers),
        sluice::processing::slot_bytes(rc.parse.event_bytes_max),
        "bench_slots_" + std::to_string(me));
    if (!pool) {
        state.SkipWithError(pool.err().message.c_str());
        return;
    }
    std::vector<rte_ring*> rings;
    for (uint32_t w = 0; w < workers; ++w) {
        auto r = sluice::dataplane::spsc_ring_create(
            "bench_rx_" + std::to_string(me) + "_" + std::to_string(w), sluice::limits::ring_size);
        if (!r) {
            state.SkipWithError(r.err().message.c_str());
            return;
        }
        rings.push_back(*r);
    }
    std::atomic<bool> stop{false};
    sluice::dataplane::rx_lcore rx(rc, *pool, rings, &stop);
    rx.set_clock_ms(now_ms());
    void* objs[sluice::limits::ring_burst_max];
    uint64_t drained = 0;
    auto drain = [&] {
        for (rte_ring* r : rings) {
            unsigned n;
            while ((n = rte_ring_sc_dequeue_burst(r, objs, sluice::limits::ring_burst_max,
                                                  nullptr)) > 0) {
                for (unsigned i = 0; i < n; ++i)
                    drained += static_cast<event_slot*>(objs[i])->kind == slot_kind::event;
                sluice::dataplane::slot_pool_put(*pool, objs, n);
            }
        }
    };
    size_t next = 0;
    uint64_t sent = 0;
    constexpr size_t frames_per_burst = 16;
    for (auto _ : state) {
        for (size_t f = 0; f < frames_per_burst; ++f) {
            rx.handle_frame(frames[next].data(), uint32_t(frames[next].size()));
            sent += d.events[next];
            next = (next + 1) % frames.size();
        }
        rx.flush_all();
        drain();
    }
    state.SetItemsProcessed(int64_t(sent));
    state.counters["wire_bytes_per_event"] = d.bytes_per_event();
    // Every event reached a ring (watermark slots are not events).
    if (drained != sent) state.SkipWithError("events went missing between RX and the rings");
    for (rte_ring* r : rings)
        rte_ring_free(r);
    rte_mempool_free(*pool); // the rx_lcore's stash goes with it; rx is not used again
}

BENCHMARK_CAPTURE(bm_rx_lcore, ndjson, false);
BENCHMARK_CAPTURE(bm_rx_lcore, binary, true);

} // namespace

int main(int argc, char** argv) {
    auto eal = sluice::dataplane::eal_init_deviceless("rx_path_bench", 512, "0");
    if (!eal) {
        fprintf(stderr, "%s\n", eal.err().message.c_str());
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    sluice::dataplane::eal_cleanup_deviceless();
    return 0;
}
