#pragma once
// The merger's files under <data_dir>/_processing/ (never a table: no segments), written
// so that a crash leaves the old or the new file, never a mix.
//
// checkpoints/<query>.json: where a restart rebuild of the query's open windows starts
// and the watermark floors its runs had (processing/window_assigner.h):
//   {"query": "...", "rebuild_from_ms": F, "closed_until_ms": C,
//    "floors": {"base_floor_ms": B, "epochs": [{"first_segment": {"w0": 3, ...},
//                                               "floor_ms": X}, ...]}}
// A checkpoint without "floors" (written before floor histories) reads as such.
#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "storage/atomic_file.h"
#include "processing/event_replayer.h"

namespace sluice::control {

std::string processing_dir(const std::string& data_dir); // <data_dir>/_processing
std::string checkpoint_path(const std::string& data_dir, const std::string& query);

// State files are replaced whole (storage/atomic_file.h).
using storage::write_file_atomically;

struct query_checkpoint {
    int64_t rebuild_from_ms = INT64_MIN;
    int64_t closed_until_ms = INT64_MIN;
    std::optional<processing::floor_history> floors; // absent: written before floor histories
};

// nullopt when the query has none; an unreadable one reads as "rebuild from everything"
// (slow, never wrong), with a warning.
std::optional<query_checkpoint> read_checkpoint(const std::string& data_dir,
                                                const std::string& query);
result<void> write_checkpoint(const std::string& data_dir, const std::string& query,
                              int64_t rebuild_from_ms, int64_t closed_until_ms,
                              const processing::floor_history& floors);

} // namespace sluice::control
