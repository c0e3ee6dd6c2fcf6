#pragma once
// worker: one per worker lcore. Takes the event slots an RX lcore routed to it and
// applies §3 in order: horizon -> dedup -> lateness + aggregation (every continuous
// query) -> store. Everything it owns (dedup table, window states, segment writers) is
// touched only by its lcore; queries are added and removed at run time through its
// mailbox, which it reads between bursts.
//
// Window progress (window_merger.h): after closing cells at a query's watermark W, the
// worker takes a snapshot {rows stored so far, C = W, open starts, session holds} and
// publishes it once the events table has made those rows durable. So a window row is
// never written before the events it counts are durable: after a crash the store never
// holds a result that the stored events do not explain (restart rebuild relies on it).
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "base/counter.h"
#include "base/latency_histogram.h"
#include "base/limits.h"
#include "base/result.h"
#include "processing/dedup_filter.h"
#include "processing/event.h"
#include "processing/query_runtime.h"
#include "processing/window_merger.h"
#include "processing/window_state.h"
#include "storage/segment_writer.h"

namespace sluice::processing {

// Counters written by the owning worker, read by the control thread.
struct alignas(64) worker_counters {
    std::atomic<uint64_t> events_in{0}; // slots of kind event or dead_letter
    std::atomic<uint64_t> events_accepted{0};
    std::atomic<uint64_t> duplicates{0};
    std::atomic<uint64_t> late_events{0}; // late for at least one query
    std::atomic<uint64_t> dead_letters{0};
    std::atomic<uint64_t> dead_letters_by_reason[dead_letter_reason_count]{};
    std::atomic<uint64_t> window_overflow{0}; // (event, query) pairs the window state had no room for
    std::atomic<int64_t> max_time_ms{no_time};
    std::atomic<uint64_t> dedup_tracked{0};
    std::atomic<int64_t> dedup_horizon_ms{0};
};

// End-to-end latency per event in tsc_now() ticks, from the RX stamp (slot rx_tsc) to
// the event being in its window (window-visible: in at least one query's open window)
// and to its row being fsynced (durable). Recorded by the owning worker, snapshot by the
// control thread.
struct worker_latency {
    latency_histogram window_visible;
    latency_histogram durable;
};

// How a worker hands partial_batch buffers to the merger. Called per batch, not per
// event; acquire() waits (with backoff) for a free buffer: back-pressure, not loss.
struct partial_channel {
    void* ctx = nullptr;
    partial_batch* (*acquire)(void* ctx) noexcept = nullptr;
    void (*publish)(void* ctx, partial_batch* batch) noexcept = nullptr;
    // After the worker stored new window progress (worker_progress) for one or more
    // queries: at most once per tick(), never per event. The merger may be blocked
    // waiting (merger::set_idle_wake); nullptr: no one to tell.
    void (*progressed)(void* ctx) noexcept = nullptr;
};

// A request to a worker from the merger thread (the only poster).
struct worker_command {
    enum class op : uint8_t { add_query, remove_query, snapshot };
    op what = op::add_query;
    std::shared_ptr<const compiled_query> query; // add (in), remove (out)
    std::unique_ptr<window_state> state;          // add (in), remove (out)
    int64_t floor_ms = INT64_MIN;                 // add: the query's watermark floor
    uint32_t uid = 0;                             // remove, snapshot
    uint64_t snapshot_id = 0;
    bool ok = false; // the worker's answer
};

class worker_mailbox {
  public:
    // Poster: fill cmd(), post(), then wait for done(seq); one command at a time.
    worker_command& cmd() noexcept { return _cmd; }
    uint64_t post() noexcept {
        uint64_t seq = _posted.load(std::memory_order_relaxed) + 1;
        _posted.store(seq, std::memory_order_release);
        return seq;
    }
    bool done(uint64_t seq) const noexcept { return _done.load(std::memory_order_acquire) >= seq; }

    // Worker side.
    bool pending() const noexcept { return _posted.load(std::memory_order_acquire) != _seen; }
    void complete() noexcept {
        _seen = _posted.load(std::memory_order_relaxed);
        _done.store(_seen, std::memory_order_release);
    }

