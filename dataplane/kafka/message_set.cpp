// Legacy message sets, magic 0 and 1 (kafka_codec.h): what Produce v0-v2 carry.
#include <zlib.h>

#include "dataplane/kafka/kafka_codec.h"

namespace sluice::dataplane::kafka {

namespace {

constexpr size_t log_overhead = 12;     // offset i64 + message_size i32
constexpr size_t magic_offset = 16;     // from the start of a message (or of a RecordBatch)
constexpr int32_t message_min_v0 = 14;  // crc 4, magic 1, attributes 1, key len 4, value len 4
constexpr int32_t message_min_v1 = 22;  // + timestamp 8
constexpr int8_t legacy_codec_max = int8_t(compression::lz4); // zstd needs RecordBatch v2

} // namespace

uint32_t crc32_ieee(bytes_view data) noexcept {
    uLong crc = crc32(0L, Z_NULL, 0);
    const uint8_t* p = data.data();
    size_t n = data.size();
    while (n > 0) { // zlib takes uInt lengths
        const uInt chunk = n > (1u << 30) ? (1u << 30) : uInt(n);
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return uint32_t(crc);
}

bool is_legacy_message_set(bytes_view record_set) noexcept {
    return record_set.size() > magic_offset &&
           (record_set[magic_offset] == 0 || record_set[magic_offset] == 1);
}

bool legacy_message_reader::next(legacy_message& out) noexcept {
    if (_error != parse_error::none || _pos == _in.size()) return false;
    const bytes_view rest = _in.subspan(_pos);
    byte_reader r(rest);
    const int64_t offset = r.i64();
    const int32_t size = r.i32();
    // A message cut short: inside a wrapper's value it is corrupt; at the end of an outer set
    // it is the partial trailing message brokers ignore (counted in partial_bytes()).
    auto cut_short = [&]() noexcept {
        if (_inner) {
            _error = parse_error::truncated;
        } else {
            _partial = rest.size();
            _pos = _in.size();
        }
        return false;
    };
    if (!r.ok()) return cut_short(); // fewer than 12 bytes left
    if (size < message_min_v0) {
        _error = parse_error::bad_length;
        return false;
    }
    if (size_t(size) > r.remaining()) return cut_short(); // a partial trailing message
    const bytes_view body = r.take(size_t(size));
    byte_reader m(body);
    const uint32_t crc = uint32_t(m.i32());
    out = legacy_message{};
    out.offset = offset;
    out.magic = m.i8();
    out.attributes = m.i8();
    parse_error e = parse_error::none;
    if (out.magic != 0 && out.magic != 1)
        e = parse_error::bad_magic;
    else if (out.magic == 1 && size < message_min_v1)
        e = parse_error::bad_length;
    else if (crc32_ieee(body.subspan(4)) != crc)
        e = parse_error::bad_crc;
    if (e == parse_error::none) {
        if (out.magic == 1) out.timestamp_ms = m.i64();
        out.key = m.nullable_bytes();
        out.value = m.nullable_bytes();
        if (!m.ok())
            e = m.error() == parse_error::truncated ? parse_error::bad_length : m.error();
        else if (m.remaining() != 0)
            e = parse_error::trailing_bytes;
        else if ((out.attributes & 0x7) > legacy_codec_max)
            e = parse_error::unsupported_compression;
        else if (out.codec() != compression::none && _inner)
            e = parse_error::nested_compression;
        else if (out.codec() != compression::none && !out.value)
            e = parse_error::corrupt_compressed; // a wrapper without its nested set
    }
    if (e != parse_error::none) {
        _error = e;
        return false;
    }
    out.bytes = rest.first(log_overhead + size_t(size));
    _pos += out.bytes.size();
    return true;
}

parse_error check_legacy_message_set(bytes_view message_set, bool inner) noexcept {
    legacy_message_reader r(message_set, inner);
    legacy_message m;
    while (r.next(m)) {
    }
    return r.error();
}

parse_error legacy_wrapper_records(const legacy_message& wrapper, decompressor& d,
                                   std::span<uint8_t> scratch, bytes_view& inner) noexcept {
    inner = {};
    if (wrapper.codec() == compression::none || !wrapper.value) return parse_error::corrupt_compressed;
    size_t n = 0;
    const parse_error e =
        wrapper.magic == 0 && wrapper.codec() == compression::lz4
            ? d.decompress_lz4_ignoring_header_checksum(*wrapper.value, scratch, n)
            : d.decompress(wrapper.codec(), *wrapper.value, scratch, n);
    if (e == parse_error::none) inner = scratch.first(n);
    return e;
}

} // namespace sluice::dataplane::kafka
