#pragma once
// fetch_server: the consume side (docs/KAFKA.md "Consuming"). Answers Fetch and ListOffsets
// for events-topic from the columnar store, on a reader thread of its own, so that reading
// and decoding blocks never runs on the Kafka RX lcore or in the listener's loop.
//
// Partition p of events-topic is worker p's events log (writer "w<p>"), its offsets the
// row offsets of storage/row_log.h. The high watermark is the offset after the last durable
// row (the worker's segment_writer::row_offset_durable_end()): nothing that a crash could
// take back is ever served, so read_uncommitted and read_committed see the same rows.
//
// Hand-off: the RX lcore copies a request frame into one of a fixed number of jobs
// (limits: kafka_fetch_jobs; none free = back-pressure, the frame stays unread) and queues
// its index; the reader parses it, reads the store, writes the whole answer into the job
// and queues it back; the RX lcore swaps the answer into the connection's reserved
// response slot (no copy) and frees the job. Long polling (max_wait_ms / min_bytes) is
// the reader's: a Fetch with too few bytes waits on its thread, re-read every
// fetch_poll_ms while a partition's high watermark moves, until min_bytes or the deadline.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include <tbb/concurrent_queue.h>

#include "dataplane/kafka/fetch_codec.h"
#include "dataplane/kafka/kafka_listener.h"
#include "storage/column_batch.h"
#include "storage/row_log.h"

namespace sluice::dataplane::kafka {

inline constexpr uint32_t kafka_fetch_jobs = 64; // requests being served or waiting, all connections
inline constexpr uint32_t fetch_poll_ms = 5;     // a waiting Fetch re-checks its watermarks this often
inline constexpr uint32_t fetch_batch_records_max = 4096; // records per RecordBatch built

struct fetch_server_config {
    std::string data_dir;
    std::string topic = "events-topic";
    uint32_t partitions = 1; // one per worker
    // The offset after the partition's last durable row (any thread).
    std::function<uint64_t(uint32_t partition)> high_watermark;
};

struct alignas(64) fetch_server_counters {
    std::atomic<uint64_t> fetches{0};         // Fetch requests answered
    std::atomic<uint64_t> list_offsets{0};    // ListOffsets requests answered
    std::atomic<uint64_t> records_sent{0};
    std::atomic<uint64_t> bytes_sent{0};      // RecordBatch bytes
    std::atomic<uint64_t> long_polls{0};      // Fetches that waited for data
    std::atomic<uint64_t> out_of_range{0};    // partitions answered OFFSET_OUT_OF_RANGE
    std::atomic<uint64_t> read_errors{0};     // store reads that failed (answered without rows)
    std::atomic<uint64_t> jobs_full{0};       // frames left unread: every job busy
};

/// One request in the reader's hands. The RX lcore touches it only while it is free or
/// after the reader queued it back.
struct fetch_job {
    conn_ref conn;
    int32_t slot = -1;
    std::vector<uint8_t> request; // the frame, header included (no size prefix)
    std::vector<uint8_t> answer;  // the whole response frame
    int64_t deadline_ms = 0;      // a waiting Fetch: answered by then
    uint64_t mark = 0;            // the watermarks (summed) its last attempt saw
};

class fetch_server {
  public:
    explicit fetch_server(fetch_server_config config);
    ~fetch_server(); // stop()
    /// Stops and joins the reader (jobs in its hands are never answered). Idempotent.
    void stop();
    fetch_server(const fetch_server&) = delete;
    fetch_server& operator=(const fetch_server&) = delete;

    // ---- RX lcore side ----
    bool has_free_job() const noexcept { return !_free.empty(); }
    /// Queues (conn, slot)'s request (a frame with its header). Needs has_free_job().
    void submit(conn_ref conn, int32_t slot, bytes_view frame) noexcept;
    /// Calls done(conn, slot, answer) for each finished job; `answer` may be swapped out.
    template <typename Done>
    uint32_t complete(Done&& done) noexcept;
    /// Jobs given to the reader and not yet completed.
    uint32_t in_flight() const noexcept { return kafka_fetch_jobs - uint32_t(_free.size()); }

    const fetch_server_counters& counters() const noexcept { return _counters; }
    void count_jobs_full() noexcept { _counters.jobs_full.fetch_add(1, std::memory_order_relaxed); }

    // ---- the reader's work, public for tests (call from one thread) ----
    struct partition_state;
    /// Serves one request frame (header included) into `answer` (a whole response frame).
    /// false: a Fetch found fewer than min_bytes and may wait up to `max_wait_ms` (the
    /// answer holds what is there now; call again, with final = true at the deadline).
    bool serve(bytes_view frame, std::vector<uint8_t>& answer, bool final, int32_t& max_wait_ms);
    /// The sum of every partition's high watermark (moves when any of them does).
    uint64_t watermark_mark() const;

  private:
    void reader_main();
    bool serve_fetch(const request_header& h, std::vector<uint8_t>& answer, bool final,
                     int32_t& max_wait_ms);
    void serve_list_offsets(const request_header& h, std::vector<uint8_t>& answer);
    partition_state* partition(std::string_view topic, int32_t p);
    void refresh(partition_state& ps);
    uint64_t log_start(partition_state& ps);
    int64_t offset_for_time(partition_state& ps, int64_t ts, int64_t& found_ts);
    size_t read_records(partition_state& ps, uint64_t from, uint64_t to, size_t budget,
                        bool first_free, std::vector<uint8_t>& out);

    fetch_server_config _config;
    std::unique_ptr<fetch_job[]> _jobs;
    std::vector<uint32_t> _free; // RX lcore only
    tbb::concurrent_queue<uint32_t> _inbox, _done;
    std::counting_semaphore<> _wake{0};
    std::atomic<bool> _stop{false};
    fetch_server_counters _counters;

    // Reader thread only.
    std::vector<std::unique_ptr<partition_state>> _parts;
    record_batch_builder _builder;
    std::vector<std::vector<uint8_t>> _records; // per answered partition
    std::thread _reader;
};

template <typename Done>
uint32_t fetch_server::complete(Done&& done) noexcept {
    uint32_t n = 0, i;
    while (_done.try_pop(i)) {
        fetch_job& j = _jobs[i];
        done(j.conn, j.slot, j.answer);
        _free.push_back(i);
        ++n;
    }
    return n;
}

} // namespace sluice::dataplane::kafka
