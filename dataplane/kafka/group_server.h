#pragma once
// group_server: sluiced as the group coordinator of its Kafka consumers (docs/KAFKA.md
// "Consumer groups"). JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and
// OffsetFetch are served on a thread of its own (the "group thread"), never on the Kafka
// RX lcore: the RX lcore copies the frame into one of kafka_group_jobs jobs and queues it,
// through the job_handover.h that hands Fetch to fetch_server (none free = back-pressure,
// the frame stays unread); the group thread parses it, runs group_coordinator and offset_store, writes the
// answer into the job and queues it back; the RX lcore swaps it into the connection's
// reserved response slot. A JoinGroup or SyncGroup that must wait for the rest of its group
// stays in its job on the group thread — nothing blocks — until the coordinator releases it
// (every member joined, the leader's assignment arrived, a rebalance timeout passed). The
// thread wakes for new jobs and for the coordinator's next deadline (session timeouts), at
// least every group_tick_ms.
//
// OffsetCommit is answered only after offset_store made the offsets durable (fdatasync on
// the group thread). The control thread never waits on that: the group thread publishes a
// copy of the groups and committed offsets (at most every group_publish_ms, when something
// changed), and snapshot() adds each partition's lag against the events-topic high
// watermark read at that moment.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "dataplane/kafka/group_coordinator.h"
#include "dataplane/kafka/job_handover.h"
#include "dataplane/kafka/kafka_listener.h"
#include "dataplane/kafka/offset_store.h"

namespace sluice::dataplane::kafka {

// Requests in the group thread's hands, held JoinGroup/SyncGroup included (one per member
// at most while it waits), all connections.
inline constexpr uint32_t kafka_group_jobs = 256;
inline constexpr uint32_t group_tick_ms = 100;    // the longest the thread sleeps
inline constexpr uint32_t group_publish_ms = 100; // how stale `sluicectl groups` may be

struct group_server_config {
    std::string data_dir; // empty: offsets in memory only (tests)
    std::string topic = "events-topic";
    uint32_t partitions = 1;
    // The offset after the partition's last durable row (any thread): lag = it − committed.
    std::function<uint64_t(uint32_t partition)> high_watermark;
    uint32_t committed_offsets_max = kafka::committed_offsets_max; // tests lower it
    // The clock (ms); tests may pass a fake one. Default: monotonic.
    std::function<int64_t()> now_ms;
};

struct alignas(64) group_server_counters {
    std::atomic<uint64_t> join_groups{0}; // JoinGroup requests
    std::atomic<uint64_t> sync_groups{0}; // SyncGroup requests
    std::atomic<uint64_t> heartbeats{0};
    std::atomic<uint64_t> leave_groups{0};
    std::atomic<uint64_t> offset_commits{0};    // OffsetCommit requests
    std::atomic<uint64_t> offsets_committed{0}; // partitions made durable
    std::atomic<uint64_t> offset_fetches{0};
    std::atomic<uint64_t> commit_errors{0};   // offset log writes that failed (answered 56)
    std::atomic<uint64_t> offsets_refused{0}; // new keys beyond committed_offsets_max (3)
    std::atomic<uint64_t> rebalances{0};
    std::atomic<uint64_t> expired_members{0}; // session timeouts
    std::atomic<uint64_t> jobs_full{0};       // frames left unread: every job busy
};

/// One committed or assigned partition of a group, as `sluicectl groups` shows it.
struct group_partition_view {
    std::string topic;
    int32_t partition = 0;
    int64_t committed = -1;      // -1: none
    int64_t high_watermark = -1; // -1: not a partition of events-topic
    int64_t lag = -1;            // high_watermark - committed; -1 when either is unknown
    std::string member;          // the member it is assigned to ("" none)
};

struct group_view {
    group_info info; // state "Empty" and no members for a group known by its offsets only
    std::vector<group_partition_view> partitions;
};

struct group_snapshot {
    std::vector<group_view> groups;
    uint64_t offsets_restored = 0;
    uint64_t offset_log_torn_bytes = 0;
};

/// Decodes a "consumer" protocol assignment (version i16, [topic, [partition]], user data)
/// into (topic, partition) pairs; nullopt for bytes that are not one.
std::optional<std::vector<std::pair<std::string, int32_t>>>
decode_consumer_assignment(std::string_view bytes);

class group_server {
  public:
    /// Opens the offset log (restores committed offsets) and starts the group thread.
    static result<std::unique_ptr<group_server>> open(group_server_config config);
    ~group_server(); // stop()
    void stop();     // joins the thread; jobs it holds are never answered. Idempotent.
    group_server(const group_server&) = delete;
    group_server& operator=(const group_server&) = delete;

