#pragma once
// DPDK bring-up on the control path: EAL, the slot pool, rings and one port.
#include <cstdint>
#include <string>
#include <vector>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "base/result.h"

namespace sluice::dataplane {

// rte_eal_init; returns how many argv entries EAL consumed.
result<int> eal_init(int argc, char** argv);

struct port_config {
    uint16_t port_id = 0;
    uint16_t rx_queues = 1;
    uint32_t mbufs = 8191;
};

struct port_state {
    uint16_t port_id;
    uint16_t rx_queues;
    std::string driver;
    rte_mempool* mbufs;
};

// Configures and starts the port (RX only; a TX queue where the PMD needs one).
result<port_state> port_start(const port_config& config);
void port_stop(const port_state& port);

// Frames the port could not hand to sluice (NIC ring overflow, no mbufs): imissed +
// rx_nombuf from the ethdev statistics.
uint64_t port_rx_dropped(uint16_t port_id);

result<rte_mempool*> slot_pool_create(uint32_t slots, uint32_t slot_bytes);
result<rte_ring*> spsc_ring_create(const std::string& name, uint32_t size);

} // namespace sluice::dataplane
