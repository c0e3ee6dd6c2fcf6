// The consumer-group state machine (dataplane/kafka/group_coordinator.h) with a fake clock,
// and the group thread's request handling (group_server::serve) on raw frames.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "dataplane/kafka/group_coordinator.h"
#include "dataplane/kafka/group_server.h"

namespace sluice::dataplane::kafka {
namespace {

namespace ec = error_code;

join_group_request join_req(const std::string& member,
                            std::vector<std::string> protocols = {"range"},
                            int32_t session_ms = 10000, int32_t rebalance_ms = 30000) {
    join_group_request r;
    r.group_id = "g";
    r.session_timeout_ms = session_ms;
    r.rebalance_timeout_ms = rebalance_ms;
    r.member_id = member;
    r.protocol_type = "consumer";
    for (auto& p : protocols)
        r.protocols.push_back({p, "meta-" + p + "-" + member});
    return r;
}

heartbeat_request hb(const std::string& member, int32_t generation) {
    return {"g", generation, member, std::nullopt};
}

sync_group_request sync_req(const std::string& member, int32_t generation,
                            std::vector<sync_group_assignment> a = {}) {
    return {"g", generation, member, std::nullopt, std::move(a)};
}

// The answer released under `token` (fails the test when there is none).
group_answer answer_for(std::vector<group_answer>& answers, uint64_t token) {
    for (auto& a : answers)
        if (a.token == token) return a;
    ADD_FAILURE() << "no answer for token " << token;
    return {};
}

struct fixture {
    group_coordinator c;
    int64_t now = 1000;
    uint64_t next_token = 1;

    // A v3 join (no MEMBER_ID_REQUIRED round): the new member's id once answered.
    join_group_response join(const join_group_request& r, bool expect_held = true) {
        join_group_response out;
        const uint64_t token = next_token++;
        const bool now_answered = c.join(r, "client", 3, token, now, out);
        EXPECT_EQ(now_answered, !expect_held);
        if (now_answered) return out;
        auto answers = c.take_answers();
        for (auto& a : answers)
            if (a.token == token) return a.join;
        join_group_response held;
        held.error = -100; // still held
        held.generation_id = int32_t(token);
        return held;
    }
};

TEST(GroupCoordinator, JoinV4AsksForTheMemberIdThenOneMemberIsLeaderOfGenerationOne) {
    group_coordinator c;
    join_group_response out;
    ASSERT_TRUE(c.join(join_req(""), "cli", 5, 1, 0, out));
    EXPECT_EQ(out.error, ec::member_id_required);
    ASSERT_EQ(out.member_id.rfind("cli-", 0), 0u) << out.member_id;
    const std::string id = out.member_id;
    // Back with the id: the only member, so the join completes at once (released).
    EXPECT_FALSE(c.join(join_req(id), "cli", 5, 2, 10, out));
    auto answers = c.take_answers();
    ASSERT_EQ(answers.size(), 1u);
    const join_group_response& j = answers[0].join;
    EXPECT_EQ(answers[0].token, 2u);
    EXPECT_EQ(j.error, ec::none);
    EXPECT_EQ(j.generation_id, 1);
    EXPECT_EQ(j.leader, id);
    EXPECT_EQ(j.member_id, id);
    EXPECT_EQ(j.protocol_name, "range");
    ASSERT_EQ(j.members.size(), 1u);
    EXPECT_EQ(j.members[0].metadata, "meta-range-" + id);
    // The leader's SyncGroup carries the assignment: Stable, answered with its own.
    int16_t err = -1;
    std::string assignment;
    EXPECT_FALSE(c.sync(sync_req(id, 1, {{id, "A1"}}), 3, 20, err, assignment));
    answers = c.take_answers();
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].error, ec::none);
    EXPECT_EQ(answers[0].assignment, "A1");
    EXPECT_EQ(c.heartbeat(hb(id, 1), 30), ec::none);
    EXPECT_EQ(c.heartbeat(hb(id, 0), 30), ec::illegal_generation);
    EXPECT_EQ(c.heartbeat(hb("nobody", 1), 30), ec::unknown_member_id);
    auto d = c.describe(40);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].state, group_state::stable);
    EXPECT_EQ(d[0].members[0].assignment, "A1");
    // A stable member may sync again: its assignment at once.
    EXPECT_TRUE(c.sync(sync_req(id, 1), 4, 50, err, assignment));
    EXPECT_EQ(assignment, "A1");
}

