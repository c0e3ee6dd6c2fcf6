#pragma once
// fetch_codec: the consume side's wire subset (docs/KAFKA.md "Consuming"): Fetch v4–v10
// and ListOffsets v0–v5 requests and answers, and a RecordBatch v2 builder. Field by field
// as apache/kafka's FetchRequest/FetchResponse/ListOffsetsRequest/ListOffsetsResponse
// schemas; none of these versions is flexible. Parsed and written on the fetch reader's
// thread (fetch_server), never on an lcore, so requests are read into small vectors.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "dataplane/kafka/kafka_codec.h"

namespace sluice::dataplane::kafka {

// ---- Fetch (key 1) ----

struct fetch_request_partition {
    int32_t partition = 0;
    int32_t current_leader_epoch = -1; // v9+
    int64_t fetch_offset = 0;
    int64_t log_start_offset = -1; // v5+ (a follower's; consumers send -1)
    int32_t partition_max_bytes = 0;
};

struct fetch_request_topic {
    std::string_view name;
    std::vector<fetch_request_partition> partitions;
};

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

struct fetch_response_topic {
    std::string_view name;
    std::vector<fetch_response_partition> partitions;
};

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

struct list_offsets_topic {
    std::string_view name;
    std::vector<list_offsets_partition> partitions;
};

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

struct list_offsets_topic_result {
    std::string_view name;
    std::vector<list_offsets_result> partitions;
};

void write_list_offsets_response(response_writer& w, const request_header& h,
                                 std::span<const list_offsets_topic_result> topics,
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
