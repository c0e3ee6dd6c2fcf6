#include "dataplane/kafka/kafka_rx.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "base/assert.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/counter.h"
#include "base/log.h"
#include "base/tsc.h"
#include "dataplane/rx_lcore.h"
#include "processing/worker.h"

namespace sluice::dataplane::kafka {

namespace {


constexpr uint32_t topic_name_max = 249; // Kafka's own limit

bool valid_topic_name(std::string_view n) noexcept {
    if (n.empty() || n.size() > topic_name_max || n == "." || n == "..") return false;
    for (char ch : n)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-'))
            return false;
    return true;
}

} // namespace

struct kafka_rx::topic {
    char name[topic_name_max];
    uint32_t name_len = 0;
    int32_t partitions = 0;
    uint64_t hash = 0; // topic_hash(name): the idempotent producers' state key
    std::unique_ptr<int64_t[]> next_offset; // per partition: records appended so far
    std::atomic<uint64_t> records{0};
    std::string_view view() const noexcept { return {name, name_len}; }
    // The one check of a Produce partition against the topic (null: no such topic).
    static bool has(const topic* t, int32_t index) noexcept {
        return t != nullptr && index >= 0 && index < t->partitions;
    }
};

// A Produce waiting for durability: an acks=-1 answer (slot >= 0), or an acks 0/1 request
// whose idempotent batches the sequence journal may record only once they are durable
// (slot -1: nothing to send).
struct kafka_rx::parked {
    conn_ref conn;
    int32_t slot = -1;
    uint64_t arrival_tsc = 0;
    uint64_t journal_end = 0; // the sequence journal's records staged up to this request
    int16_t version = 0;      // the Produce version its answer was written for
    bool failed = false;      // answered KAFKA_STORAGE_ERROR: the store failed (fail_parked)
};

kafka_rx::kafka_rx(const kafka_rx_config& config, kafka_listener& listener, rx_lcore& rx,
                   std::vector<worker_durability> durable, const std::atomic<bool>* stop)
    : _config(config), _listener(listener), _rx(rx), _durable(std::move(durable)), _stop(stop),
      _topics(new topic[limits::kafka_topics_max]), _parked(new parked[limits::kafka_parked_acks_max]),
      _marks(new uint64_t[size_t{limits::kafka_parked_acks_max} * rx.workers()]),
      _scratch(decompressed_bytes_max_default) {
    SLUICE_ASSERT(_durable.size() == rx.workers());
    _meta.reserve(limits::kafka_topics_max);
    _discard.reserve(4096);
    if (_config.default_partitions <= 0) _config.default_partitions = 1;
    if (_config.topics.empty()) _config.topics.push_back({"events-topic", 0});
    for (const auto& t : _config.topics)
        (void)create_topic(t.name, t.partitions > 0 ? t.partitions : _config.default_partitions);
    // Not persisted until the daemon sets the data dir's (set_producer_ids).
    _producer_ids = producer_ids::open("").value();
}

kafka_rx::~kafka_rx() = default;

std::vector<kafka_topic_stats> kafka_rx::topics() const {
    std::vector<kafka_topic_stats> out;
    const uint32_t n = _topic_count.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i)
        out.push_back({std::string(_topics[i].view()), _topics[i].partitions,
                       _topics[i].records.load(std::memory_order_relaxed)});
    return out;
}

kafka_rx::topic* kafka_rx::find_topic(std::string_view name) noexcept {
    const uint32_t n = _topic_count.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < n; ++i)
        if (_topics[i].view() == name) return &_topics[i];
    return nullptr;
}

// Start-up and auto-creation (a Metadata or Produce naming a new topic): allocates the
// topic's offset counters once.
kafka_rx::topic* kafka_rx::create_topic(std::string_view name, int32_t partitions) noexcept {
    const uint32_t n = _topic_count.load(std::memory_order_relaxed);
    if (n == limits::kafka_topics_max || !valid_topic_name(name)) return nullptr;
    partitions = std::clamp<int32_t>(partitions, 1, int32_t(limits::kafka_partitions_max));
    topic& t = _topics[n];
    std::memcpy(t.name, name.data(), name.size());
    t.name_len = uint32_t(name.size());
    t.partitions = partitions;
    t.hash = topic_hash(name);
    t.next_offset.reset(new (std::nothrow) int64_t[size_t(partitions)]());
    if (!t.next_offset) return nullptr;
    _topic_count.store(n + 1, std::memory_order_release);
    return &t;
}

