#pragma once
// Kafka's wire integers are big-endian and unaligned in the frame: one home for reading
// and writing them, on DPDK's byte-order conversions (a load of the bytes, then
// rte_be_to_cpu_*, which compiles to one bswap on x86).
#include <cstdint>
#include <cstring>

#include <rte_byteorder.h>

namespace sluice::dataplane::kafka {

inline uint16_t load_be16(const uint8_t* p) noexcept {
    rte_be16_t v;
    std::memcpy(&v, p, sizeof v);
    return rte_be_to_cpu_16(v);
}
inline uint32_t load_be32(const uint8_t* p) noexcept {
    rte_be32_t v;
    std::memcpy(&v, p, sizeof v);
    return rte_be_to_cpu_32(v);
}
inline uint64_t load_be64(const uint8_t* p) noexcept {
    rte_be64_t v;
    std::memcpy(&v, p, sizeof v);
    return rte_be_to_cpu_64(v);
}
inline void store_be32(uint8_t* p, uint32_t v) noexcept {
    const rte_be32_t be = rte_cpu_to_be_32(v);
    std::memcpy(p, &be, sizeof be);
}

} // namespace sluice::dataplane::kafka