// Two members: the second join rebalances; the first learns it from its heartbeat, rejoins,
// and both are answered in generation 2; followers wait in SyncGroup for the leader's.
TEST(GroupCoordinator, SecondMemberRebalancesAndFollowersWaitForTheLeadersAssignment) {
    fixture f;
    const auto a = f.join(join_req(""));
    ASSERT_EQ(a.error, ec::none);
    int16_t err;
    std::string asg;
    EXPECT_FALSE(f.c.sync(sync_req(a.member_id, 1, {{a.member_id, "all"}}), 100, f.now, err, asg));
    f.c.take_answers();
    // B joins: held (A has not rejoined).
    join_group_response out;
    EXPECT_FALSE(f.c.join(join_req(""), "client", 3, 200, f.now, out));
    EXPECT_TRUE(f.c.take_answers().empty());
    EXPECT_EQ(f.c.heartbeat(hb(a.member_id, 1), f.now), ec::rebalance_in_progress);
    int16_t e2;
    EXPECT_TRUE(f.c.sync(sync_req(a.member_id, 1), 201, f.now, e2, asg));
    EXPECT_EQ(e2, ec::rebalance_in_progress);
    // A rejoins: both released, generation 2, A still leader and given both members.
    EXPECT_FALSE(f.c.join(join_req(a.member_id), "client", 3, 300, f.now, out));
    auto answers = f.c.take_answers();
    ASSERT_EQ(answers.size(), 2u);
    const auto ja = answer_for(answers, 300).join;
    const auto jb = answer_for(answers, 200).join;
    EXPECT_EQ(ja.generation_id, 2);
    EXPECT_EQ(jb.generation_id, 2);
    EXPECT_EQ(ja.leader, a.member_id);
    EXPECT_EQ(jb.leader, a.member_id);
    EXPECT_EQ(ja.members.size(), 2u);
    EXPECT_TRUE(jb.members.empty());
    // B's SyncGroup waits for A's.
    EXPECT_FALSE(f.c.sync(sync_req(jb.member_id, 2), 400, f.now, err, asg));
    EXPECT_TRUE(f.c.take_answers().empty());
    EXPECT_EQ(f.c.heartbeat(hb(jb.member_id, 2), f.now), ec::none); // awaiting sync: fine
    EXPECT_FALSE(f.c.sync(sync_req(a.member_id, 2, {{a.member_id, "p0"}, {jb.member_id, "p1"}}),
                          401, f.now, err, asg));
    answers = f.c.take_answers();
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_EQ(answer_for(answers, 400).assignment, "p1");
    EXPECT_EQ(answer_for(answers, 401).assignment, "p0");
    EXPECT_EQ(f.c.heartbeat(hb(jb.member_id, 1), f.now), ec::illegal_generation);
    EXPECT_EQ(f.c.rebalances(), 2u);

    // B leaves: A is told to rejoin and is alone in generation 3.
    std::vector<leave_group_member> leaving{{jb.member_id, std::nullopt}};
    EXPECT_EQ(f.c.leave("g", leaving, f.now), ec::none);
    EXPECT_EQ(f.c.heartbeat(hb(a.member_id, 2), f.now), ec::rebalance_in_progress);
    EXPECT_FALSE(f.c.join(join_req(a.member_id), "client", 3, 500, f.now, out));
    answers = f.c.take_answers();
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].join.generation_id, 3);
    EXPECT_EQ(answers[0].join.members.size(), 1u);
    std::vector<leave_group_member> unknown{{"nobody", std::nullopt}};
    EXPECT_EQ(f.c.leave("g", unknown, f.now), ec::unknown_member_id);
    EXPECT_EQ(unknown[0].error, ec::unknown_member_id);
}