void kafka_rx::record_ack_latency(int mode, uint64_t arrival_tsc, uint64_t now) noexcept {
    if (arrival_tsc != 0) [[likely]]
        _ack_latency[mode].record(tsc_elapsed(arrival_tsc, now));
}

void kafka_rx::count_request(int16_t key, int16_t version) noexcept {
    bump(_counters.requests[key]);
    const int v = std::clamp<int>(version, 0, kafka_api_versions_counted - 1);
    bump(_counters.requests_by_version[key][version < 0 ? kafka_api_versions_counted - 1 : v]);
}

void kafka_rx::count_error(int16_t code) noexcept {
    if (code == error_code::none) return;
    bump(_counters.errors[code > 0 && code < kafka_error_codes ? code : 0]);
}

void kafka_rx::run() noexcept {
    idle_backoff backoff;
    auto take = [this](const kafka_frame& f) { return on_frame(f); };
    while (!_stop->load(std::memory_order_relaxed)) {
        uint32_t work = _listener.poll();
        work += _listener.take_frames(take, frames_per_poll);
        work += complete_parked();
        work += complete_fetches();
        work += complete_groups();
        _rx.flush_all();
        if (work == 0) {
            if (_config.idle_wait && backoff.spun_out() && may_block())
                _listener.wait(limits::idle_wait_us);
            else
                backoff.wait();
            continue;
        }
        backoff.reset();
    }
    _rx.drain();
    // Parked acks=-1 answers are not sent: the client retries, and dedup catches what
    // had been stored.
    _listener.close_all();
    for (int i = 0; i < 100 && _listener.poll() != 0; ++i) {
    }
    // The reader asks the workers for their watermarks: it stops before they do.
    if (_fetch) _fetch->stop();
    if (_groups) _groups->stop();
}

// Whether every source of work left can end a listener.wait(): received bytes and accepts
// post completions, and workers write the wake eventfd when they publish durable slots
// (what parked answers wait for first), and the sequence journal's ring writes it as its
// writes complete (what idempotent batches wait for next). A frame held back (full rings,
// no free job), or a job in the fetch or group thread has no such wake: the loop keeps the
// back-off's short sleeps for them.
bool kafka_rx::may_block() const noexcept {
    return (_journal_wakes || _parked_data_durable == 0) && !_listener.has_ready() &&
           (!_fetch || _fetch->in_flight() == 0) && (!_groups || _groups->in_flight() == 0);
}

bool kafka_rx::on_frame(const kafka_frame& f) noexcept {
    request_header h;
    const parse_error e = parse_request_header(bytes_view(f.data, f.len), h);
    const int16_t key = h.api_key;
    if (key >= 0 && key < kafka_api_keys) {
        // A Produce is counted once taken (it may be offered again after back-pressure).
        if (key != api_key::produce) count_request(key, h.api_version);
    } else {
        bump(_counters.requests_other);
    }
    // ApiVersions is answered whatever its version (above the max: UNSUPPORTED_VERSION in
    // the v0 layout); anything else must parse.
    if (key == api_key::api_versions) {
        api_versions(f, h, e);
        return true;
    }
    if (e != parse_error::none) {
        bump(_counters.bad_requests);
        _listener.close(f.conn, close_reason::protocol);
        return true;
    }
    switch (key) {
    case api_key::metadata: metadata(f, h); return true;
    case api_key::init_producer_id: init_producer_id(f, h); return true;
    case api_key::find_coordinator: find_coordinator(f, h); return true;
    case api_key::produce: return produce(f, h);
    case api_key::fetch:
    case api_key::list_offsets:
    case api_key::offset_for_leader_epoch:
    case api_key::describe_configs:
        if (_fetch) return hand_off(*_fetch, f, h);
        break;
    case api_key::join_group:
    case api_key::sync_group:
    case api_key::heartbeat:
    case api_key::leave_group:
    case api_key::offset_commit:
    case api_key::offset_fetch:
        if (_groups) return hand_off(*_groups, f, h);
        break;
    default: break;
    }
    // What a broker does with an API it does not know.
    bump(_counters.unknown_api);
    _listener.close(f.conn, close_reason::protocol);
    return true;
}

