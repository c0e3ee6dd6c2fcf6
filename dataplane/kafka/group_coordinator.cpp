#include "dataplane/kafka/group_coordinator.h"

#include <algorithm>
#include <climits>
#include <cstdio>

namespace sluice::dataplane::kafka {

std::string_view group_state_name(group_state s) noexcept {
    switch (s) {
    case group_state::empty: return "Empty";
    case group_state::preparing_rebalance: return "PreparingRebalance";
    case group_state::completing_rebalance: return "CompletingRebalance";
    case group_state::stable: return "Stable";
    }
    return "Empty";
}

struct group_coordinator::member {
    std::string id;
    std::string client_id;
    std::optional<std::string> instance_id;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::vector<group_protocol> protocols;
    std::string assignment;
    int64_t last_heard_ms = 0;
    std::optional<uint64_t> join_token; // a held JoinGroup
    std::optional<uint64_t> sync_token; // a held SyncGroup
};

struct group_coordinator::group {
    std::string id;
    group_state state = group_state::empty;
    int32_t generation = 0;
    std::string protocol_type;
    std::string protocol;
    std::string leader;
    std::vector<member> members;
    // Ids handed out with MEMBER_ID_REQUIRED, not joined yet: id -> when handed out.
    std::map<std::string, int64_t, std::less<>> pending;
    int32_t pending_timeout_ms = 0;
    int64_t rebalance_deadline_ms = 0;

    member* find(std::string_view mid) {
        for (auto& m : members)
            if (m.id == mid) return &m;
        return nullptr;
    }
    size_t index_of(std::string_view mid) const {
        for (size_t i = 0; i < members.size(); ++i)
            if (members[i].id == mid) return i;
        return members.size();
    }
};

group_coordinator::group_coordinator() : _rng(std::random_device{}()) {}
group_coordinator::~group_coordinator() = default;

group_coordinator::group* group_coordinator::find(std::string_view id) {
    auto it = _groups.find(id);
    return it == _groups.end() ? nullptr : it->second.get();
}

// Kafka's form: the client id, '-', a random UUID (here 32 hex digits).
std::string group_coordinator::new_member_id(std::string_view client_id) {
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)_rng(),
                  (unsigned long long)_rng());
    return std::string(client_id.substr(0, 200)) + "-" + hex;
}

static bool same_protocols(const std::vector<group_protocol>& a,
                           const std::vector<group_protocol>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].name != b[i].name || a[i].metadata != b[i].metadata) return false;
    return true;
}

// The protocol type must match the group's, and at least one protocol must be one every
// member offers.
bool group_coordinator::supports(const group& g, const join_group_request& r) const {
    if (r.protocol_type.empty() || r.protocols.empty()) return false;
    if (g.members.empty()) return true;
    if (r.protocol_type != g.protocol_type) return false;
    for (const auto& p : r.protocols) {
        bool everyone = true;
        for (const auto& m : g.members) {
            if (m.id == r.member_id) continue;
            everyone = everyone && std::any_of(m.protocols.begin(), m.protocols.end(),
                                               [&](const auto& q) { return q.name == p.name; });
        }
        if (everyone) return true;
    }
    return false;
}

