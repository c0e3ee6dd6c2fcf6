#pragma once
// The benchmark workload: the UDP payloads of a sluice-gen capture, in capture order, and
// the same events rendered as InfluxDB line protocol for the peers (VictoriaMetrics,
// InfluxDB) and as sluice's binary batches (docs/BINARY.md). Loaded once, before any
// timing starts. Tool code, not the appliance.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::bench {

struct workload {
    std::vector<std::string> datagrams; // payloads of the frames sent to the port
    uint64_t event_lines = 0;           // events: non-empty NDJSON lines, binary records
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

struct rows_summary {
    uint64_t rows = 0;              // events that became a row (and a message)
    uint64_t not_representable = 0; // lines sluice dead-letters at RX: left out
    uint64_t distinct_ids = 0;      // distinct identities among the rows
    uint64_t pages = 0;             // distinct pages
    uint64_t series = 0;            // distinct (page, event_type): the series a time-series
                                    // store makes of the line protocol points
};

// The same events for the SQL and broker peers, in the same order, one line each per event
// sluice would parse as valid (the lines it dead-letters at RX are left out):
//   rows (ClickHouse JSONEachRow): {"id":"<identity, 32 hex>","event_id":"..","user_id":"..",
//     "event_type":"..","page":"..","ts":<event time, epoch ms>,"metadata":"<object as
//     compact JSON text>"}  (strings unescaped by sluice's parser, re-escaped as JSON;
//     absent fields are ""; the event time as a number because ClickHouse 18.16 reads no
//     RFC 3339 in JSONEachRow);
//   msgs (NATS): "<identity, 32 hex> <the event's exact bytes>".
// The identity is sluice's dedup identity (storage/event_identity.h): XXH3-128 of event_id
// when present, else of the exact bytes, so a store that keeps one row per id dedups by
// what sluice dedups by. Either FILE may be null. `now_ms` is the wall clock for the
// future check.
rows_summary write_rows(const workload& w, int64_t now_ms, std::FILE* rows, std::FILE* msgs);

struct binary_workload {
    std::vector<std::string> datagrams; // one binary batch each, <= datagram_bytes (a
                                        // batch of one larger event excepted)
    uint64_t records = 0;               // events that became a record
    uint64_t not_representable = 0;     // lines sluice dead-letters at RX: not sent
};

// The same events as binary batches, in the same order: one record per NDJSON line that
// passes sluice's RX checks (what a sender using the binary format would send), with the
// line's event_id, user_id, event_type and page (unescaped; absent stays absent), its
// event time in ms and its `metadata` object as compact JSON text. Unknown fields are
// dropped (the binary format has none). Lines sluice dead-letters at RX (malformed,
// oversize, future) have no binary form and are left out; they never move sluice's max
// event time, so duplicates, late events, beyond-horizon events and windows are the
// JSON stream's. A byte-exact re-send becomes a record-exact re-send, so its identity
// (canonical form) repeats too. `now_ms` is the wall clock for the future check.
binary_workload to_binary(const workload& w, int64_t now_ms, size_t datagram_bytes);

// Writes `datagrams` as a pcap of Ethernet/IPv4/UDP frames to `port` (sources 10.0.0.1-8
// round robin), what net_pcap's rx_pcap reads. Returns the number of frames.
result<uint64_t> write_pcap(const std::string& path, const std::vector<std::string>& datagrams,
                            uint16_t port);

} // namespace sluice::bench
