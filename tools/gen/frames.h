#pragma once
// Ethernet frame builders for sluice-gen's pcap: UDP over IPv4/IPv6 with an optional
// 802.1Q tag, and the frames sluice must count as ignored (ARP, TCP, ICMP, IPv4
// fragments). Lengths and checksums are filled in as a NIC would see them.
#include <cstdint>
#include <string_view>
#include <vector>

namespace sluice::tools {

struct frame_addr {
    bool ipv6 = false;
    bool vlan = false;
    uint16_t vlan_id = 100;
    uint8_t src_host = 1; // 10.0.0.<src_host> or fd00::<src_host>; the sink is .100 / ::100
};

inline constexpr size_t eth_header_bytes = 14;
inline constexpr size_t vlan_tag_bytes = 4;
inline constexpr size_t ipv4_header_bytes = 20;
inline constexpr size_t ipv6_header_bytes = 40;
inline constexpr size_t udp_header_bytes = 8;
// The largest headers a datagram frame gets: Ethernet + VLAN + IPv6 + UDP.
inline constexpr size_t datagram_headers_max =
    eth_header_bytes + vlan_tag_bytes + ipv6_header_bytes + udp_header_bytes;

// Each builder replaces `out` with one complete frame.
void build_udp_frame(std::vector<uint8_t>& out, const frame_addr& addr, uint16_t src_port,
                     uint16_t dst_port, uint16_t ip_id, std::string_view payload);
void build_tcp_frame(std::vector<uint8_t>& out, const frame_addr& addr, uint16_t src_port,
                     uint16_t dst_port, uint16_t ip_id, std::string_view payload);
void build_icmp_echo_frame(std::vector<uint8_t>& out, const frame_addr& addr, uint16_t ip_id,
                           uint16_t sequence);
void build_arp_request_frame(std::vector<uint8_t>& out, bool vlan, uint8_t src_host);
// An IPv4 fragment of a UDP datagram to `dst_port`: the first one (MF set, offset 0,
// the UDP header inside) or a later one (offset_8 > 0 in 8-byte units, MF clear).
void build_ipv4_fragment_frame(std::vector<uint8_t>& out, const frame_addr& addr, bool first,
                               uint16_t offset_8, uint16_t src_port, uint16_t dst_port,
                               uint16_t ip_id, std::string_view payload);

// RFC 1071 one's-complement sum, folded, not yet inverted; `initial` chains calls.
uint32_t ones_complement_add(const uint8_t* data, size_t len, uint32_t initial) noexcept;
uint16_t ones_complement_fold(uint32_t sum) noexcept;

} // namespace sluice::tools
