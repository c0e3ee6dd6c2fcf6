#include "dataplane/frame_parse.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace sluice::dataplane {
namespace {

constexpr uint16_t test_port = 9000;

struct ext_header {
    uint8_t type;       // 0 hop-by-hop, 43 routing, 60 destination options, 44 fragment
    uint8_t units_of_8; // total length in 8-byte units (Hdr Ext Len + 1)
};

// Describes a frame; build() lays it out byte by byte so each test states only what it
// changes from a valid IPv4/UDP frame to test_port.
struct frame_spec {
    std::vector<uint16_t> vlan_tpids;
    uint16_t ether_type = 0; // 0: derived from ip_version
    int ip_version = 4;
    uint8_t ipv4_option_words = 0;
    uint16_t ipv4_flags_fragment = 0;
    uint8_t ip_proto = 17;
    std::vector<ext_header> ipv6_ext;
    uint16_t dst_port = test_port;
    std::string payload = "{\"event\":1}";
    uint32_t padding = 0; // Ethernet padding after the IP packet
    // Overrides of computed header fields, to build inconsistent frames.
    int ip_version_field = -1;
    int ihl_field = -1;
    int ip_length_field = -1;
    int udp_length_field = -1;
};

void put16(std::vector<uint8_t>& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

void set16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}

std::vector<uint8_t> build(const frame_spec& s) {
    std::vector<uint8_t> b(12, 0xaa); // dst + src MAC
    for (uint16_t tpid : s.vlan_tpids) {
        put16(b, tpid);
        put16(b, 0x0064); // PCP 0, VID 100
    }
    put16(b, s.ether_type ? s.ether_type : (s.ip_version == 4 ? 0x0800 : 0x86dd));

    std::vector<uint8_t> udp;
    put16(udp, 40000);
    put16(udp, s.dst_port);
    put16(udp, s.udp_length_field >= 0 ? s.udp_length_field : 8 + s.payload.size());
    put16(udp, 0);
    udp.insert(udp.end(), s.payload.begin(), s.payload.end());

    const size_t ip_start = b.size();
    if (s.ip_version == 4) {
        const uint8_t ihl = s.ihl_field >= 0 ? s.ihl_field : 5 + s.ipv4_option_words;
        const int version = s.ip_version_field >= 0 ? s.ip_version_field : 4;
        b.push_back(static_cast<uint8_t>(version << 4 | ihl));
        b.push_back(0);
        put16(b, 0); // total length, set below
        put16(b, 0x1234);
        put16(b, s.ipv4_flags_fragment);
        b.push_back(64);
        b.push_back(s.ip_proto);
        put16(b, 0);
        for (int i = 0; i < 8; ++i)
            b.push_back(static_cast<uint8_t>(10 + i));
        for (int i = 0; i < s.ipv4_option_words * 4; ++i)
            b.push_back(1); // NOP options
        b.insert(b.end(), udp.begin(), udp.end());
        const size_t total = b.size() - ip_start;
        set16(b, ip_start + 2, s.ip_length_field >= 0 ? s.ip_length_field : total);
    } else {
        const int version = s.ip_version_field >= 0 ? s.ip_version_field : 6;
        b.push_back(static_cast<uint8_t>(version << 4));
        b.push_back(0);
        put16(b, 0);
        put16(b, 0); // payload length, set below
        b.push_back(s.ipv6_ext.empty() ? s.ip_proto : s.ipv6_ext.front().type);
        b.push_back(64);
        for (int i = 0; i < 32; ++i)
            b.push_back(static_cast<uint8_t>(i));
        for (size_t i = 0; i < s.ipv6_ext.size(); ++i) {
            const uint8_t next = i + 1 < s.ipv6_ext.size() ? s.ipv6_ext[i + 1].type : s.ip_proto;
            b.push_back(next);
            b.push_back(static_cast<uint8_t>(s.ipv6_ext[i].units_of_8 - 1));
            for (int j = 2; j < s.ipv6_ext[i].units_of_8 * 8; ++j)
                b.push_back(0);
        }
        b.insert(b.end(), udp.begin(), udp.end());
        const size_t payload_len = b.size() - ip_start - 40;
        set16(b, ip_start + 4, s.ip_length_field >= 0 ? s.ip_length_field : payload_len);
    }
    b.insert(b.end(), s.padding, 0xee);
    return b;
}

port_filter test_ports() {
    port_filter p;
    p.add(test_port);
    return p;
}

// Parses a copy of exactly `len` bytes on the heap, so an over-read is caught by ASan.
frame_verdict parse_exact(const std::vector<uint8_t>& frame, uint32_t len,
                          std::string_view* payload) {
    auto copy = std::make_unique<uint8_t[]>(len == 0 ? 1 : len);
    std::memcpy(copy.get(), frame.data(), len);
    std::string_view out;
    const frame_verdict v = parse_frame(copy.get(), len, test_ports(), &out);
    if (payload && v == frame_verdict::udp_to_port) {
        // The copy is freed on return: keep the payload's bytes for the caller to compare.
        static thread_local std::string keep;
        keep.assign(out);
        *payload = keep;
    }
    return v;
}

frame_verdict parse(const std::vector<uint8_t>& frame, std::string_view* payload = nullptr) {
    return parse_exact(frame, static_cast<uint32_t>(frame.size()), payload);
}

TEST(FrameParse, VerdictNamesAreDistinct) {
    std::set<std::string_view> names;
    for (size_t i = 0; i < frame_verdict_count; ++i)
        names.insert(verdict_name(static_cast<frame_verdict>(i)));
    EXPECT_EQ(names.size(), frame_verdict_count);
    EXPECT_EQ(verdict_name(frame_verdict::udp_to_port), "udp_to_port");
    EXPECT_EQ(verdict_name(frame_verdict::bad_header), "bad_header");
    EXPECT_EQ(names.count("unknown"), 0u);
}

TEST(PortFilter, ContainsExactlyTheAddedPorts) {
    port_filter p;
    for (uint32_t port = 0; port < 65536; ++port)
        ASSERT_FALSE(p.contains(port));
    p.add(0);
    p.add(9000);
    p.add(65535);
    for (uint32_t port = 0; port < 65536; ++port)
        ASSERT_EQ(p.contains(port), port == 0 || port == 9000 || port == 65535) << port;
}

TEST(FrameParse, AcceptsIpv4UdpToPort) {
    std::string_view payload;
    EXPECT_EQ(parse(build({}), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "{\"event\":1}");
}

TEST(FrameParse, PayloadPointsIntoTheFrame) {
    const auto f = build({});
    std::string_view payload;
    ASSERT_EQ(parse_frame(f.data(), f.size(), test_ports(), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(reinterpret_cast<const uint8_t*>(payload.data()), f.data() + 14 + 20 + 8);
    EXPECT_EQ(payload.size(), 11u);
}

TEST(FrameParse, HonoursIpv4Options) {
    frame_spec s;
    s.ipv4_option_words = 10; // IHL 15, the maximum: 40 bytes of options
    s.payload = "options-follow";
    std::string_view payload;
    EXPECT_EQ(parse(build(s), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "options-follow");
}

TEST(FrameParse, AcceptsIpv6Udp) {
    frame_spec s;
    s.ip_version = 6;
    std::string_view payload;
    EXPECT_EQ(parse(build(s), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "{\"event\":1}");
}

TEST(FrameParse, SkipsIpv6ExtensionHeaders) {
    frame_spec s;
    s.ip_version = 6;
    s.ipv6_ext = {{0, 1}, {43, 3}, {60, 2}};
    s.payload = "after-extensions";
    std::string_view payload;
    EXPECT_EQ(parse(build(s), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "after-extensions");
}

TEST(FrameParse, RejectsTooManyIpv6ExtensionHeaders) {
    frame_spec s;
    s.ip_version = 6;
    s.ipv6_ext.assign(8, {60, 1});
    EXPECT_EQ(parse(build(s)), frame_verdict::udp_to_port); // 8 is the bound
    s.ipv6_ext.assign(9, {60, 1});
    EXPECT_EQ(parse(build(s)), frame_verdict::bad_header);
}

TEST(FrameParse, AcceptsVlanAndQinq) {
    std::string_view payload;
    frame_spec s;
    s.vlan_tpids = {0x8100};
    EXPECT_EQ(parse(build(s), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "{\"event\":1}");
    s.vlan_tpids = {0x88a8, 0x8100};
    s.ip_version = 6;
    EXPECT_EQ(parse(build(s), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "{\"event\":1}");
    s.vlan_tpids = {0x9100, 0x8100};
    EXPECT_EQ(parse(build(s)), frame_verdict::udp_to_port);
}

TEST(FrameParse, ThreeVlanTagsAreNotIp) {
    frame_spec s;
    s.vlan_tpids = {0x88a8, 0x8100, 0x8100};
    EXPECT_EQ(parse(build(s)), frame_verdict::not_ip);
}

TEST(FrameParse, NonIpEtherTypeIsNotIp) {
    frame_spec arp;
    arp.ether_type = 0x0806;
    EXPECT_EQ(parse(build(arp)), frame_verdict::not_ip);
    frame_spec vlan_arp;
    vlan_arp.vlan_tpids = {0x8100};
    vlan_arp.ether_type = 0x0806;
    EXPECT_EQ(parse(build(vlan_arp)), frame_verdict::not_ip);
}

TEST(FrameParse, OtherProtocolsAreNotUdp) {
    frame_spec tcp4;
    tcp4.ip_proto = 6;
    EXPECT_EQ(parse(build(tcp4)), frame_verdict::not_udp);
    frame_spec tcp6;
    tcp6.ip_version = 6;
    tcp6.ip_proto = 6;
    EXPECT_EQ(parse(build(tcp6)), frame_verdict::not_udp);
    frame_spec icmp6_after_ext = tcp6;
    icmp6_after_ext.ip_proto = 58;
    icmp6_after_ext.ipv6_ext = {{0, 1}};
    EXPECT_EQ(parse(build(icmp6_after_ext)), frame_verdict::not_udp);
}

TEST(FrameParse, OtherPortIsWrongPort) {
    frame_spec s;
    s.dst_port = test_port + 1;
    const auto f = build(s);
    std::string_view payload = "untouched";
    EXPECT_EQ(parse_frame(f.data(), f.size(), test_ports(), &payload), frame_verdict::wrong_port);
    EXPECT_EQ(payload, "untouched");
}

TEST(FrameParse, FragmentsAreReported) {
    frame_spec mf;
    mf.ipv4_flags_fragment = 0x2000; // MF, offset 0: the first fragment
    EXPECT_EQ(parse(build(mf)), frame_verdict::fragment);
    frame_spec later;
    later.ipv4_flags_fragment = 0x00b9; // offset 185 * 8, MF clear: the last fragment
    EXPECT_EQ(parse(build(later)), frame_verdict::fragment);
    frame_spec df;
    df.ipv4_flags_fragment = 0x4000; // DF alone is not a fragment
    EXPECT_EQ(parse(build(df)), frame_verdict::udp_to_port);
    frame_spec v6;
    v6.ip_version = 6;
    v6.ipv6_ext = {{44, 1}};
    EXPECT_EQ(parse(build(v6)), frame_verdict::fragment);
    v6.ipv6_ext = {{0, 1}, {44, 1}};
    EXPECT_EQ(parse(build(v6)), frame_verdict::fragment);
}

TEST(FrameParse, InconsistentIpv4HeadersAreBadHeader) {
    frame_spec version;
    version.ip_version_field = 6; // IPv4 EtherType, IPv6 version nibble
    EXPECT_EQ(parse(build(version)), frame_verdict::bad_header);
    frame_spec ihl;
    ihl.ihl_field = 4;
    EXPECT_EQ(parse(build(ihl)), frame_verdict::bad_header);
    frame_spec total;
    total.ip_length_field = 19; // less than the 20-byte header
    EXPECT_EQ(parse(build(total)), frame_verdict::bad_header);
    frame_spec no_udp_room;
    no_udp_room.ip_length_field = 20 + 7; // IP payload shorter than a UDP header
    EXPECT_EQ(parse(build(no_udp_room)), frame_verdict::bad_header);
}

TEST(FrameParse, InconsistentIpv6HeadersAreBadHeader) {
    frame_spec version;
    version.ip_version = 6;
    version.ip_version_field = 4;
    EXPECT_EQ(parse(build(version)), frame_verdict::bad_header);
    frame_spec ext_past_payload;
    ext_past_payload.ip_version = 6;
    ext_past_payload.ipv6_ext = {{60, 1}};
    ext_past_payload.ip_length_field = 4; // the 8-byte extension header does not fit
    EXPECT_EQ(parse(build(ext_past_payload)), frame_verdict::bad_header);
}

TEST(FrameParse, UdpLengthBelowHeaderIsBadHeader) {
    frame_spec s;
    s.udp_length_field = 7;
    EXPECT_EQ(parse(build(s)), frame_verdict::bad_header);
}

TEST(FrameParse, UdpLengthBeyondIpPayloadIsTruncated) {
    frame_spec s;
    s.udp_length_field = 8 + 11 + 1;
    EXPECT_EQ(parse(build(s)), frame_verdict::truncated);
    s.ip_version = 6;
    EXPECT_EQ(parse(build(s)), frame_verdict::truncated);
}

TEST(FrameParse, IpLengthBeyondFrameIsTruncated) {
    frame_spec s;
    s.ip_length_field = 20 + 8 + 11 + 1;
    EXPECT_EQ(parse(build(s)), frame_verdict::truncated);
    s.ip_version = 6;
    s.ip_length_field = 8 + 11 + 1;
    EXPECT_EQ(parse(build(s)), frame_verdict::truncated);
}

TEST(FrameParse, TrimsEthernetPadding) {
    frame_spec s;
    s.payload = "abcd";
    s.padding = 60 - (14 + 20 + 8 + 4); // padded to the 60-byte Ethernet minimum
    std::string_view payload;
    const auto f = build(s);
    ASSERT_EQ(f.size(), 60u);
    EXPECT_EQ(parse(f, &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "abcd");
    s.ip_version = 6;
    s.vlan_tpids = {0x8100};
    s.padding = 13;
    EXPECT_EQ(parse(build(s), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "abcd");
}

TEST(FrameParse, UdpLengthShorterThanIpPayloadTrimsToUdpLength) {
    frame_spec s;
    s.payload = "abcdefgh";
    s.udp_length_field = 8 + 3;
    std::string_view payload;
    EXPECT_EQ(parse(build(s), &payload), frame_verdict::udp_to_port);
    EXPECT_EQ(payload, "abc");
}

TEST(FrameParse, AcceptsZeroLengthPayload) {
    for (int version : {4, 6}) {
        frame_spec s;
        s.ip_version = version;
        s.payload.clear();
        s.padding = 18;
        std::string_view payload = "untouched";
        EXPECT_EQ(parse(build(s), &payload), frame_verdict::udp_to_port) << version;
        EXPECT_TRUE(payload.empty()) << version;
    }
}

TEST(FrameParse, EveryTruncationOfAValidFrameIsTruncated) {
    std::vector<frame_spec> specs(6);
    specs[1].ipv4_option_words = 3;
    specs[2].vlan_tpids = {0x8100};
    specs[3].vlan_tpids = {0x88a8, 0x8100};
    specs[4].ip_version = 6;
    specs[5].ip_version = 6;
    specs[5].vlan_tpids = {0x8100};
    specs[5].ipv6_ext = {{0, 1}, {43, 2}};
    for (size_t i = 0; i < specs.size(); ++i) {
        const auto f = build(specs[i]);
        ASSERT_EQ(parse(f), frame_verdict::udp_to_port) << i;
        for (uint32_t len = 0; len < f.size(); ++len)
            ASSERT_EQ(parse_exact(f, len, nullptr), frame_verdict::truncated)
                << "spec " << i << " cut at " << len;
    }
}

// Property: whatever the bytes, the parser stays inside the frame (ASan checks the reads)
// and an accepted payload lies within it.
TEST(FrameParse, RandomlyCorruptedFramesStayInBounds) {
    std::mt19937 rng(12345);
    std::vector<frame_spec> seeds(3);
    seeds[1].ip_version = 6;
    seeds[1].ipv6_ext = {{0, 1}, {60, 1}};
    seeds[2].vlan_tpids = {0x88a8, 0x8100};
    seeds[2].ipv4_option_words = 2;
    const port_filter ports = test_ports();
    size_t counts[frame_verdict_count] = {};
    for (int iter = 0; iter < 20000; ++iter) {
        auto f = build(seeds[iter % seeds.size()]);
        const int flips = 1 + rng() % 4;
        for (int k = 0; k < flips; ++k)
            f[rng() % f.size()] = static_cast<uint8_t>(rng());
        const uint32_t len = rng() % (f.size() + 1);
        auto copy = std::make_unique<uint8_t[]>(len + 1);
        std::memcpy(copy.get(), f.data(), len);
        std::string_view payload;
        const frame_verdict v = parse_frame(copy.get(), len, ports, &payload);
        ASSERT_LT(static_cast<size_t>(v), frame_verdict_count);
        ++counts[static_cast<size_t>(v)];
        if (v == frame_verdict::udp_to_port) {
            const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
            ASSERT_GE(p, copy.get());
            ASSERT_LE(p + payload.size(), copy.get() + len);
        }
    }
    EXPECT_GT(counts[static_cast<size_t>(frame_verdict::udp_to_port)], 0u);
    EXPECT_GT(counts[static_cast<size_t>(frame_verdict::truncated)], 0u);
}

} // namespace
} // namespace sluice::dataplane
