#pragma once
// A sluice-gen workload through a real Kafka client and kernel UDP together, checked
// against sluice-gen's reference model (tools/gen/model.h) with the same comparison the
// UDP end-to-end tests use (model_check.h). The stream's every event line (valid, late,
// beyond the horizon, duplicate, malformed) is one record value; some datagrams go over
// kernel UDP as well, before Kafka (so Kafka re-sends them) and after it (so UDP re-sends
// what Kafka stored): the same event over both ingress must be stored once. The model is
// fed in the order sent, and each phase is waited out before the next starts, so the
// outcome is exact however the two RX lcores interleave (docs/ARCHITECTURE.md §7).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/kafka_harness.h"

namespace sluice::testing::kafka {

struct model_workload {
    std::vector<std::string> udp_before;   // datagrams sent over UDP before any record
    std::vector<std::string> kafka_values; // every event line of the stream, in order
    std::vector<std::string> udp_after;    // datagrams re-sent over UDP after Kafka
    uint64_t lines_before = 0, lines_after = 0; // event lines in udp_before / udp_after
    expected_outcome want;       // the model's outcome of all three phases, in order
    json counters_after_kafka;   // the model's counters once the Kafka phase is done
};

// sluice-gen's stream of `events` event lines (its defaults, `seed`) split as above; the
// expected outcome is written to dir/expected/ by the model and read back from there.
model_workload make_model_workload(const std::string& dir, uint64_t events, uint64_t seed);

// Runs one client against the workload: starts sluiced with Kafka and kernel UDP, sends
// udp_before in step, writes kafka_values one per line to dir/values.ndjson and runs
// `client(k, values_path)` (a command line that returns once the client has flushed),
// checks what its `acks` ("all", "1" or "0") promise at that moment (all: every record
// handled and the model's rows durable; 1: every record received; 0: nothing), calls
// `after_produce(k, stats)` with the stats then, waits until the Kafka phase is handled,
// sends udp_after, and compares counters (live and final), the Kafka record count, the
// UDP datagram count and the store with the model. gtest assertions throughout.
void run_against_model(
    const std::string& tag, uint64_t events, uint64_t seed,
    const std::function<std::string(const kafka_daemon&, const std::string&)>& client,
    const std::function<void(const kafka_daemon&, const json&)>& after_produce = {},
    const std::string& acks = "all");

} // namespace sluice::testing::kafka
