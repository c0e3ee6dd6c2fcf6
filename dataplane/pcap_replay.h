#pragma once
// What a net_pcap port that replays capture files needs from its mbuf pool. With
// infinite_rx=1 the PMD keeps every frame of its capture in an mbuf for the port's life
// and refuses the queue (EINVAL, "Not enough mbufs") when the pool is smaller; its error
// path then frees its ring twice at close ("RING: Cannot free ring" — a DPDK 22.11
// net_pcap bug). So sluice counts the frames first and sizes the pool, and the queue
// set-up never takes that path.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::dataplane {

struct pcap_replay {
    std::vector<std::string> files; // rx_pcap= of each RX queue, in order
    bool infinite = false;          // infinite_rx=1
    uint64_t frames = 0;            // over every file (each queue holds its own)
    uint32_t frame_bytes_max = 0;   // the largest captured frame
};

/// The port's capture files and their sizes, or nullopt when the port is not a net_pcap
/// replaying files (a NIC, another vdev, net_pcap on a live interface).
result<std::optional<pcap_replay>> pcap_replay_of(uint16_t port_id);

/// Frames and the largest frame in one capture file (libpcap: pcap and pcapng).
result<pcap_replay> count_capture(const std::string& path);

} // namespace sluice::dataplane
