#pragma once
// The benchmark workload: the UDP payloads of a sluice-gen capture, in capture order, and
// the same events rendered as InfluxDB line protocol for the peers (VictoriaMetrics,
// InfluxDB). Loaded once, before any timing starts. Tool code, not the appliance.
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::bench {

struct workload {
    std::vector<std::string> datagrams; // NDJSON payloads of the frames sent to the port
    uint64_t event_lines = 0;           // non-empty lines over all datagrams
    uint64_t ignored_frames = 0;        // frames that are not UDP to the port
};

// Reads every frame of a pcap and keeps the UDP payloads addressed to `port`.
result<workload> load_pcap(const std::string& path, uint16_t port);

struct line_protocol {
    std::vector<std::string> datagrams; // <= datagram_bytes each, whole lines only
    std::vector<std::string> batches;   // <= lines_per_batch lines each, for HTTP /write
    uint64_t points = 0;                // events that became a point
    uint64_t not_representable = 0;     // lines sluice dead-letters (no valid JSON/time)
    // Points left after a store keeps one point per (series, timestamp): at nanosecond
    // precision (InfluxDB overwrites equal points) and at millisecond precision
    // (VictoriaMetrics keeps one sample per series and millisecond).
    uint64_t distinct_ns = 0;
    uint64_t distinct_ms = 0;
};

// One point per event sluice would parse as valid, in the same order:
//   events,page=<page>,event_type=<type> user_id="<id>",n=1i <ns>
// where <ns> = event time in ms * 1e6 + (identity mod 1e6). Folding the identity into the
// nanoseconds keeps each minute's points inside the minute, keeps distinct events distinct
// points, and makes a byte-exact re-send the same point (the peers' idempotent overwrite
// is their only dedup). `now_ms` is the wall clock for sluice's future-timestamp check.
line_protocol to_line_protocol(const workload& w, int64_t now_ms, size_t datagram_bytes,
                               size_t lines_per_batch);

} // namespace sluice::bench
