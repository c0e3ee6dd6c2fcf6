#pragma once
// row_log: one writer's rows of one table as a dense log of row offsets 0, 1, 2, ... in
// append order — what Kafka consumers see as a partition's offsets (docs/KAFKA.md). Each
// segment's header carries the offset of its first row (docs/FORMAT.md "Row offsets"), so
// an offset never moves: not across restarts (a writer starts where its last segment
// ends), not across recovery (a torn tail holds no durable row; a segment moved aside
// leaves a gap), not across retention (deleting the oldest segments moves the log start).
// Control path (the Kafka fetch reader, tests): it allocates and uses pread().
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/column_batch.h"

namespace sluice::storage {

struct log_segment {
    std::string path;
    uint64_t seq = 0;
    uint64_t first_offset = 0;
    uint64_t rows = 0;   // the footer's count, or the whole blocks found by walking
    bool closed = false; // has a footer: rows is final
    int64_t max_time_ms = INT64_MAX; // closed: the footer's max time (else unknown)
};

// The writer's readable segments (*.seg) of `table_dir`, in seq order, with their first
// row offsets. A segment written before the extension existed takes the end of the one
// before it (0 for the first). A segment whose header is unreadable is left out. Closed
// segments found in `known` (an earlier listing) are taken from it without reading them.
result<std::vector<log_segment>> list_log_segments(const std::string& table_dir,
                                                   const std::string& writer,
                                                   const std::vector<log_segment>* known = nullptr);

// Where the writer's next segment starts: the largest first offset + rows over its
// segments, *.seg.corrupt ones included (their offsets stay taken); 0 for a new writer.
result<uint64_t> next_row_offset(const std::string& table_dir, const std::string& writer);

// What to do with a block before it is decoded (read_log_rows' `before`).
enum class block_step : uint8_t { read, skip, stop };

// Calls fn(batch, offset of the batch's first row) for each block of `s` holding a row in
// [from, to), in order, decoding only those blocks; stops when fn returns false. A torn or
// corrupt block ends the walk (the rows before it were served). `before(first offset,
// rows)`, when given, is asked first for each such block: skip it undecoded (the caller
// had its rows elsewhere, e.g. a cache), read it, or stop.
result<void> read_log_rows(const log_segment& s, uint64_t from, uint64_t to,
                           const std::function<bool(const column_batch&, uint64_t)>& fn,
                           const std::function<block_step(uint64_t, uint64_t)>& before = {});

} // namespace sluice::storage
