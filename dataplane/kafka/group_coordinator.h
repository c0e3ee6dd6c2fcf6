#pragma once
// group_coordinator: the consumer-group state machine a Kafka broker's group coordinator
// runs (the classic protocol, docs/KAFKA.md "Consumer groups"), without I/O and without a
// clock of its own (every call gets `now_ms`), so it is tested with a fake clock.
//
// A group is Empty, PreparingRebalance, CompletingRebalance or Stable:
// - JoinGroup from a new member (empty member id) gets an id; from v4 on it is answered
//   MEMBER_ID_REQUIRED with that id first and joins when it comes back with it (KIP-394).
//   A join by a new member, a leader, or a member whose protocols changed starts a
//   rebalance (PreparingRebalance): JoinGroup answers are held until every known member has
//   rejoined or the largest rebalance timeout passed (members that did not rejoin are
//   removed). Then the generation goes up, a protocol every member supports is chosen by
//   vote, and each held JoinGroup is answered; the leader's answer lists every member with
//   its metadata for that protocol (CompletingRebalance).
// - SyncGroup is held until the leader's arrives with the assignments; then every held
//   SyncGroup gets its member's assignment (Stable).
// - Heartbeat: REBALANCE_IN_PROGRESS while a rebalance is prepared (the member must
//   rejoin), ILLEGAL_GENERATION for another generation, UNKNOWN_MEMBER_ID for a member the
//   group does not have.
// - LeaveGroup and a session timeout (no heartbeat, join or sync for session_timeout_ms,
//   checked by tick()) remove the member and start a rebalance.
// Held answers come out of take_answers(), each with the token it was held under.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "dataplane/kafka/group_codec.h"

namespace sluice::dataplane::kafka {

// Kafka's broker defaults: group.min.session.timeout.ms, group.max.session.timeout.ms.
inline constexpr int32_t group_session_timeout_min_ms = 6000;
inline constexpr int32_t group_session_timeout_max_ms = 1800000;
inline constexpr uint32_t kafka_groups_max = 4096;        // groups kept (with members)
inline constexpr uint32_t kafka_group_members_max = 1024; // members per group (group.max.size)

enum class group_state : uint8_t { empty, preparing_rebalance, completing_rebalance, stable };
std::string_view group_state_name(group_state s) noexcept;

/// A held JoinGroup or SyncGroup, answered now.
struct group_answer {
    uint64_t token = 0;
    int16_t api_key = 0;      // join_group or sync_group
    join_group_response join; // api_key join_group
    int16_t error = 0;        // api_key sync_group
    std::string assignment;   // api_key sync_group
};

/// What `sluicectl groups` shows of one member.
struct group_member_info {
    std::string member_id;
    std::string client_id;
    std::optional<std::string> group_instance_id;
    int32_t session_timeout_ms = 0;
    int64_t since_heard_ms = 0;
    std::string assignment; // the leader's bytes for it (protocol "consumer": decodable)
};

struct group_info {
    std::string group_id;
    group_state state = group_state::empty;
    int32_t generation = 0;
    std::string protocol_type;
    std::string protocol;
    std::string leader;
    std::vector<group_member_info> members;
};

class group_coordinator {
  public:
    group_coordinator();
    ~group_coordinator();
    group_coordinator(const group_coordinator&) = delete;
    group_coordinator& operator=(const group_coordinator&) = delete;

    /// JoinGroup. true: answered now (`out`); false: held under `token` (take_answers()).
    bool join(const join_group_request& r, std::string_view client_id, int16_t version,
              uint64_t token, int64_t now_ms, join_group_response& out);
    /// SyncGroup. true: answered now (`error`, `assignment`); false: held under `token`.
    bool sync(const sync_group_request& r, uint64_t token, int64_t now_ms, int16_t& error,
              std::string& assignment);
    int16_t heartbeat(const heartbeat_request& r, int64_t now_ms);
    /// LeaveGroup: each member's error in place; returns the top-level error.
    int16_t leave(std::string_view group_id, std::vector<leave_group_member>& members,
                  int64_t now_ms);
    /// Whether an OffsetCommit with this generation and member may be stored now (0), or
    /// the error a broker answers. generation < 0 with no members: a commit from a client
    /// that assigns its own partitions (allowed).
    int16_t check_commit(std::string_view group_id, int32_t generation, std::string_view member_id,
                         int64_t now_ms);

    /// Expires silent members and held joins past their rebalance deadline.
    void tick(int64_t now_ms);
    /// The next time tick() has something to do (INT64_MAX: nothing scheduled).
    int64_t next_deadline_ms() const;
    /// Answers released since the last call.
    std::vector<group_answer> take_answers();

    std::vector<group_info> describe(int64_t now_ms) const;
    uint64_t rebalances() const noexcept { return _rebalances; }
    uint64_t expired_members() const noexcept { return _expired; }
    size_t group_count() const noexcept { return _groups.size(); }

  private:
    struct member;
    struct group;

    group* find(std::string_view id);
    std::string new_member_id(std::string_view client_id);
    void prepare_rebalance(group& g, int64_t now_ms);
    void maybe_complete_join(group& g, int64_t now_ms);
    void complete_join(group& g, int64_t now_ms);
    void remove_member(group& g, size_t index, int64_t now_ms);
    join_group_response join_answer(const group& g, const member& m) const;
    bool supports(const group& g, const join_group_request& r) const;

    std::map<std::string, std::unique_ptr<group>, std::less<>> _groups;
    std::vector<group_answer> _answers;
    std::mt19937_64 _rng;
    uint64_t _rebalances = 0, _expired = 0;
};

} // namespace sluice::dataplane::kafka
