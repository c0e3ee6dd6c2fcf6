// RecordBatch v2 and its records (kafka_codec.h).
#include <cstring>

#include <rte_hash_crc.h>

#include "dataplane/kafka/kafka_codec.h"

namespace sluice::dataplane::kafka {

namespace {

constexpr int32_t batch_length_min = int32_t(record_batch_header_bytes) - 12;
constexpr size_t attributes_offset = 21; // the CRC covers from here to the end
constexpr int16_t codec_max = int16_t(compression::zstd);

} // namespace

uint32_t crc32c(bytes_view data) noexcept {
    // rte_hash_crc()'s own loop dereferences unaligned uint64_t pointers (batches start
    // anywhere in a frame): feed its 8- and 1-byte steps through memcpy instead. They use
    // the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
    uint32_t crc = 0xFFFFFFFF;
    const uint8_t* p = data.data();
    size_t n = data.size();
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        std::memcpy(&v, p, sizeof v);
        crc = rte_hash_crc_8byte(v, crc);
    }
    for (; n > 0; p++, n--)
        crc = rte_hash_crc_1byte(*p, crc);
    return ~crc;
}

parse_error parse_record_batch(bytes_view data, record_batch& out) noexcept {
    out = record_batch{};
    byte_reader r(data);
    out.base_offset = r.i64();
    out.batch_length = r.i32();
    out.partition_leader_epoch = r.i32();
    out.magic = r.i8();
    if (!r.ok()) return r.error();
    // A legacy message's magic sits at the same offset (16) as a batch's.
    if (out.magic == 0 || out.magic == 1) return parse_error::legacy_magic;
    if (out.magic != 2) return parse_error::bad_magic;
    if (out.batch_length < batch_length_min) return parse_error::bad_length;
    const size_t total = size_t(out.batch_length) + 12;
    if (total > data.size()) return parse_error::truncated;
    out.crc = uint32_t(r.i32());
    out.attributes = r.i16();
    out.last_offset_delta = r.i32();
    out.base_timestamp = r.i64();
    out.max_timestamp = r.i64();
    out.producer_id = r.i64();
    out.producer_epoch = r.i16();
    out.base_sequence = r.i32();
    out.records_count = r.i32();
    if (!r.ok()) return r.error();
    if (crc32c(data.subspan(attributes_offset, total - attributes_offset)) != out.crc)
        return parse_error::bad_crc;
    if (out.records_count < 0) return parse_error::bad_length;
    if ((out.attributes & 0x7) > codec_max) return parse_error::unsupported_compression;
    out.bytes = data.first(total);
    out.records = data.subspan(record_batch_header_bytes, total - record_batch_header_bytes);
    return parse_error::none;
}

bool record_batch_reader::next(record_batch& out) noexcept {
    if (_error != parse_error::none || _pos == _in.size()) return false;
    _error = parse_record_batch(_in.subspan(_pos), out);
    if (_error != parse_error::none) return false;
    _pos += out.bytes.size();
    return true;
}

// ---------------------------------------------------------------------------------------
// Records

record_reader::record_reader(const record_batch& batch, bytes_view records) noexcept
    : _in(records), _base_timestamp(batch.base_timestamp), _count(batch.records_count) {}

namespace {

// A varint length of -1 (null) or >= 0 followed by that many bytes.
std::optional<bytes_view> nullable_varbytes(byte_reader& r) noexcept {
    const int32_t n = r.varint();
    if (!r.ok() || n == -1) return std::nullopt;
    if (n < -1) {
        r.fail(parse_error::bad_length);
        return std::nullopt;
    }
    bytes_view b = r.take(size_t(n));
    if (!r.ok()) return std::nullopt;
    return b;
}

// Walks `count` headers, checking each; false on the first bad one (r.error() says why).
bool skip_headers(byte_reader& r, int32_t count) noexcept {
    for (int32_t i = 0; i < count && r.ok(); i++) {
        const int32_t key = r.varint();
        if (r.ok() && key < 0) r.fail(parse_error::bad_length); // header keys are not null
        r.skip(size_t(key < 0 ? 0 : key));
        (void)nullable_varbytes(r);
    }
    return r.ok();
}

} // namespace

bool record_reader::next(record& out) noexcept {
    if (_done || !_in.ok()) return false;
    if (_read == _count) {
        _done = true;
        if (_in.remaining() != 0) _in.fail(parse_error::trailing_bytes);
        return false;
    }
    if (_in.remaining() == 0) {
        _in.fail(parse_error::record_count);
        return false;
    }
    const int32_t length = _in.varint();
    if (_in.ok() && length < 0) _in.fail(parse_error::bad_length);
    bytes_view body = _in.take(size_t(length < 0 ? 0 : length));
    if (!_in.ok()) return false;

    byte_reader r(body);
    out.attributes = r.i8();
    const int64_t timestamp_delta = r.varlong();
    out.offset_delta = r.varint();
    out.key = nullable_varbytes(r);
    out.value = nullable_varbytes(r);
    out.header_count = r.varint();
    if (r.ok() && (out.header_count < 0 || size_t(out.header_count) > r.remaining()))
        r.fail(parse_error::bad_length);
    const size_t headers_begin = r.position();
    if (skip_headers(r, out.header_count) && r.remaining() != 0)
        r.fail(parse_error::trailing_bytes); // the record's length must be used exactly
    if (!r.ok()) {
        _in.fail(r.error());
        return false;
    }
    out.headers_raw = body.subspan(headers_begin, r.position() - headers_begin);
    // Wrapping add: a hostile delta must not be signed overflow (UB).
    out.timestamp_ms = int64_t(uint64_t(_base_timestamp) + uint64_t(timestamp_delta));
    _read++;
    return true;
}

bool record_header_reader::next(record_header& out) noexcept {
    if (_left <= 0 || !_in.ok()) return false;
    _left--;
    const int32_t key = _in.varint();
    const bytes_view k = _in.take(size_t(key < 0 ? 0 : key));
    out.key = {reinterpret_cast<const char*>(k.data()), k.size()};
    out.value = nullable_varbytes(_in);
    return _in.ok();
}

parse_error check_records(const record_batch& batch, bytes_view records) noexcept {
    record_reader rr(batch, records);
    record rec;
    while (rr.next(rec)) {
    }
    return rr.error();
}

} // namespace sluice::dataplane::kafka
