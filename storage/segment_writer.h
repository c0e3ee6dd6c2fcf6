#pragma once
// segment_writer: appends rows of one table to columnar segment files through io_uring.
//
// Owned and driven by ONE thread (a worker lcore or a plain thread). Rows go into
// batch(); a full batch is encoded into one of a few preallocated, aligned, registered
// buffers and written at its file offset without blocking, while the next batch fills.
// poll() reaps completions and does group commit: once the oldest unsynced row is
// flush_interval_ms old (or sync_bytes are unsynced), it seals the partial batch and
// issues fdatasync through the ring. A row counts as durable only when every block up to
// and including its own is written and synced, so rows_durable() survives kill -9 and
// power loss. After open() nothing allocates; I/O errors put the writer in a failed
// state (failed(), failure()), never abort.
//
// Blocking points, all bounded: when every buffer is in flight, commit_row() waits for
// the oldest write (back-pressure); rotating to a new segment (every segment_bytes_max)
// drains, writes the footer, syncs and opens the next file; flush_and_sync() and close()
// wait by design.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/limits.h"
#include "base/result.h"
#include "storage/column_batch.h"
#include "storage/segment_format.h"
#include "storage/uring_writer.h"

namespace sluice::storage {

struct writer_config {
    std::string data_dir;
    std::string writer_name; // "w0", "merger"...: segments are <table>/<writer>-<seq>.seg
    uint32_t rows_per_block = limits::batch_rows_max;
    size_t string_bytes_max = limits::batch_string_bytes_max; // per string column per block
    size_t row_string_bytes_max = limits::event_bytes_max;    // per row per string column
    uint32_t flush_interval_ms = limits::flush_interval_ms_default;
    uint64_t sync_bytes = 8u << 20;
    uint64_t segment_bytes_max = limits::segment_bytes_max;
    uint32_t write_buffers = 2; // 2..limits::writes_in_flight_max
    format::compression compression{}; // zstd level 1 by default
    bool direct_io = true;      // O_DIRECT when the filesystem accepts it
};

class segment_writer {
  public:
    static result<std::unique_ptr<segment_writer>> open(const writer_config& cfg,
                                                        const table_schema& schema);
    ~segment_writer(); // waits for in-flight I/O; without close() the segment has no footer
    segment_writer(const segment_writer&) = delete;
    segment_writer& operator=(const segment_writer&) = delete;

    // Append rows here: one push_* per column, then end_row(), then commit_row().
    column_batch& batch() noexcept { return _batch; }
    // Seals and submits the block once batch() is full.
    void commit_row() noexcept {
        if (_batch.full()) [[unlikely]]
            seal();
    }
    // Reaps completions; time- and size-based group commit. Call often (every loop).
    void poll(int64_t now_ns) noexcept;
    // Seals the partial block, writes it, fdatasyncs and waits (flush command, shutdown).
    result<void> flush_and_sync();
    // flush_and_sync(), then the footer; the writer is unusable afterwards.
    result<void> close();

    // Counters: relaxed atomics, readable from any thread.
    uint64_t bytes_written() const noexcept { return _bytes_written.load(std::memory_order_relaxed); }
    uint64_t rows_durable() const noexcept { return _rows_durable.load(std::memory_order_relaxed); }
    int64_t durable_max_time_ms() const noexcept {
        return _durable_max_time_ms.load(std::memory_order_relaxed);
    }
    uint64_t rows_dropped() const noexcept { return _rows_dropped.load(std::memory_order_relaxed); }
    uint64_t segments_opened() const noexcept { return _segments_opened; }
    bool failed() const noexcept { return _failed.load(std::memory_order_acquire); }
    // Valid once failed() is true.
    const error& failure() const noexcept { return _failure; }
    // The file being written and whether it is open with O_DIRECT.
    const char* segment_path() const noexcept { return _path; }
    bool direct_io() const noexcept { return _direct; }

  private:
    struct slot {
        uint8_t* buf = nullptr;
        uint64_t seq = 0;
        uint64_t offset = 0;
        uint32_t len = 0;
        uint32_t done = 0; // bytes written so far (short writes resubmit the rest)
        uint32_t rows = 0;
        uint32_t retries = 0;
        int64_t max_time_ms = 0;
        bool complete = false;
    };

    segment_writer(const writer_config& cfg, const table_schema& schema);
    result<void> start();
    bool open_segment(uint64_t seq) noexcept;
    bool close_segment() noexcept; // footer (or unlink when empty), sync, close
    int wait_aux() noexcept;
    int write_aux(uint32_t len, uint64_t offset) noexcept; // from the header/footer page
    int fdatasync_aux(int fd) noexcept;
    void seal() noexcept;
    slot* acquire_slot() noexcept;
    bool submit_slot(slot& s) noexcept;
    void on_completion(uint64_t user_data, int res) noexcept;
    void maybe_submit_sync() noexcept;
    bool reap(bool wait) noexcept;
    bool drain_and_sync() noexcept;
    void fail(errc code, const char* what, int err) noexcept;

    writer_config _cfg;
    table_schema _schema;
    column_batch _batch;
    format::block_encoder _encoder;
    uring_writer _io;
    std::vector<slot> _slots;
    std::vector<iovec> _iovecs;
    size_t _buffer_bytes = 0;
    std::string _table_dir;
    char _path[4096] = {};

    int _fd = -1;
    bool _direct = false;
    uint64_t _segment_seq = 0;
    uint64_t _segments_opened = 0;
    uint64_t _file_offset = 0; // where the next block goes
    uint64_t _block_index = 0;
    uint64_t _segment_rows = 0;
    int64_t _segment_min_time_ms = 0;
    int64_t _segment_max_time_ms = 0;
    format::footer _footer; // its columns accumulate the segment's statistics

    // Writes are numbered in submission order; slot = seq % slots.
    uint64_t _submitted_seq = 0;
    uint64_t _prefix_done_seq = 0; // every write below this has completed
    uint64_t _prefix_rows = 0;
    int64_t _prefix_max_time_ms;
    uint64_t _sync_target_seq = 0;  // group commit wants writes below this synced
    uint64_t _durable_seq = 0;
    bool _sync_in_flight = false;
    uint64_t _sync_seq = 0;         // snapshot the in-flight fdatasync covers
    uint64_t _sync_rows = 0;
    int64_t _sync_max_time_ms = 0;
    uint64_t _unsynced_bytes = 0;   // submitted since the last sync request
    int64_t _oldest_unsynced_ns = 0;
    bool _unsynced_since_set = false;
    bool _closed = false;
    uint32_t _ops_in_flight = 0;
    bool _aux_done = false;
    int _aux_res = 0;

    std::atomic<uint64_t> _bytes_written{0};
    std::atomic<uint64_t> _rows_durable{0};
    std::atomic<int64_t> _durable_max_time_ms;
    std::atomic<uint64_t> _rows_dropped{0};
    std::atomic<bool> _failed{false};
    error _failure;
};

} // namespace sluice::storage
