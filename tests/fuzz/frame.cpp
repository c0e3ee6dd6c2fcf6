// Ethernet / 802.1Q / 802.1ad / IPv4 / IPv6 / UDP frames (dataplane/frame_parse): any
// frame gets a verdict, and a UDP payload handed on lies inside the frame.
#include <vector>

#include "dataplane/frame_parse.h"
#include "tests/fuzz/fuzz_target.h"

namespace sluice::fuzz {

void fuzz_frame(const uint8_t* data, size_t size) {
    static const dataplane::port_filter ports = [] {
        dataplane::port_filter p;
        for (uint16_t port : {uint16_t(9000), uint16_t(9001), uint16_t(53), uint16_t(0)})
            p.add(port);
        return p;
    }();
    // A copy of exactly `size` bytes: ASan catches a read one past the frame.
    std::vector<uint8_t> frame(data, data + size);
    std::string_view payload;
    auto v = dataplane::parse_frame(frame.data(), uint32_t(frame.size()), ports, &payload);
    SLUICE_FUZZ_CHECK(size_t(v) < dataplane::frame_verdict_count);
    SLUICE_FUZZ_CHECK(!dataplane::verdict_name(v).empty());
    if (v == dataplane::frame_verdict::udp_to_port) {
        auto* p = reinterpret_cast<const uint8_t*>(payload.data());
        SLUICE_FUZZ_CHECK(p >= frame.data() && p + payload.size() <= frame.data() + frame.size());
    }
}

} // namespace sluice::fuzz
