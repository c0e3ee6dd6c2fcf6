#pragma once
// state_dir: <data_dir>/_processing/, the processing side's own files (never a table: no
// segments). Each file is replaced whole (storage/atomic_file.h: the old or the new file
// after a crash, never a mix) and read back whole; all the I/O is storage's.
//
//   queries.json               the query registry: queries added / removed at run time,
//                              applied on top of the configured ones at start (its
//                              content is the control side's: control/query_registry.h)
//   checkpoints/<query>.json   where a restart rebuild of the query's open windows starts
//                              and the watermark floors its runs had
//                              (processing/window_assigner.h):
//     {"query": "...", "rebuild_from_ms": F, "closed_until_ms": C,
//      "floors": {"base_floor_ms": B, "epochs": [{"first_segment": {"w0": 3, ...},
//                                                 "floor_ms": X}, ...]}}
//     A checkpoint without "floors" (written before floor histories) reads as such.
//   run                        the run record (processing/restore.h)
#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "processing/event_replayer.h"
#include "storage/atomic_file.h"

namespace sluice::processing {

std::string processing_dir(const std::string& data_dir); // <data_dir>/_processing
std::string checkpoint_path(const std::string& data_dir, const std::string& query);
std::string registry_path(const std::string& data_dir); // _processing/queries.json
std::string run_path(const std::string& data_dir);      // _processing/run

// Creates _processing/ and its checkpoints/ folder (start-up).
result<void> create_state_dir(const std::string& data_dir);

// The one way a state file is written and read.
using storage::read_small_file;
using storage::write_file_atomically;

struct query_checkpoint {
    int64_t rebuild_from_ms = INT64_MIN;
    int64_t closed_until_ms = INT64_MIN;
    std::optional<floor_history> floors; // absent: written before floor histories
};

// nullopt when the query has none; an unreadable one reads as "rebuild from everything"
// (slow, never wrong), with a warning.
std::optional<query_checkpoint> read_checkpoint(const std::string& data_dir,
                                                const std::string& query);
result<void> write_checkpoint(const std::string& data_dir, const std::string& query,
                              int64_t rebuild_from_ms, int64_t closed_until_ms,
                              const floor_history& floors);
// A removed query's checkpoint (its table stays).
void remove_checkpoint(const std::string& data_dir, const std::string& query);

} // namespace sluice::processing