// A request another thread answers: Fetch, ListOffsets, OffsetForLeaderEpoch and
// DescribeConfigs go to the fetch reader, the group APIs to the group thread (where a
// JoinGroup or SyncGroup may wait until its group is ready, group_server.h). The server
// gets a copy of the frame in one of its jobs; the answer comes back through
// complete_fetches() / complete_groups(), in the connection's response order.
template <class Server>
bool kafka_rx::hand_off(Server& server, const kafka_frame& f, const request_header& h) noexcept {
    if (!version_supported(default_api_versions, h.api_key, h.api_version)) {
        bump(_counters.bad_requests);
        _listener.close(f.conn, close_reason::protocol);
        return true;
    }
    if (!server.has_free_job()) {
        server.count_jobs_full();
        bump(_counters.backpressure);
        return false; // offered again once a job is back
    }
    const int32_t slot = _listener.reserve_response(f.conn);
    if (slot < 0) return true;
    server.submit(f.conn, slot, bytes_view(f.data, f.len));
    return true;
}

uint32_t kafka_rx::complete_fetches() noexcept {
    if (!_fetch) return 0;
    return _fetch->complete([this](conn_ref c, int32_t slot, std::vector<uint8_t>& answer) {
        deliver(c, slot, answer);
    });
}

uint32_t kafka_rx::complete_groups() noexcept {
    if (!_groups) return 0;
    return _groups->complete([this](conn_ref c, int32_t slot, std::vector<uint8_t>& answer) {
        deliver(c, slot, answer);
    });
}

void kafka_rx::deliver(conn_ref c, int32_t slot, std::vector<uint8_t>& answer) noexcept {
    if (answer.empty()) {
        // The body was malformed: what a broker does, close.
        bump(_counters.bad_requests);
        _listener.close(c, close_reason::protocol);
        return;
    }
    std::vector<uint8_t>* out = _listener.response_buffer(c, slot);
    if (out == nullptr) return; // the connection is gone
    out->swap(answer);
    _listener.response_ready(c, slot);
}

void kafka_rx::api_versions(const kafka_frame& f, const request_header& h,
                            parse_error header_error) noexcept {
    // Above the max only the first 8 header bytes count (the answer is UNSUPPORTED_VERSION);
    // a supported version must parse, or the connection is closed, as a broker does.
    api_versions_request req;
    if (version_supported(default_api_versions, api_key::api_versions, h.api_version) &&
        (header_error != parse_error::none ||
         parse_api_versions_request(h, req) != parse_error::none)) {
        bump(_counters.bad_requests);
        _listener.close(f.conn, close_reason::protocol);
        return;
    }
    const int32_t slot = _listener.reserve_response(f.conn);
    std::vector<uint8_t>* out = _listener.response_buffer(f.conn, slot);
    if (out == nullptr) return;
    response_writer w(*out);
    if (!version_supported(default_api_versions, api_key::api_versions, h.api_version)) {
        count_error(error_code::unsupported_version);
        write_api_versions_response(w, h, default_api_versions);
    } else if (req.valid(h.api_version)) {
        write_api_versions_response(w, h, default_api_versions);
    } else {
        // A broker's answer to a bad client software name or version: no key list.
        count_error(error_code::invalid_request);
        write_api_versions_response(w, h, {}, error_code::invalid_request);
    }
    _listener.response_ready(f.conn, slot);
}

