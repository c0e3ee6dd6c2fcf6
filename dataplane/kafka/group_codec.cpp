#include "dataplane/kafka/group_codec.h"

namespace sluice::dataplane::kafka {
namespace {

parse_error finish(const byte_reader& r) {
    if (!r.ok()) return r.error();
    if (r.remaining() != 0) return parse_error::trailing_bytes;
    return parse_error::none;
}

bool version_ok(const request_header& h, int16_t key, int16_t max) {
    return h.api_key == key && h.api_version >= 0 && h.api_version <= max && !h.flexible;
}

std::optional<std::string> owned(std::optional<std::string_view> s) {
    if (!s) return std::nullopt;
    return std::string(*s);
}

std::string bytes_string(const std::optional<bytes_view>& b) {
    if (!b) return {};
    return std::string(reinterpret_cast<const char*>(b->data()), b->size());
}

bytes_view as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The member a SyncGroup, Heartbeat or OffsetCommit request speaks for, read from where
// each begins: group id, then generation and member id (OffsetCommit: from v1), then the
// static member's instance id (from `instance_from`).
template <typename Req>
void read_member(byte_reader& r, int16_t v, int16_t instance_from, Req& out, int16_t member_from = 0) {
    out.group_id = r.string();
    if (v >= member_from) {
        out.generation_id = r.i32();
        out.member_id = r.string();
    }
    if (v >= instance_from) out.group_instance_id = owned(r.nullable_string());
}

} // namespace

// ---- JoinGroup ----

parse_error parse_join_group_request(const request_header& h, join_group_request& out) {
    if (!version_ok(h, api_key::join_group, join_group_version_max))
        return parse_error::unsupported_version;
    const int16_t v = h.api_version;
    byte_reader r(h.body);
    out = join_group_request{};
    out.group_id = r.string();
    out.session_timeout_ms = r.i32();
    out.rebalance_timeout_ms = v >= 1 ? r.i32() : out.session_timeout_ms;
    out.member_id = r.string();
    if (v >= 5) out.group_instance_id = owned(r.nullable_string());
    out.protocol_type = r.string();
    const int32_t n = r.array_count();
    if (n < 0) r.fail(parse_error::bad_length);
    for (int32_t i = 0; r.ok() && i < n; ++i) {
        group_protocol& p = out.protocols.emplace_back();
        p.name = r.string();
        p.metadata = bytes_string(r.nullable_bytes());
    }
    return finish(r);
}

void write_join_group_response(response_writer& w, const request_header& h,
                               const join_group_response& r) {
    const int16_t v = h.api_version;
    w.begin_frame(h.correlation_id, false);
    if (v >= 2) w.i32(0); // throttle
    w.i16(r.error);
    w.i32(r.generation_id);
    w.string(r.protocol_name);
    w.string(r.leader);
    w.string(r.member_id);
    w.array_count(int32_t(r.members.size()));
    for (const auto& m : r.members) {
        w.string(m.member_id);
        if (v >= 5) w.nullable_string(m.group_instance_id);
        w.bytes(as_bytes(m.metadata));
    }
    w.end_frame();
}

// ---- SyncGroup ----

parse_error parse_sync_group_request(const request_header& h, sync_group_request& out) {
    if (!version_ok(h, api_key::sync_group, sync_group_version_max))
        return parse_error::unsupported_version;
    byte_reader r(h.body);
    out = sync_group_request{};
    read_member(r, h.api_version, 3, out);
    const int32_t n = r.array_count();
    if (n < 0) r.fail(parse_error::bad_length);
    for (int32_t i = 0; r.ok() && i < n; ++i) {
        sync_group_assignment& a = out.assignments.emplace_back();
        a.member_id = r.string();
        a.assignment = bytes_string(r.nullable_bytes());
    }
    return finish(r);
}

void write_sync_group_response(response_writer& w, const request_header& h, int16_t error,
                               std::string_view assignment) {
    w.begin_frame(h.correlation_id, false);
    if (h.api_version >= 1) w.i32(0); // throttle
    w.i16(error);
    w.bytes(as_bytes(assignment));
    w.end_frame();
}

// ---- Heartbeat ----

parse_error parse_heartbeat_request(const request_header& h, heartbeat_request& out) {
    if (!version_ok(h, api_key::heartbeat, heartbeat_version_max))
        return parse_error::unsupported_version;
    byte_reader r(h.body);
    out = heartbeat_request{};
    read_member(r, h.api_version, 3, out);
    return finish(r);
}

void write_error_only_response(response_writer& w, const request_header& h, int16_t error) {
    w.begin_frame(h.correlation_id, false);
    if (h.api_version >= 1) w.i32(0); // throttle
    w.i16(error);
    w.end_frame();
}

// ---- LeaveGroup ----

parse_error parse_leave_group_request(const request_header& h, leave_group_request& out) {
    if (!version_ok(h, api_key::leave_group, leave_group_version_max))
        return parse_error::unsupported_version;
    byte_reader r(h.body);
    out = leave_group_request{};
    out.group_id = r.string();
    if (h.api_version < 3) {
        out.members.push_back({std::string(r.string()), std::nullopt});
        return finish(r);
    }
    const int32_t n = r.array_count();
    if (n < 0) r.fail(parse_error::bad_length);
    for (int32_t i = 0; r.ok() && i < n; ++i) {
        leave_group_member& m = out.members.emplace_back();
        m.member_id = r.string();
        m.group_instance_id = owned(r.nullable_string());
    }
    return finish(r);
}

void write_leave_group_response(response_writer& w, const request_header& h, int16_t error,
                                const std::vector<leave_group_member>& members) {
    if (h.api_version < 3) {
        write_error_only_response(w, h, error);
        return;
    }
    w.begin_frame(h.correlation_id, false);
    w.i32(0); // throttle
    w.i16(error);
    w.array_count(int32_t(members.size()));
    for (const auto& m : members) {
        w.string(m.member_id);
        w.nullable_string(m.group_instance_id);
        w.i16(m.error);
    }
    w.end_frame();
}

// ---- OffsetCommit ----

parse_error parse_offset_commit_request(const request_header& h, offset_commit_request& out) {
    if (!version_ok(h, api_key::offset_commit, offset_commit_version_max))
        return parse_error::unsupported_version;
    const int16_t v = h.api_version;
    byte_reader r(h.body);
    out = offset_commit_request{};
    read_member(r, v, 7, out, 1);
    if (v >= 2 && v <= 4) (void)r.i64(); // retention_time_ms: offsets are kept until replaced
    const int32_t topics = r.array_count();
    if (topics < 0) r.fail(parse_error::bad_length);
    for (int32_t t = 0; r.ok() && t < topics; ++t) {
        offset_commit_topic& topic = out.topics.emplace_back();
        topic.name = r.string();
        const int32_t parts = r.array_count();
        if (parts < 0) r.fail(parse_error::bad_length);
        for (int32_t p = 0; r.ok() && p < parts; ++p) {
            offset_commit_partition& cp = topic.partitions.emplace_back();
            cp.partition = r.i32();
            cp.offset = r.i64();
            if (v >= 6) cp.leader_epoch = r.i32();
            if (v == 1) (void)r.i64(); // commit_timestamp: the coordinator's clock is used
            cp.metadata = owned(r.nullable_string());
        }
    }
    return finish(r);
}

void write_offset_commit_response(response_writer& w, const request_header& h,
                                  const std::vector<offset_commit_topic>& topics) {
    w.begin_frame(h.correlation_id, false);
    if (h.api_version >= 3) w.i32(0); // throttle
    w.array_count(int32_t(topics.size()));
    for (const auto& t : topics) {
        w.string(t.name);
        w.array_count(int32_t(t.partitions.size()));
        for (const auto& p : t.partitions) {
            w.i32(p.partition);
            w.i16(p.error);
        }
    }
    w.end_frame();
}

// ---- OffsetFetch ----

parse_error parse_offset_fetch_request(const request_header& h, offset_fetch_request& out) {
    if (!version_ok(h, api_key::offset_fetch, offset_fetch_version_max))
        return parse_error::unsupported_version;
    byte_reader r(h.body);
    out = offset_fetch_request{};
    out.group_id = r.string();
    const int32_t topics = r.array_count();
    // Null (every committed offset of the group) exists from v2 on.
    if (topics < -1 || (topics == -1 && h.api_version < 2)) r.fail(parse_error::bad_length);
    if (topics >= 0) out.topics.emplace();
    for (int32_t t = 0; r.ok() && t < topics; ++t) {
        offset_fetch_topic& topic = out.topics->emplace_back();
        topic.name = r.string();
        const int32_t parts = r.array_count();
        if (parts < 0) r.fail(parse_error::bad_length);
        for (int32_t p = 0; r.ok() && p < parts; ++p)
            topic.partitions.push_back(r.i32());
    }
    return finish(r);
}

void write_offset_fetch_response(response_writer& w, const request_header& h,
                                 const std::vector<offset_fetch_result_topic>& topics,
                                 int16_t error) {
    const int16_t v = h.api_version;
    w.begin_frame(h.correlation_id, false);
    if (v >= 3) w.i32(0); // throttle
    w.array_count(int32_t(topics.size()));
    for (const auto& t : topics) {
        w.string(t.name);
        w.array_count(int32_t(t.partitions.size()));
        for (const auto& p : t.partitions) {
            w.i32(p.partition);
            w.i64(p.offset);
            if (v >= 5) w.i32(p.leader_epoch);
            w.nullable_string(p.metadata);
            w.i16(p.error);
        }
    }
    if (v >= 2) w.i16(error);
    w.end_frame();
}

} // namespace sluice::dataplane::kafka
