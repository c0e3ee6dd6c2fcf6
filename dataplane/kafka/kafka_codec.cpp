#include "dataplane/kafka/kafka_codec.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "dataplane/kafka/byte_order.h"

namespace sluice::dataplane::kafka {

namespace {

inline std::string_view as_string(bytes_view b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// The newest version of each key that still uses the non-flexible encoding; indexed by
// key. -1: flexible from v0. Keys 50..74 (all KIP-482 era) are flexible from v0.
constexpr int16_t last_rigid_version[] = {
    8, 11, 5, 8, 3, 1,  5,  2,  7, 5, // 0 Produce .. 9 OffsetFetch
    2, 5,  3, 3, 3, 4,  2,  99, 2, 4, // 10 FindCoordinator .. 19 CreateTopics
    3, 1,  1, 3, 2, 2,  2,  0,  2, 1, // 20 DeleteTopics .. 29 DescribeAcls
    1, 1,  3, 1, 1, 1,  1,  1,  1, 1, // 30 CreateAcls .. 39 RenewDelegationToken
    1, 1,  1, 1, 0, -1, -1, 99, 0, 0, // 40 ExpireDelegationToken .. 49 AlterClientQuotas
};

} // namespace

std::string_view parse_error_name(parse_error e) noexcept {
    switch (e) {
    case parse_error::none: return "none";
    case parse_error::truncated: return "truncated";
    case parse_error::bad_length: return "bad_length";
    case parse_error::bad_varint: return "bad_varint";
    case parse_error::trailing_bytes: return "trailing_bytes";
    case parse_error::unsupported_version: return "unsupported_version";
    case parse_error::legacy_magic: return "legacy_magic";
    case parse_error::bad_magic: return "bad_magic";
    case parse_error::bad_crc: return "bad_crc";
    case parse_error::unsupported_compression: return "unsupported_compression";
    case parse_error::too_large: return "too_large";
    case parse_error::corrupt_compressed: return "corrupt_compressed";
    case parse_error::record_count: return "record_count";
    case parse_error::nested_compression: return "nested_compression";
    }
    return "unknown";
}

int16_t kafka_error_for(parse_error e) noexcept {
    switch (e) {
    case parse_error::none: return error_code::none;
    case parse_error::unsupported_version: return error_code::unsupported_version;
    case parse_error::legacy_magic: return error_code::invalid_record;
    case parse_error::unsupported_compression: return error_code::unsupported_compression_type;
    case parse_error::too_large: return error_code::message_too_large;
    default: return error_code::corrupt_message;
    }
}

// ---------------------------------------------------------------------------------------
// byte_reader

bytes_view byte_reader::take(size_t n) noexcept {
    if (!ok()) return {};
    if (n > remaining()) [[unlikely]] {
        fail(parse_error::truncated);
        return {};
    }
    bytes_view v = _data.subspan(_pos, n);
    _pos += n;
    return v;
}

uuid byte_reader::read_uuid() noexcept {
    uuid id{};
    bytes_view b = take(id.size());
    if (!b.empty()) std::memcpy(id.data(), b.data(), id.size());
    return id;
}

int8_t byte_reader::i8() noexcept {
    bytes_view b = take(1);
    return b.empty() ? 0 : int8_t(b[0]);
}
int16_t byte_reader::i16() noexcept {
    bytes_view b = take(2);
    return b.empty() ? 0 : int16_t(load_be16(b.data()));
}
int32_t byte_reader::i32() noexcept {
    bytes_view b = take(4);
    return b.empty() ? 0 : int32_t(load_be32(b.data()));
}
int64_t byte_reader::i64() noexcept {
    bytes_view b = take(8);
    return b.empty() ? 0 : int64_t(load_be64(b.data()));
}

uint32_t byte_reader::uvarint() noexcept {
    uint32_t v = 0;
    for (int i = 0; i < 5; i++) {
        bytes_view b = take(1);
        if (b.empty()) return 0;
        const uint8_t c = b[0];
        // The fifth byte holds bits 28..31 only.
        if (i == 4 && c > 0x0F) break;
        v |= uint32_t(c & 0x7F) << (7 * i);
        if (!(c & 0x80)) return v;
    }
    fail(parse_error::bad_varint);
    return 0;
}

int32_t byte_reader::varint() noexcept {
    const uint32_t u = uvarint();
    return int32_t((u >> 1) ^ (~(u & 1) + 1));
}

int64_t byte_reader::varlong() noexcept {
    uint64_t u = 0;
    for (int i = 0; i < 10; i++) {
        bytes_view b = take(1);
        if (b.empty()) return 0;
        const uint8_t c = b[0];
        if (i == 9 && c > 0x01) break;
        u |= uint64_t(c & 0x7F) << (7 * i);
        if (!(c & 0x80)) return int64_t((u >> 1) ^ (~(u & 1) + 1));
    }
    fail(parse_error::bad_varint);
    return 0;
}

std::string_view byte_reader::string() noexcept {
    const int16_t n = i16();
    if (n < 0) {
        fail(parse_error::bad_length);
        return {};
    }
    return as_string(take(size_t(n)));
}

std::optional<std::string_view> byte_reader::nullable_string() noexcept {
    const int16_t n = i16();
    if (!ok()) return std::nullopt;
    if (n == -1) return std::nullopt;
    if (n < -1) {
        fail(parse_error::bad_length);
        return std::nullopt;
    }
    return as_string(take(size_t(n)));
}

std::optional<bytes_view> byte_reader::nullable_bytes() noexcept {
    const int32_t n = i32();
    if (!ok()) return std::nullopt;
    if (n == -1) return std::nullopt;
    if (n < -1) {
        fail(parse_error::bad_length);
        return std::nullopt;
    }
    bytes_view b = take(size_t(n));
    if (!ok()) return std::nullopt;
    return b;
}

std::string_view byte_reader::compact_string() noexcept {
    const uint32_t n = uvarint();
    if (!ok()) return {};
    if (n == 0) {
        fail(parse_error::bad_length);
        return {};
    }
    return as_string(take(n - 1));
}

std::optional<std::string_view> byte_reader::compact_nullable_string() noexcept {
    const uint32_t n = uvarint();
    if (!ok() || n == 0) return std::nullopt;
    return as_string(take(n - 1));
}

int32_t byte_reader::array_count() noexcept {
    const int32_t n = i32();
    // Every element we read is at least one byte: a larger count is a lie, refused
    // before anyone loops over it.
    if (n < -1 || (n > 0 && size_t(n) > remaining())) {
        fail(parse_error::bad_length);
        return 0;
    }
    return n;
}

int32_t byte_reader::compact_array_count() noexcept {
    const uint32_t n = uvarint();
    if (!ok()) return 0;
    if (n == 0) return -1;
    if (n - 1 > remaining() || n - 1 > uint32_t(INT32_MAX)) {
        fail(parse_error::bad_length);
        return 0;
    }
    return int32_t(n - 1);
}

std::optional<bytes_view> byte_reader::compact_nullable_bytes() noexcept {
    const uint32_t n = uvarint();
    if (!ok() || n == 0) return std::nullopt;
    bytes_view b = take(n - 1);
    if (!ok()) return std::nullopt;
    return b;
}

void byte_reader::skip_tagged_fields() noexcept {
    const uint32_t n = uvarint();
    if (n > remaining()) {
        fail(parse_error::bad_length);
        return;
    }
    for (uint32_t i = 0; i < n && ok(); i++) {
        (void)uvarint(); // tag
        skip(uvarint());
    }
}

// ---------------------------------------------------------------------------------------
// Framing and headers

frame_status peek_frame(bytes_view buffer, uint32_t frame_bytes_max,
                        uint32_t& frame_bytes) noexcept {
    frame_bytes = 0;
    if (buffer.size() < 4) return frame_status::need_more;
    const int32_t size = int32_t(load_be32(buffer.data()));
    // api_key + api_version + correlation_id + client_id length.
    if (size < 10) return frame_status::bad_size;
    if (uint32_t(size) > frame_bytes_max) return frame_status::too_large;
    frame_bytes = uint32_t(size);
    return buffer.size() - 4 >= frame_bytes ? frame_status::ready : frame_status::need_more;
}

bool is_flexible(int16_t api_key, int16_t api_version) noexcept {
    if (api_key < 0 || api_version < 0) return false;
    constexpr size_t known = sizeof last_rigid_version / sizeof last_rigid_version[0];
    if (size_t(api_key) >= known) return api_key < 75;
    return api_version > last_rigid_version[api_key];
}

bool response_header_tagged(int16_t api_key, int16_t api_version) noexcept {
    return api_key != api_key::api_versions && is_flexible(api_key, api_version);
}

parse_error parse_request_header(bytes_view frame, request_header& out) noexcept {
    byte_reader r(frame);
    out = request_header{};
    out.api_key = r.i16();
    out.api_version = r.i16();
    out.correlation_id = r.i32();
    out.client_id = r.nullable_string();
    out.flexible = is_flexible(out.api_key, out.api_version);
    if (out.flexible) r.skip_tagged_fields();
    if (!r.ok()) return r.error();
    out.body = r.rest();
    return parse_error::none;
}

// ---------------------------------------------------------------------------------------
// response_writer

uint8_t* response_writer::reserve(size_t n) noexcept {
    if (_overflow) return nullptr;
    if (_vec) {
        _vec->resize(_pos + n);
        uint8_t* p = _vec->data() + _pos;
        _pos += n;
        return p;
    }
    if (n > _cap - _pos) {
        _overflow = true;
        return nullptr;
    }
    uint8_t* p = _buf + _pos;
    _pos += n;
    return p;
}

void response_writer::begin_frame(int32_t correlation_id, bool tagged) noexcept {
    _frame_start = _pos;
    i32(0); // size, patched by end_frame
    i32(correlation_id);
    if (tagged) empty_tags();
}

size_t response_writer::end_frame() noexcept {
    if (_overflow) return 0;
    const size_t total = _pos - _frame_start;
    patch_i32(_frame_start, int32_t(total - 4));
    return total;
}

void response_writer::patch_i32(size_t at, int32_t v) noexcept {
    if (_overflow || at + 4 > _pos) return;
    store_be32((_vec ? _vec->data() : _buf) + at, uint32_t(v));
}

void response_writer::i8(int8_t v) noexcept {
    if (uint8_t* p = reserve(1)) p[0] = uint8_t(v);
}
void response_writer::i16(int16_t v) noexcept {
    if (uint8_t* p = reserve(2)) {
        p[0] = uint8_t(uint16_t(v) >> 8);
        p[1] = uint8_t(v);
    }
}
void response_writer::i32(int32_t v) noexcept {
    if (uint8_t* p = reserve(4)) store_be32(p, uint32_t(v));
}
void response_writer::i64(int64_t v) noexcept {
    if (uint8_t* p = reserve(8)) {
        store_be32(p, uint32_t(uint64_t(v) >> 32));
        store_be32(p + 4, uint32_t(v));
    }
}
void response_writer::uvarint(uint32_t v) noexcept {
    uint8_t tmp[5];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = uint8_t(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = uint8_t(v);
    raw({tmp, n});
}
void response_writer::varint(int32_t v) noexcept {
    uvarint((uint32_t(v) << 1) ^ uint32_t(v >> 31));
}
void response_writer::varlong(int64_t v) noexcept {
    uint64_t u = (uint64_t(v) << 1) ^ uint64_t(v >> 63);
    uint8_t tmp[10];
    size_t n = 0;
    while (u >= 0x80) {
        tmp[n++] = uint8_t(u | 0x80);
        u >>= 7;
    }
    tmp[n++] = uint8_t(u);
    raw({tmp, n});
}
void response_writer::raw(bytes_view v) noexcept {
    if (v.empty()) return;
    if (uint8_t* p = reserve(v.size())) std::memcpy(p, v.data(), v.size());
}
void response_writer::string(std::string_view s) noexcept {
    const size_t n = std::min<size_t>(s.size(), 0x7FFF);
    i16(int16_t(n));
    raw({reinterpret_cast<const uint8_t*>(s.data()), n});
}
void response_writer::nullable_string(std::optional<std::string_view> s) noexcept {
    if (!s) return i16(-1);
    string(*s);
}
void response_writer::bytes(std::optional<bytes_view> b) noexcept {
    if (!b) return i32(-1);
    i32(int32_t(b->size()));
    raw(*b);
}
void response_writer::compact_string(std::string_view s) noexcept {
    uvarint(uint32_t(s.size()) + 1);
    raw({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}
void response_writer::compact_nullable_string(std::optional<std::string_view> s) noexcept {
    if (!s) return uvarint(0);
    compact_string(*s);
}

// ---------------------------------------------------------------------------------------
// Version tables

const api_version_range* find_api(std::span<const api_version_range> table, int16_t key) noexcept {
    for (const auto& e : table)
        if (e.api_key == key) return &e;
    return nullptr;
}

bool version_supported(std::span<const api_version_range> table, int16_t key,
                       int16_t version) noexcept {
    const api_version_range* e = find_api(table, key);
    return e && version >= e->min_version && version <= e->max_version;
}

namespace {

// The request's version against what this codec parses: body parsers refuse others.
bool codec_parses(const request_header& h, int16_t key) noexcept {
    return h.api_key == key && version_supported(codec_api_versions, key, h.api_version);
}

} // namespace

// ---------------------------------------------------------------------------------------
// ApiVersions

parse_error parse_api_versions_request(const request_header& h,
                                       api_versions_request& out) noexcept {
    out = api_versions_request{};
    if (!codec_parses(h, api_key::api_versions)) return parse_error::unsupported_version;
    byte_reader r(h.body);
    if (h.api_version >= 3) {
        out.client_software_name = r.compact_string();
        out.client_software_version = r.compact_string();
        r.skip_tagged_fields();
    }
    if (r.ok() && r.remaining() != 0) r.fail(parse_error::trailing_bytes);
    return r.error();
}

namespace {

bool valid_software_field(std::string_view s) noexcept {
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (s.empty() || !alnum(s.front()) || !alnum(s.back())) return false;
    for (char c : s)
        if (!alnum(c) && c != '-' && c != '.') return false;
    return true;
}

} // namespace

bool api_versions_request::valid(int16_t api_version) const noexcept {
    return api_version < 3 ||
           (valid_software_field(client_software_name) && valid_software_field(client_software_version));
}

void write_api_versions_response(response_writer& w, const request_header& h,
                                 std::span<const api_version_range> table, int16_t error,
                                 int32_t throttle_ms) noexcept {
    const api_version_range* self = find_api(table, api_key::api_versions);
    const int16_t lo = self ? self->min_version : 0;
    const int16_t hi = std::min<int16_t>(self ? self->max_version : 3, 3);
    int16_t version = h.api_version;
    if (version < lo || version > hi) {
        version = 0;
        error = error_code::unsupported_version;
    }
    w.begin_frame(h.correlation_id, false); // never tagged, even for v3
    w.i16(error);
    if (version >= 3) {
        w.compact_array_count(uint32_t(table.size()));
    } else {
        w.array_count(int32_t(table.size()));
    }
    for (const auto& e : table) {
        w.i16(e.api_key);
        w.i16(e.min_version);
        w.i16(e.max_version);
        if (version >= 3) w.empty_tags();
    }
    if (version >= 1) w.i32(throttle_ms);
    if (version >= 3) w.empty_tags();
    w.end_frame();
}

// ---------------------------------------------------------------------------------------
// Metadata

namespace {

// One topic of a Metadata request, as the version lays it out.
void read_metadata_topic(byte_reader& r, int16_t version, bool flexible,
                         metadata_request_topic& out) noexcept {
    out = metadata_request_topic{};
    if (!flexible) {
        out.name = r.string();
        return;
    }
    if (version >= 10) {
        out.topic_id = r.read_uuid();
        out.name = r.compact_nullable_string();
    } else {
        out.name = r.compact_string();
    }
    r.skip_tagged_fields();
}

} // namespace

parse_error parse_metadata_request(const request_header& h, metadata_request& out) noexcept {
    out = metadata_request{};
    if (!codec_parses(h, api_key::metadata)) return parse_error::unsupported_version;
    const int16_t v = h.api_version;
    const bool flexible = is_flexible(h.api_key, v);
    byte_reader r(h.body);
    const int32_t n = flexible ? r.compact_array_count() : r.array_count();
    if (!r.ok()) return r.error();
    // v0 has no null array; -1 is read as "all" there too, leniently.
    out._all_topics = n == -1 || (n == 0 && v == 0);
    out._topic_count = std::max(n, 0);
    out._topics_left = out._topic_count;
    out._version = v;
    out._flexible = flexible;
    out._topics = r;
    metadata_request_topic t;
    for (int32_t i = 0; i < out._topic_count && r.ok(); i++) {
        read_metadata_topic(r, v, flexible, t);
        // Before v10 a name is never null (a null there is a lying length).
        if (r.ok() && !t.name && v < 10) r.fail(parse_error::bad_length);
    }
    if (v >= 4) out._allow_auto_topic_creation = r.i8() != 0;
    if (v >= 8 && v <= 10) (void)r.i8(); // include_cluster_authorized_operations
    if (v >= 8) (void)r.i8();            // include_topic_authorized_operations
    if (flexible) r.skip_tagged_fields();
    if (r.ok() && r.remaining() != 0) r.fail(parse_error::trailing_bytes);
    if (!r.ok()) {
        const parse_error e = r.error();
        out = metadata_request{};
        return e;
    }
    return parse_error::none;
}

bool metadata_request::next_topic(metadata_request_topic& out) noexcept {
    if (_topics_left <= 0) return false;
    _topics_left--;
    read_metadata_topic(_topics, _version, _flexible, out);
    return _topics.ok();
}

bool metadata_request::next_topic(std::string_view& name) noexcept {
    metadata_request_topic t;
    if (!next_topic(t)) return false;
    name = t.name.value_or(std::string_view());
    return true;
}

namespace {

// Writes the i32 node list of a partition (replicas, isr, offline) in either encoding.
void write_node_list(response_writer& w, bool flexible, int32_t count, int32_t node) noexcept {
    if (flexible)
        w.compact_array_count(uint32_t(count));
    else
        w.array_count(count);
    for (int32_t i = 0; i < count; i++)
        w.i32(node);
}

void write_metadata_partitions(response_writer& w, int16_t v, bool flexible, int32_t partitions,
                               int32_t node) noexcept {
    if (flexible)
        w.compact_array_count(uint32_t(partitions));
    else
        w.array_count(partitions);
    for (int32_t p = 0; p < partitions; p++) {
        w.i16(error_code::none);
        w.i32(p);
        w.i32(node);          // leader
        if (v >= 7) w.i32(0); // leader_epoch
        write_node_list(w, flexible, 1, node); // replicas
        write_node_list(w, flexible, 1, node); // isr
        if (v >= 5) write_node_list(w, flexible, 0, node); // offline_replicas
        if (flexible) w.empty_tags();
    }
}

} // namespace

void write_metadata_response(response_writer& w, const request_header& h, const metadata_node& node,
                             std::span<const metadata_topic> topics) noexcept {
    constexpr int32_t authorized_operations_omitted = INT32_MIN;
    const int16_t v = h.api_version;
    const bool flexible = is_flexible(h.api_key, v);
    w.begin_frame(h.correlation_id, response_header_tagged(h.api_key, v));
    if (v >= 3) w.i32(0); // throttle_time_ms
    if (flexible) {
        w.compact_array_count(1);
        w.i32(node.node_id);
        w.compact_string(node.host);
        w.i32(node.port);
        w.compact_nullable_string(node.rack);
        w.empty_tags();
        w.compact_nullable_string(node.cluster_id);
    } else {
        w.array_count(1);
        w.i32(node.node_id);
        w.string(node.host);
        w.i32(node.port);
        if (v >= 1) w.nullable_string(node.rack);
        if (v >= 2) w.nullable_string(node.cluster_id);
    }
    if (v >= 1) w.i32(node.node_id); // controller_id
    if (flexible)
        w.compact_array_count(uint32_t(topics.size()));
    else
        w.array_count(int32_t(topics.size()));
    for (const auto& t : topics) {
        w.i16(t.error);
        if (!flexible)
            w.string(t.name.value_or(std::string_view()));
        else if (v >= 12)
            w.compact_nullable_string(t.name);
        else
            w.compact_string(t.name.value_or(std::string_view()));
        if (v >= 10) w.raw(t.topic_id);
        if (v >= 1) w.i8(t.is_internal ? 1 : 0);
        write_metadata_partitions(w, v, flexible, t.partitions, node.node_id);
        if (v >= 8) w.i32(authorized_operations_omitted); // topic_authorized_operations
        if (flexible) w.empty_tags();
    }
    if (v >= 8 && v <= 10) w.i32(authorized_operations_omitted); // cluster_authorized_operations
    if (flexible) w.empty_tags();
    w.end_frame();
}

// ---------------------------------------------------------------------------------------
// InitProducerId

parse_error parse_init_producer_id_request(const request_header& h,
                                           init_producer_id_request& out) noexcept {
    out = init_producer_id_request{};
    if (!codec_parses(h, api_key::init_producer_id)) return parse_error::unsupported_version;
    const bool flexible = is_flexible(h.api_key, h.api_version);
    byte_reader r(h.body);
    out.transactional_id = flexible ? r.compact_nullable_string() : r.nullable_string();
    out.transaction_timeout_ms = r.i32();
    if (h.api_version >= 3) {
        out.producer_id = r.i64();
        out.producer_epoch = r.i16();
    }
    if (flexible) r.skip_tagged_fields();
    if (r.ok() && r.remaining() != 0) r.fail(parse_error::trailing_bytes);
    if (!r.ok()) {
        const parse_error e = r.error();
        out = init_producer_id_request{};
        return e;
    }
    return parse_error::none;
}

void write_init_producer_id_response(response_writer& w, const request_header& h, int16_t error,
                                     int64_t producer_id, int16_t producer_epoch,
                                     int32_t throttle_ms) noexcept {
    w.begin_frame(h.correlation_id, response_header_tagged(h.api_key, h.api_version));
    w.i32(throttle_ms);
    w.i16(error);
    w.i64(producer_id);
    w.i16(producer_epoch);
    if (is_flexible(h.api_key, h.api_version)) w.empty_tags();
    w.end_frame();
}

// ---------------------------------------------------------------------------------------
// FindCoordinator v0-v2

parse_error parse_find_coordinator_request(const request_header& h,
                                           find_coordinator_request& out) noexcept {
    out = find_coordinator_request{};
    if (!codec_parses(h, api_key::find_coordinator)) return parse_error::unsupported_version;
    byte_reader r(h.body);
    const std::string_view k = r.string();
    const int8_t type = h.api_version >= 1 ? r.i8() : 0;
    if (r.ok() && r.remaining() != 0) r.fail(parse_error::trailing_bytes);
    if (!r.ok()) return r.error();
    out.key = k;
    out.key_type = type;
    return parse_error::none;
}

void write_find_coordinator_response(response_writer& w, const request_header& h, int16_t error,
                                     int32_t node, std::string_view host, int32_t port) noexcept {
    const bool ok = error == error_code::none;
    w.begin_frame(h.correlation_id, false);
    if (h.api_version >= 1) w.i32(0); // throttle
    w.i16(error);
    if (h.api_version >= 1) {
        if (ok) w.nullable_string(std::nullopt);
        else w.nullable_string("the coordinator is not available");
    }
    w.i32(ok ? node : -1);
    w.string(ok ? host : "");
    w.i32(ok ? port : -1);
    w.end_frame();
}

// ---------------------------------------------------------------------------------------
// Produce

int32_t produce_request_reader::count(byte_reader& r) const noexcept {
    return _flexible ? r.compact_array_count() : r.array_count();
}

parse_error produce_request_reader::open(const request_header& h) noexcept {
    *this = produce_request_reader{};
    if (!codec_parses(h, api_key::produce)) return parse_error::unsupported_version;
    _flexible = h.flexible;
    byte_reader r(h.body);
    if (h.api_version >= 3) // v0-v2 have no transactional_id
        _transactional_id = _flexible ? r.compact_nullable_string() : r.nullable_string();
    _acks = r.i16();
    _timeout_ms = r.i32();
    const int32_t topics = count(r);
    if (!r.ok()) return r.error();
    if (topics < 0) return parse_error::bad_length;
    _topic_count = topics;
    _topics = r;
    // Walk the structure once; the cursor then replays it without checks that can fail.
    int64_t partitions_total = 0;
    for (int32_t t = 0; t < topics && r.ok(); t++) {
        (void)(_flexible ? r.compact_string() : r.string());
        const int32_t partitions = count(r);
        if (r.ok() && partitions < 0) r.fail(parse_error::bad_length);
        for (int32_t p = 0; p < partitions && r.ok(); p++) {
            (void)r.i32();
            (void)(_flexible ? r.compact_nullable_bytes() : r.nullable_bytes());
            if (_flexible) r.skip_tagged_fields();
        }
        if (_flexible) r.skip_tagged_fields();
        partitions_total += std::max(partitions, 0);
    }
    if (_flexible) r.skip_tagged_fields();
    if (r.ok() && r.remaining() != 0) r.fail(parse_error::trailing_bytes);
    if (!r.ok()) {
        const parse_error e = r.error();
        *this = produce_request_reader{};
        return e;
    }
    _partition_count_total = int32_t(partitions_total);
    rewind();
    return parse_error::none;
}

void produce_request_reader::rewind() noexcept {
    _cur = _topics;
    _topics_left = _topic_count;
    _partitions_left = 0;
    _in_topic = false;
}

bool produce_request_reader::next_topic(produce_topic& out) noexcept {
    while (_partitions_left > 0) {
        produce_partition skipped;
        (void)next_partition(skipped);
    }
    if (_in_topic && _flexible) _cur.skip_tagged_fields(); // the previous topic's
    _in_topic = false;
    if (_topics_left == 0) return false;
    _topics_left--;
    out.name = _flexible ? _cur.compact_string() : _cur.string();
    out.partition_count = count(_cur);
    _partitions_left = out.partition_count;
    _in_topic = true;
    return true;
}

bool produce_request_reader::next_partition(produce_partition& out) noexcept {
    if (_partitions_left == 0) return false;
    _partitions_left--;
    out.index = _cur.i32();
    out.records = _flexible ? _cur.compact_nullable_bytes() : _cur.nullable_bytes();
    if (_flexible) _cur.skip_tagged_fields();
    return true;
}

produce_response_writer::produce_response_writer(response_writer& w, const request_header& h,
                                                 int32_t topic_count) noexcept
    : _w(w), _version(h.api_version), _flexible(is_flexible(h.api_key, h.api_version)) {
    _w.begin_frame(h.correlation_id, response_header_tagged(h.api_key, h.api_version));
    if (_flexible)
        _w.compact_array_count(uint32_t(topic_count));
    else
        _w.array_count(topic_count);
}

void produce_response_writer::begin_topic(std::string_view name, int32_t partition_count) noexcept {
    if (_flexible) {
        if (_topic_open) _w.empty_tags(); // the previous topic's
        _w.compact_string(name);
        _w.compact_array_count(uint32_t(partition_count));
    } else {
        _w.string(name);
        _w.array_count(partition_count);
    }
    _topic_open = true;
}

void produce_response_writer::partition(const produce_partition_result& r) noexcept {
    _w.i32(r.index);
    _w.i16(r.error);
    _w.i64(r.base_offset);
    if (_version >= 2) _w.i64(r.log_append_time_ms);
    if (_version >= 5) _w.i64(r.log_start_offset);
    if (_flexible) {
        _w.compact_array_count(0); // record_errors
        _w.compact_nullable_string(r.error_message);
        _w.empty_tags();
    } else if (_version >= 8) {
        _w.array_count(0); // record_errors
        _w.nullable_string(r.error_message);
    }
}

size_t produce_response_writer::finish(int32_t throttle_ms) noexcept {
    if (_flexible && _topic_open) _w.empty_tags();
    if (_version >= 1) _w.i32(throttle_ms);
    if (_flexible) _w.empty_tags();
    return _w.end_frame();
}

int32_t rewrite_produce_errors(std::span<uint8_t> frame, int16_t api_version, int16_t from,
                               int16_t to) noexcept {
    const bool flexible = is_flexible(api_key::produce, api_version);
    // Two passes over the same walk: find every error field, then (all found) patch them.
    auto walk = [&](bool patch) -> int32_t {
        byte_reader r(bytes_view(frame.data(), frame.size()));
        if (r.i32() != int32_t(frame.size()) - 4) return -1; // the size prefix
        (void)r.i32();                                       // correlation id
        if (response_header_tagged(api_key::produce, api_version)) r.skip_tagged_fields();
        int32_t changed = 0;
        const int32_t topics = flexible ? r.compact_array_count() : r.array_count();
        for (int32_t t = 0; t < topics && r.ok(); ++t) {
            if (flexible)
                (void)r.compact_string();
            else
                (void)r.string();
            const int32_t partitions = flexible ? r.compact_array_count() : r.array_count();
            for (int32_t p = 0; p < partitions && r.ok(); ++p) {
                (void)r.i32(); // index
                const size_t at = r.position();
                const int16_t error = r.i16();
                (void)r.i64(); // base offset
                if (api_version >= 2) (void)r.i64();
                if (api_version >= 5) (void)r.i64();
                if (flexible) {
                    if (r.compact_array_count() > 0) return -1; // record_errors: written empty
                    (void)r.compact_nullable_string();
                    r.skip_tagged_fields();
                } else if (api_version >= 8) {
                    if (r.array_count() > 0) return -1;
                    (void)r.nullable_string();
                }
                if (!r.ok() || error != from) continue;
                ++changed;
                if (!patch) continue;
                uint8_t* f = frame.data() + at;
                f[0] = uint8_t(uint16_t(to) >> 8);
                f[1] = uint8_t(uint16_t(to));
                std::memset(f + 2, 0xff, 8); // base offset -1
            }
            if (flexible) r.skip_tagged_fields();
        }
        if (api_version >= 1) (void)r.i32(); // throttle
        if (flexible) r.skip_tagged_fields();
        return r.ok() && r.remaining() == 0 ? changed : -1;
    };
    const int32_t found = walk(false);
    return found <= 0 ? found : walk(true);
}

} // namespace sluice::dataplane::kafka
