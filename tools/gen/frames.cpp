#include "tools/gen/frames.h"

#include <array>
#include <cstring>

#include "base/assert.h"

namespace sluice::tools {

namespace {

constexpr uint16_t ethertype_ipv4 = 0x0800;
constexpr uint16_t ethertype_ipv6 = 0x86dd;
constexpr uint16_t ethertype_arp = 0x0806;
constexpr uint16_t ethertype_vlan = 0x8100;
constexpr uint8_t proto_icmp = 1;
constexpr uint8_t proto_tcp = 6;
constexpr uint8_t proto_udp = 17;
constexpr uint8_t dst_host = 100;

void put16(std::vector<uint8_t>& out, uint16_t v) {
    out.push_back(uint8_t(v >> 8));
    out.push_back(uint8_t(v));
}

void set16(std::vector<uint8_t>& out, size_t at, uint16_t v) {
    out[at] = uint8_t(v >> 8);
    out[at + 1] = uint8_t(v);
}

void put_mac(std::vector<uint8_t>& out, uint8_t host) {
    const uint8_t mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, host};
    out.insert(out.end(), mac, mac + 6);
}

void put_ethernet(std::vector<uint8_t>& out, bool vlan, uint16_t vlan_id, uint16_t ethertype,
                  uint8_t src_host) {
    put_mac(out, dst_host);
    put_mac(out, src_host);
    if (vlan) {
        put16(out, ethertype_vlan);
        put16(out, vlan_id & 0x0fff);
    }
    put16(out, ethertype);
}

std::array<uint8_t, 4> ipv4_of(uint8_t host) {
    return {10, 0, 0, host};
}

std::array<uint8_t, 16> ipv6_of(uint8_t host) {
    std::array<uint8_t, 16> a{};
    a[0] = 0xfd;
    a[15] = host;
    return a;
}

// Appends an IPv4 header for `l4_bytes` of payload; returns where it starts.
size_t put_ipv4(std::vector<uint8_t>& out, uint8_t proto, size_t l4_bytes, uint16_t ip_id,
                uint16_t flags_fragment, uint8_t src_host) {
    SLUICE_ASSERT(ipv4_header_bytes + l4_bytes <= 0xffff);
    const size_t at = out.size();
    out.push_back(0x45); // version 4, IHL 5
    out.push_back(0);
    put16(out, uint16_t(ipv4_header_bytes + l4_bytes));
    put16(out, ip_id);
    put16(out, flags_fragment);
    out.push_back(64); // TTL
    out.push_back(proto);
    put16(out, 0); // checksum, below
    const auto src = ipv4_of(src_host);
    const auto dst = ipv4_of(dst_host);
    out.insert(out.end(), src.begin(), src.end());
    out.insert(out.end(), dst.begin(), dst.end());
    const uint16_t sum = ones_complement_fold(ones_complement_add(&out[at], ipv4_header_bytes, 0));
    set16(out, at + 10, uint16_t(~sum));
    return at;
}

size_t put_ipv6(std::vector<uint8_t>& out, uint8_t next_header, size_t l4_bytes, uint8_t src_host) {
    SLUICE_ASSERT(l4_bytes <= 0xffff);
    const size_t at = out.size();
    put16(out, 0x6000); // version 6, traffic class and flow label 0
    put16(out, 0);
    put16(out, uint16_t(l4_bytes));
    out.push_back(next_header);
    out.push_back(64); // hop limit
    const auto src = ipv6_of(src_host);
    const auto dst = ipv6_of(dst_host);
    out.insert(out.end(), src.begin(), src.end());
    out.insert(out.end(), dst.begin(), dst.end());
    return at;
}

// The L4 checksum over the IP pseudo-header and the segment at `l4_at`.
uint16_t l4_checksum(const std::vector<uint8_t>& out, size_t ip_at, bool ipv6, uint8_t proto,
                     size_t l4_at) {
    const size_t l4_bytes = out.size() - l4_at;
    uint32_t sum = 0;
    uint8_t pseudo[8];
    if (ipv6) {
        sum = ones_complement_add(&out[ip_at + 8], 32, 0); // source and destination
        const uint32_t len = uint32_t(l4_bytes);
        const uint8_t p[8] = {uint8_t(len >> 24),
                              uint8_t(len >> 16),
                              uint8_t(len >> 8),
                              uint8_t(len),
                              0,
                              0,
                              0,
                              proto};
        std::memcpy(pseudo, p, 8);
        sum = ones_complement_add(pseudo, 8, sum);
    } else {
        sum = ones_complement_add(&out[ip_at + 12], 8, 0);
        const uint8_t p[4] = {0, proto, uint8_t(l4_bytes >> 8), uint8_t(l4_bytes)};
        std::memcpy(pseudo, p, 4);
        sum = ones_complement_add(pseudo, 4, sum);
    }
    sum = ones_complement_add(&out[l4_at], l4_bytes, sum);
    const uint16_t c = uint16_t(~ones_complement_fold(sum));
    // UDP sends a computed zero as all ones (zero means "no checksum").
    return c == 0 && proto == proto_udp ? 0xffff : c;
}

size_t put_ip(std::vector<uint8_t>& out, const frame_addr& addr, uint8_t proto, size_t l4_bytes,
              uint16_t ip_id) {
    return addr.ipv6 ? put_ipv6(out, proto, l4_bytes, addr.src_host)
                     : put_ipv4(out, proto, l4_bytes, ip_id, 0x4000 /* DF */, addr.src_host);
}

void put_payload(std::vector<uint8_t>& out, std::string_view payload) {
    out.insert(out.end(), payload.begin(), payload.end());
}

} // namespace

