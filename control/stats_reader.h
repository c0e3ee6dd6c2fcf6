#pragma once
// Reads the running pipeline's counters into control/stats.h's typed snapshot: relaxed
// loads of atomics that each have one writer, histogram snapshots, ring counts, the
// port's ethdev counters. Control thread only (the server's tick and handlers).
#include "control/pipeline.h"
#include "control/stats.h"
#include "storage/retention.h"

namespace sluice::control {

/// The `groups` command's reply body and `stats.kafka.groups`' list: every consumer group
/// sluiced coordinates or holds offsets of, its members, assignments, committed offsets and
/// lag per partition (docs/KAFKA.md "Consumer groups"). Null without a Kafka listener.
json kafka_groups_json(const pipeline& p);

/// The counters rates are computed from, now.
stats_sample read_sample(const pipeline& p);

/// Everything else `stats` reports; `now` (from read_sample) and the history's bases
/// are the caller's. `server` may be null while the control server is starting.
void read_snapshot(const pipeline& p, const storage::retention_manager& retention,
                   const control_server* server, stats_snapshot& s);

} // namespace sluice::control
