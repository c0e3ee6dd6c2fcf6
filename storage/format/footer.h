#pragma once
// Column statistics and the footer block that stores them per segment.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "storage/column_batch.h"
#include "storage/format/layout.h"

namespace sluice::storage::format {

// Per-column statistics over the non-null values of a block or a segment. Numbers:
// min/max of the values (i64 as two's complement bits, compared signed); strings and
// bytes: min/max length in bytes, value_bytes their total. All zero when no values.
struct column_stats {
    uint64_t null_count = 0;
    uint64_t values = 0; // non-null values
    uint64_t min = 0;
    uint64_t max = 0;
    uint64_t value_bytes = 0;
};
// The statistics of the first `rows` rows of a column (f64: no min/max, they are kept for
// integers and lengths).
column_stats stats_of(const column_batch::column& c, uint32_t rows) noexcept;
void merge_stats(column_type type, column_stats& into, const column_stats& from) noexcept;

struct footer {
    uint64_t rows = 0;
    uint64_t data_blocks = 0;
    int64_t min_time_ms = 0;
    int64_t max_time_ms = 0;
    uint64_t data_end_offset = 0;      // where the footer block starts
    std::vector<column_stats> columns; // one per schema column
};
// Writes a whole footer block (header + payload + zero padding) into out, which must
// hold block_bytes(footer_payload_bytes(f.columns.size())) bytes; returns its size.
size_t write_footer_block(const footer& f, uint64_t block_index, uint8_t* out) noexcept;
bool read_footer_payload(const uint8_t* payload, size_t len, footer& f);

} // namespace sluice::storage::format