uint32_t ones_complement_add(const uint8_t* data, size_t len, uint32_t sum) noexcept {
    size_t i = 0;
    for (; i + 1 < len; i += 2) {
        sum += uint32_t(data[i]) << 8 | data[i + 1];
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if (i < len) {
        sum += uint32_t(data[i]) << 8;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum;
}

uint16_t ones_complement_fold(uint32_t sum) noexcept {
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(sum);
}

void build_udp_frame(std::vector<uint8_t>& out, const frame_addr& addr, uint16_t src_port,
                     uint16_t dst_port, uint16_t ip_id, std::string_view payload) {
    out.clear();
    const size_t udp_bytes = udp_header_bytes + payload.size();
    put_ethernet(out, addr.vlan, addr.vlan_id, addr.ipv6 ? ethertype_ipv6 : ethertype_ipv4,
                 addr.src_host);
    const size_t ip_at = put_ip(out, addr, proto_udp, udp_bytes, ip_id);
    const size_t udp_at = out.size();
    put16(out, src_port);
    put16(out, dst_port);
    put16(out, uint16_t(udp_bytes));
    put16(out, 0);
    put_payload(out, payload);
    set16(out, udp_at + 6, l4_checksum(out, ip_at, addr.ipv6, proto_udp, udp_at));
}

void build_tcp_frame(std::vector<uint8_t>& out, const frame_addr& addr, uint16_t src_port,
                     uint16_t dst_port, uint16_t ip_id, std::string_view payload) {
    out.clear();
    const size_t tcp_bytes = 20 + payload.size();
    put_ethernet(out, addr.vlan, addr.vlan_id, addr.ipv6 ? ethertype_ipv6 : ethertype_ipv4,
                 addr.src_host);
    const size_t ip_at = put_ip(out, addr, proto_tcp, tcp_bytes, ip_id);
    const size_t tcp_at = out.size();
    put16(out, src_port);
    put16(out, dst_port);
    put16(out, 0x1000); // sequence number
    put16(out, ip_id);
    put16(out, 0); // acknowledgment number
    put16(out, 1);
    put16(out, 0x5018); // data offset 5 words; flags PSH|ACK
    put16(out, 65535);  // window
    put16(out, 0);      // checksum, below
    put16(out, 0);      // urgent pointer
    put_payload(out, payload);
    set16(out, tcp_at + 16, l4_checksum(out, ip_at, addr.ipv6, proto_tcp, tcp_at));
}

void build_icmp_echo_frame(std::vector<uint8_t>& out, const frame_addr& addr, uint16_t ip_id,
                           uint16_t sequence) {
    out.clear();
    static constexpr std::string_view data = "sluice-gen ping";
    const size_t icmp_bytes = 8 + data.size();
    put_ethernet(out, addr.vlan, addr.vlan_id, ethertype_ipv4, addr.src_host);
    put_ipv4(out, proto_icmp, icmp_bytes, ip_id, 0x4000, addr.src_host);
    const size_t icmp_at = out.size();
    out.push_back(8); // echo request
    out.push_back(0);
    put16(out, 0); // checksum, below
    put16(out, 0x5147);
    put16(out, sequence);
    put_payload(out, data);
    const uint16_t sum = ones_complement_fold(ones_complement_add(&out[icmp_at], icmp_bytes, 0));
    set16(out, icmp_at + 2, uint16_t(~sum));
}

void build_arp_request_frame(std::vector<uint8_t>& out, bool vlan, uint8_t src_host) {
    out.clear();
    // Broadcast destination, unlike the unicast frames above.
    out.insert(out.end(), 6, 0xff);
    put_mac(out, src_host);
    if (vlan) {
        put16(out, ethertype_vlan);
        put16(out, 100);
    }
    put16(out, ethertype_arp);
    put16(out, 1);      // hardware: Ethernet
    put16(out, 0x0800); // protocol: IPv4
    out.push_back(6);
    out.push_back(4);
    put16(out, 1); // request
    put_mac(out, src_host);
    const auto spa = ipv4_of(src_host);
    out.insert(out.end(), spa.begin(), spa.end());
    out.insert(out.end(), 6, 0x00);
    const auto tpa = ipv4_of(dst_host);
    out.insert(out.end(), tpa.begin(), tpa.end());
    out.insert(out.end(), 18, 0x00); // pad to the 60-byte Ethernet minimum
}

void build_ipv4_fragment_frame(std::vector<uint8_t>& out, const frame_addr& addr, bool first,
                               uint16_t offset_8, uint16_t src_port, uint16_t dst_port,
                               uint16_t ip_id, std::string_view payload) {
    SLUICE_ASSERT(first || offset_8 > 0);
    out.clear();
    put_ethernet(out, addr.vlan, addr.vlan_id, ethertype_ipv4, addr.src_host);
    if (first) {
        // The UDP header claims the whole (never completed) datagram: twice this part.
        const size_t part = udp_header_bytes + payload.size();
        put_ipv4(out, proto_udp, part, ip_id, 0x2000 /* MF */, addr.src_host);
        put16(out, src_port);
        put16(out, dst_port);
        put16(out, uint16_t(2 * part));
        put16(out, 0); // checksum unknown until the last fragment: none
    } else {
        put_ipv4(out, proto_udp, payload.size(), ip_id, uint16_t(offset_8 & 0x1fff), addr.src_host);
    }
    put_payload(out, payload);
}

} // namespace sluice::tools
