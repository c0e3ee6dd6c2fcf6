#pragma once
// Frame-of-reference bit-packing of 64-bit values (as Parquet's DELTA_BINARY_PACKED and
// FastPFor pack their miniblocks), the integer stream of delta_bitpack_i64 and of
// ref_packed_string's skeleton lengths. Values go in blocks of 64 (the last one shorter):
// per block a varint zz(base) (base = the block's smallest value, compared as signed), a
// u8 width w (0..64), then ceil(count * w / 8) bytes holding each value - base (wrapping)
// in w bits, least significant bit first. Packing and unpacking are branch-free per
// value, through a block's 64-bit words on the stack.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "storage/format/bytes.h"

namespace sluice::storage::format::bitpack {

inline constexpr uint32_t block_values = 64;

// The most bytes pack() writes for n values (full-width blocks and their headers).
constexpr size_t bytes_max(size_t n) noexcept {
    return (n + block_values - 1) / block_values * (10 + 1 + 8 * block_values);
}

namespace detail {

// Packs n (<= 64) values minus base at width w into out. The bits gather in whole 64-bit
// words on the stack (a value at bit offset i * w lands in word i * w / 64 and, when it
// straddles, the next), so there is no branch per value and no partly overlapping
// store followed by a load.
inline size_t pack_block(const uint64_t* v, uint32_t n, uint64_t base, unsigned w,
                         uint8_t* out) noexcept {
    const size_t bytes = (size_t(n) * w + 7) / 8;
    if (w == 0) return bytes;
    uint64_t words[block_values + 1] = {};
    const uint64_t mask = w == 64 ? ~uint64_t(0) : (uint64_t(1) << w) - 1;
    for (uint32_t i = 0; i < n; ++i) {
        const size_t bit = size_t(i) * w;
        const unsigned s = bit % 64;
        const uint64_t x = (v[i] - base) & mask;
        words[bit / 64] |= x << s;
        words[bit / 64 + 1] |= (x >> 1) >> (63 - s); // the bits past the word; 0 when s == 0
    }
    std::memcpy(out, words, bytes);
    return bytes;
}

} // namespace detail

// Packs the n values value(0), value(1), ... at out; returns the bytes used (bytes_max(n)
// must fit at out). Values are taken a block at a time into a local array, so callers
// can pack deltas or lengths without a buffer of their own.
template <typename Value> inline size_t pack(size_t n, Value value, uint8_t* out) noexcept {
    size_t used = 0;
    uint64_t v[block_values];
    for (size_t at = 0; at < n; at += block_values) {
        const uint32_t m = uint32_t(std::min<size_t>(block_values, n - at));
        for (uint32_t i = 0; i < m; ++i)
            v[i] = value(at + i);
        int64_t lo = int64_t(v[0]), hi = lo;
        for (uint32_t i = 1; i < m; ++i) {
            lo = std::min(lo, int64_t(v[i]));
            hi = std::max(hi, int64_t(v[i]));
        }
        const uint64_t range = uint64_t(hi) - uint64_t(lo);
        const unsigned w = unsigned(64 - std::countl_zero(range));
        used += put_varint(out + used, zigzag(lo));
        out[used++] = uint8_t(w);
        used += detail::pack_block(v, m, uint64_t(lo), w, out + used);
    }
    return used;
}

// Unpacks n values from [p, end) into v, advancing p; nullptr or what is wrong.
inline const char* unpack(const uint8_t*& p, const uint8_t* end, uint64_t* v, size_t n) noexcept {
    for (size_t at = 0; at < n; at += block_values) {
        const uint32_t m = uint32_t(std::min<size_t>(block_values, n - at));
        uint64_t zbase;
        if (!get_varint(p, end, zbase) || p >= end) return "bit-packed block header truncated";
        const uint64_t base = uint64_t(unzigzag(zbase));
        const unsigned w = *p++;
        if (w > 64) return "bit width out of range";
        const size_t bytes = (size_t(m) * w + 7) / 8;
        if (uint64_t(end - p) < bytes) return "bit-packed block truncated";
        const uint64_t mask = w == 64 ? ~uint64_t(0) : (uint64_t(1) << w) - 1;
        uint64_t words[block_values + 1] = {};
        std::memcpy(words, p, bytes);
        uint64_t* out = v + at;
        for (uint32_t i = 0; i < m; ++i) {
            const size_t bit = size_t(i) * w;
            const unsigned s = bit % 64;
            const uint64_t x = (words[bit / 64] >> s) | ((words[bit / 64 + 1] << 1) << (63 - s));
            out[i] = base + (x & mask);
        }
        p += bytes;
    }
    return nullptr;
}

} // namespace sluice::storage::format::bitpack