  private:
    worker_command _cmd;
    std::atomic<uint64_t> _posted{0};
    alignas(64) std::atomic<uint64_t> _done{0};
    uint64_t _seen = 0;
};

// One event's group key for one query, built and hashed by the worker's key pass before
// the adds of its chunk (worker::prepare_windows).
struct window_key {
    static constexpr uint32_t skip = UINT32_MAX;  // len: the query does not count the event
    static constexpr uint32_t later = UINT32_MAX - 1; // len: counted, key built at the add
    const char* data = nullptr;
    uint32_t len = skip;
    uint64_t hash = 0;
    int64_t time_ms = 0; // the event's (for window_state::prefetch_cell)
};

struct worker_config {
    uint32_t index = 0;
    int64_t watermark_delay_ms = limits::watermark_delay_ms_default; // the pipeline's (for watermark_ms())
    int64_t dedup_horizon_ms = limits::dedup_horizon_ms_default;
    uint64_t dedup_memory_bytes = 64ull << 20; // this worker's share
    uint32_t event_bytes_max = limits::event_bytes_default;
    std::string data_dir;
    storage::writer_options storage;                  // [storage], for both of its writers
    const std::atomic<bool>* storage_stop = nullptr;  // storage::writer_config::stop_flag
    // Block size of the events and dead_letters writers (tests use small blocks).
    uint32_t rows_per_block = limits::batch_rows_max;
    size_t block_string_bytes_max = limits::batch_string_bytes_max;
    // M after a restart (restart rebuild), no_time on a fresh store.
    int64_t restored_max_time_ms = no_time;
    // Test only (sluiced --test-hold-us): hold each burst until its newest event is this
    // old, a known delay for the latency tests to measure. 0 in production.
    uint32_t test_hold_us = 0;
};

class worker {
  public:
    static result<std::unique_ptr<worker>> open(const worker_config& config, partial_channel channel);

    // Before the lcore runs (start-up, restart rebuild): adds a query directly.
    result<void> add_query(std::shared_ptr<const compiled_query> query,
                           std::unique_ptr<window_state> state, int64_t floor_ms);
    dedup_filter& dedup() noexcept { return _dedup; }
    // Fixed at construction: safe to read from any thread.
    uint64_t dedup_capacity() const noexcept { return _dedup.capacity(); }
    worker_mailbox& mailbox() noexcept { return _mailbox; }

    void process(event_slot* const* slots, uint32_t n) noexcept;
    // After bursts (and when idle): mailbox, close windows the watermarks passed, publish
    // progress, group commit.
    void tick(int64_t now_ns) noexcept;
    // Graceful stop: close every open window, flush and fsync the writers.
    result<void> finish();
    result<void> flush();

    const worker_counters& counters() const noexcept { return _counters; }
    const worker_latency& latency() const noexcept { return _latency; }
    uint32_t index() const noexcept { return _config.index; }
    uint32_t queries() const noexcept { return _nqueries; }
    uint64_t bytes_written() const noexcept;
    uint64_t rows_durable() const noexcept;
    bool storage_failed() const noexcept;
    // Of the event and dead-letter slots RX lcore `rx` handed this worker, how many are
    // durable: their rows (or, for a duplicate, the row it duplicates) are in the store and
    // covered by an fdatasync. Published by tick() after the group commit; any thread may
    // read it (Kafka acks=all waits on it).
    const std::atomic<uint64_t>& slots_durable(uint32_t rx) const noexcept {
        return _slots_durable[rx].value;
    }
    // Written by RX lcore `rx` (Kafka acks=all): it waits for slots_durable(rx) to reach
    // this. Once the worker has processed that many of its slots, tick() commits at once
    // (segment_writer::commit_now) instead of at the group-commit interval; 0: no one waits.
    std::atomic<uint64_t>& slots_wanted(uint32_t rx) noexcept { return _slots_wanted[rx].value; }
    // An eventfd the worker writes each time slots_durable(rx) advances (before run: the
    // Kafka RX blocks in its io_uring while its answers wait, kafka_listener::wake_fd);
    // -1: none. One write per group commit that covers the RX's slots, never per event.
    void set_durable_wake(uint32_t rx, int fd) noexcept { _durable_wake[rx] = fd; }
    // A worker lcore that blocks while idle (base/idle_wake.h): when tick() next has timed
    // work (a group commit), as of the last tick; INT64_MAX when none.
    int64_t next_deadline_ns(int64_t now_ns) const noexcept;
    // Its writers' completions write `fd` too (they end the wait). False if refused.
    bool wake_on_completion(int fd) noexcept;
    // Someone (a Kafka RX with acks=all answers parked) waits for slots this worker has
    // processed but not yet made durable: the next tick() commits at once.
    bool durability_wanted() const noexcept;
    // A write or sync of either writer is in flight: its completion will end a wait on the
    // wake_on_completion eventfd, and tick() then commits what is still wanted (commit_now
    // does nothing while a sync is in flight).
    bool io_in_flight() const noexcept { return _events->io_in_flight() || _dead_letters->io_in_flight(); }
    // The events segment being written (its name holds the writer and sequence).
    const char* events_segment_path() const noexcept { return _events->segment_path(); }
    int64_t watermark_ms() const noexcept;
    // The writers, for their counters (relaxed atomics: any thread may read them).
    const storage::segment_writer& events_writer() const noexcept { return *_events; }
    const storage::segment_writer& dead_letters_writer() const noexcept { return *_dead_letters; }

