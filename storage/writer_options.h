#pragma once
// writer_options: what the configuration's [storage] section decides for every
// segment_writer alike (storage/segment_writer.h), kept apart so that the configuration
// (control/config.h) names it without the writer's io_uring.
#include <cstdint>

#include "base/limits.h"
#include "storage/format/layout.h"

namespace sluice::storage {

// What the configuration's [storage] section decides for every writer alike. sluiced
// reads it once (control/config.h: daemon_config::storage) and hands it whole to each
// writer: the workers', the merger's and every replay's.
struct writer_options {
    uint32_t flush_interval_ms = limits::flush_interval_ms_default; // group commit by time
    uint64_t sync_bytes = limits::sync_bytes_default;               // and by size
    uint64_t segment_bytes_max = limits::segment_bytes_max;         // then a new segment
    format::compression compression{}; // of the column chunks; zstd level 1 by default
    bool direct_io = true;             // O_DIRECT when the filesystem accepts it
    bool operator==(const writer_options&) const = default;
};

} // namespace sluice::storage