TEST(GroupCoordinator, SessionTimeoutExpiresASilentMemberAndRebalances) {
    fixture f;
    const auto a = f.join(join_req("", {"range"}, 6000));
    join_group_response out;
    EXPECT_FALSE(f.c.join(join_req("", {"range"}, 6000), "client", 3, 50, f.now, out));
    EXPECT_FALSE(f.c.join(join_req(a.member_id, {"range"}, 6000), "client", 3, 51, f.now, out));
    auto answers = f.c.take_answers();
    const std::string b = answer_for(answers, 50).join.member_id;
    int16_t err;
    std::string asg;
    f.c.sync(sync_req(b, 2), 52, f.now, err, asg);
    f.c.sync(sync_req(a.member_id, 2, {{a.member_id, "x"}, {b, "y"}}), 53, f.now, err, asg);
    f.c.take_answers();
    // A heartbeats every 2 s, B never: B goes after 6 s, not before.
    const int64_t start = f.now;
    for (int64_t t = start + 2000; t <= start + 6000; t += 2000) {
        EXPECT_EQ(f.c.heartbeat(hb(a.member_id, 2), t), ec::none);
        f.c.tick(t);
    }
    EXPECT_EQ(f.c.expired_members(), 0u);
    EXPECT_LE(f.c.next_deadline_ms(), start + 6001);
    f.c.tick(start + 6001);
    EXPECT_EQ(f.c.expired_members(), 1u);
    EXPECT_EQ(f.c.heartbeat(hb(a.member_id, 2), start + 6002), ec::rebalance_in_progress);
    EXPECT_EQ(f.c.heartbeat(hb(b, 2), start + 6002), ec::unknown_member_id);
}

// A member that keeps heartbeating but never rejoins is dropped at the rebalance timeout;
// the join completes with those that did.
TEST(GroupCoordinator, RebalanceTimeoutDropsMembersThatDidNotRejoin) {
    fixture f;
    const auto a = f.join(join_req("", {"range"}, 10000, 20000));
    join_group_response out;
    EXPECT_FALSE(f.c.join(join_req("", {"range"}, 10000, 20000), "client", 3, 60, f.now, out));
    const int64_t start = f.now;
    for (int64_t t = start + 5000; t < start + 20000; t += 5000) {
        EXPECT_EQ(f.c.heartbeat(hb(a.member_id, 1), t), ec::rebalance_in_progress);
        f.c.tick(t);
    }
    f.c.tick(start + 19999);
    EXPECT_TRUE(f.c.take_answers().empty());
    f.c.tick(start + 20000);
    auto answers = f.c.take_answers();
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].token, 60u);
    EXPECT_EQ(answers[0].join.generation_id, 2);
    EXPECT_EQ(answers[0].join.leader, answers[0].join.member_id); // A is gone: a new leader
    EXPECT_EQ(f.c.heartbeat(hb(a.member_id, 2), start + 20001), ec::unknown_member_id);
}

TEST(GroupCoordinator, RefusesWhatABrokerRefuses) {
    fixture f;
    join_group_response out;
    auto bad = join_req("");
    bad.group_id = "";
    EXPECT_TRUE(f.c.join(bad, "c", 3, 1, 0, out));
    EXPECT_EQ(out.error, ec::invalid_group_id);
    EXPECT_TRUE(f.c.join(join_req("", {"range"}, 5999), "c", 3, 1, 0, out));
    EXPECT_EQ(out.error, ec::invalid_session_timeout);
    EXPECT_TRUE(f.c.join(join_req("", {"range"}, 1800001), "c", 3, 1, 0, out));
    EXPECT_EQ(out.error, ec::invalid_session_timeout);
    EXPECT_TRUE(f.c.join(join_req("someone"), "c", 3, 1, 0, out));
    EXPECT_EQ(out.error, ec::unknown_member_id); // no such group
    const auto a = f.join(join_req(""));
    ASSERT_EQ(a.error, ec::none);
    auto other_type = join_req("");
    other_type.protocol_type = "connect";
    EXPECT_TRUE(f.c.join(other_type, "c", 3, 9, f.now, out));
    EXPECT_EQ(out.error, ec::inconsistent_group_protocol);
    EXPECT_TRUE(f.c.join(join_req("", {"sticky"}), "c", 3, 9, f.now, out));
    EXPECT_EQ(out.error, ec::inconsistent_group_protocol);
    // Generation 1 is awaiting its sync: commits must wait.
    EXPECT_EQ(f.c.check_commit("g", 1, a.member_id, f.now), ec::rebalance_in_progress);
    int16_t err;
    std::string asg;
    f.c.sync(sync_req(a.member_id, 1, {{a.member_id, "x"}}), 10, f.now, err, asg);
    EXPECT_EQ(f.c.check_commit("g", 1, a.member_id, f.now), ec::none);
    EXPECT_EQ(f.c.check_commit("g", 0, a.member_id, f.now), ec::illegal_generation);
    EXPECT_EQ(f.c.check_commit("g", 1, "nobody", f.now), ec::unknown_member_id);
    EXPECT_EQ(f.c.check_commit("g", -1, "", f.now), ec::unknown_member_id);
    // A group nobody manages takes commits without a generation only.
    EXPECT_EQ(f.c.check_commit("free", -1, "", f.now), ec::none);
    EXPECT_EQ(f.c.check_commit("free", 3, "m", f.now), ec::illegal_generation);
    EXPECT_TRUE(f.c.sync(sync_req("nobody", 1), 11, f.now, err, asg));
    EXPECT_EQ(err, ec::unknown_member_id);
    EXPECT_TRUE(f.c.sync(sync_req(a.member_id, 7), 12, f.now, err, asg));
    EXPECT_EQ(err, ec::illegal_generation);
}

