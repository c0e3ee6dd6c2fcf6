#pragma once
// group_codec: the consumer-group wire subset (docs/KAFKA.md "Consumer groups"), field by
// field as apache/kafka's JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and
// OffsetFetch schemas, in the versions sluiced advertises: JoinGroup 0-5, SyncGroup 0-3,
// Heartbeat 0-3, LeaveGroup 0-3, OffsetCommit 0-7, OffsetFetch 0-5 — all below each key's
// first flexible version, and the highest each client measured asks (shared/
// kafka-protocol.md). Parsed and written on the group thread (group_server), never on an
// lcore: requests are copied into owned strings, because the coordinator keeps them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/kafka/kafka_codec.h"

namespace sluice::dataplane::kafka {

inline constexpr int16_t join_group_version_max = 5;
inline constexpr int16_t sync_group_version_max = 3;
inline constexpr int16_t heartbeat_version_max = 3;
inline constexpr int16_t leave_group_version_max = 3;
inline constexpr int16_t offset_commit_version_max = 7;
inline constexpr int16_t offset_fetch_version_max = 5;

// ---- JoinGroup (key 11) ----

struct group_protocol {
    std::string name;
    std::string metadata; // the subscription bytes, opaque to the coordinator
};

struct join_group_request {
    std::string group_id;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = -1;            // v1+; v0: the session timeout
    std::string member_id;                        // "" on a first join
    std::optional<std::string> group_instance_id; // v5+
    std::string protocol_type;
    std::vector<group_protocol> protocols;
};

parse_error parse_join_group_request(const request_header& h, join_group_request& out);

struct join_group_member {
    std::string member_id;
    std::optional<std::string> group_instance_id; // v5+
    std::string metadata;
};

struct join_group_response {
    int16_t error = error_code::none;
    int32_t generation_id = -1;
    std::string protocol_name;
    std::string leader;
    std::string member_id;
    std::vector<join_group_member> members; // the leader's answer only
};

void write_join_group_response(response_writer& w, const request_header& h,
                               const join_group_response& r);

// ---- SyncGroup (key 14) ----

struct sync_group_assignment {
    std::string member_id;
    std::string assignment;
};

struct sync_group_request {
    std::string group_id;
    int32_t generation_id = -1;
    std::string member_id;
    std::optional<std::string> group_instance_id;   // v3+
    std::vector<sync_group_assignment> assignments; // the leader's; empty from followers
};

parse_error parse_sync_group_request(const request_header& h, sync_group_request& out);
void write_sync_group_response(response_writer& w, const request_header& h, int16_t error,
                               std::string_view assignment);

// ---- Heartbeat (key 12) ----

struct heartbeat_request {
    std::string group_id;
    int32_t generation_id = -1;
    std::string member_id;
    std::optional<std::string> group_instance_id; // v3+
};

parse_error parse_heartbeat_request(const request_header& h, heartbeat_request& out);
/// Heartbeat's answer; LeaveGroup v0-v2's has the same layout (throttle from v1, error).
void write_error_only_response(response_writer& w, const request_header& h, int16_t error);

// ---- LeaveGroup (key 13) ----

struct leave_group_member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    int16_t error = error_code::none; // the answer's, per member (v3+)
};

struct leave_group_request {
    std::string group_id;
    std::vector<leave_group_member> members; // v0-v2: exactly one
};

parse_error parse_leave_group_request(const request_header& h, leave_group_request& out);
/// v0-v2: error only; v3+: error and each member's own error.
void write_leave_group_response(response_writer& w, const request_header& h, int16_t error,
                                const std::vector<leave_group_member>& members);

// ---- OffsetCommit (key 8) ----

struct offset_commit_partition {
    int32_t partition = 0;
    int64_t offset = -1;
    int32_t leader_epoch = -1;           // v6+
    std::optional<std::string> metadata; // nullable
    int16_t error = error_code::none;    // the answer's
};

struct offset_commit_topic {
    std::string name;
    std::vector<offset_commit_partition> partitions;
};

struct offset_commit_request {
    std::string group_id;
    int32_t generation_id = -1;                   // v1+; -1: a commit outside group management
    std::string member_id;                        // v1+
    std::optional<std::string> group_instance_id; // v7+
    std::vector<offset_commit_topic> topics;
};

parse_error parse_offset_commit_request(const request_header& h, offset_commit_request& out);
/// Each partition's `error` is its answer.
void write_offset_commit_response(response_writer& w, const request_header& h,
                                  const std::vector<offset_commit_topic>& topics);

// ---- OffsetFetch (key 9) ----

struct offset_fetch_topic {
    std::string name;
    std::vector<int32_t> partitions;
};

struct offset_fetch_request {
    std::string group_id;
    std::optional<std::vector<offset_fetch_topic>> topics; // v2+: null = every committed one
};

parse_error parse_offset_fetch_request(const request_header& h, offset_fetch_request& out);

struct offset_fetch_partition {
    int32_t partition = 0;
    int64_t offset = -1;       // -1: nothing committed
    int32_t leader_epoch = -1; // v5+
    std::optional<std::string> metadata = std::string();
    int16_t error = error_code::none;
};

struct offset_fetch_result_topic {
    std::string name;
    std::vector<offset_fetch_partition> partitions;
};

void write_offset_fetch_response(response_writer& w, const request_header& h,
                                 const std::vector<offset_fetch_result_topic>& topics,
                                 int16_t error = error_code::none);

} // namespace sluice::dataplane::kafka