bool group_coordinator::join(const join_group_request& r, std::string_view client_id,
                             int16_t version, uint64_t token, int64_t now_ms,
                             join_group_response& out) {
    out = join_group_response{};
    out.member_id = r.member_id;
    auto fail = [&](int16_t e) {
        out.error = e;
        return true;
    };
    if (r.group_id.empty()) return fail(error_code::invalid_group_id);
    if (r.session_timeout_ms < group_session_timeout_min_ms ||
        r.session_timeout_ms > group_session_timeout_max_ms)
        return fail(error_code::invalid_session_timeout);
    group* g = find(r.group_id);
    if (g == nullptr) {
        if (!r.member_id.empty()) return fail(error_code::unknown_member_id);
        if (_groups.size() >= kafka_groups_max) return fail(error_code::coordinator_not_available);
        auto ng = std::make_unique<group>();
        ng->id = r.group_id;
        g = ng.get();
        _groups.emplace(r.group_id, std::move(ng));
    }
    if (!supports(*g, r)) return fail(error_code::inconsistent_group_protocol);
    member* m = nullptr;
    if (r.member_id.empty() || g->pending.count(r.member_id) != 0) {
        if (g->members.size() + g->pending.size() >= kafka_group_members_max &&
            g->pending.count(r.member_id) == 0)
            return fail(error_code::group_max_size_reached);
        if (r.member_id.empty() && version >= 4) {
            // KIP-394: the client must come back with the id it is given.
            out.member_id = new_member_id(client_id);
            g->pending[out.member_id] = now_ms;
            g->pending_timeout_ms = std::max(g->pending_timeout_ms, r.session_timeout_ms);
            return fail(error_code::member_id_required);
        }
        const std::string id = r.member_id.empty() ? new_member_id(client_id) : r.member_id;
        g->pending.erase(id);
        if (g->members.empty()) g->protocol_type = r.protocol_type;
        m = &g->members.emplace_back();
        m->id = id;
        m->client_id = std::string(client_id);
    } else {
        m = g->find(r.member_id);
        if (m == nullptr) return fail(error_code::unknown_member_id);
    }
    const bool changed = !same_protocols(m->protocols, r.protocols);
    m->instance_id = r.group_instance_id;
    m->session_timeout_ms = r.session_timeout_ms;
    m->rebalance_timeout_ms =
        r.rebalance_timeout_ms > 0 ? r.rebalance_timeout_ms : r.session_timeout_ms;
    m->protocols = r.protocols;
    m->last_heard_ms = now_ms;
    // A known member that rejoins with nothing changed, outside a rebalance, gets the
    // current generation back (the leader always rebalances: it may have new metadata). A
    // new member has no protocols yet: changed.
    if (!changed && m->id != g->leader &&
        (g->state == group_state::stable || g->state == group_state::completing_rebalance)) {
        out = join_answer(*g, *m);
        return true;
    }
    if (m->join_token) {
        // A client that re-sent its JoinGroup has given up on the earlier one.
        group_answer a;
        a.token = *m->join_token;
        a.api_key = api_key::join_group;
        a.join.error = error_code::rebalance_in_progress;
        a.join.member_id = m->id;
        _answers.push_back(std::move(a));
    }
    m->join_token = token;
    if (g->state != group_state::preparing_rebalance) prepare_rebalance(*g, now_ms);
    maybe_complete_join(*g, now_ms);
    return false;
}

void group_coordinator::prepare_rebalance(group& g, int64_t now_ms) {
    if (g.state == group_state::completing_rebalance) {
        // Held SyncGroups of the generation being replaced: rejoin.
        for (auto& m : g.members) {
            if (!m.sync_token) continue;
            group_answer a;
            a.token = *m.sync_token;
            a.api_key = api_key::sync_group;
            a.error = error_code::rebalance_in_progress;
            _answers.push_back(std::move(a));
            m.sync_token.reset();
        }
    }
    int32_t timeout = 0;
    for (const auto& m : g.members)
        timeout = std::max(timeout, m.rebalance_timeout_ms);
    g.state = group_state::preparing_rebalance;
    g.rebalance_deadline_ms = now_ms + timeout;
    ++_rebalances;
}

void group_coordinator::maybe_complete_join(group& g, int64_t now_ms) {
    if (g.state != group_state::preparing_rebalance) return;
    const bool all_joined =
        g.pending.empty() && std::all_of(g.members.begin(), g.members.end(),
                                         [](const member& m) { return m.join_token.has_value(); });
    if (all_joined || now_ms >= g.rebalance_deadline_ms) complete_join(g, now_ms);
}

