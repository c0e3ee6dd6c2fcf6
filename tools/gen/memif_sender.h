#pragma once
// memif_sender: sluice-gen as a DPDK sender in its own process. It starts DPDK's EAL
// (no hugepages, no PCI, its own --file-prefix), creates a net_memif *client* port that
// connects to sluiced's memif *server* socket, and transmits the generator's frames with
// rte_eth_tx_burst, one memif ring per queue, choosing the ring by flow (as RSS would).
// A full ring waits for sluiced to make room: memif is lossless, so sluiced must end up
// with exactly the frames sent.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"

struct rte_mbuf;
struct rte_mempool;

namespace sluice::tools {

struct memif_options {
    std::string socket;  // the server's socket name (abstract by default, like DPDK's)
    uint16_t queues = 1; // must equal sluiced's RX queues on that port
    uint32_t connect_timeout_s = 30;
};

class memif_sender {
  public:
    static constexpr uint32_t burst = 32;

    // Starts EAL (once per process) and waits until the server has accepted the link.
    static result<std::unique_ptr<memif_sender>> open(const memif_options& options);
    ~memif_sender();

    // Queues one frame on ring flow % queues; sends a burst when one is full.
    result<void> send(std::span<const uint8_t> frame, uint32_t flow);
    // Sends every queued frame.
    result<void> flush();
    uint64_t sent() const noexcept { return _sent; }

  private:
    memif_sender() = default;
    result<void> send_queue(uint16_t q);

    uint16_t _port = 0;
    uint16_t _queues = 1;
    bool _started = false;
    rte_mempool* _pool = nullptr;
    struct pending {
        rte_mbuf* bufs[burst];
        uint32_t count = 0;
    };
    std::unique_ptr<pending[]> _pending;
    uint64_t _sent = 0;
};

} // namespace sluice::tools
