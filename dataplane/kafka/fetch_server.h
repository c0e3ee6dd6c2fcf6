#pragma once
// fetch_server: the consume side (docs/KAFKA.md "Consuming"). Answers Fetch, ListOffsets,
// OffsetForLeaderEpoch and DescribeConfigs for the tables read as topics, from the columnar
// store, on a reader thread of its own, so that reading and decoding blocks never runs on
// the Kafka RX lcore or in the listener's loop.
//
// Topics: events-topic (partition p: worker p's events log, writer "w<p>"), dead_letters
// (worker p's dead_letters log) and one per running query (partition 0: the merger's live
// rows of its table, writer "merger"); offsets are the row offsets of storage/row_log.h. The
// high watermark is the offset after the last durable row (the writer's
// row_offset_durable_end()): nothing that a crash could take back is ever served, so
// read_uncommitted and read_committed see the same rows. Recently built RecordBatches are
// kept in a fetch_batch_cache (bounded bytes).
//
// Hand-off (job_handover.h): the RX lcore copies a request frame into one of
// kafka_fetch_jobs jobs (none free = back-pressure, the frame stays unread); the reader
// parses it, reads the store, writes the whole answer into the job and queues it back; the
// RX lcore swaps the answer into the connection's reserved response slot (no copy) and
// frees the job. Long polling (max_wait_ms / min_bytes) is
// the reader's: a Fetch with too few bytes waits on its thread, re-read every
// fetch_poll_ms while a partition's high watermark moves, until min_bytes or the deadline.
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/limits.h"
#include "dataplane/kafka/fetch_codec.h"
#include "dataplane/kafka/job_handover.h"
#include "dataplane/kafka/kafka_listener.h"
#include "storage/column_batch.h"
#include "storage/row_log.h"

namespace sluice::dataplane::kafka {

inline constexpr uint32_t kafka_fetch_jobs = 64; // requests being served or waiting, all connections
inline constexpr uint32_t fetch_poll_ms = 5;     // a waiting Fetch re-checks its watermarks this often
inline constexpr uint32_t fetch_batch_records_max = 4096; // records per RecordBatch built
inline constexpr size_t fetch_batch_bytes_max = 128u << 10; // and bytes (a larger record: alone)

inline constexpr std::string_view events_topic = "events-topic";
inline constexpr std::string_view dead_letters_topic = "dead_letters";

// Which table a topic reads (docs/KAFKA.md "Consuming"): events-topic is the events table
// and dead_letters the dead_letters table (partition p: worker p's rows), a query's topic
// its result table (one partition: the merger's rows).
enum class topic_table : uint8_t { events, dead_letters, query };

struct consume_topic {
    std::string name;
    topic_table table = topic_table::events;
    int32_t partitions = 0;
};
using consume_topic_list = std::vector<consume_topic>;

struct fetch_server_config {
    std::string data_dir;
    uint32_t partitions = 1; // one per worker: events-topic's and dead_letters'
    // The offset after the partition's last durable row (any thread): events-topic's, and
    // dead_letters' (empty: no dead_letters topic).
    std::function<uint64_t(uint32_t partition)> high_watermark;
    std::function<uint64_t(uint32_t partition)> dead_letters_watermark;
    // The running queries: calls each(name, the offset after its table's last durable live
    // row). Empty: no query topics.
    std::function<void(const std::function<void(const std::string&, uint64_t)>& each)> queries;
    // Whether a topic producers created exists (DescribeConfigs answers for it too).
    std::function<bool(std::string_view)> producer_topic;
    size_t cache_bytes = limits::kafka_fetch_cache_bytes;
};

struct alignas(64) fetch_server_counters {
    std::atomic<uint64_t> fetches{0};         // Fetch requests answered
    std::atomic<uint64_t> list_offsets{0};    // ListOffsets requests answered
    std::atomic<uint64_t> leader_epochs{0};   // OffsetForLeaderEpoch requests answered
    std::atomic<uint64_t> describe_configs{0};
    std::atomic<uint64_t> records_sent{0};
    std::atomic<uint64_t> bytes_sent{0};      // RecordBatch bytes
    std::atomic<uint64_t> long_polls{0};      // Fetches that waited for data
    std::atomic<uint64_t> out_of_range{0};    // partitions answered OFFSET_OUT_OF_RANGE
    std::atomic<uint64_t> read_errors{0};     // store reads that failed (answered without rows)
    std::atomic<uint64_t> jobs_full{0};       // frames left unread: every job busy
    std::atomic<uint64_t> cache_hits{0};      // built batches served from the cache
    std::atomic<uint64_t> cache_misses{0};    // blocks decoded and built
    std::atomic<uint64_t> cache_evictions{0}; // dropped for room, by retention or a removed query
    std::atomic<uint64_t> cache_bytes{0};     // held now
};

/// RecordBatches built for a partition's rows [from, to), least recently used dropped
/// beyond `bytes_max`. Rows at an offset never change (storage/row_log.h), so an entry stays
/// true until its rows leave the log: retention (drop_below) or a query topic that went
/// away (drop). One thread (the fetch reader).
class fetch_batch_cache {
  public:
    struct entry {
        uint64_t part = 0, from = 0, to = 0;
        uint32_t records = 0;
        std::vector<uint8_t> bytes;
    };
    explicit fetch_batch_cache(size_t bytes_max, fetch_server_counters* counters = nullptr)
        : _max(bytes_max), _counters(counters) {}
    /// The entry starting at `from`, or nullptr; a hit becomes the most recent.
    const entry* find(uint64_t part, uint64_t from);
    void insert(uint64_t part, uint64_t from, uint64_t to, uint32_t records, bytes_view batches);
    void drop(uint64_t part);                       // every entry of the partition
    void drop_below(uint64_t part, uint64_t start); // entries with rows below `start`
    size_t bytes() const noexcept { return _used; }
    size_t size() const noexcept { return _index.size(); }