    // ---- RX lcore side (as fetch_server) ----
    bool has_free_job() const noexcept { return _jobs.has_free(); }
    /// Jobs submitted and not yet completed (a JoinGroup may wait for its group).
    uint32_t in_flight() const noexcept { return _jobs.in_flight(); }
    void submit(conn_ref conn, int32_t slot, bytes_view frame) noexcept {
        _jobs.submit(conn, slot, frame);
    }
    template <typename Done> uint32_t complete(Done&& done) noexcept {
        return _jobs.complete(std::forward<Done>(done));
    }
    void count_jobs_full() noexcept { _counters.jobs_full.fetch_add(1, std::memory_order_relaxed); }

    const group_server_counters& counters() const noexcept { return _counters; }
    /// Any thread: the last published state, with lag against the high watermarks now.
    group_snapshot snapshot() const;
    /// Publishes the coordinator's and the store's state for snapshot() (the group thread
    /// does, when it changed; tests call it after serve()).
    void publish();

    // ---- the group thread's work, public for tests (one thread) ----
    /// Serves one request frame. true: `answer` holds the response frame (empty: the body
    /// was malformed, close the connection); false: held under `token`, answered by
    /// release().
    bool serve(bytes_view frame, uint64_t token, std::vector<uint8_t>& answer);
    /// Expires members, then calls emit(token, answer frame) for every held request the
    /// coordinator released. `frame_of(token)` gives the held request's frame.
    template <typename FrameOf, typename Emit> void release(FrameOf&& frame_of, Emit&& emit);

  private:
    explicit group_server(group_server_config config, offset_store store);
    int64_t thread_step(); // one turn of the group thread's loop: the ms it may sleep
    int64_t now() const { return _config.now_ms(); }
    void serve_offset_commit(const request_header& h, std::vector<uint8_t>& answer);
    void serve_offset_fetch(const request_header& h, std::vector<uint8_t>& answer);
    void publish_counters() noexcept;
    void write_released(const group_answer& a, bytes_view frame, std::vector<uint8_t>& answer);

    group_server_config _config;
    // Held JoinGroup/SyncGroup jobs stay in it; a job's index is its coordinator token.
    job_handover<handover_job, kafka_group_jobs> _jobs;
    group_server_counters _counters;

    struct published {
        std::vector<group_info> groups;
        std::map<offset_key, committed_offset> offsets;
        int64_t at_ms = 0;
        uint64_t restored = 0, torn_bytes = 0;
    };

    std::mutex _mutex; // the coordinator and store: the group thread (and tests' serve())
    std::atomic<bool> _dirty{true};
    std::atomic<int64_t> _published_ms{0};
    mutable std::mutex _published_mutex; // only to swap and copy the pointer
    std::shared_ptr<const published> _published;
    group_coordinator _coordinator;
    offset_store _store;
};

template <typename FrameOf, typename Emit>
void group_server::release(FrameOf&& frame_of, Emit&& emit) {
    std::vector<group_answer> answers;
    {
        std::lock_guard lock(_mutex);
        _coordinator.tick(now());
        answers = _coordinator.take_answers();
        publish_counters();
        if (!answers.empty()) _dirty = true;
    }
    std::vector<uint8_t> answer;
    for (const auto& a : answers) {
        answer.clear();
        write_released(a, frame_of(a.token), answer);
        emit(a.token, answer);
    }
}

} // namespace sluice::dataplane::kafka