TEST(GroupCoordinator, ProtocolIsChosenByVoteAmongThoseEveryMemberOffers) {
    fixture f;
    const auto a = f.join(join_req("", {"range", "roundrobin"}));
    ASSERT_EQ(a.protocol_name, "range");
    join_group_response out;
    EXPECT_FALSE(f.c.join(join_req("", {"roundrobin"}), "client", 3, 70, f.now, out));
    EXPECT_FALSE(
        f.c.join(join_req(a.member_id, {"range", "roundrobin"}), "client", 3, 71, f.now, out));
    auto answers = f.c.take_answers();
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_EQ(answer_for(answers, 70).join.protocol_name, "roundrobin");
    const auto leader = answer_for(answers, 71).join;
    ASSERT_EQ(leader.members.size(), 2u);
    for (const auto& m : leader.members)
        EXPECT_EQ(m.metadata.rfind("meta-roundrobin-", 0), 0u) << m.metadata;
}

TEST(GroupCoordinator, UnusedMemberIdsExpireAndAResentJoinReplacesTheHeldOne) {
    group_coordinator c;
    join_group_response out;
    ASSERT_TRUE(c.join(join_req("", {"range"}, 6000), "cli", 4, 1, 0, out));
    const std::string id = out.member_id;
    c.tick(6001);
    EXPECT_TRUE(c.join(join_req(id, {"range"}, 6000), "cli", 4, 2, 6002, out));
    EXPECT_EQ(out.error, ec::unknown_member_id);
    // A member that sends JoinGroup again while held: the first is answered 27.
    fixture f;
    const auto a = f.join(join_req(""));
    EXPECT_FALSE(f.c.join(join_req(""), "client", 3, 80, f.now, out)); // B: held
    EXPECT_FALSE(f.c.join(join_req(""), "client", 3, 81, f.now, out)); // C: held
    auto held = f.c.take_answers();
    EXPECT_TRUE(held.empty());
    std::vector<leave_group_member> leaving{{a.member_id, std::nullopt}};
    f.c.leave("g", leaving, f.now); // A leaves: B and C complete the join
    auto answers = f.c.take_answers();
    ASSERT_EQ(answers.size(), 2u);
    const std::string b = answer_for(answers, 80).join.member_id;
    EXPECT_FALSE(f.c.join(join_req(b, {"roundrobin", "range"}), "client", 3, 90, f.now, out));
    EXPECT_FALSE(f.c.join(join_req(b, {"roundrobin", "range"}), "client", 3, 91, f.now, out));
    answers = f.c.take_answers();
    ASSERT_GE(answers.size(), 1u);
    EXPECT_EQ(answer_for(answers, 90).join.error, ec::rebalance_in_progress);
}

// ---- group_server::serve on raw frames ----