  private:
    struct publication {
        bool valid = false;
        uint64_t rows = 0;
        int64_t closed_until_ms = INT64_MIN;
        int64_t open_min_start_ms = INT64_MAX;
        int64_t holds_ms[hold_buckets];
    };
    struct active_query {
        std::shared_ptr<const compiled_query> query;
        std::unique_ptr<window_state> state;
        worker_progress* progress = nullptr;
        int64_t floor_ms = INT64_MIN;
        int64_t snapshot_w = INT64_MIN; // watermark of the last snapshot
        int64_t scan_w = INT64_MIN;     // sessions: watermark of the last closing scan
        publication in_flight;          // waiting for its rows to be durable
        publication next;               // the newest snapshot after it
    };

    worker(const worker_config& config, partial_channel channel);
    // `verdict`: the event's, from the burst's dedup pass (process()).
    void accept_event(const event_slot& s, dedup_verdict verdict, uint32_t slot) noexcept;
    // Returns whether the event was late for some query, and whether it went into at
    // least one open window.
    struct aggregated {
        bool late = false;
        bool visible = false;
    };
    // `slot`: the event's place in its chunk, where the key pass (prepare_windows) left
    // its group key per query.
    aggregated aggregate(const event_slot& s, uint32_t slot) noexcept;
    // The key pass of a chunk of slots (process()): for every accepted event and every
    // query that counts it, the group key built and hashed once, and its index slot
    // prefetched, before the chunk's adds.
    void prepare_windows(event_slot* const* slots, uint32_t n, const dedup_verdict* verdicts) noexcept;
    void prefetch_cells(uint32_t slot) const noexcept; // window_state::prefetch_cell per query
    void store_event(const event_slot& s, bool late) noexcept;
    void store_dead_letter(const event_slot& s, dead_letter_reason reason) noexcept;
    int64_t watermark_of(const active_query& aq) const noexcept;
    void advance(active_query& aq) noexcept;
    void close_cells(active_query& aq, int64_t watermark_ms) noexcept;
    void send_snapshot(active_query& aq, uint64_t snapshot_id) noexcept;
    // Returns whether it published (the merger is then told once per tick: progressed).
    bool try_publish(active_query& aq) noexcept;
    void tell_progress() noexcept;
    static void publish(worker_progress& p, const publication& pub) noexcept;
    void run_command() noexcept;
    void note_durable() noexcept;
    void publish_durable_slots() noexcept;
    void mark_slots() noexcept;
    void hold_for_test(event_slot* const* slots, uint32_t n) const noexcept;

    worker_config _config;
    partial_channel _channel;
    worker_counters _counters;
    worker_latency _latency;
    pending_latency _pending_durable{limits::latency_pending_runs_max};
    uint64_t _burst_tsc = 0;
    uint64_t _test_hold_ticks = 0;
    dedup_filter _dedup;
    worker_mailbox _mailbox;
    std::array<active_query, limits::queries_max> _queries;
    uint32_t _nqueries = 0;
    std::unique_ptr<char[]> _key;                          // a group key being built
    // The key pass's output: [query][slot of the chunk]. Keys of several fields are built
    // into _burst_keys (burst_key_bytes a chunk); one field's key is a view of the slot.
    std::unique_ptr<window_key[]> _window_keys;
    std::unique_ptr<char[]> _burst_keys;
    uint32_t _chunk_slots = 0; // slots of the chunk the key pass covered
    agg_input _inputs[16];                                 // one per value field
    std::unique_ptr<storage::segment_writer> _events;
    std::unique_ptr<storage::segment_writer> _dead_letters;
    uint64_t _events_rows = 0; // rows committed to _events
    uint64_t _dead_rows = 0;   // rows committed to _dead_letters
    // Slots processed per RX lcore; a snapshot of them (a mark, with the rows committed
    // then) becomes slots_durable once both writers have made those rows durable. A mark
    // is taken after each commit a writer is asked for (mark_slots), into a small FIFO
    // (when it is full the newest is moved forward), so a commit publishes the slots of
    // the mark taken with it.
    std::array<uint64_t, limits::rx_lcores_max> _slots_in{};
    struct slots_mark {
        uint64_t events_rows = 0, dead_rows = 0;
        std::array<uint64_t, limits::rx_lcores_max> slots{};
    };
    static constexpr uint32_t slots_marks_max = 8;
    std::array<slots_mark, slots_marks_max> _marks{};
    uint32_t _marks_head = 0, _marks_count = 0;
    slots_mark _last_mark{}; // the newest mark taken (equal state: no new mark)
    uint64_t _marked_commits = 0; // both writers' commits_requested() at the last mark
    struct alignas(64) padded_counter {
        std::atomic<uint64_t> value{0};
    };
    std::array<padded_counter, limits::rx_lcores_max> _slots_durable;
    std::array<padded_counter, limits::rx_lcores_max> _slots_wanted;
    std::array<int, limits::rx_lcores_max> _durable_wake; // -1: none (set in the constructor)
    int64_t _max_time_ms = no_time;
};

} // namespace sluice::processing