void kafka_rx::metadata(const kafka_frame& f, const request_header& h) noexcept {
    metadata_request req;
    if (!version_supported(default_api_versions, api_key::metadata, h.api_version) ||
        parse_metadata_request(h, req) != parse_error::none) {
        bump(_counters.bad_requests);
        _listener.close(f.conn, close_reason::protocol);
        return;
    }
    _meta.clear();
    auto add = [&](const topic& t) {
        _meta.push_back(metadata_topic{t.view(), error_code::none, t.partitions, false});
    };
    // The tables consumers read (fetch_server.h): a query's topic or dead_letters, with
    // their own partition counts; events-topic is the producers' topic too (their count).
    _consume_topics = _fetch ? _fetch->topics() : nullptr;
    auto consume_entry = [&](std::string_view name) -> const consume_topic* {
        if (!_consume_topics || find_topic(name)) return nullptr;
        for (const auto& c : *_consume_topics)
            if (c.name == name) return &c;
        return nullptr;
    };
    auto add_consume = [&](const consume_topic& c) {
        _meta.push_back(metadata_topic{c.name, error_code::none, c.partitions, false});
    };
    if (req.all_topics()) {
        const uint32_t n = _topic_count.load(std::memory_order_relaxed);
        for (uint32_t i = 0; i < n; ++i) add(_topics[i]);
        if (_consume_topics)
            for (const auto& c : *_consume_topics)
                if (consume_entry(c.name) && _meta.size() < limits::kafka_topics_max) add_consume(c);
    } else {
        metadata_request_topic asked;
        while (req.next_topic(asked) && _meta.size() < limits::kafka_topics_max) {
            if (!asked.name) {
                // v12, by topic id alone: sluice's topics have no ids (Metadata says zero).
                count_error(error_code::unknown_topic_id);
                _meta.push_back(metadata_topic{std::nullopt, error_code::unknown_topic_id, 0,
                                               false, asked.topic_id});
                continue;
            }
            const std::string_view name = *asked.name;
            if (const auto* c = consume_entry(name)) {
                add_consume(*c);
                continue;
            }
            topic* t = find_topic(name);
            if (t == nullptr && _config.auto_create_topics)
                t = create_topic(name, _config.default_partitions);
            if (t != nullptr) {
                add(*t);
            } else {
                const int16_t code = valid_topic_name(name) ? error_code::unknown_topic_or_partition
                                                            : error_code::invalid_topic_exception;
                count_error(code);
                _meta.push_back(metadata_topic{name, code, 0, false});
            }
        }
    }
    const int32_t slot = _listener.reserve_response(f.conn);
    std::vector<uint8_t>* out = _listener.response_buffer(f.conn, slot);
    if (out == nullptr) return;
    response_writer w(*out);
    metadata_node node{0, _config.advertised_host, _config.advertised_port, std::nullopt};
    write_metadata_response(w, h, node, _meta);
    _listener.response_ready(f.conn, slot);
}

void kafka_rx::init_producer_id(const kafka_frame& f, const request_header& h) noexcept {
    init_producer_id_request req;
    if (!version_supported(default_api_versions, api_key::init_producer_id, h.api_version) ||
        parse_init_producer_id_request(h, req) != parse_error::none) {
        bump(_counters.bad_requests);
        _listener.close(f.conn, close_reason::protocol);
        return;
    }
    const int32_t slot = _listener.reserve_response(f.conn);
    std::vector<uint8_t>* out = _listener.response_buffer(f.conn, slot);
    if (out == nullptr) return;
    response_writer w(*out);
    if (req.transactional_id) {
        // Transactions are not supported: the broker's answer to an unauthorised id.
        count_error(error_code::transactional_id_authorization_failed);
        write_init_producer_id_response(w, h, error_code::transactional_id_authorization_failed,
                                        -1, -1);
    } else if (const int64_t id = _producer_ids.next(); id < 0) {
        // The next block of ids could not be reserved on disk: a retriable error.
        count_error(error_code::coordinator_not_available);
        write_init_producer_id_response(w, h, error_code::coordinator_not_available, -1, -1);
    } else {
        bump(_counters.producer_ids);
        write_init_producer_id_response(w, h, error_code::none, id, 0);
    }
    _listener.response_ready(f.conn, slot);
}

