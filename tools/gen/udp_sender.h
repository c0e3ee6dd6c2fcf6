#pragma once
// udp_sender: sends sluice-gen's datagrams to a live sluice over a kernel UDP socket,
// paced to a packet rate. A tool, not the appliance: plain blocking send() suffices.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tools/gen/pacer.h"

namespace sluice::tools {

class udp_sender {
  public:
    // `target` is HOST:PORT or [IPv6]:PORT; `pps` 0 sends as fast as the socket takes.
    // `flows` sockets (each its own source port) carry the generator's flows, so that a
    // receiver spreading flows over SO_REUSEPORT sockets sees several.
    static result<udp_sender> open(const std::string& target, uint64_t pps, uint32_t flows = 1);

    udp_sender(udp_sender&& other) noexcept;
    udp_sender& operator=(udp_sender&&) = delete;
    udp_sender(const udp_sender&) = delete;
    ~udp_sender();

    result<void> send(std::string_view payload, uint32_t flow = 0);
    uint64_t sent() const noexcept { return _sent; }

  private:
    udp_sender(std::vector<int> fds, uint64_t pps) : _fds(std::move(fds)), _pacer(pps) {}

    std::vector<int> _fds;
    pacer _pacer;
    uint64_t _sent = 0;
};

} // namespace sluice::tools