void group_coordinator::complete_join(group& g, int64_t now_ms) {
    // Members that did not rejoin in time are out; so are ids handed out and never used.
    for (size_t i = g.members.size(); i-- > 0;)
        if (!g.members[i].join_token) g.members.erase(g.members.begin() + long(i));
    g.pending.clear();
    ++g.generation;
    if (g.members.empty()) {
        g.state = group_state::empty;
        g.protocol.clear();
        g.protocol_type.clear();
        g.leader.clear();
        return;
    }
    // Each member votes for its most preferred protocol among those every member offers.
    std::map<std::string, int> votes;
    for (const auto& m : g.members) {
        for (const auto& p : m.protocols) {
            const bool everyone =
                std::all_of(g.members.begin(), g.members.end(), [&](const member& o) {
                    return std::any_of(o.protocols.begin(), o.protocols.end(),
                                       [&](const auto& q) { return q.name == p.name; });
                });
            if (everyone) {
                ++votes[p.name];
                break;
            }
        }
    }
    g.protocol.clear();
    int best = 0;
    for (const auto& p : g.members.front().protocols) // ties: the first member's order
        if (votes[p.name] > best) best = votes[p.name], g.protocol = p.name;
    if (g.find(g.leader) == nullptr) g.leader = g.members.front().id;
    g.state = group_state::completing_rebalance;
    for (auto& m : g.members) {
        m.assignment.clear();
        m.last_heard_ms = now_ms;
        group_answer a;
        a.token = *m.join_token;
        a.api_key = api_key::join_group;
        a.join = join_answer(g, m);
        m.join_token.reset();
        _answers.push_back(std::move(a));
    }
}

join_group_response group_coordinator::join_answer(const group& g, const member& m) const {
    join_group_response r;
    r.generation_id = g.generation;
    r.protocol_name = g.protocol;
    r.leader = g.leader;
    r.member_id = m.id;
    if (m.id != g.leader) return r;
    for (const auto& o : g.members) {
        join_group_member jm;
        jm.member_id = o.id;
        jm.group_instance_id = o.instance_id;
        for (const auto& p : o.protocols)
            if (p.name == g.protocol) {
                jm.metadata = p.metadata;
                break;
            }
        r.members.push_back(std::move(jm));
    }
    return r;
}

bool group_coordinator::sync(const sync_group_request& r, uint64_t token, int64_t now_ms,
                             int16_t& error, std::string& assignment) {
    assignment.clear();
    error = error_code::none;
    group* g = find(r.group_id);
    member* m = g == nullptr ? nullptr : g->find(r.member_id);
    if (m == nullptr) {
        error = error_code::unknown_member_id;
        return true;
    }
    if (r.generation_id != g->generation) {
        error = error_code::illegal_generation;
        return true;
    }
    m->last_heard_ms = now_ms;
    switch (g->state) {
    case group_state::empty: error = error_code::unknown_member_id; return true;
    case group_state::preparing_rebalance: error = error_code::rebalance_in_progress; return true;
    case group_state::stable: assignment = m->assignment; return true;
    case group_state::completing_rebalance: break;
    }
    m->sync_token = token;
    if (m->id != g->leader) return false;
    // The leader's assignments: every member gets its own (none named: an empty one).
    for (const auto& a : r.assignments)
        if (member* t = g->find(a.member_id)) t->assignment = a.assignment;
    g->state = group_state::stable;
    for (auto& o : g->members) {
        if (!o.sync_token) continue;
        group_answer a;
        a.token = *o.sync_token;
        a.api_key = api_key::sync_group;
        a.assignment = o.assignment;
        o.sync_token.reset();
        _answers.push_back(std::move(a));
    }
    return false;
}

int16_t group_coordinator::heartbeat(const heartbeat_request& r, int64_t now_ms) {
    group* g = find(r.group_id);
    member* m = g == nullptr ? nullptr : g->find(r.member_id);
    if (m == nullptr) return error_code::unknown_member_id;
    if (r.generation_id != g->generation) return error_code::illegal_generation;
    m->last_heard_ms = now_ms;
    return g->state == group_state::preparing_rebalance ? error_code::rebalance_in_progress
                                                        : error_code::none;
}

int16_t group_coordinator::leave(std::string_view group_id,
                                 std::vector<leave_group_member>& members, int64_t now_ms) {
    group* g = find(group_id);
    int16_t top = error_code::none;
    for (auto& lm : members) {
        lm.error = error_code::none;
        if (g != nullptr && g->pending.erase(lm.member_id) != 0) continue;
        const size_t i = g == nullptr ? 0 : g->index_of(lm.member_id);
        if (g == nullptr || i == g->members.size()) {
            lm.error = error_code::unknown_member_id;
            continue;
        }
        remove_member(*g, i, now_ms);
    }
    if (members.size() == 1) top = members.front().error; // v0-v2: the one member's
    if (g != nullptr) maybe_complete_join(*g, now_ms);
    return top;
}

