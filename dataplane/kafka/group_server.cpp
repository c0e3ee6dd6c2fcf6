#include "dataplane/kafka/group_server.h"

#include <algorithm>
#include <climits>
#include <map>
#include <set>

#include "base/clock.h"
#include "base/log.h"
#include "dataplane/kafka/byte_order.h"

namespace sluice::dataplane::kafka {
namespace {

void bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
}

int64_t monotonic_ms() {
    return monotonic_ns() / 1000000;
}

} // namespace

std::optional<std::vector<std::pair<std::string, int32_t>>>
decode_consumer_assignment(std::string_view bytes) {
    std::vector<std::pair<std::string, int32_t>> out;
    if (bytes.empty()) return out; // no partitions for this member
    byte_reader r(bytes_view(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    (void)r.i16(); // version
    const int32_t topics = r.array_count();
    if (topics < 0) return std::nullopt;
    for (int32_t t = 0; r.ok() && t < topics; ++t) {
        const std::string topic(r.string());
        const int32_t parts = r.array_count();
        if (parts < 0) return std::nullopt;
        for (int32_t p = 0; r.ok() && p < parts; ++p)
            out.emplace_back(topic, r.i32());
    }
    if (!r.ok()) return std::nullopt;
    return out; // user data after it is the assignor's own
}

result<std::unique_ptr<group_server>> group_server::open(group_server_config config) {
    auto store = offset_store::open(config.data_dir);
    if (!store) return std::move(store).err();
    if (!config.now_ms) config.now_ms = monotonic_ms;
    std::unique_ptr<group_server> s(new group_server(std::move(config), std::move(store.value())));
    s->_jobs.start([p = s.get()] { return p->thread_step(); });
    return s;
}

group_server::group_server(group_server_config config, offset_store store)
    : _config(std::move(config)), _store(std::move(store)) {}

group_server::~group_server() {
    stop();
}

void group_server::stop() {
    _jobs.stop();
}

int64_t group_server::thread_step() {
    uint32_t i = 0;
    while (_jobs.take(i)) {
        handover_job& j = _jobs.job(i);
        if (serve(j.request, i, j.answer)) _jobs.finish(i);
    }
    release([this](uint64_t token) { return bytes_view(_jobs.job(uint32_t(token)).request); },
            [this](uint64_t token, std::vector<uint8_t>& answer) {
                _jobs.job(uint32_t(token)).answer.swap(answer);
                _jobs.finish(uint32_t(token));
            });
    if (_dirty && now() - _published_ms >= group_publish_ms) publish();
    int64_t wait_ms = group_tick_ms;
    std::lock_guard lock(_mutex);
    const int64_t next = _coordinator.next_deadline_ms();
    if (next != INT64_MAX) wait_ms = std::clamp<int64_t>(next - now(), 1, group_tick_ms);
    if (_dirty) wait_ms = std::min<int64_t>(wait_ms, group_publish_ms);
    return wait_ms;
}

void group_server::publish_counters() noexcept {
    _counters.rebalances.store(_coordinator.rebalances(), std::memory_order_relaxed);
    _counters.expired_members.store(_coordinator.expired_members(), std::memory_order_relaxed);
}

bool group_server::serve(bytes_view frame, uint64_t token, std::vector<uint8_t>& answer) {
    answer.clear();
    request_header h;
    if (parse_request_header(frame, h) != parse_error::none) return true;
    const std::string_view client_id = h.client_id.value_or("");
    std::lock_guard lock(_mutex);
    const int64_t now_ms = now();
    _dirty = true; // heartbeats too: since_heard_ms
    response_writer w(answer);
    switch (h.api_key) {
    case api_key::join_group: {
        join_group_request r;
        if (parse_join_group_request(h, r) != parse_error::none) return true;
        bump(_counters.join_groups);
        join_group_response out;
        if (!_coordinator.join(r, client_id, h.api_version, token, now_ms, out)) return false;
        write_join_group_response(w, h, out);
        return true;
    }
    case api_key::sync_group: {
        sync_group_request r;
        if (parse_sync_group_request(h, r) != parse_error::none) return true;
        bump(_counters.sync_groups);
        int16_t error = 0;
        std::string assignment;
        if (!_coordinator.sync(r, token, now_ms, error, assignment)) return false;
        write_sync_group_response(w, h, error, assignment);
        return true;
    }
    case api_key::heartbeat: {
        heartbeat_request r;
        if (parse_heartbeat_request(h, r) != parse_error::none) return true;
        bump(_counters.heartbeats);
        write_error_only_response(w, h, _coordinator.heartbeat(r, now_ms));
        return true;
    }
    case api_key::leave_group: {
        leave_group_request r;
        if (parse_leave_group_request(h, r) != parse_error::none) return true;
        bump(_counters.leave_groups);
        const int16_t error = _coordinator.leave(r.group_id, r.members, now_ms);
        write_leave_group_response(w, h, error, r.members);
        return true;
    }
    case api_key::offset_commit: serve_offset_commit(h, answer); return true;
    case api_key::offset_fetch: serve_offset_fetch(h, answer); return true;
    default: return true; // the RX sends only the keys above
    }
}

// Offsets are checked against the group (generation, member), then appended to the log and
// made durable before the answer is written.
void group_server::serve_offset_commit(const request_header& h, std::vector<uint8_t>& answer) {
    offset_commit_request r;
    if (parse_offset_commit_request(h, r) != parse_error::none) return;
    bump(_counters.offset_commits);
    const int64_t now_ms = now();
    int16_t error = r.group_id.empty() ? error_code::invalid_group_id
                                       : _coordinator.check_commit(r.group_id, r.generation_id,
                                                                   r.member_id, now_ms);
    std::vector<offset_commit_entry> entries;
    const int64_t wall_ms = wall_clock_ms();
    for (auto& t : r.topics)
        for (auto& p : t.partitions) {
            p.error = error;
            if (error != error_code::none) continue;
            if (p.metadata && p.metadata->size() > offset_metadata_bytes_max)
                p.error = error_code::offset_metadata_too_large;
            else if (p.partition < 0 || t.name.empty())
                p.error = error_code::unknown_topic_or_partition;
            else if (_store.all().size() + entries.size() >= _config.committed_offsets_max &&
                     _store.find({r.group_id, t.name, p.partition}) == nullptr) {
                p.error = error_code::unknown_topic_or_partition;
                bump(_counters.offsets_refused);
            } else
                entries.push_back({{r.group_id, t.name, p.partition},
                                   {p.offset, p.leader_epoch, wall_ms, p.metadata}});
        }
    if (auto stored = _store.commit(entries); !stored) {
        bump(_counters.commit_errors);
        SLUICE_LOG_WARN("kafka offset commit: %s", stored.err().message.c_str());
        for (auto& t : r.topics)
            for (auto& p : t.partitions)
                if (p.error == error_code::none) p.error = error_code::kafka_storage_error;
    } else {
        bump(_counters.offsets_committed, entries.size());
    }
    response_writer w(answer);
    write_offset_commit_response(w, h, r.topics);
}

void group_server::serve_offset_fetch(const request_header& h, std::vector<uint8_t>& answer) {
    offset_fetch_request r;
    if (parse_offset_fetch_request(h, r) != parse_error::none) return;
    bump(_counters.offset_fetches);
    std::vector<offset_fetch_result_topic> topics;
    auto fill = [&](offset_fetch_partition& p, const committed_offset* c) {
        if (c == nullptr) return; // -1, metadata "": nothing committed
        p.offset = c->offset;
        p.leader_epoch = c->leader_epoch;
        p.metadata = c->metadata;
    };
    if (r.topics) {
        for (const auto& t : *r.topics) {
            auto& rt = topics.emplace_back();
            rt.name = t.name;
            for (int32_t part : t.partitions) {
                auto& p = rt.partitions.emplace_back();
                p.partition = part;
                fill(p, _store.find({r.group_id, t.name, part}));
            }
        }
    } else {
        // v2+ null topics: every offset the group committed.
        for (auto it = _store.all().lower_bound({r.group_id, "", INT32_MIN});
             it != _store.all().end() && it->first.group == r.group_id; ++it) {
            if (topics.empty() || topics.back().name != it->first.topic)
                topics.emplace_back().name = it->first.topic;
            auto& p = topics.back().partitions.emplace_back();
            p.partition = it->first.partition;
            fill(p, &it->second);
        }
    }
    response_writer w(answer);
    write_offset_fetch_response(w, h, topics);
}

void group_server::write_released(const group_answer& a, bytes_view frame,
                                  std::vector<uint8_t>& answer) {
    request_header h;
    if (parse_request_header(frame, h) != parse_error::none) return; // parsed when held
    response_writer w(answer);
    if (a.api_key == api_key::join_group)
        write_join_group_response(w, h, a.join);
    else
        write_sync_group_response(w, h, a.error, a.assignment);
}

void group_server::publish() {
    auto p = std::make_shared<published>();
    {
        std::lock_guard lock(_mutex);
        p->at_ms = now();
        p->groups = _coordinator.describe(p->at_ms);
        p->offsets = _store.all();
        p->restored = _store.restored();
        p->torn_bytes = _store.torn_bytes();
        _dirty = false;
        _published_ms = p->at_ms;
    }
    std::lock_guard lock(_published_mutex);
    _published = std::move(p);
}

group_snapshot group_server::snapshot() const {
    group_snapshot s;
    std::shared_ptr<const published> p;
    {
        std::lock_guard lock(_published_mutex);
        p = _published;
    }
    if (!p) return s;
    const int64_t age_ms = std::max<int64_t>(0, now() - p->at_ms);
    std::map<std::string, group_view> views;
    for (const auto& gi : p->groups) {
        group_view& v = views[gi.group_id];
        v.info = gi;
        for (auto& m : v.info.members)
            m.since_heard_ms += age_ms;
    }
    auto watermark = [&](const std::string& topic, int32_t part) -> int64_t {
        if (topic != _config.topic || part < 0 || uint32_t(part) >= _config.partitions ||
            !_config.high_watermark)
            return -1;
        return int64_t(_config.high_watermark(uint32_t(part)));
    };
    // (group, topic, partition) -> row: committed ones, then the assigned ones.
    std::map<offset_key, group_partition_view> rows;
    for (const auto& [k, c] : p->offsets) {
        group_view& v = views[k.group];
        v.info.group_id = k.group;
        auto& row = rows[k];
        row.topic = k.topic;
        row.partition = k.partition;
        row.committed = c.offset;
    }
    for (auto& [id, v] : views)
        for (const auto& m : v.info.members) {
            if (v.info.protocol_type != "consumer") continue;
            const auto assigned = decode_consumer_assignment(m.assignment);
            if (!assigned) continue;
            for (const auto& [topic, part] : *assigned) {
                auto& row = rows[offset_key{id, topic, part}];
                row.topic = topic;
                row.partition = part;
                row.member = m.member_id;
            }
        }
    for (auto& [k, row] : rows) {
        row.high_watermark = watermark(k.topic, k.partition);
        if (row.high_watermark >= 0 && row.committed >= 0)
            row.lag = std::max<int64_t>(0, row.high_watermark - row.committed);
        views[k.group].partitions.push_back(std::move(row));
    }
    for (auto& [id, v] : views)
        s.groups.push_back(std::move(v));
    s.offsets_restored = p->restored;
    s.offset_log_torn_bytes = p->torn_bytes;
    return s;
}

} // namespace sluice::dataplane::kafka