// sluiced is the coordinator of every group (node 0, this listener) when it has a group
// server. Transactions have none (key type 1). FindCoordinator is also what librdkafka
// (<= 2.11) derives lz4 support from, so it is advertised either way.
void kafka_rx::find_coordinator(const kafka_frame& f, const request_header& h) noexcept {
    find_coordinator_request req;
    if (parse_find_coordinator_request(h, req) != parse_error::none) {
        bump(_counters.bad_requests);
        _listener.close(f.conn, close_reason::protocol);
        return;
    }
    const int32_t slot = _listener.reserve_response(f.conn);
    std::vector<uint8_t>* out = _listener.response_buffer(f.conn, slot);
    if (out == nullptr) return;
    response_writer w(*out);
    const int16_t error = _groups && req.key_type == 0 ? error_code::none
                                                       : error_code::coordinator_not_available;
    count_error(error);
    write_find_coordinator_response(w, h, error, 0, _config.advertised_host,
                                    _config.advertised_port);
    _listener.response_ready(f.conn, slot);
}

void kafka_rx::count_batch(compression codec, int8_t magic) noexcept {
    bump(_counters.batches_by_compression[size_t(codec) < 5 ? size_t(codec) : 0]);
    bump(_counters.batches_by_magic[magic >= 0 && magic <= 2 ? magic : 2]);
}

// One partition's record set: every record value becomes one event. Every batch is
// checked (structure, CRC-32C) before any record of the partition is routed, and each
// batch's records are checked whole before its first record is routed: a bad batch is
// refused entirely. (A partition of several batches whose later batch fails to decompress
// keeps the earlier batches: a retry of them is caught by dedup, or by the sequence check.)
int16_t kafka_rx::append_partition(topic* t, const produce_partition& p, int16_t version,
                                   int64_t& base_offset) noexcept {
    const bool legacy_allowed = version < 3;
    if (!topic::has(t, p.index)) return error_code::unknown_topic_or_partition;
    if (!p.records) return error_code::none;
    // Produce v0-v2 carry legacy message sets; a broker takes a RecordBatch v2 there too
    // (ProduceRequest.validateRecords checks v3+ only). v3+ with magic 0/1: legacy_magic.
    // A set too short to hold a magic byte is a partial message to a legacy reader.
    if (legacy_allowed && (p.records->size() <= 16 || is_legacy_message_set(*p.records)))
        return append_legacy(t, p, base_offset);
    {
        record_batch_reader check(*p.records);
        record_batch b;
        while (check.next(b)) {
            // zstd arrived with Produce v7 (KIP-110): a broker refuses it in older requests,
            // whose clients could not read it back.
            if (b.codec() == compression::zstd && version < 7)
                return error_code::unsupported_compression_type;
        }
        if (check.error() != parse_error::none) return kafka_error_for(check.error());
    }
    record_batch_reader batches(*p.records);
    record_batch b;
    base_offset = t->next_offset[p.index];
    uint64_t n = 0;
    int16_t error = error_code::none;
    bool first = true;
    while (error == error_code::none && batches.next(b)) {
        if (b.control()) continue; // transaction markers carry no events
        // Idempotent producers only: kafkajs and plain producers send producer id -1. The
        // sequence is checked first: a duplicate or a gap is not even decompressed.
        const bool idempotent = b.producer_id >= 0 && b.base_sequence >= 0;
        const sequence_key key{b.producer_id, t->hash, p.index};
        const int64_t batch_offset = t->next_offset[p.index] + int64_t(n);
        if (idempotent) {
            const sequence_check c = check_sequence(key, b);
            if (c.verdict == sequence_verdict::fenced) error = error_code::invalid_producer_epoch;
            if (c.verdict == sequence_verdict::out_of_order)
                error = error_code::out_of_order_sequence_number;
            if (error != error_code::none) break;
            if (c.verdict == sequence_verdict::duplicate) {
                // A retry of a batch already handed on: a broker answers with the first
                // answer's offset, and nothing is stored again.
                if (first) base_offset = c.base_offset;
                first = false;
                continue;
            }
        }
        bytes_view recs;
        parse_error e = batch_records(b, _decompressor, _scratch, recs);
        if (e == parse_error::none) e = check_records(b, recs);
        if (e != parse_error::none) {
            error = kafka_error_for(e);
            break;
        }
        if (first) base_offset = batch_offset;
        first = false;
        count_batch(b.codec(), b.magic);
        n += route_records(b, recs);
        if (idempotent) sequence_accepted(key, b, batch_offset);
    }
    t->next_offset[p.index] += int64_t(n);
    bump(_counters.records, n);
    bump(t->records, n);
    return error;
}