// A member leaves or expires: its held answers are released with UNKNOWN_MEMBER_ID, and the
// rest of the group rebalances.
void group_coordinator::remove_member(group& g, size_t index, int64_t now_ms) {
    member& m = g.members[index];
    if (m.join_token) {
        group_answer a;
        a.token = *m.join_token;
        a.api_key = api_key::join_group;
        a.join.error = error_code::unknown_member_id;
        a.join.member_id = m.id;
        _answers.push_back(std::move(a));
    }
    if (m.sync_token) {
        group_answer a;
        a.token = *m.sync_token;
        a.api_key = api_key::sync_group;
        a.error = error_code::unknown_member_id;
        _answers.push_back(std::move(a));
    }
    g.members.erase(g.members.begin() + long(index));
    if (g.state == group_state::stable || g.state == group_state::completing_rebalance)
        prepare_rebalance(g, now_ms);
}

int16_t group_coordinator::check_commit(std::string_view group_id, int32_t generation,
                                        std::string_view member_id, int64_t now_ms) {
    group* g = find(group_id);
    if (g == nullptr || g->members.empty()) {
        // Offsets of a group nobody manages (assign() users, admin tools): only without a
        // generation, as a broker allows.
        return generation < 0 ? error_code::none : error_code::illegal_generation;
    }
    if (g->state == group_state::completing_rebalance) return error_code::rebalance_in_progress;
    member* m = g->find(member_id);
    if (m == nullptr) return error_code::unknown_member_id;
    if (generation != g->generation) return error_code::illegal_generation;
    m->last_heard_ms = now_ms;
    return error_code::none;
}

void group_coordinator::tick(int64_t now_ms) {
    for (auto it = _groups.begin(); it != _groups.end();) {
        group& g = *it->second;
        for (auto p = g.pending.begin(); p != g.pending.end();)
            p = now_ms - p->second > g.pending_timeout_ms ? g.pending.erase(p) : std::next(p);
        for (size_t i = g.members.size(); i-- > 0;) {
            const member& m = g.members[i];
            // Held joins and syncs keep a member alive: the coordinator owes it an answer.
            if (m.join_token || m.sync_token) continue;
            if (now_ms - m.last_heard_ms > m.session_timeout_ms) {
                ++_expired;
                remove_member(g, i, now_ms);
            }
        }
        maybe_complete_join(g, now_ms);
        // An empty group with nothing held is forgotten (its committed offsets are not).
        if (g.members.empty() && g.pending.empty() && g.state == group_state::empty)
            it = _groups.erase(it);
        else
            ++it;
    }
}

int64_t group_coordinator::next_deadline_ms() const {
    int64_t next = INT64_MAX;
    for (const auto& [id, g] : _groups) {
        if (g->state == group_state::preparing_rebalance)
            next = std::min(next, g->rebalance_deadline_ms);
        for (const auto& [pid, at] : g->pending)
            next = std::min(next, at + g->pending_timeout_ms + 1);
        for (const auto& m : g->members)
            if (!m.join_token && !m.sync_token)
                next = std::min(next, m.last_heard_ms + m.session_timeout_ms + 1);
    }
    return next;
}

std::vector<group_answer> group_coordinator::take_answers() {
    std::vector<group_answer> out;
    out.swap(_answers);
    return out;
}

std::vector<group_info> group_coordinator::describe(int64_t now_ms) const {
    std::vector<group_info> out;
    for (const auto& [id, g] : _groups) {
        group_info gi;
        gi.group_id = g->id;
        gi.state = g->state;
        gi.generation = g->generation;
        gi.protocol_type = g->protocol_type;
        gi.protocol = g->protocol;
        gi.leader = g->leader;
        for (const auto& m : g->members)
            gi.members.push_back({m.id, m.client_id, m.instance_id, m.session_timeout_ms,
                                  now_ms - m.last_heard_ms, m.assignment});
        out.push_back(std::move(gi));
    }
    return out;
}

} // namespace sluice::dataplane::kafka
