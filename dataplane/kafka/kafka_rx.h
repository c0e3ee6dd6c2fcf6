#pragma once
// kafka_rx: the Kafka RX loop. Runs on one RX lcore with its own rx_lcore (its own rings to
// every worker): answers ApiVersions, Metadata and InitProducerId, and turns every record
// value of a Produce request into one event through rx_lcore's parse/identity/route path,
// exactly as a UDP datagram's line — nothing downstream knows the event came over Kafka.
//
// acks: 0 = no answer; 1 = answered once every record of the request is in a worker ring;
// -1 = answered once every record is durable. For -1 the answer is parked with, per worker,
// how many slots this RX had handed it (rx_lcore::sent_to); it goes out when every worker
// reports at least that many of this RX's slots durable (processing::worker::slots_durable,
// published after the group commit's fdatasync). Nothing waits: the loop polls the parked
// answers between bursts. The oldest parked answer's marks are also published to the
// workers (worker::slots_wanted), which then commit as soon as they have processed those
// slots: an answer waits for one fdatasync, not for the group-commit interval.
//
// Produce-ack latency per acks mode, from the request's arrival (the receive that completed
// its frame) to: acks 0, its records handed to the workers (in their rings); acks 1, its
// answer queued; acks -1, its answer queued after durability. One latency_histogram per
// mode, written by this lcore only, read by the control thread (snapshots).
//
// A failed store (any worker's writer failed on an I/O error, worker::storage_failed(): the
// daemon's rule, which also makes it exit 1): nothing more becomes durable, so every answer
// still waiting for durability is answered KAFKA_STORAGE_ERROR (56) for its partitions that
// had none, at once, and every later Produce (any acks) is answered 56 for its partitions
// and stores nothing. Their idempotent batches are taken back from the sequence state and
// never journaled, so a retry is judged as new, not as a duplicate.
//
// Idempotent producers (producer id >= 0 in a batch): producer_sequences checks each batch's
// sequence per (producer, topic, partition); a re-sent batch is answered with its first
// offset and not routed, a gap is answered 45. The state lives here, on this lcore, and is
// persisted with the data by sequence_journal (a batch is journaled once its records are
// durable, and an acks=-1 answer waits for its batches' journal records too), so retries
// across a kill -9 are judged as before it; the producer ids are reserved in blocks in the
// data dir (producer_ids).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/latency_histogram.h"
#include "base/limits.h"
#include "dataplane/kafka/fetch_server.h"
#include "dataplane/kafka/group_server.h"
#include "dataplane/kafka/kafka_codec.h"
#include "dataplane/kafka/kafka_listener.h"
#include "dataplane/kafka/producer_ids.h"
#include "dataplane/kafka/producer_sequences.h"
#include "dataplane/kafka/sequence_journal.h"

namespace sluice::dataplane {
class rx_lcore;
}
namespace sluice::processing {
class worker;
}