// A legacy message set (magic 0/1, Produce v0-v2): every message value, or every value of a
// compressed wrapper's nested set, is one event, exactly like a v2 record's. The whole set
// is checked (structure, CRC-32) before any message is routed, and each wrapper's nested set
// whole before its first message is (as batches are above). No sequences: idempotence needs
// RecordBatch v2.
int16_t kafka_rx::append_legacy(topic* t, const produce_partition& p,
                                int64_t& base_offset) noexcept {
    if (const parse_error e = check_legacy_message_set(*p.records); e != parse_error::none)
        return kafka_error_for(e);
    legacy_message_reader outer(*p.records);
    legacy_message m;
    base_offset = t->next_offset[p.index];
    uint64_t n = 0;
    int16_t error = error_code::none;
    while (outer.next(m)) {
        if (m.codec() == compression::none) {
            count_batch(m.codec(), m.magic);
            route_value(m.value);
            ++n;
            continue;
        }
        bytes_view inner;
        parse_error e = legacy_wrapper_records(m, _decompressor, _scratch, inner);
        if (e == parse_error::none) e = check_legacy_message_set(inner, true);
        if (e != parse_error::none) {
            error = kafka_error_for(e);
            break;
        }
        count_batch(m.codec(), m.magic);
        legacy_message_reader nested(inner, true);
        legacy_message im;
        while (nested.next(im)) {
            route_value(im.value);
            ++n;
        }
    }
    t->next_offset[p.index] += int64_t(n);
    bump(_counters.records, n);
    bump(t->records, n);
    return error;
}

void kafka_rx::route_value(const std::optional<bytes_view>& value) noexcept {
    if (!value) {
        // A null value (tombstone) is no event: a parse_error dead letter.
        bump(_counters.null_values);
        _rx.handle_event(std::string_view("", 0));
        return;
    }
    bump(_counters.record_bytes, value->size());
    _rx.handle_event(
        std::string_view(reinterpret_cast<const char*>(value->data()), value->size()));
}

uint64_t kafka_rx::route_records(const record_batch& b, bytes_view recs) noexcept {
    record_reader rr(b, recs);
    record r;
    uint64_t n = 0;
    while (rr.next(r)) {
        ++n;
        route_value(r.value);
    }
    return n;
}

sequence_check kafka_rx::check_sequence(const sequence_key& k, const record_batch& b) noexcept {
    const int32_t last = last_sequence(b.base_sequence, b.last_offset_delta);
    const sequence_check c = _sequences.check(k, b.producer_epoch, b.base_sequence, last);
    switch (c.verdict) {
    case sequence_verdict::accept: break;
    case sequence_verdict::duplicate: bump(_counters.duplicate_sequences); break;
    case sequence_verdict::out_of_order: bump(_counters.out_of_order_sequences); break;
    case sequence_verdict::fenced: bump(_counters.fenced_epochs); break;
    }
    return c;
}

void kafka_rx::sequence_accepted(const sequence_key& k, const record_batch& b,
                                 int64_t base_offset) noexcept {
    const int32_t last = last_sequence(b.base_sequence, b.last_offset_delta);
    _sequences.accepted(k, b.producer_epoch, b.base_sequence, last, base_offset);
    _journal.stage(k, b.producer_epoch, b.base_sequence, last, base_offset);
    _counters.producer_states.store(_sequences.size(), std::memory_order_relaxed);
    _counters.producer_state_evictions.store(_sequences.evictions(), std::memory_order_relaxed);
}

