#pragma once
// fetch_codec: the consume side's wire subset (docs/KAFKA.md "Consuming"): Fetch v4–v10,
// ListOffsets v0–v5, OffsetForLeaderEpoch v0–v4 and DescribeConfigs v0–v4 requests and
// answers, and a RecordBatch v2 builder. Field by field as apache/kafka's schemas (the
// *Request/*Response.json of each); OffsetForLeaderEpoch v4 and DescribeConfigs v4 are
// flexible, the others are not. Parsed and written on the fetch reader's thread
// (fetch_server), never on an lcore, so requests are read into small vectors.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "dataplane/kafka/kafka_codec.h"

namespace sluice::dataplane::kafka {

// Every request here names topics, each with its partitions; every answer the same.
template <typename Partition>
struct topic_of {
    std::string_view name;
    std::vector<Partition> partitions;
};

// ---- Fetch (key 1) ----

struct fetch_request_partition {
    int32_t partition = 0;
    int32_t current_leader_epoch = -1; // v9+
    int64_t fetch_offset = 0;
    int64_t log_start_offset = -1; // v5+ (a follower's; consumers send -1)
    int32_t partition_max_bytes = 0;
};

using fetch_request_topic = topic_of<fetch_request_partition>;

struct fetch_request {
    int32_t replica_id = -1;
    int32_t max_wait_ms = 0;
    int32_t min_bytes = 0;
    int32_t max_bytes = 0x7fffffff; // v3+
    int8_t isolation_level = 0;     // v4+: 0 read_uncommitted, 1 read_committed
    int32_t session_id = 0;         // v7+
    int32_t session_epoch = -1;     // v7+
    std::vector<fetch_request_topic> topics;
};

/// Fetch v4..v10 (the advertised range); other versions: unsupported_version.
parse_error parse_fetch_request(const request_header& h, fetch_request& out);

struct fetch_response_partition {
    int32_t partition = 0;
    int16_t error = error_code::none;
    int64_t high_watermark = -1;
    int64_t last_stable_offset = -1; // v4+
    int64_t log_start_offset = -1;   // v5+
    // RecordBatches. Empty, never null, when there are none: librdkafka 2.0.2 refuses a
    // null record set ("invalid MessageSetSize -1"), errors included; brokers send empty.
    std::optional<bytes_view> records = bytes_view{};
};

using fetch_response_topic = topic_of<fetch_response_partition>;

/// The whole answer frame. v4+: aborted_transactions null (sluice has no transactions);
/// v7+: top-level error 0 and session id 0 (no fetch session: every fetch is a full one,
/// which KIP-227 lets a broker answer to any session request).
void write_fetch_response(response_writer& w, const request_header& h,
                          std::span<const fetch_response_topic> topics, int32_t throttle_ms = 0);

// ---- ListOffsets (key 2) ----

inline constexpr int64_t list_offsets_latest = -1;
inline constexpr int64_t list_offsets_earliest = -2;

struct list_offsets_partition {
    int32_t partition = 0;
    int32_t current_leader_epoch = -1; // v4+
    int64_t timestamp = 0;             // -1 latest, -2 earliest, else a time in ms
};

using list_offsets_topic = topic_of<list_offsets_partition>;

struct list_offsets_request {
    int32_t replica_id = -1;
    int8_t isolation_level = 0; // v2+
    std::vector<list_offsets_topic> topics;
};

/// ListOffsets v0..v5.
parse_error parse_list_offsets_request(const request_header& h, list_offsets_request& out);

struct list_offsets_result {
    int32_t partition = 0;
    int16_t error = error_code::none;
    int64_t timestamp = -1; // v1+
    int64_t offset = -1;    // v0: the one old-style offset (none when -1 or an error)
};

using list_offsets_topic_result = topic_of<list_offsets_result>;

void write_list_offsets_response(response_writer& w, const request_header& h,
                                 std::span<const list_offsets_topic_result> topics,
                                 int32_t throttle_ms = 0);

// ---- OffsetForLeaderEpoch (key 23) ----
// What a consumer (KIP-320: Java clients, librdkafka with Metadata v7+ epochs) asks to
// validate its position after a leader change: "where does epoch E end?". sluice's log has
// one epoch, 0, for ever (Metadata says leader epoch 0).

struct leader_epoch_partition {
    int32_t partition = 0;
    int32_t current_leader_epoch = -1; // v2+: the epoch the client knows (-1: none)
    int32_t leader_epoch = 0;          // the epoch whose end offset is asked
};
using leader_epoch_topic = topic_of<leader_epoch_partition>;

struct offset_for_leader_epoch_request {
    int32_t replica_id = -2; // v3+ (-1: a consumer; -2: the default, a debug consumer)
    std::vector<leader_epoch_topic> topics;
};

/// OffsetForLeaderEpoch v0..v4 (v4 flexible).
parse_error parse_offset_for_leader_epoch_request(const request_header& h,
                                                  offset_for_leader_epoch_request& out);

struct leader_epoch_result {
    int32_t partition = 0;
    int16_t error = error_code::none;
    int32_t leader_epoch = -1; // v1+
    int64_t end_offset = -1;
};
using leader_epoch_topic_result = topic_of<leader_epoch_result>;

void write_offset_for_leader_epoch_response(response_writer& w, const request_header& h,
                                            std::span<const leader_epoch_topic_result> topics,
                                            int32_t throttle_ms = 0);

// ---- DescribeConfigs (key 32) ----
// What AdminClients ask about a topic or the broker (Spark's AdminClient-based offset
// reader, kafkajs admin.describeConfigs, kcat -L's tools): the answer lists sluice's
// fixed, read-only values.

namespace config_resource {
inline constexpr int8_t topic = 2;
inline constexpr int8_t broker = 4;
inline constexpr int8_t broker_logger = 8;
} // namespace config_resource

namespace config_source { // Kafka's ConfigSource
inline constexpr int8_t static_broker = 4;
inline constexpr int8_t default_config = 5;
} // namespace config_source

namespace config_type { // Kafka's ConfigType (v3+)
inline constexpr int8_t boolean = 1, string = 2, int_ = 3, long_ = 5, list = 7;
} // namespace config_type

struct describe_configs_resource {
    int8_t type = 0;
    std::string_view name;
    std::optional<std::vector<std::string_view>> keys; // null: every key
};

struct describe_configs_request {
    std::vector<describe_configs_resource> resources;
    bool include_synonyms = false;      // v1+
    bool include_documentation = false; // v3+
};

/// DescribeConfigs v0..v4 (v4 flexible).
parse_error parse_describe_configs_request(const request_header& h, describe_configs_request& out);

struct config_entry {
    std::string_view name;
    std::optional<std::string_view> value;
    int8_t source = config_source::default_config; // v1+ (v0: is_default = source is default)
    int8_t type = 0;                                  // v3+
    bool read_only = true;
};

struct describe_configs_result {
    int16_t error = error_code::none;
    std::optional<std::string_view> message;
    int8_t type = 0;
    std::string_view name;
    std::vector<config_entry> configs;
};

/// Synonyms (v1+): with include_synonyms each entry lists itself, its one source;
/// documentation (v3+) is null.
void write_describe_configs_response(response_writer& w, const request_header& h,
                                     const describe_configs_request& req,
                                     std::span<const describe_configs_result> results,
                                     int32_t throttle_ms = 0);

// ---- RecordBatch v2, built ----

struct record_header_out {
    std::string_view key;
    std::optional<bytes_view> value;
};

/// Appends uncompressed RecordBatch v2 (magic 2, CRC-32C, create-time timestamps, no
/// producer: id -1, epoch -1, sequence -1) to a caller-owned vector: begin(), add() per
/// record with consecutive offsets, finish(). The scratch buffers are reused.
class record_batch_builder {
  public:
    void begin(std::vector<uint8_t>& out, int64_t base_offset) noexcept;
    void add(int64_t timestamp_ms, std::optional<bytes_view> key, std::optional<bytes_view> value,
             std::span<const record_header_out> headers = {});
    /// Writes the batch; returns its bytes (0 when no record was added: nothing written).
    size_t finish();
    int32_t records() const noexcept { return _count; }
    /// The batch's size if finished now.
    size_t bytes() const noexcept { return record_batch_header_bytes + _records.size(); }

  private:
    std::vector<uint8_t>* _out = nullptr;
    std::vector<uint8_t> _records;
    std::vector<uint8_t> _one;
    int64_t _base_offset = 0;
    int64_t _base_timestamp = 0;
    int64_t _max_timestamp = 0;
    int32_t _count = 0;
};

} // namespace sluice::dataplane::kafka
