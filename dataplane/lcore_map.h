#pragma once
// lcore_map: which EAL lcore polls which port RX queues, and which lcores run workers.
// Planned once at start from the configuration, the lcores EAL was given and what the
// port can do; printed at start and reported by `status`. Pure logic (no DPDK calls),
// so every rule below is unit-tested without a NIC.
//
// Rules:
// - Lcores come from the EAL lcore list (`--lcores`/`-l`), main lcore excluded; EAL pins
//   each lcore to its CPU set. Explicit lists (`rx_lcores`, `worker_lcores`) must name
//   lcores from that list, each once.
// - Without explicit counts: one RX lcore per `workers_per_rx` workers (a worker spends
//   about four times an RX lcore's CPU per event), at most one per RX queue the port
//   has; every other lcore is a worker.
// - RX queues default to one per RX lcore; more queues than RX lcores are dealt out
//   round robin (RX lcore r polls queues r, r + M, ...). Fewer queues than RX lcores is
//   an error: an RX lcore without a queue would idle forever.
// - RSS is configured when there are several queues and the PMD offers RSS hash
//   functions for IP/UDP; otherwise the PMD's own queue selection stands (net_pcap: one
//   file per queue; net_af_packet: kernel fanout hash; net_tap: the kernel's flow hash;
//   net_memif: the sender's choice of ring) and the map says so.
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::dataplane {

struct lcore_info {
    unsigned lcore = 0;
    std::string cpus; // the CPU set EAL pinned it to, e.g. "0" or "2-3"
};

// What the RX source can do. A DPDK port reports its own limits; the kernel UDP path
// has one SO_REUSEPORT socket per RX lcore, so no queue limit.
struct rx_source_caps {
    std::string name;           // "net_pcap", "kernel UDP 127.0.0.1:9000", ...
    uint16_t max_rx_queues = 1; // 0: unlimited (kernel sockets)
    bool rss = false;           // the PMD can hash IP/UDP flows over queues
};

struct lcore_request {
    std::vector<unsigned> rx_lcores;     // explicit; empty: derive
    std::vector<unsigned> worker_lcores; // explicit; empty: derive
    uint32_t rx_count = 0;               // 0: derive (ignored with rx_lcores)
    uint32_t worker_count = 0;           // 0: derive (ignored with worker_lcores)
    uint32_t rx_queues = 0;              // 0: one per RX lcore
};

inline constexpr uint32_t workers_per_rx = 4;

struct rx_assignment {
    unsigned lcore = 0;
    std::string cpus;
    std::vector<uint16_t> queues;
};

struct worker_assignment {
    unsigned lcore = 0;
    std::string cpus;
};

struct lcore_map {
    std::string source;
    uint16_t rx_queues = 0;
    bool rss = false;
    std::vector<rx_assignment> rx;
    std::vector<worker_assignment> workers;
    std::vector<unsigned> unused;

    // The lines sluiced prints at start (no trailing newline on the last).
    std::vector<std::string> describe() const;
};

/// Plans the map; errors name the option to change.
result<lcore_map> plan_lcore_map(const std::vector<lcore_info>& available,
                                 const rx_source_caps& caps, const lcore_request& request,
                                 uint32_t rx_lcores_max, uint32_t workers_max);

/// Parses "1,2,5-7" into lcore ids (for --rx-lcores / --worker-lcores).
result<std::vector<unsigned>> parse_lcore_list(const std::string& text);

} // namespace sluice::dataplane