  private:
    struct key_hash {
        size_t operator()(const std::pair<uint64_t, uint64_t>& k) const noexcept {
            return std::hash<uint64_t>()(k.first * 0x9E3779B97F4A7C15ull ^ k.second);
        }
    };
    void erase(std::list<entry>::iterator it);
    size_t _max, _used = 0;
    fetch_server_counters* _counters;
    std::list<entry> _lru; // most recent first
    std::unordered_map<std::pair<uint64_t, uint64_t>, std::list<entry>::iterator, key_hash> _index;
};

/// One request in the reader's hands (job_handover.h).
struct fetch_job : handover_job {
    int64_t deadline_ms = 0; // a waiting Fetch: answered by then
    uint64_t mark = 0;       // the watermarks (summed) its last attempt saw
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
    bool has_free_job() const noexcept { return _jobs.has_free(); }
    /// Queues (conn, slot)'s request (a frame with its header). Needs has_free_job().
    void submit(conn_ref conn, int32_t slot, bytes_view frame) noexcept {
        _jobs.submit(conn, slot, frame);
    }
    /// Calls done(conn, slot, answer) for each finished job; `answer` may be swapped out.
    template <typename Done> uint32_t complete(Done&& done) noexcept {
        return _jobs.complete(std::forward<Done>(done));
    }
    /// Jobs given to the reader and not yet completed.
    uint32_t in_flight() const noexcept { return _jobs.in_flight(); }
    /// The topics consumers can read (Metadata), as the reader last listed them (it
    /// re-lists the running queries every loop, at least every 100 ms). Any thread; the
    /// list is replaced, never changed, so a copy of the pointer stays valid.
    std::shared_ptr<const consume_topic_list> topics() const { return _topics.load(); }

    const fetch_server_counters& counters() const noexcept { return _counters; }
    void count_jobs_full() noexcept { _counters.jobs_full.fetch_add(1, std::memory_order_relaxed); }

    // ---- the reader's work, public for tests (call from one thread) ----
    struct partition_state;
    /// Serves one request frame (header included) into `answer` (a whole response frame;
    /// empty when the body is malformed). false: a Fetch found fewer than min_bytes and may
    /// wait up to `max_wait_ms` (the answer holds what is there now; call again, with final =
    /// true at the deadline).
    bool serve(bytes_view frame, std::vector<uint8_t>& answer, bool final, int32_t& max_wait_ms);
    /// The sum of every partition's high watermark (moves when any of them does).
    uint64_t watermark_mark();
    /// Lists the running queries again; publishes topics() when they changed.
    void refresh_topics();

  private:
    int64_t reader_step(); // one turn of the reader's loop: the ms it may sleep
    bool serve_fetch(const request_header& h, std::vector<uint8_t>& answer, bool final,
                     int32_t& max_wait_ms);
    void serve_list_offsets(const request_header& h, std::vector<uint8_t>& answer);
    void serve_leader_epochs(const request_header& h, std::vector<uint8_t>& answer);
    void serve_describe_configs(const request_header& h, std::vector<uint8_t>& answer);
    // Each requested partition's answer: resolved (fn(request, answer, state, high
    // watermark)), or UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_LEADER_EPOCH.
    template <typename Req, typename Res, typename Fn>
    void walk(const std::vector<topic_of<Req>>& in, std::vector<topic_of<Res>>& out, Fn&& fn);
    partition_state* partition(std::string_view topic, int32_t p, uint64_t& hw);
    bool topic_exists(std::string_view name);
    void refresh(partition_state& ps);
    uint64_t log_start(partition_state& ps, uint64_t hw);
    int64_t offset_for_time(partition_state& ps, uint64_t hw, int64_t ts, int64_t& found_ts);
    size_t read_records(partition_state& ps, uint64_t from, uint64_t to, size_t budget,
                        bool first_free, std::vector<uint8_t>& out);
    struct row_columns;
    struct built_record {
        int64_t ts = 0;
        std::optional<bytes_view> key;
        bytes_view value;
        record_header_out header[2];
        uint8_t headers = 0;
    };
    void row_record(const row_columns& c, topic_table t, const storage::column_batch& b,
                    uint32_t row, built_record& r);

    fetch_server_config _config;
    job_handover<fetch_job, kafka_fetch_jobs> _jobs;
    fetch_server_counters _counters;
    std::atomic<std::shared_ptr<const consume_topic_list>> _topics;

    // Reader thread only.
    std::vector<std::unique_ptr<partition_state>> _events, _dead;
    std::map<std::string, std::unique_ptr<partition_state>, std::less<>> _query_parts;
    std::map<std::string, uint64_t, std::less<>> _running; // query -> its high watermark
    uint64_t _next_part_id = 1;
    fetch_batch_cache _cache;
    record_batch_builder _builder;
    std::string _key, _value; // a record being built (query rows)
    char _hex[33] = {};       // an events row's identity key
    char _len[24] = {};       // a dead letter's raw_len header
    std::vector<std::vector<uint8_t>> _records; // per answered partition
    std::vector<uint32_t> _waiting;             // jobs of Fetches waiting for data
};

} // namespace sluice::dataplane::kafka
