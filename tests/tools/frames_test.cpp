#include "tools/gen/frames.h"

#include <gtest/gtest.h>

#include "tests/tools/frame_decode.h"

namespace sluice::tools {
namespace {

using test::decode_frame;

TEST(Frames, UdpOverIpv4AndIpv6WithAndWithoutVlanRoundTrip) {
    const std::string payload = "{\"timestamp\":1}\n{\"timestamp\":2}";
    for (bool ipv6 : {false, true}) {
        for (bool vlan : {false, true}) {
            // Odd and even payload lengths exercise the checksum's last byte.
            for (const std::string& p : {payload, payload + "x"}) {
                std::vector<uint8_t> f;
                build_udp_frame(f, frame_addr{ipv6, vlan, 100, 3}, 40003, 9000, 7, p);
                EXPECT_EQ(f.size(), eth_header_bytes + (vlan ? vlan_tag_bytes : 0) +
                                        (ipv6 ? ipv6_header_bytes : ipv4_header_bytes) +
                                        udp_header_bytes + p.size());
                const auto d = decode_frame(f);
                EXPECT_EQ(d.vlan, vlan);
                EXPECT_EQ(d.ipv6, ipv6);
                EXPECT_EQ(d.l4_proto, 17);
                EXPECT_FALSE(d.fragment);
                EXPECT_TRUE(d.checksums_ok);
                EXPECT_TRUE(d.lengths_ok);
                EXPECT_EQ(d.udp_dst_port, 9000);
                EXPECT_EQ(d.udp_payload, p);
            }
        }
    }
}

TEST(Frames, CorruptedByteBreaksTheChecksums) {
    std::vector<uint8_t> f;
    build_udp_frame(f, frame_addr{}, 1, 9000, 1, "payload");
    f[eth_header_bytes + 8] ^= 1; // IPv4 TTL
    EXPECT_FALSE(decode_frame(f).checksums_ok);
    build_udp_frame(f, frame_addr{true, false, 0, 1}, 1, 9000, 1, "payload");
    f.back() ^= 1;
    EXPECT_FALSE(decode_frame(f).checksums_ok);
}

TEST(Frames, IgnoredKindsAreNotUdpDatagrams) {
    std::vector<uint8_t> f;
    build_arp_request_frame(f, false, 2);
    EXPECT_EQ(f.size(), 60u);
    EXPECT_EQ(decode_frame(f).ethertype, 0x0806);

    build_tcp_frame(f, frame_addr{}, 40000, 9000, 1, "{\"timestamp\":1}");
    auto d = decode_frame(f);
    EXPECT_EQ(d.l4_proto, 6);
    EXPECT_TRUE(d.checksums_ok);
    EXPECT_TRUE(d.lengths_ok);
    EXPECT_FALSE(d.udp_dst_port.has_value());

    build_icmp_echo_frame(f, frame_addr{false, true, 100, 1}, 1, 1);
    d = decode_frame(f);
    EXPECT_EQ(d.l4_proto, 1);
    EXPECT_TRUE(d.vlan);
    EXPECT_TRUE(d.checksums_ok);

    build_ipv4_fragment_frame(f, frame_addr{}, true, 0, 40000, 9000, 1, "12345678");
    d = decode_frame(f);
    EXPECT_TRUE(d.fragment);
    EXPECT_TRUE(d.lengths_ok);
    EXPECT_TRUE(d.checksums_ok);
    EXPECT_FALSE(d.udp_dst_port.has_value());

    build_ipv4_fragment_frame(f, frame_addr{}, false, 5, 40000, 9000, 1, "tail");
    d = decode_frame(f);
    EXPECT_TRUE(d.fragment);
    EXPECT_EQ(test::rd16(f, eth_header_bytes + 6), 5); // offset 5, MF clear
}

} // namespace
} // namespace sluice::tools
