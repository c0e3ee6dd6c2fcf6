#pragma once
// The one comparison of what the real sluiced did with sluice-gen's model, whatever the
// ingress (pcap, kernel UDP, Kafka, both together): gtest EXPECTs, so that every
// difference is listed.
#include <string>

#include "tests/integration/daemon_harness.h"

namespace sluice::testing {

// stats totals against the model's counters.json: events received, accepted, duplicates,
// late, dead letters and each reason. Packet counters depend on the transport and are the
// caller's.
void expect_model_counters(const json& totals, const json& want);

// The store's events, dead_letters and `query_table` windows against the model's rows.
void expect_model_store(const std::string& data_dir, const std::string& query_table,
                        const expected_outcome& want);

} // namespace sluice::testing
