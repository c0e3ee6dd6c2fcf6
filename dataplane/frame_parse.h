#pragma once
// Frame classification for the RX path: Ethernet II -> (802.1Q/802.1ad)* -> IPv4/IPv6 ->
// UDP to one of the configured ports. DPDK-free on purpose: it works on any contiguous
// frame (a single-segment mbuf, a linearised chain, a pcap record, a test vector).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::dataplane {

// Why a frame was (or was not) handed on. Every value except udp_to_port is a named,
// counted drop (`ignored_packets` per reason).
enum class frame_verdict : uint8_t {
    udp_to_port, // a UDP datagram to a configured port: *payload is set
    not_ip,      // EtherType is neither IPv4 nor IPv6 (ARP, LLDP, 3+ VLAN tags, ...)
    not_udp,     // IP, but the upper protocol is not UDP
    wrong_port,  // UDP to a port that is not configured
    fragment,    // IPv4 MF/offset or IPv6 Fragment header: sluice does not reassemble
    truncated,   // the frame ends before what its headers announce
    bad_header,  // headers contradict themselves (version, IHL, lengths)
    count_,
};

inline constexpr size_t frame_verdict_count = static_cast<size_t>(frame_verdict::count_);

// Stable lower-case names, used as counter labels.
std::string_view verdict_name(frame_verdict v) noexcept;

// The set of UDP destination ports sluice listens on: a 65536-bit bitset (8 KiB), so a
// lookup is one load and one bit test whatever the number of ports.
class port_filter {
  public:
    void add(uint16_t port) noexcept { _bits[port >> 6] |= uint64_t{1} << (port & 63); }
    bool contains(uint16_t port) const noexcept { return (_bits[port >> 6] >> (port & 63)) & 1; }

  private:
    uint64_t _bits[65536 / 64] = {};
};

/// Classifies one frame. On udp_to_port, *payload is the UDP payload, trimmed to the UDP
/// length (Ethernet padding removed); otherwise *payload is left unchanged. Reads nothing
/// outside [frame, frame + len). No allocation, no syscall: safe on the hot path.
frame_verdict parse_frame(const uint8_t* frame, uint32_t len, const port_filter& ports,
                          std::string_view* payload) noexcept;

} // namespace sluice::dataplane
