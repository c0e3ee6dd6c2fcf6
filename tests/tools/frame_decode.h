#pragma once
// A small, independent Ethernet/IP/UDP decoder for checking sluice-gen's frames: it
// verifies lengths and checksums and says what a receiver would make of the frame.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "tools/gen/frames.h"

namespace sluice::tools::test {

struct decoded_frame {
    uint16_t ethertype = 0; // after any VLAN tag
    bool vlan = false;
    bool ipv6 = false;
    uint8_t l4_proto = 0;
    bool fragment = false; // IPv4 MF set or offset != 0
    bool checksums_ok = true;
    bool lengths_ok = true;
    std::optional<uint16_t> udp_dst_port;
    std::string udp_payload;
};

inline uint16_t rd16(std::span<const uint8_t> b, size_t at) {
    return uint16_t(b[at] << 8 | b[at + 1]);
}

inline decoded_frame decode_frame(std::span<const uint8_t> b) {
    decoded_frame d;
    size_t at = 12;
    d.ethertype = rd16(b, at);
    at += 2;
    if (d.ethertype == 0x8100) {
        d.vlan = true;
        d.ethertype = rd16(b, at + 2);
        at += 4;
    }
    size_t l4_at = 0;
    size_t l4_len = 0;
    uint32_t pseudo = 0;
    if (d.ethertype == 0x0800) {
        const size_t ihl = size_t(b[at] & 0xf) * 4;
        const uint16_t total = rd16(b, at + 2);
        d.lengths_ok = at + total == b.size();
        d.checksums_ok = ones_complement_fold(ones_complement_add(&b[at], ihl, 0)) == 0xffff;
        const uint16_t frag = rd16(b, at + 6);
        d.fragment = (frag & 0x2000) != 0 || (frag & 0x1fff) != 0;
        d.l4_proto = b[at + 9];
        l4_at = at + ihl;
        l4_len = total - ihl;
        pseudo = ones_complement_add(&b[at + 12], 8, 0);
        const uint8_t p[4] = {0, d.l4_proto, uint8_t(l4_len >> 8), uint8_t(l4_len)};
        pseudo = ones_complement_add(p, 4, pseudo);
    } else if (d.ethertype == 0x86dd) {
        d.ipv6 = true;
        l4_len = rd16(b, at + 4);
        d.l4_proto = b[at + 6];
        l4_at = at + 40;
        d.lengths_ok = l4_at + l4_len == b.size();
        pseudo = ones_complement_add(&b[at + 8], 32, 0);
        const uint8_t p[8] = {0, 0, uint8_t(l4_len >> 8), uint8_t(l4_len), 0, 0, 0, d.l4_proto};
        pseudo = ones_complement_add(p, 8, pseudo);
    } else {
        return d;
    }
    if (d.l4_proto == 17 && !d.fragment) {
        const uint16_t udp_len = rd16(b, l4_at + 4);
        d.lengths_ok = d.lengths_ok && udp_len == l4_len;
        const bool has_sum = rd16(b, l4_at + 6) != 0;
        if (has_sum)
            d.checksums_ok =
                d.checksums_ok &&
                ones_complement_fold(ones_complement_add(&b[l4_at], l4_len, pseudo)) == 0xffff;
        else
            d.checksums_ok = d.checksums_ok && !d.ipv6; // IPv6 requires a UDP checksum
        d.udp_dst_port = rd16(b, l4_at + 2);
        d.udp_payload.assign(reinterpret_cast<const char*>(&b[l4_at + 8]), udp_len - 8);
    } else if (d.l4_proto == 6) {
        d.checksums_ok =
            d.checksums_ok &&
            ones_complement_fold(ones_complement_add(&b[l4_at], l4_len, pseudo)) == 0xffff;
    }
    return d;
}

} // namespace sluice::tools::test