std::vector<uint8_t> frame(int16_t key, int16_t version, int32_t correlation,
                           const std::function<void(response_writer&)>& body) {
    std::vector<uint8_t> f;
    response_writer w(f);
    w.i16(key);
    w.i16(version);
    w.i32(correlation);
    w.string("tester");
    body(w);
    return f;
}

// The answer's body after the size prefix and correlation id.
byte_reader answer_body(const std::vector<uint8_t>& a, int32_t correlation) {
    byte_reader r(a);
    EXPECT_EQ(uint32_t(r.i32()), a.size() - 4);
    EXPECT_EQ(r.i32(), correlation);
    return byte_reader(r.rest());
}

TEST(GroupServer, OffsetCommitThenOffsetFetchInEveryVersion) {
    group_server_config cfg;
    cfg.partitions = 2;
    cfg.high_watermark = [](uint32_t p) { return uint64_t(100 + p); };
    auto s = group_server::open(cfg);
    ASSERT_TRUE(s.ok()) << s.err().message;
    group_server& g = *s.value();
    for (int16_t v = 0; v <= offset_commit_version_max; ++v) {
        const auto req = frame(api_key::offset_commit, v, 7, [&](response_writer& w) {
            w.string("free");
            if (v >= 1) {
                w.i32(-1); // generation: not managed
                w.string("");
            }
            if (v >= 7) w.nullable_string(std::nullopt);
            if (v >= 2 && v <= 4) w.i64(-1);
            w.i32(1);
            w.string("events-topic");
            w.i32(1);
            w.i32(v % 2);  // partition
            w.i64(10 + v); // offset
            if (v >= 6) w.i32(3);
            if (v == 1) w.i64(0);
            w.nullable_string(v == 0 ? std::optional<std::string_view>() : std::string_view("m"));
        });
        std::vector<uint8_t> answer;
        ASSERT_TRUE(g.serve(req, 1, answer)) << v;
        byte_reader r = answer_body(answer, 7);
        if (v >= 3) { EXPECT_EQ(r.i32(), 0); }
        ASSERT_EQ(r.array_count(), 1);
        EXPECT_EQ(r.string(), "events-topic");
        ASSERT_EQ(r.array_count(), 1);
        EXPECT_EQ(r.i32(), v % 2);
        EXPECT_EQ(r.i16(), ec::none) << v;
        EXPECT_EQ(r.remaining(), 0u);
    }
    // Partition 1 holds offset 17 (v7, metadata "m", epoch 3); partition 2 nothing.
    for (int16_t v = 0; v <= offset_fetch_version_max; ++v) {
        const auto req = frame(api_key::offset_fetch, v, 8, [&](response_writer& w) {
            w.string("free");
            w.i32(1);
            w.string("events-topic");
            w.i32(2);
            w.i32(1);
            w.i32(2);
        });
        std::vector<uint8_t> answer;
        ASSERT_TRUE(g.serve(req, 1, answer));
        byte_reader r = answer_body(answer, 8);
        if (v >= 3) { EXPECT_EQ(r.i32(), 0); }
        ASSERT_EQ(r.array_count(), 1);
        EXPECT_EQ(r.string(), "events-topic");
        ASSERT_EQ(r.array_count(), 2);
        EXPECT_EQ(r.i32(), 1);
        EXPECT_EQ(r.i64(), 17) << v;
        if (v >= 5) { EXPECT_EQ(r.i32(), 3); }
        EXPECT_EQ(r.nullable_string(), std::optional<std::string_view>("m"));
        EXPECT_EQ(r.i16(), ec::none);
        EXPECT_EQ(r.i32(), 2);
        EXPECT_EQ(r.i64(), -1);
        if (v >= 5) { EXPECT_EQ(r.i32(), -1); }
        EXPECT_EQ(r.nullable_string(), std::optional<std::string_view>(""));
        EXPECT_EQ(r.i16(), ec::none);
        if (v >= 2) { EXPECT_EQ(r.i16(), ec::none); }
        EXPECT_EQ(r.remaining(), 0u);
    }
    // The snapshot: partition 0 (v6: 16) and 1 (17), lag against the watermark. Nothing is
    // shown before the state is published (the group thread does that when it changed).
    g.publish();
    const group_snapshot snap = g.snapshot();
    ASSERT_EQ(snap.groups.size(), 1u);
    ASSERT_EQ(snap.groups[0].partitions.size(), 2u);
    EXPECT_EQ(snap.groups[0].partitions[0].committed, 16);
    EXPECT_EQ(snap.groups[0].partitions[0].lag, 100 - 16);
    EXPECT_EQ(snap.groups[0].partitions[1].lag, 101 - 17);
    // A truncated body: no answer (the RX closes the connection).
    auto bad = frame(api_key::offset_fetch, 1, 9, [](response_writer& w) {
        w.string("free");
        w.i32(3);
    });
    std::vector<uint8_t> answer;
    EXPECT_TRUE(g.serve(bad, 1, answer));
    EXPECT_TRUE(answer.empty());
}

