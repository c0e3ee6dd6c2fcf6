#pragma once
// worker: one per worker lcore. Takes the event slots an RX lcore routed to it and
// applies §3 in order: horizon -> dedup -> lateness -> store + aggregate. Everything it
// owns (dedup table, window state, segment writers) is touched only by its lcore.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "base/latency_histogram.h"
#include "base/limits.h"
#include "base/result.h"
#include "processing/dedup_filter.h"
#include "processing/event.h"
#include "processing/window.h"
#include "processing/window_merger.h"
#include "storage/segment_writer.h"

namespace sluice::processing {

// Counters written by the owning worker, read by the control thread.
struct alignas(64) worker_counters {
    std::atomic<uint64_t> events_in{0}; // slots of kind event or dead_letter
    std::atomic<uint64_t> events_accepted{0};
    std::atomic<uint64_t> duplicates{0};
    std::atomic<uint64_t> late_events{0};
    std::atomic<uint64_t> dead_letters{0};
    std::atomic<uint64_t> dead_letters_by_reason[dead_letter_reason_count]{};
    std::atomic<uint64_t> window_overflow{0}; // events the window state had no room for
    std::atomic<int64_t> max_time_ms{no_time};
    std::atomic<uint64_t> dedup_tracked{0};
    std::atomic<int64_t> dedup_horizon_ms{0};
};

inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// End-to-end latency per event in tsc_now() ticks, from the RX stamp (slot rx_tsc) to
// the event being in its window (window-visible) and to its row being fsynced (durable).
// Recorded by the owning worker, snapshot by the control thread.
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
};

struct worker_config {
    uint32_t index = 0;
    int64_t watermark_delay_ms = 10 * 60 * 1000;
    int64_t dedup_horizon_ms = 60 * 60 * 1000;
    uint64_t dedup_memory_bytes = 64ull << 20;
    window_spec window;
    uint32_t window_cells_max = 1u << 16;
    uint32_t window_keys_max = 1u << 16;
    size_t window_key_bytes_max = 8u << 20;
    uint32_t event_bytes_max = 4096;
    std::string data_dir;
    std::string query_name = "page_views_per_minute";
    uint32_t flush_interval_ms = 100;
    bool direct_io = true;
    uint64_t sync_bytes = 8u << 20;                   // group commit by size
    uint64_t segment_bytes_max = 256ull << 20;        // segment rotation
    storage::format::compression compression{};        // of the segment chunks
    const std::atomic<bool>* storage_stop = nullptr;  // storage::writer_config::stop_flag
    // Test only (sluiced --test-hold-us): hold each burst until its newest event is this
    // old, a known delay for the latency tests to measure. 0 in production.
    uint32_t test_hold_us = 0;
};

class worker {
  public:
    static result<std::unique_ptr<worker>> open(const worker_config& config, partial_channel channel);

    void process(event_slot* const* slots, uint32_t n) noexcept;
    // After each burst (and when idle): close windows the watermark passed, group commit.
    void tick(int64_t now_ns) noexcept;
    // Graceful stop: close every open window, flush and fsync the writers.
    result<void> finish();
    result<void> flush();

    const worker_counters& counters() const noexcept { return _counters; }
    const worker_latency& latency() const noexcept { return _latency; }
    uint64_t bytes_written() const noexcept;
    uint64_t rows_durable() const noexcept;
    bool storage_failed() const noexcept;
    int64_t watermark_ms() const noexcept;
    // The writers, for their counters (relaxed atomics: any thread may read them).
    const storage::segment_writer& events_writer() const noexcept { return *_events; }
    const storage::segment_writer& dead_letters_writer() const noexcept { return *_dead_letters; }

  private:
    worker(const worker_config& config, partial_channel channel);
    void accept_event(const event_slot& s) noexcept;
    void store_event(const event_slot& s, bool late) noexcept;
    void store_dead_letter(const event_slot& s, dead_letter_reason reason) noexcept;
    void close_windows(int64_t watermark_ms, bool final) noexcept;
    void note_durable() noexcept;
    void hold_for_test(event_slot* const* slots, uint32_t n) const noexcept;

    worker_config _config;
    partial_channel _channel;
    worker_counters _counters;
    worker_latency _latency;
    pending_latency _pending_durable{limits::latency_pending_runs_max};
    uint64_t _burst_tsc = 0;
    uint64_t _test_hold_ticks = 0;
    dedup_filter _dedup;
    window_state _windows;
    std::unique_ptr<storage::segment_writer> _events;
    std::unique_ptr<storage::segment_writer> _dead_letters;
    int64_t _max_time_ms = no_time;
    int64_t _reported_window_start = INT64_MIN; // window start of the last reported W
};

} // namespace sluice::processing
