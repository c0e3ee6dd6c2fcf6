#include "dataplane/frame_parse.h"

namespace sluice::dataplane {

namespace {

// Wire constants, kept here rather than taken from rte_ether.h/rte_ip.h so that this
// file builds and is tested without DPDK.
constexpr uint32_t eth_header_bytes = 14;
constexpr uint32_t eth_type_offset = 12;
constexpr uint32_t vlan_tag_bytes = 4;
constexpr uint32_t vlan_tags_max = 2; // 802.1Q, or 802.1ad QinQ (outer + inner)
constexpr uint16_t ether_type_ipv4 = 0x0800;
constexpr uint16_t ether_type_ipv6 = 0x86dd;
constexpr uint16_t ether_type_vlan = 0x8100;     // 802.1Q C-tag
constexpr uint16_t ether_type_qinq = 0x88a8;     // 802.1ad S-tag
constexpr uint16_t ether_type_qinq_old = 0x9100; // pre-standard S-tag, still seen on switches

constexpr uint32_t ipv4_header_bytes_min = 20;
constexpr uint16_t ipv4_fragment_mask = 0x3fff; // MF flag | 13-bit fragment offset
constexpr uint32_t ipv6_header_bytes = 40;
constexpr uint32_t ipv6_ext_headers_max = 8; // more than this is an attack, not traffic
constexpr uint32_t udp_header_bytes = 8;

constexpr uint8_t ip_proto_hop_by_hop = 0;
constexpr uint8_t ip_proto_udp = 17;
constexpr uint8_t ip_proto_routing = 43;
constexpr uint8_t ip_proto_fragment = 44;
constexpr uint8_t ip_proto_dest_options = 60;

// Byte-wise big-endian load: no alignment assumption, which a frame after a VLAN tag or an
// odd-sized IPv4 option block does not give.
inline uint16_t load_be16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

inline bool is_vlan_tpid(uint16_t ether_type) noexcept {
    return ether_type == ether_type_vlan || ether_type == ether_type_qinq ||
           ether_type == ether_type_qinq_old;
}

// `l4_bytes` is the IP payload length from the IP header, already checked to lie inside
// the frame; anything past it is Ethernet padding.
frame_verdict parse_udp(const uint8_t* udp, uint32_t l4_bytes, const port_filter& ports,
                        std::string_view* payload) noexcept {
    if (l4_bytes < udp_header_bytes) [[unlikely]]
        return frame_verdict::bad_header;
    const uint32_t udp_bytes = load_be16(udp + 4);
    if (udp_bytes < udp_header_bytes) [[unlikely]]
        return frame_verdict::bad_header;
    // A UDP length beyond the IP payload means the datagram was cut short on the way.
    if (udp_bytes > l4_bytes) [[unlikely]]
        return frame_verdict::truncated;
    if (!ports.contains(load_be16(udp + 2))) return frame_verdict::wrong_port;
    *payload = std::string_view(reinterpret_cast<const char*>(udp + udp_header_bytes),
                                udp_bytes - udp_header_bytes);
    return frame_verdict::udp_to_port;
}

frame_verdict parse_ipv4(const uint8_t* ip, uint32_t len, const port_filter& ports,
                         std::string_view* payload) noexcept {
    if (len < ipv4_header_bytes_min) [[unlikely]]
        return frame_verdict::truncated;
    const uint32_t version = ip[0] >> 4;
    const uint32_t header_bytes = (ip[0] & 0x0fu) * 4;
    const uint32_t total_bytes = load_be16(ip + 2);
    if (version != 4) [[unlikely]]
        return frame_verdict::bad_header;
    if (header_bytes < ipv4_header_bytes_min) [[unlikely]]
        return frame_verdict::bad_header;
    if (total_bytes < header_bytes) [[unlikely]]
        return frame_verdict::bad_header;
    // total >= IHL, so this also catches options that run past the frame's end.
    if (total_bytes > len) [[unlikely]]
        return frame_verdict::truncated;
    // Fragments of anything are reported as fragments: a later fragment carries no UDP
    // header, and counting the first one as UDP would hide the loss.
    if (load_be16(ip + 6) & ipv4_fragment_mask) [[unlikely]]
        return frame_verdict::fragment;
    if (ip[9] != ip_proto_udp) return frame_verdict::not_udp;
    return parse_udp(ip + header_bytes, total_bytes - header_bytes, ports, payload);
}

frame_verdict parse_ipv6(const uint8_t* ip, uint32_t len, const port_filter& ports,
                         std::string_view* payload) noexcept {
    if (len < ipv6_header_bytes) [[unlikely]]
        return frame_verdict::truncated;
    if ((ip[0] >> 4) != 6) [[unlikely]]
        return frame_verdict::bad_header;
    uint32_t left = load_be16(ip + 4);
    if (left > len - ipv6_header_bytes) [[unlikely]]
        return frame_verdict::truncated;
    uint8_t next = ip[6];
    const uint8_t* p = ip + ipv6_header_bytes;
    // The whole IP payload is inside the frame (checked above), so an extension header
    // that runs past the payload length is a header inconsistency, not a truncation.
    for (uint32_t ext = 0;; ++ext) {
        if (next == ip_proto_udp) [[likely]]
            return parse_udp(p, left, ports, payload);
        if (next == ip_proto_fragment) return frame_verdict::fragment;
        if (next != ip_proto_hop_by_hop && next != ip_proto_routing &&
            next != ip_proto_dest_options)
            return frame_verdict::not_udp;
        if (ext == ipv6_ext_headers_max) [[unlikely]]
            return frame_verdict::bad_header;
        if (left < 8) [[unlikely]]
            return frame_verdict::bad_header;
        const uint32_t ext_bytes = (uint32_t{p[1]} + 1) * 8;
        if (ext_bytes > left) [[unlikely]]
            return frame_verdict::bad_header;
        next = p[0];
        p += ext_bytes;
        left -= ext_bytes;
    }
}

} // namespace

std::string_view verdict_name(frame_verdict v) noexcept {
    switch (v) {
    case frame_verdict::udp_to_port: return "udp_to_port";
    case frame_verdict::not_ip: return "not_ip";
    case frame_verdict::not_udp: return "not_udp";
    case frame_verdict::wrong_port: return "wrong_port";
    case frame_verdict::fragment: return "fragment";
    case frame_verdict::truncated: return "truncated";
    case frame_verdict::bad_header: return "bad_header";
    case frame_verdict::count_: break;
    }
    return "unknown";
}

frame_verdict parse_frame(const uint8_t* frame, uint32_t len, const port_filter& ports,
                          std::string_view* payload) noexcept {
    if (len < eth_header_bytes) [[unlikely]]
        return frame_verdict::truncated;
    uint16_t ether_type = load_be16(frame + eth_type_offset);
    uint32_t offset = eth_header_bytes;
    // A third tag is left as a non-IP EtherType: sluice does not follow deeper stacks.
    for (uint32_t tags = 0; tags < vlan_tags_max && is_vlan_tpid(ether_type); ++tags) {
        if (len - offset < vlan_tag_bytes) [[unlikely]]
            return frame_verdict::truncated;
        ether_type = load_be16(frame + offset + 2);
        offset += vlan_tag_bytes;
    }
    if (ether_type == ether_type_ipv4) [[likely]]
        return parse_ipv4(frame + offset, len - offset, ports, payload);
    if (ether_type == ether_type_ipv6)
        return parse_ipv6(frame + offset, len - offset, ports, payload);
    return frame_verdict::not_ip;
}

} // namespace sluice::dataplane
