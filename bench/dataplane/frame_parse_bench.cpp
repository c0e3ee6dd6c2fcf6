// parse_frame() per frame shape, over a burst of frames as the RX loop sees them.
// Items are frames; bytes are whole frames.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/limits.h"
#include "dataplane/frame_parse.h"

namespace {

using sluice::dataplane::frame_verdict;
using sluice::dataplane::parse_frame;
using sluice::dataplane::port_filter;

constexpr uint16_t bench_port = 9000;

enum class shape { ipv4, vlan_ipv4, qinq_ipv4, ipv6, ipv6_ext };

void put16(std::vector<uint8_t>& b, uint32_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

// A seed-shaped event (SPEC §2.1) in one UDP datagram.
std::vector<uint8_t> make_frame(shape s, size_t index) {
    const std::string payload =
        "{\"user_id\":\"" + std::to_string(10000 + index) +
        "\",\"event_type\":\"page_view\",\"timestamp\":\"2025-02-28T15:22:31Z\","
        "\"page\":\"/products/1234\",\"metadata\":{\"user_agent\":\"Mozilla/5.0\","
        "\"referrer\":\"https://www.google.com\"}}";
    std::vector<uint8_t> b(12, 0x02);
    if (s == shape::qinq_ipv4) {
        put16(b, 0x88a8);
        put16(b, 10);
    }
    if (s == shape::vlan_ipv4 || s == shape::qinq_ipv4) {
        put16(b, 0x8100);
        put16(b, 100);
    }
    const bool v6 = s == shape::ipv6 || s == shape::ipv6_ext;
    put16(b, v6 ? 0x86dd : 0x0800);
    const uint32_t ext_bytes = s == shape::ipv6_ext ? 16 : 0;
    const uint32_t udp_bytes = 8 + static_cast<uint32_t>(payload.size());
    if (v6) {
        b.push_back(0x60);
        b.insert(b.end(), 3, 0);
        put16(b, ext_bytes + udp_bytes);
        b.push_back(ext_bytes ? 0 : 17); // hop-by-hop, or UDP
        b.push_back(64);
        b.insert(b.end(), 32, 0x20);
        if (ext_bytes) {
            b.push_back(17);
            b.push_back(1); // 16 bytes
            b.insert(b.end(), 14, 0);
        }
    } else {
        b.push_back(0x45);
        b.push_back(0);
        put16(b, 20 + udp_bytes);
        put16(b, static_cast<uint32_t>(index));
        put16(b, 0x4000); // DF
        b.push_back(64);
        b.push_back(17);
        put16(b, 0);
        b.insert(b.end(), 8, 10);
    }
    put16(b, 40000);
    put16(b, bench_port);
    put16(b, udp_bytes);
    put16(b, 0);
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

void bm_parse(benchmark::State& state, shape s) {
    port_filter ports;
    ports.add(bench_port);
    std::vector<std::vector<uint8_t>> frames;
    size_t bytes = 0;
    for (size_t i = 0; i < sluice::limits::rx_burst_max; ++i) {
        frames.push_back(make_frame(s, i));
        bytes += frames.back().size();
    }
    std::string_view payload;
    // A benchmark of the reject path by mistake would read as a fast parser.
    for (const auto& f : frames)
        if (parse_frame(f.data(), static_cast<uint32_t>(f.size()), ports, &payload) !=
            frame_verdict::udp_to_port) {
            state.SkipWithError("bench frame does not parse as UDP to the port");
            return;
        }
    for (auto _ : state) {
        size_t accepted = 0;
        for (const auto& f : frames)
            accepted += parse_frame(f.data(), static_cast<uint32_t>(f.size()), ports, &payload) ==
                        frame_verdict::udp_to_port;
        benchmark::DoNotOptimize(accepted);
        benchmark::DoNotOptimize(payload);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * frames.size()));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

BENCHMARK_CAPTURE(bm_parse, ipv4, shape::ipv4);
BENCHMARK_CAPTURE(bm_parse, vlan_ipv4, shape::vlan_ipv4);
BENCHMARK_CAPTURE(bm_parse, qinq_ipv4, shape::qinq_ipv4);
BENCHMARK_CAPTURE(bm_parse, ipv6, shape::ipv6);
BENCHMARK_CAPTURE(bm_parse, ipv6_hop_by_hop, shape::ipv6_ext);

} // namespace

BENCHMARK_MAIN();
