#pragma once
// Reads the running pipeline's counters into control/stats.h's typed snapshot: relaxed
// loads of atomics that each have one writer, histogram snapshots, ring counts, the
// port's ethdev counters. Control thread only (the server's tick and handlers).
#include "control/pipeline.h"
#include "control/stats.h"
#include "storage/retention.h"

namespace sluice::control {

/// The counters rates are computed from, now.
stats_sample read_sample(const pipeline& p);

/// Everything else `stats` reports; `now` (from read_sample) and the history's bases
/// are the caller's. `server` may be null while the control server is starting.
void read_snapshot(const pipeline& p, const storage::retention_manager& retention,
                   const control_server* server, stats_snapshot& s);

} // namespace sluice::control
