#pragma once
// segment_writer: appends rows of one table to columnar segment files through io_uring.
//
// Owned and driven by ONE thread (a worker lcore or a plain thread). Rows go into
// batch(); a full batch is encoded into one of a few preallocated, aligned, registered
// buffers and written at its file offset without blocking, while the next batch fills.
// poll() reaps completions and does group commit: once the oldest unsynced row is
// flush_interval_ms old (or sync_bytes are unsynced), it seals the partial batch and
// submits its write linked to an fdatasync (IOSQE_IO_LINK: one io_uring_enter, and the
// sync starts the moment the write ends). A row counts as durable only when every block
// up to and including its own is written and an fdatasync issued after those writes
// completed, so rows_durable() survives kill -9 and power loss. After open() nothing
// allocates.
//
// Errors. A full disk (ENOSPC, EDQUOT) is not fatal: the write is parked, the writer is
// `stalled()`, and the parked writes are retried every disk_full_retry_ms (from
// poll(), or while blocked) until space returns; nothing appended is dropped. Any other
// I/O error puts the writer in a failed state (failed(), failure()) in which it drops
// and counts rows, never aborts.
//
// Rotation (every segment_bytes_max) does not block: its steps run in order through the
// ring, each submitted from the completion of the one before (the old segment's writes
// complete → footer write linked to fdatasync(old) → close → openat(new) → header write
// linked to fdatasync(new), and fdatasync(directory)), while the owner keeps appending;
// blocks sealed meanwhile wait in their buffers (`pending`) and are written once the new
// segment and its name are durable. The old segment's rows become durable by the
// footer's sync; the next file is created only after it, so only a writer's newest
// segment can lack a footer (recovery and retention rely on it). A full disk parks the
// step and retries it like a parked write; any other error fails the writer.
//
// Blocking points, all bounded by the disk: when every buffer is in flight, parked or
// pending, commit_row() waits for the oldest write (this is sluice's back-pressure: the
// worker stops taking events, its rings fill, RX stops pulling) — during a rotation,
// that is until the rotation ends; a block that would start a second rotation while one
// is in flight (segments of a few blocks) waits for the first; open() (the first
// segment), flush_and_sync() and close() wait by design, for a rotation in flight too.
// Once *stop_flag is set, a writer stalled on a full disk gives up after
// disk_full_stop_wait_ms and fails, so that a shutdown cannot hang forever.
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
#include "storage/writer_options.h"

namespace sluice::storage {

// One writer: the shared options and what is its own.
struct writer_config {
    std::string data_dir;
    std::string writer_name; // "w0", "merger"...: segments are <table>/<writer>-<seq>.seg
    writer_options options;
    uint32_t rows_per_block = limits::batch_rows_max;
    size_t string_bytes_max = limits::batch_string_bytes_max; // per string column per block
    size_t row_string_bytes_max = limits::event_bytes_max;    // per row per string column
    uint32_t write_buffers = 2; // 2..limits::writes_in_flight_max
    const std::atomic<bool>* stop_flag = nullptr; // see "Blocking points" above
    uint32_t disk_full_stop_wait_ms = limits::disk_full_stop_wait_ms;
    uint32_t disk_full_retry_ms = limits::disk_full_retry_ms; // parked writes retried this often
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
            seal(false);
    }
    // Reaps completions; time- and size-based group commit; retries parked writes.
    // Call often (every loop).
    void poll(int64_t now_ns) noexcept;
    // When poll() next has timed work to do (the group commit of rows appended
    // flush_interval_ms ago, a retry of parked writes), as of the poll just made;
    // INT64_MAX when only a completion can give it work. An owner that blocks while idle
    // wakes by then (and for completions: wake_on_completion).
    int64_t next_deadline_ns(int64_t now_ns) const noexcept;
    // Every completion of this writer's ring writes `fd` (an idle_wake's eventfd).
    bool wake_on_completion(int fd) noexcept { return _io.register_eventfd(fd); }
    // Group commit now rather than at flush_interval_ms (someone waits for durability:
    // Kafka acks=all): seals the partial block and submits its write with a linked
    // fdatasync, so that every row appended so far becomes durable. Never waits: with a
    // sync in flight, every write buffer busy, or the disk full, it does nothing and the
    // caller asks again later, so the rows arriving meanwhile share the next sync (one
    // sync in flight at a time: the commit rate follows the disk's sync latency).
    void commit_now() noexcept;
    // Seals the partial block, writes it, fdatasyncs and waits (flush command, shutdown).
    result<void> flush_and_sync();
    // flush_and_sync(), then the footer; the writer is unusable afterwards.
    result<void> close();

