#pragma once
// Small state files (checkpoints, the query registry, Kafka producer ids) replaced whole:
// after a crash the old or the new file is there, never a mix. Control path only.
#include <optional>
#include <string>

#include "base/result.h"

namespace sluice::storage {

/// Writes `text` to `path` + ".tmp", fdatasyncs it, renames it over `path` and fsyncs the
/// directory. Errors name the file and the cause.
result<void> write_file_atomically(const std::string& path, const std::string& text);

/// The whole of a small state file; nullopt when there is none (or it cannot be opened).
std::optional<std::string> read_small_file(const std::string& path);

/// Creates `path` and its parents (start-up); the error names the folder and the fix.
result<void> create_state_folder(const std::string& path);

/// Removes a state file that is no longer needed; a missing one is not an error.
void remove_state_file(const std::string& path);

} // namespace sluice::storage