namespace sluice::dataplane::kafka {

struct kafka_topic_config {
    std::string name;
    int32_t partitions = 0; // 0: one per worker
};

struct kafka_rx_config {
    std::string advertised_host = "127.0.0.1";
    int32_t advertised_port = 9092;
    std::vector<kafka_topic_config> topics; // empty: events-topic
    bool auto_create_topics = true;
    int32_t default_partitions = 1;
    // Idle: block in the listener's io_uring (listener.wait) instead of the nanosleep
    // back-off, when nothing but a completion or a worker's wake can make work. The
    // workers must then write the listener's wake_fd() as they publish durable slots
    // (processing::worker::set_durable_wake). [lcores] idle = "poll" turns it off.
    bool idle_wait = true;
};

// Bounds of the loop (beside the Kafka ones in base/limits.h): requests taken per loop
// turn (then the parked answers and the rings get theirs), and the free slots a Produce
// request must find before it is taken (back-pressure; a larger request may wait for more
// inside it, like the UDP RX).
inline constexpr uint32_t frames_per_poll = 64;
inline constexpr uint32_t room_per_request = 4 * limits::ring_burst_max;

inline constexpr int kafka_api_keys = 64;    // requests counted per key below this
inline constexpr int kafka_error_codes = 128; // errors counted per code below this
/// requests_by_version: versions 0..N-2 each; the last slot counts N-1 and above (and any
/// negative version a malformed header carries).
inline constexpr int kafka_api_versions_counted = 20;
/// produce_by_acks and ack_latency index: acks 0, 1, -1 (all).
inline constexpr int kafka_acks_modes = 3;
inline constexpr int acks_index(int16_t acks) noexcept {
    return acks == 0 ? 0 : acks == 1 ? 1 : 2;
}

struct alignas(64) kafka_rx_counters {
    std::atomic<uint64_t> requests[kafka_api_keys]{};
    std::atomic<uint64_t> requests_other{0};
    std::atomic<uint64_t> requests_by_version[kafka_api_keys][kafka_api_versions_counted]{};
    std::atomic<uint64_t> errors[kafka_error_codes]{}; // per code, per partition or request
    std::atomic<uint64_t> produce_by_acks[kafka_acks_modes]{}; // acks 0, 1, -1
    std::atomic<uint64_t> records{0};
    std::atomic<uint64_t> record_bytes{0}; // value bytes
    std::atomic<uint64_t> null_values{0};  // tombstones: dead letters (parse_error)
    std::atomic<uint64_t> acks_parked{0};  // Produces waiting for durability now (parked)
    std::atomic<uint64_t> backpressure{0}; // frames left for later: rings or slots full
    std::atomic<uint64_t> unknown_api{0};  // connections closed for an unknown API key
    std::atomic<uint64_t> bad_requests{0}; // connections closed for a malformed request
    std::atomic<uint64_t> producer_ids{0}; // handed out by InitProducerId
    // Idempotent producers (producer id >= 0), per batch: re-sent batches answered with
    // their first answer's offset and not stored again, gaps answered 45, old epochs 47.
    std::atomic<uint64_t> duplicate_sequences{0};
    std::atomic<uint64_t> out_of_order_sequences{0};
    std::atomic<uint64_t> fenced_epochs{0};
    std::atomic<uint64_t> producer_states{0};          // (producer, partition) states kept now
    std::atomic<uint64_t> producer_state_evictions{0}; // forgotten: least recently used
    std::atomic<uint64_t> sequences_restored{0};      // batches read from the journal at start
    std::atomic<uint64_t> sequences_journaled{0};     // batches made durable in the journal
    std::atomic<uint64_t> sequence_journal_errors{0}; // failed journal writes (then off)
    // Batches whose records were accepted, by codec (none, gzip, snappy, lz4, zstd) and by
    // magic (0, 1: legacy messages, each outer message counting as one batch; 2:
    // RecordBatch v2). A re-sent idempotent batch is not counted again.
    std::atomic<uint64_t> batches_by_compression[5]{};
    std::atomic<uint64_t> batches_by_magic[3]{};
};

/// Worker w's side of acks=-1 (processing::worker): how many of this RX's slots are
/// durable, and how many this RX waits for (it stores the mark of its oldest parked answer,
/// so the worker commits as soon as it has processed them, not at the group-commit interval).
/// And whether its store failed (worker::storage_failed(); null: never), after which
/// nothing more becomes durable there.
struct worker_durability {
    const std::atomic<uint64_t>* durable = nullptr; // worker::slots_durable(rx)
    std::atomic<uint64_t>* wanted = nullptr;        // worker::slots_wanted(rx)
    const processing::worker* worker = nullptr;     // worker::storage_failed()
};

/// A topic as the control thread sees it (stats).
struct kafka_topic_stats {
    std::string name;
    int32_t partitions;
    uint64_t records;
};

class kafka_rx {
  public:
    /// `durable[w]`: worker w's counts of this RX's slots (above).
    kafka_rx(const kafka_rx_config& config, kafka_listener& listener, rx_lcore& rx,
             std::vector<worker_durability> durable, const std::atomic<bool>* stop);
    ~kafka_rx();

    /// Loops until *stop; then hands every pending slot to the rings and closes the
    /// connections.
    void run() noexcept;

