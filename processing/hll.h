#pragma once
// HyperLogLog distinct counting (Flajolet et al. 2007) over dense 8-bit registers, with
// 64-bit hashes (so no large-range correction) and linear counting for small
// cardinalities. Register arrays are plain bytes owned by the caller (a window cell's
// aggregate state); merging is a register-wise max, so partials merge in any order to
// the same registers. Standard error 1.04 / sqrt(2^precision): 0.81% at precision 14.
#include <cstdint>
#include <cstring>

namespace sluice::processing::hll {

inline constexpr uint32_t precision_min = 4;
inline constexpr uint32_t precision_max = 16;
inline constexpr uint32_t precision_default = 14;

constexpr uint32_t registers(uint32_t precision) noexcept { return 1u << precision; }

// The register index is the hash's top `precision` bits; its rank is 1 + the number of
// leading zeros of the remaining bits (64 - precision + 1 when they are all zero).
inline void add(uint8_t* regs, uint32_t precision, uint64_t hash) noexcept {
    const uint32_t index = uint32_t(hash >> (64 - precision));
    const uint64_t rest = hash << precision;
    const uint8_t rank =
        rest == 0 ? uint8_t(64 - precision + 1) : uint8_t(__builtin_clzll(rest) + 1);
    if (rank > regs[index]) regs[index] = rank;
}

inline void merge(uint8_t* dst, const uint8_t* src, uint32_t precision) noexcept {
    const uint32_t m = registers(precision);
    for (uint32_t i = 0; i < m; ++i)
        if (src[i] > dst[i]) dst[i] = src[i];
}

// The cardinality estimate (not rounded).
double estimate(const uint8_t* regs, uint32_t precision) noexcept;

} // namespace sluice::processing::hll
