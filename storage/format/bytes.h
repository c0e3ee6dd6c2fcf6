#pragma once
// Byte helpers of the format: little-endian loads and stores, LEB128 varints, zigzag,
// validity bitmaps. Inline: the encoders and decoders call them per value.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sluice::storage::format {

template <typename T> inline void put(uint8_t* p, T v) noexcept {
    std::memcpy(p, &v, sizeof(T));
}
template <typename T> inline T get(const uint8_t* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

inline size_t put_varint(uint8_t* p, uint64_t v) noexcept {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = uint8_t(v) | 0x80;
        v >>= 7;
    }
    p[n++] = uint8_t(v);
    return n;
}

inline size_t varint_size(uint64_t v) noexcept {
    // 1 + floor(log2(v) / 7), with v|1 so that 0 takes one byte.
    return size_t(63 - std::countl_zero(v | 1)) / 7 + 1;
}

// Bounds-checked varint read: false on truncation or more than 10 bytes.
inline bool get_varint(const uint8_t*& p, const uint8_t* end, uint64_t& v) noexcept {
    v = 0;
    for (unsigned shift = 0; shift < 70 && p < end; shift += 7) {
        uint8_t b = *p++;
        v |= uint64_t(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

inline uint64_t zigzag(int64_t v) noexcept {
    return (uint64_t(v) << 1) ^ uint64_t(v >> 63);
}
inline int64_t unzigzag(uint64_t v) noexcept {
    return int64_t(v >> 1) ^ -int64_t(v & 1);
}

// A validity bitmap: bit r % 8 of byte r / 8 is set when row r has a value.
constexpr size_t bitmap_bytes(uint32_t rows) noexcept {
    return (size_t(rows) + 7) / 8;
}

} // namespace sluice::storage::format