bool kafka_rx::produce(const kafka_frame& f, const request_header& h) noexcept {
    produce_request_reader req;
    if (!version_supported(codec_api_versions, api_key::produce, h.api_version) ||
        req.open(h) != parse_error::none) {
        count_request(api_key::produce, h.api_version);
        bump(_counters.bad_requests);
        _listener.close(f.conn, close_reason::protocol);
        return true;
    }
    const int16_t acks = req.acks();
    // A failed store takes nothing more: every partition is answered 56 (kafka_rx.h).
    const bool refused = store_failed();
    // Back-pressure: the frame stays in its connection, which is not read meanwhile.
    // Any Produce may need a parked entry (acks=-1, or idempotent batches to journal).
    if (!refused && (!_rx.has_room(room_per_request) ||
                     _parked_count == limits::kafka_parked_acks_max || !_journal.has_room())) {
        bump(_counters.backpressure);
        return false;
    }
    count_request(api_key::produce, h.api_version);
    const bool acks_valid = acks == 0 || acks == 1 || acks == -1;
    if (acks_valid) bump(_counters.produce_by_acks[acks_index(acks)]);
    int32_t slot = -1;
    std::vector<uint8_t>* out = &_discard;
    if (acks != 0) {
        slot = _listener.reserve_response(f.conn);
        out = _listener.response_buffer(f.conn, slot);
        if (out == nullptr) return true;
    } else {
        _discard.clear();
    }
    _rx.begin_burst();
    const uint64_t staged_before = _journal.staged();
    response_writer w(*out);
    produce_response_writer pw(w, h, req.topic_count());
    produce_topic pt;
    while (req.next_topic(pt)) {
        pw.begin_topic(pt.name, pt.partition_count);
        topic* t = find_topic(pt.name);
        if (t == nullptr && _config.auto_create_topics)
            t = create_topic(pt.name, _config.default_partitions);
        produce_partition pp;
        while (req.next_partition(pp)) {
            produce_partition_result r;
            r.index = pp.index;
            if (!acks_valid)
                r.error = error_code::invalid_required_acks;
            else if (!refused)
                r.error = append_partition(t, pp, h.api_version, r.base_offset);
            else if (!topic::has(t, pp.index))
                r.error = error_code::unknown_topic_or_partition;
            else
                r.error = error_code::kafka_storage_error;
            if (r.error != error_code::none) r.base_offset = -1;
            count_error(r.error);
            pw.partition(r);
        }
    }
    pw.finish();
    // Every record of the request is in a ring after this.
    _rx.flush_pending();
    if (acks == 0 && !refused) record_ack_latency(0, f.arrival_tsc, tsc_now());
    if (acks != -1 && acks != 0) {
        _listener.response_ready(f.conn, slot);
        if (acks_valid && !refused) record_ack_latency(1, f.arrival_tsc, tsc_now());
    }
    if (refused) {
        if (acks == -1) _listener.response_ready(f.conn, slot); // nothing to wait for
        return true;
    }
    if (acks != -1) {
        if (_journal.staged() == staged_before) return true;
        slot = -1; // answered (or never): parked for the journal only
    }
    const uint32_t i = (_parked_head + _parked_count) % limits::kafka_parked_acks_max;
    _parked[i] = parked{f.conn, slot, f.arrival_tsc, _journal.staged(), h.api_version};
    uint64_t* mark = &_marks[size_t{i} * _durable.size()];
    for (uint32_t wkr = 0; wkr < _durable.size(); ++wkr) mark[wkr] = _rx.sent_to(wkr);
    ++_parked_count;
    _counters.acks_parked.store(_parked_count, std::memory_order_relaxed);
    return true;
}