    // Counters: relaxed atomics, readable from any thread.
    uint64_t bytes_written() const noexcept { return _bytes_written.load(std::memory_order_relaxed); }
    uint64_t rows_durable() const noexcept { return _rows_durable.load(std::memory_order_relaxed); }
    // The row offset (storage/row_log.h) after the last durable row: this run's first
    // offset + rows_durable(). Kafka's high watermark for this writer's partition.
    uint64_t row_offset_durable_end() const noexcept {
        return _run_first_row_offset + rows_durable();
    }
    // The newest (largest) time-column value among the durable rows; INT64_MIN when none.
    int64_t durable_max_time_ms() const noexcept {
        return _durable_max_time_ms.load(std::memory_order_relaxed);
    }
    uint64_t rows_dropped() const noexcept { return _rows_dropped.load(std::memory_order_relaxed); }
    uint64_t syncs() const noexcept { return _syncs.load(std::memory_order_relaxed); }
    // Group commits asked for so far (interval, size, commit_now, flush): each makes every
    // row appended before it durable once its sync completes. Owner thread only.
    uint64_t commits_requested() const noexcept { return _commits; }
    // Writes or syncs submitted and not yet reaped: each will post a completion (and write
    // the wake_on_completion eventfd). Owner thread only.
    bool io_in_flight() const noexcept { return _ops_in_flight > 0; }
    // Times the writer found the disk full (each stall counts once), and whether it is
    // stalled now (writes parked, waiting for space).
    uint64_t disk_full_stalls() const noexcept { return _stalls.load(std::memory_order_relaxed); }
    bool stalled() const noexcept { return _stalled.load(std::memory_order_relaxed); }
    uint64_t segments_opened() const noexcept { return _segments_opened; }
    // A rotation (old segment's footer and sync, the next segment's creation) is in
    // flight; blocks sealed meanwhile are written once it ends. Owner thread only.
    bool rotation_in_progress() const noexcept { return rotating(); }
    bool failed() const noexcept { return _failed.load(std::memory_order_acquire); }
    // Valid once failed() is true.
    const error& failure() const noexcept { return _failure; }
    // The file being written and whether it is open with O_DIRECT.
    const char* segment_path() const noexcept { return _path; }
    bool direct_io() const noexcept { return _direct; }
    bool fixed_buffers() const noexcept { return _io.fixed_buffers(); }
    const table_schema& schema() const noexcept { return _schema; }

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
        bool parked = false; // failed with ENOSPC: resubmitted when space may be back
        bool pending = false; // sealed during a rotation: submitted once the new segment exists
    };

    // A rotation runs in steps through the ring, driven by completions (reap()), so that
    // the owner keeps appending and sealing meanwhile (see "Rotation" above). The first
    // open (start()) and close()'s footer are the same steps, waited for.
    enum class rot_step : uint8_t {
        none,   // no rotation: blocks are written as they are sealed
        drain,  // waiting for the old segment's writes (in flight or parked) to complete
        footer, // footer write linked to fdatasync(old)
        open,   // openat(new, O_CREAT | O_EXCL)
        header, // header write linked to fdatasync(new), and fdatasync(dir)
        parked, // a step failed for lack of space: redone every disk_full_retry_ms
    };
    struct rotation {
        rot_step step = rot_step::none;
        rot_step redo = rot_step::none; // what a parked rotation redoes (footer or open)
        bool open_new = false;          // then create segment `seq`
        uint64_t seq = 0;
        uint64_t boundary_seq = 0; // writes below this are the old segment's
        uint32_t ops = 0;          // this step's operations in flight
        int res[3] = {};           // their results: write (or open), sync, dir sync
        uint32_t len = 0;          // the footer or header being written, from the aux page
        uint32_t done = 0;
        uint64_t offset = 0;
        uint32_t retries = 0;
        bool try_direct = false;
    };

    segment_writer(const writer_config& cfg, const table_schema& schema);
    result<void> start();
    void begin_rotation(bool open_new) noexcept;
    void start_segment_state() noexcept;
    void advance_rotation() noexcept;
    bool rot_submit_aux(int fd, bool sync_dir) noexcept; // aux write + fdatasync (+ dir's)
    void rot_submit_open() noexcept;
    void rot_footer_done() noexcept;
    void rot_open_done() noexcept;
    void rot_header_done() noexcept;
    void rot_park(rot_step redo) noexcept;
    void rot_retry() noexcept;
    void abandon_new_segment() noexcept;
    bool wait_rotation() noexcept;
    bool rotating() const noexcept { return _rot.step != rot_step::none; }
    void seal(bool sync_after) noexcept;
    slot* acquire_slot() noexcept;
    bool submit_slot(slot& s, bool link_sync) noexcept;
    void on_completion(uint64_t user_data, int res) noexcept;
    void on_write_done(slot& s, int res) noexcept;
    void maybe_submit_sync() noexcept;
    void resubmit_parked() noexcept;
    void stall_begin() noexcept;
    void stall_end() noexcept;
    bool wait_disk(bool& gave_up) noexcept;
    bool wait_progress() noexcept;
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
    int _dir_fd = -1; // the table directory, synced after each segment is created
    bool _direct = false;
    rotation _rot;
    uint64_t _segment_seq = 0;
    uint64_t _segments_opened = 0;
    uint64_t _file_offset = 0; // where the next block goes
    uint64_t _block_index = 0;
    uint64_t _segment_rows = 0;
    uint64_t _run_first_row_offset = 0; // the first segment of this run starts here
    uint64_t _next_row_offset = 0;      // the first row offset of the segment opened next
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
    uint64_t _commits = 0;          // commits_requested()
    int64_t _oldest_unsynced_ns = 0;
    bool _unsynced_since_set = false;
    bool _closed = false;
    uint32_t _ops_in_flight = 0;
    uint32_t _parked = 0;
    int64_t _retry_at_ns = 0;
    int64_t _stop_seen_ns = 0; // when a blocked wait first saw *stop_flag (0: not yet)

    std::atomic<uint64_t> _bytes_written{0};
    std::atomic<uint64_t> _rows_durable{0};
    std::atomic<int64_t> _durable_max_time_ms;
    std::atomic<uint64_t> _rows_dropped{0};
    std::atomic<uint64_t> _syncs{0};
    std::atomic<uint64_t> _stalls{0};
    std::atomic<bool> _stalled{false};
    std::atomic<bool> _failed{false};
    error _failure;
};

} // namespace sluice::storage