    const kafka_rx_counters& counters() const noexcept { return _counters; }
    /// Produce-ack latency in tsc ticks, by acks_index(); snapshot() from any thread.
    const latency_histogram& ack_latency(int mode) const noexcept { return _ack_latency[mode]; }
    /// Safe from any thread: topics are only added, and published after they are complete.
    std::vector<kafka_topic_stats> topics() const;
    const kafka_rx_config& config() const noexcept { return _config; }
    /// Before run(): where producer ids come from (default: not persisted, from the clock).
    void set_producer_ids(producer_ids ids) { _producer_ids = std::move(ids); }
    /// Before run(): restores the idempotent producers' sequence state from the data dir's
    /// journal and persists it there from now on (default: not persisted).
    result<void> open_sequence_journal(const std::string& data_dir);
    /// Before run(): serves Fetch and ListOffsets (without one they close the connection,
    /// as an unknown API does).
    void set_fetch_server(std::unique_ptr<fetch_server> f) { _fetch = std::move(f); }
    const fetch_server* fetch() const noexcept { return _fetch.get(); }
    /// Before run(): sluiced is the group coordinator (FindCoordinator answers node 0, and
    /// the group APIs go to the group thread); without one those close the connection and
    /// FindCoordinator answers COORDINATOR_NOT_AVAILABLE.
    void set_group_server(std::unique_ptr<group_server> g) { _groups = std::move(g); }
    const group_server* groups() const noexcept { return _groups.get(); }

  private:
    struct topic;
    struct parked;

    bool on_frame(const kafka_frame& f) noexcept;
    void api_versions(const kafka_frame& f, const request_header& h,
                      parse_error header_error) noexcept;
    void metadata(const kafka_frame& f, const request_header& h) noexcept;
    void init_producer_id(const kafka_frame& f, const request_header& h) noexcept;
    void find_coordinator(const kafka_frame& f, const request_header& h) noexcept;
    bool produce(const kafka_frame& f, const request_header& h) noexcept;
    // Hands a request to the fetch reader or the group thread (kafka_rx.cpp).
    template <class Server>
    bool hand_off(Server& server, const kafka_frame& f, const request_header& h) noexcept;
    uint32_t complete_fetches() noexcept;
    uint32_t complete_groups() noexcept;
    void deliver(conn_ref c, int32_t slot, std::vector<uint8_t>& answer) noexcept;
    int16_t append_partition(topic* t, const produce_partition& p, int16_t version,
                             int64_t& base_offset) noexcept;
    int16_t append_legacy(topic* t, const produce_partition& p, int64_t& base_offset) noexcept;
    uint64_t route_records(const record_batch& b, bytes_view recs) noexcept;
    void route_value(const std::optional<bytes_view>& value) noexcept;
    void count_batch(compression codec, int8_t magic) noexcept;
    sequence_check check_sequence(const sequence_key& k, const record_batch& b) noexcept;
    void sequence_accepted(const sequence_key& k, const record_batch& b,
                           int64_t base_offset) noexcept;
    uint32_t complete_parked() noexcept;
    bool store_failed() noexcept; // latched: a writer never recovers within a run
    void fail_parked() noexcept;
    bool may_block() const noexcept;
    topic* find_topic(std::string_view name) noexcept;
    topic* create_topic(std::string_view name, int32_t partitions) noexcept;
    void count_request(int16_t key, int16_t version) noexcept; // key in [0, kafka_api_keys)
    void count_error(int16_t code) noexcept;
    void record_ack_latency(int mode, uint64_t arrival_tsc, uint64_t now) noexcept;

    kafka_rx_config _config;
    kafka_listener& _listener;
    rx_lcore& _rx;
    std::vector<worker_durability> _durable;
    const std::atomic<bool>* _stop;
    kafka_rx_counters _counters;
    latency_histogram _ack_latency[kafka_acks_modes];

    std::unique_ptr<topic[]> _topics;
    std::atomic<uint32_t> _topic_count{0};
    std::vector<metadata_topic> _meta; // one Metadata answer's topics
    std::unique_ptr<parked[]> _parked; // a FIFO of acks=-1 answers
    std::unique_ptr<uint64_t[]> _marks; // kafka_parked_acks_max x workers
    uint32_t _parked_head = 0, _parked_count = 0;
    uint32_t _parked_data_durable = 0; // entries from the head whose records are durable
                                       // (or will never be: failed, answered 56)
    bool _store_failed = false;
    std::vector<uint8_t> _discard;      // acks=0: the answer that is never sent
    std::vector<uint8_t> _scratch;      // one batch's decompressed records
    decompressor _decompressor;
    producer_ids _producer_ids;
    producer_sequences _sequences;
    sequence_journal _journal;
    bool _journal_wakes = false; // the journal's completions write the listener's wake_fd
    std::unique_ptr<fetch_server> _fetch;
    std::unique_ptr<group_server> _groups;
    std::shared_ptr<const consume_topic_list> _consume_topics; // Metadata's names point here
};

} // namespace sluice::dataplane::kafka
