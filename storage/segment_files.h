#pragma once
// Naming of segment files: <data_dir>/<table>/<writer>-<seq, 6+ digits>.seg. A segment
// that recovery found corrupt is renamed to <name>.seg.corrupt and is never read again.
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::storage {

struct segment_file {
    std::string path;
    std::string writer;
    uint64_t seq = 0;
};

// Parses "w0-000001.seg" (also "w0-000001.seg.corrupt" when with_corrupt).
bool parse_segment_name(const std::string& file_name, segment_file& out, bool with_corrupt = false);
std::string segment_file_name(const std::string& writer, uint64_t seq);

// The table's *.seg files, in (writer, seq) order. A missing directory is not_found.
result<std::vector<segment_file>> list_segments(const std::string& table_dir);
// 1 + the highest seq of this writer's files (corrupt ones included), or 1.
result<uint64_t> next_segment_seq(const std::string& table_dir, const std::string& writer);
// Table directories (names) under a data dir, sorted.
result<std::vector<std::string>> list_tables(const std::string& data_dir);

} // namespace sluice::storage
