#pragma once
// What the Kafka wire tests share (kafka_codec_test.cpp, kafka_fetch_test.cpp): a tiny
// big-endian writer for hand-built frames (an encoder written from
// shared/kafka-protocol.md, independent of the codec), request frames, headers parsed from
// frames that live as long as the test program, and a bitwise CRC-32C oracle.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/kafka/kafka_codec.h"

namespace sluice::dataplane::kafka::test {

using bytes = std::vector<uint8_t>;

struct wire {
    bytes b;
    wire& u8(uint8_t v) {
        b.push_back(v);
        return *this;
    }
    wire& i16(int16_t v) { return u8(uint8_t(uint16_t(v) >> 8)).u8(uint8_t(v)); }
    wire& i32(int32_t v) { return i16(int16_t(uint32_t(v) >> 16)).i16(int16_t(v)); }
    wire& i64(int64_t v) { return i32(int32_t(uint64_t(v) >> 32)).i32(int32_t(v)); }
    wire& raw(const void* p, size_t n) {
        b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
        return *this;
    }
    wire& raw(const bytes& v) { return raw(v.data(), v.size()); }
    wire& str(std::string_view s) { return i16(int16_t(s.size())).raw(s.data(), s.size()); }
    wire& null_str() { return i16(-1); }
    wire& blob(const bytes& v) { return i32(int32_t(v.size())).raw(v); }
    wire& uvar(uint64_t v) {
        while (v >= 0x80) {
            u8(uint8_t(v | 0x80));
            v >>= 7;
        }
        return u8(uint8_t(v));
    }
    wire& var(int64_t v) { return uvar((uint64_t(v) << 1) ^ uint64_t(v >> 63)); }
    wire& cstr(std::string_view s) { return uvar(s.size() + 1).raw(s.data(), s.size()); }
    wire& varbytes(const std::optional<std::string>& s) {
        if (!s) return var(-1);
        return var(int64_t(s->size())).raw(s->data(), s->size());
    }
};

inline std::string to_string(bytes_view b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Bitwise CRC-32C: an oracle independent of the codec's DPDK-based one.
inline uint32_t crc32c_reference(const uint8_t* p, size_t n) {
    uint32_t crc = 0xFFFFFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78 & (0 - (crc & 1)));
    }
    return ~crc;
}

// Request frame (no size prefix): header v1, or v2 when `flexible`.
inline bytes request(int16_t key, int16_t version, int32_t correlation, const bytes& body,
                     bool flexible = false, std::optional<std::string> client = "test-client") {
    wire w;
    w.i16(key).i16(version).i32(correlation);
    if (client)
        w.str(*client);
    else
        w.null_str();
    if (flexible) w.u8(0);
    w.raw(body);
    return w.b;
}

// Parses a frame kept alive for the whole test program: what the codec hands out points
// into it.
inline request_header header_of(bytes frame) {
    static std::deque<bytes> frames;
    frames.push_back(std::move(frame));
    request_header h;
    EXPECT_EQ(parse_request_header(frames.back(), h), parse_error::none);
    return h;
}

} // namespace sluice::dataplane::kafka::test
