#pragma once
// Start-up recovery of the store: every segment is validated block by block (header
// and payload checksums). A torn tail (what a crash leaves: the last blocks partly or
// not at all on disk) is cut off at the last whole block with ftruncate; a segment
// whose file header or middle is corrupt is renamed to *.seg.corrupt and never read as
// data again. A file no longer than a file header whose header is not whole is what a
// writer killed while creating a segment leaves (it writes and syncs the header before
// any block): it holds no rows and is removed. Segments are never appended to
// afterwards: writers start a new file.
// Control path; segments are checked in parallel with TBB.
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::storage {

struct segment_recovery {
    enum class action { clean, unclosed, truncated, moved_aside, removed_unborn };
    std::string path; // after the action (ends in .corrupt when moved aside)
    action what = action::clean;
    uint64_t rows = 0;   // rows the segment serves after recovery
    uint64_t blocks = 0;
    uint64_t bytes_truncated = 0;
    std::string reason;  // for truncated / moved_aside / removed_unborn
};

struct recovery_report {
    uint64_t segments = 0;
    uint64_t clean = 0;    // closed with a footer
    uint64_t unclosed = 0; // whole blocks, no footer (the writer did not close)
    uint64_t truncated = 0;
    uint64_t moved_aside = 0;
    uint64_t removed_unborn = 0; // died while being created: no whole header, no rows
    uint64_t rows = 0;
    uint64_t blocks = 0;
    int64_t max_time_ms = INT64_MIN; // over blocks served (INT64_MIN when none)
    std::vector<segment_recovery> segments_detail; // in (writer, seq) order
};

// Recovers one table directory (<data_dir>/<table>). A missing directory is empty.
result<recovery_report> recover_table_dir(const std::string& table_dir);
// Recovers every table of a data dir; the report sums them.
result<recovery_report> recover_data_dir(const std::string& data_dir);

} // namespace sluice::storage
