#include "dataplane/kafka/fetch_codec.h"

#include <algorithm>

#include "dataplane/kafka/byte_order.h"

namespace sluice::dataplane::kafka {
namespace {

constexpr int16_t fetch_version_min = 4, fetch_version_max = 10;
constexpr int16_t list_offsets_version_max = 5;
constexpr int16_t leader_epoch_version_max = 4, describe_configs_version_max = 4;

// Counts are checked against the bytes left (array_count), so a lying count fails before
// anything is reserved for it.
parse_error finish(const byte_reader& r) {
    if (!r.ok()) return r.error();
    if (r.remaining() != 0) return parse_error::trailing_bytes;
    return parse_error::none;
}

void put_be64(uint8_t* p, uint64_t v) {
    store_be32(p, uint32_t(v >> 32));
    store_be32(p + 4, uint32_t(v));
}

// A topic array: name, then a partition array whose elements `read` reads (the flexible
// encoding's compact counts and strings, and a tag buffer after every partition and topic).
template <typename Partition, typename Read>
void read_topics(byte_reader& r, bool flexible, std::vector<topic_of<Partition>>& out, Read&& read) {
    const int32_t topics = flexible ? r.compact_array_count() : r.array_count();
    for (int32_t t = 0; r.ok() && t < topics; ++t) {
        topic_of<Partition>& topic = out.emplace_back();
        topic.name = flexible ? r.compact_string() : r.string();
        const int32_t parts = flexible ? r.compact_array_count() : r.array_count();
        for (int32_t p = 0; r.ok() && p < parts; ++p) {
            read(topic.partitions.emplace_back());
            if (flexible) r.skip_tagged_fields();
        }
        if (parts < 0) r.fail(parse_error::bad_length);
        if (flexible) r.skip_tagged_fields();
    }
    if (topics < 0) r.fail(parse_error::bad_length);
}

// The answer's topic array, each partition written by `write`.
template <typename Partition, typename Write>
void write_topics(response_writer& w, bool flexible, std::span<const topic_of<Partition>> topics,
                  Write&& write) {
    auto count = [&](size_t n) {
        if (flexible)
            w.compact_array_count(uint32_t(n));
        else
            w.array_count(int32_t(n));
    };
    count(topics.size());
    for (const auto& t : topics) {
        if (flexible)
            w.compact_string(t.name);
        else
            w.string(t.name);
        count(t.partitions.size());
        for (const auto& p : t.partitions) {
            write(p);
            if (flexible) w.empty_tags();
        }
        if (flexible) w.empty_tags();
    }
}

} // namespace

parse_error parse_fetch_request(const request_header& h, fetch_request& out) {
    const int16_t v = h.api_version;
    if (v < fetch_version_min || v > fetch_version_max || h.flexible)
        return parse_error::unsupported_version;
    byte_reader r(h.body);
    out = fetch_request{};
    out.replica_id = r.i32();
    out.max_wait_ms = r.i32();
    out.min_bytes = r.i32();
    out.max_bytes = r.i32();
    out.isolation_level = r.i8();
    if (v >= 7) {
        out.session_id = r.i32();
        out.session_epoch = r.i32();
    }
    read_topics(r, false, out.topics, [&](fetch_request_partition& fp) {
        fp.partition = r.i32();
        if (v >= 9) fp.current_leader_epoch = r.i32();
        fp.fetch_offset = r.i64();
        if (v >= 5) fp.log_start_offset = r.i64();
        fp.partition_max_bytes = r.i32();
    });
    if (v >= 7) {
        // Forgotten topics: sluice keeps no fetch session, so there is nothing to forget.
        const int32_t forgotten = r.array_count();
        for (int32_t t = 0; r.ok() && t < forgotten; ++t) {
            (void)r.string();
            const int32_t parts = r.array_count();
            if (parts > 0) r.skip(size_t(parts) * 4);
        }
    }
    return finish(r);
}

void write_fetch_response(response_writer& w, const request_header& h,
                          std::span<const fetch_response_topic> topics, int32_t throttle_ms) {
    const int16_t v = h.api_version;
    w.begin_frame(h.correlation_id, false);
    w.i32(throttle_ms);
    if (v >= 7) {
        w.i16(error_code::none);
        w.i32(0); // session id: none
    }
    write_topics(w, false, topics, [&](const fetch_response_partition& p) {
        w.i32(p.partition);
        w.i16(p.error);
        w.i64(p.high_watermark);
        w.i64(p.last_stable_offset);
        if (v >= 5) w.i64(p.log_start_offset);
        w.array_count(-1); // aborted transactions: null
        w.bytes(p.records);
    });
    w.end_frame();
}

parse_error parse_list_offsets_request(const request_header& h, list_offsets_request& out) {
    const int16_t v = h.api_version;
    if (v < 0 || v > list_offsets_version_max || h.flexible)
        return parse_error::unsupported_version;
    byte_reader r(h.body);
    out = list_offsets_request{};
    out.replica_id = r.i32();
    if (v >= 2) out.isolation_level = r.i8();
    read_topics(r, false, out.topics, [&](list_offsets_partition& lp) {
        lp.partition = r.i32();
        if (v >= 4) lp.current_leader_epoch = r.i32();
        lp.timestamp = r.i64();
        if (v == 0) (void)r.i32(); // max_num_offsets: one offset is all sluice lists
    });
    return finish(r);
}

void write_list_offsets_response(response_writer& w, const request_header& h,
                                 std::span<const list_offsets_topic_result> topics,
                                 int32_t throttle_ms) {
    const int16_t v = h.api_version;
    w.begin_frame(h.correlation_id, false);
    if (v >= 2) w.i32(throttle_ms);
    write_topics(w, false, topics, [&](const list_offsets_result& p) {
        w.i32(p.partition);
        w.i16(p.error);
        if (v == 0) {
            const bool one = p.error == error_code::none && p.offset >= 0;
            w.array_count(one ? 1 : 0);
            if (one) w.i64(p.offset);
            return;
        }
        w.i64(p.timestamp);
        w.i64(p.offset);
        if (v >= 4) w.i32(-1); // leader epoch: sluice's log records none
    });
    w.end_frame();
}

parse_error parse_offset_for_leader_epoch_request(const request_header& h,
                                                  offset_for_leader_epoch_request& out) {
    const int16_t v = h.api_version;
    if (v < 0 || v > leader_epoch_version_max || h.flexible != (v >= 4))
        return parse_error::unsupported_version;
    byte_reader r(h.body);
    out = offset_for_leader_epoch_request{};
    if (v >= 3) out.replica_id = r.i32();
    read_topics(r, h.flexible, out.topics, [&](leader_epoch_partition& p) {
        p.partition = r.i32();
        if (v >= 2) p.current_leader_epoch = r.i32();
        p.leader_epoch = r.i32();
    });
    if (h.flexible) r.skip_tagged_fields();
    return finish(r);
}

void write_offset_for_leader_epoch_response(response_writer& w, const request_header& h,
                                            std::span<const leader_epoch_topic_result> topics,
                                            int32_t throttle_ms) {
    const int16_t v = h.api_version;
    w.begin_frame(h.correlation_id, h.flexible);
    if (v >= 2) w.i32(throttle_ms);
    write_topics(w, h.flexible, topics, [&](const leader_epoch_result& p) {
        w.i16(p.error);
        w.i32(p.partition);
        if (v >= 1) w.i32(p.leader_epoch);
        w.i64(p.end_offset);
    });
    if (h.flexible) w.empty_tags();
    w.end_frame();
}

parse_error parse_describe_configs_request(const request_header& h, describe_configs_request& out) {
    const int16_t v = h.api_version;
    if (v < 0 || v > describe_configs_version_max || h.flexible != (v >= 4))
        return parse_error::unsupported_version;
    const bool flex = h.flexible;
    byte_reader r(h.body);
    out = describe_configs_request{};
    const int32_t n = flex ? r.compact_array_count() : r.array_count();
    for (int32_t i = 0; r.ok() && i < n; ++i) {
        describe_configs_resource& res = out.resources.emplace_back();
        res.type = r.i8();
        res.name = flex ? r.compact_string() : r.string();
        const int32_t keys = flex ? r.compact_array_count() : r.array_count();
        if (keys >= 0) {
            res.keys.emplace();
            for (int32_t k = 0; r.ok() && k < keys; ++k)
                res.keys->push_back(flex ? r.compact_string() : r.string());
        }
        if (flex) r.skip_tagged_fields();
    }
    if (n < 0) r.fail(parse_error::bad_length);
    if (v >= 1) out.include_synonyms = r.i8() != 0;
    if (v >= 3) out.include_documentation = r.i8() != 0;
    if (flex) r.skip_tagged_fields();
    return finish(r);
}

void write_describe_configs_response(response_writer& w, const request_header& h,
                                     const describe_configs_request& req,
                                     std::span<const describe_configs_result> results,
                                     int32_t throttle_ms) {
    const int16_t v = h.api_version;
    const bool flex = h.flexible;
    auto count = [&](size_t n) {
        if (flex)
            w.compact_array_count(uint32_t(n));
        else
            w.array_count(int32_t(n));
    };
    auto str = [&](std::string_view s) {
        if (flex)
            w.compact_string(s);
        else
            w.string(s);
    };
    auto nullable = [&](std::optional<std::string_view> s) {
        if (flex)
            w.compact_nullable_string(s);
        else
            w.nullable_string(s);
    };
    w.begin_frame(h.correlation_id, flex);
    w.i32(throttle_ms);
    count(results.size());
    for (const auto& res : results) {
        w.i16(res.error);
        nullable(res.message);
        w.i8(res.type);
        str(res.name);
        count(res.configs.size());
        for (const auto& c : res.configs) {
            str(c.name);
            nullable(c.value);
            w.i8(c.read_only ? 1 : 0);
            if (v == 0) w.i8(c.source == config_source::default_config ? 1 : 0); // is_default
            if (v >= 1) w.i8(c.source);
            w.i8(0); // is_sensitive
            if (v >= 1) {
                count(req.include_synonyms ? 1 : 0);
                if (req.include_synonyms) {
                    str(c.name);
                    nullable(c.value);
                    w.i8(c.source);
                    if (flex) w.empty_tags();
                }
            }
            if (v >= 3) {
                w.i8(c.type);
                nullable(std::nullopt); // documentation
            }
            if (flex) w.empty_tags();
        }
        if (flex) w.empty_tags();
    }
    if (flex) w.empty_tags();
    w.end_frame();
}

// ---- RecordBatch v2 ----

void record_batch_builder::begin(std::vector<uint8_t>& out, int64_t base_offset) noexcept {
    _out = &out;
    _records.clear();
    _base_offset = base_offset;
    _count = 0;
}

void record_batch_builder::add(int64_t timestamp_ms, std::optional<bytes_view> key,
                               std::optional<bytes_view> value,
                               std::span<const record_header_out> headers) {
    if (_count == 0) _base_timestamp = _max_timestamp = timestamp_ms;
    _max_timestamp = std::max(_max_timestamp, timestamp_ms);
    _one.clear();
    response_writer r(_one);
    r.i8(0); // attributes (unused)
    r.varlong(timestamp_ms - _base_timestamp);
    r.varint(_count); // offset delta
    auto var_bytes = [&r](std::optional<bytes_view> b) {
        if (!b) {
            r.varint(-1);
            return;
        }
        r.varint(int32_t(b->size()));
        r.raw(*b);
    };
    var_bytes(key);
    var_bytes(value);
    r.varint(int32_t(headers.size()));
    for (const auto& hd : headers) {
        r.varint(int32_t(hd.key.size()));
        r.raw({reinterpret_cast<const uint8_t*>(hd.key.data()), hd.key.size()});
        var_bytes(hd.value);
    }
    response_writer out(_records);
    out.varint(int32_t(_one.size()));
    out.raw(_one);
    ++_count;
}

size_t record_batch_builder::finish() {
    if (_count == 0) return 0;
    std::vector<uint8_t>& out = *_out;
    const size_t start = out.size();
    const size_t total = record_batch_header_bytes + _records.size();
    out.resize(start + total);
    uint8_t* b = out.data() + start;
    put_be64(b + 0, uint64_t(_base_offset));
    store_be32(b + 8, uint32_t(total - 12)); // batch length: the bytes after it
    store_be32(b + 12, 0);                   // partition leader epoch
    b[16] = 2;                               // magic
    // crc at 17, over attributes .. end
    b[21] = 0;
    b[22] = 0; // attributes: no compression, create time, not transactional
    store_be32(b + 23, uint32_t(_count - 1)); // last offset delta
    put_be64(b + 27, uint64_t(_base_timestamp));
    put_be64(b + 35, uint64_t(_max_timestamp));
    put_be64(b + 43, uint64_t(int64_t(-1))); // producer id
    b[51] = 0xff;
    b[52] = 0xff;                             // producer epoch -1
    store_be32(b + 53, uint32_t(-1));         // base sequence
    store_be32(b + 57, uint32_t(_count));
    std::copy(_records.begin(), _records.end(), b + record_batch_header_bytes);
    store_be32(b + 17, crc32c(bytes_view(b + 21, total - 21)));
    _count = 0;
    _records.clear();
    return total;
}

} // namespace sluice::dataplane::kafka