// Committed keys are bounded: a new one beyond the cap is refused (3) and counted; keys
// already held may still move.
TEST(GroupServer, NewCommittedKeysBeyondTheCapAreRefused) {
    group_server_config cfg;
    cfg.committed_offsets_max = 3;
    auto s = group_server::open(cfg);
    ASSERT_TRUE(s.ok());
    group_server& g = *s.value();
    auto commit = [&](int32_t partition, int64_t offset) {
        const auto req = frame(api_key::offset_commit, 2, 1, [&](response_writer& w) {
            w.string("free");
            w.i32(-1);
            w.string("");
            w.i64(-1);
            w.i32(1);
            w.string("t");
            w.i32(1);
            w.i32(partition);
            w.i64(offset);
            w.nullable_string(std::nullopt);
        });
        std::vector<uint8_t> answer;
        EXPECT_TRUE(g.serve(req, 1, answer));
        byte_reader r = answer_body(answer, 1);
        r.array_count();
        (void)r.string();
        r.array_count();
        (void)r.i32();
        return r.i16();
    };
    EXPECT_EQ(commit(0, 1), ec::none);
    EXPECT_EQ(commit(1, 1), ec::none);
    EXPECT_EQ(commit(2, 1), ec::none);
    EXPECT_EQ(commit(3, 1), ec::unknown_topic_or_partition);
    EXPECT_EQ(commit(0, 5), ec::none);
    EXPECT_EQ(g.counters().offsets_refused.load(), 1u);
    EXPECT_EQ(g.counters().offsets_committed.load(), 4u);
}

TEST(GroupServer, JoinV0IsHeldAndReleasedAsAnAnswerFrame) {
    int64_t clock = 0;
    group_server_config cfg;
    cfg.now_ms = [&] { return clock; };
    auto s = group_server::open(cfg);
    ASSERT_TRUE(s.ok());
    group_server& g = *s.value();
    // This test serves and releases on its own thread: the group thread's release() would
    // race it for the answer.
    g.stop();
    const auto join = frame(api_key::join_group, 0, 11, [](response_writer& w) {
        w.string("g0");
        w.i32(10000);
        w.string("");
        w.string("consumer");
        w.i32(1);
        w.string("range");
        const uint8_t meta[] = {0, 0, 0, 0, 0, 0};
        w.bytes(bytes_view(meta, sizeof meta));
    });
    std::vector<uint8_t> answer;
    EXPECT_FALSE(g.serve(join, 5, answer)); // held, released at once (one member)
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> out;
    auto frame_of = [&](uint64_t) { return bytes_view(join); };
    g.release(frame_of, [&](uint64_t t, std::vector<uint8_t>& a) { out.emplace_back(t, a); });
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].first, 5u);
    byte_reader r = answer_body(out[0].second, 11);
    EXPECT_EQ(r.i16(), ec::none); // v0: no throttle
    EXPECT_EQ(r.i32(), 1);
    EXPECT_EQ(r.string(), "range");
    const std::string leader(r.string());
    EXPECT_EQ(std::string(r.string()), leader);
    EXPECT_EQ(leader.rfind("tester-", 0), 0u);
    ASSERT_EQ(r.array_count(), 1);
    EXPECT_EQ(r.string(), leader);
    EXPECT_EQ(r.nullable_bytes()->size(), 6u);
    EXPECT_EQ(r.remaining(), 0u);
}

} // namespace
} // namespace sluice::dataplane::kafka