// Parked entries complete in order, in two steps: once their records are durable in the
// store (a later entry's marks are never below an earlier one's), their batches may be
// written to the sequence journal; once those are durable too, the answer goes out.
uint32_t kafka_rx::complete_parked() noexcept {
    uint32_t done = 0;
    while (_parked_data_durable < _parked_count) {
        const uint32_t i = (_parked_head + _parked_data_durable) % limits::kafka_parked_acks_max;
        const uint64_t* mark = &_marks[size_t{i} * _durable.size()];
        bool durable = true;
        for (uint32_t w = 0; w < _durable.size() && durable; ++w)
            durable = _durable[w].durable->load(std::memory_order_acquire) >= mark[w];
        if (!durable) break;
        _journal.writable_until(_parked[i].journal_end);
        ++_parked_data_durable;
    }
    // Entries still waiting when the store has failed never will be durable.
    if (_parked_data_durable < _parked_count && store_failed()) fail_parked();
    if (_parked_data_durable < _parked_count) {
        // The oldest entry still waiting: its workers commit once they reach its marks.
        const uint32_t i = (_parked_head + _parked_data_durable) % limits::kafka_parked_acks_max;
        const uint64_t* mark = &_marks[size_t{i} * _durable.size()];
        for (uint32_t w = 0; w < _durable.size(); ++w)
            if (_durable[w].wanted->load(std::memory_order_relaxed) != mark[w]) {
                _durable[w].wanted->store(mark[w], std::memory_order_release);
                // A worker that processed these slots and went to sleep before this
                // store commits at once instead of at the group-commit interval.
                _rx.wake_worker(w);
            }
    }
    done += _journal.poll();
    uint64_t now = 0; // read once per call that completes any
    while (_parked_data_durable > 0 && _journal.durable() >= _parked[_parked_head].journal_end) {
        const parked& p = _parked[_parked_head];
        if (p.slot >= 0) {
            _listener.response_ready(p.conn, p.slot); // a closed connection ignores it
            if (now == 0) now = tsc_now();
            if (!p.failed) record_ack_latency(2, p.arrival_tsc, now);
        }
        _parked_head = (_parked_head + 1) % limits::kafka_parked_acks_max;
        --_parked_count;
        --_parked_data_durable;
        ++done;
    }
    _counters.acks_parked.store(_parked_count, std::memory_order_relaxed);
    _counters.sequences_journaled.store(_journal.written(), std::memory_order_relaxed);
    _counters.sequence_journal_errors.store(_journal.write_errors(), std::memory_order_relaxed);
    return done;
}

// worker::storage_failed() is the rule; once true it stays true (a failed writer drops
// rows until the end of the run), so it is read per worker only until it is.
bool kafka_rx::store_failed() noexcept {
    if (_store_failed) [[unlikely]]
        return true;
    for (const worker_durability& d : _durable)
        if (d.worker != nullptr && d.worker->storage_failed()) {
            _store_failed = true;
            SLUICE_LOG_ERROR("kafka: worker %u's store failed: waiting and new Produce requests "
                             "are answered KAFKA_STORAGE_ERROR (56) from now on",
                             d.worker->index());
            return true;
        }
    return false;
}

// The store failed: every entry not yet durable is answered 56 for its partitions that had
// no error (an entry waiting on a failed worker never completes, and each later entry's
// marks are at least its own; one waiting only on healthy workers is answered 56 too: the
// store as a whole has failed, kafka_rx.h), and its idempotent batches are dropped from the
// journal and taken back from the sequence state: a retry must be stored, not answered as
// a duplicate. They then leave the FIFO in order, behind the durable entries' journal
// records.
void kafka_rx::fail_parked() noexcept {
    (void)_journal.discard_unwritable(_sequences);
    _counters.producer_states.store(_sequences.size(), std::memory_order_relaxed);
    const uint64_t journal_end = _journal.staged();
    for (uint32_t k = _parked_data_durable; k < _parked_count; ++k) {
        parked& p = _parked[(_parked_head + k) % limits::kafka_parked_acks_max];
        p.journal_end = journal_end;
        p.failed = true;
        std::vector<uint8_t>* out = p.slot >= 0 ? _listener.response_buffer(p.conn, p.slot) : nullptr;
        if (out == nullptr) continue; // acks 0/1 (answered already), or the client is gone
        const int32_t n = rewrite_produce_errors(*out, p.version, error_code::none,
                                                 error_code::kafka_storage_error);
        SLUICE_ASSERT(n >= 0); // the answer produce() wrote
        for (int32_t e = 0; e < n; ++e) count_error(error_code::kafka_storage_error);
    }
    _parked_data_durable = _parked_count;
}

result<void> kafka_rx::open_sequence_journal(const std::string& data_dir) {
    SLUICE_TRY(_journal.open(data_dir, _sequences));
    _journal_wakes = _config.idle_wait && _journal.set_wake_fd(_listener.wake_fd());
    _counters.sequences_restored.store(_journal.restored(), std::memory_order_relaxed);
    _counters.producer_states.store(_sequences.size(), std::memory_order_relaxed);
    return ok_result();
}

} // namespace sluice::dataplane::kafka
