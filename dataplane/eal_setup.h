#pragma once
// DPDK bring-up on the control path: EAL, the slot pool, rings and one port.
#include <cstdint>
#include <string>
#include <vector>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "base/limits.h"
#include "base/result.h"
#include "base/tsan.h"
#include "dataplane/lcore_map.h"

namespace sluice::dataplane {

// rte_eal_init; returns how many argv entries EAL consumed.
result<int> eal_init(int argc, char** argv);

// EAL for a process with no device: unit tests and stage benchmarks. --no-huge --no-pci,
// `memory_mb` of 4 KiB-page memory, the given lcore list ("" = every CPU), a file prefix
// unique to this process (`program`-pid) and EAL's log at error. eal_cleanup_deviceless()
// ends it and removes the runtime directory EAL would leave behind in /var/run.
result<int> eal_init_deviceless(const std::string& program, uint32_t memory_mb = 512,
                                const std::string& lcores = "");
void eal_cleanup_deviceless();

// How EAL backs DPDK memory: hugepages (the fast mode: fewer TLB misses, physically
// contiguous mempools) or --no-huge (4 KiB pages, for development and CI).
struct memory_mode {
    bool hugepages = false;
    uint64_t page_bytes = 0;
    bool iova_va = true;
    std::string describe() const; // one phrase for the start-up line and `status`
    std::string name() const { return hugepages ? "hugepages" : "no-huge"; }
};
memory_mode eal_memory_mode();

struct port_config {
    uint16_t port_id = 0;
    uint16_t rx_queues = 1;
    bool rss = false; // spread flows over the queues by RSS (only where the PMD has it)
    uint32_t mbufs = limits::mbuf_pool_size;
};

struct port_state {
    uint16_t port_id;
    uint16_t rx_queues;
    bool rss;
    std::string driver;
    rte_mempool* mbufs;
};

// What the port offers for the lcore map: its driver name, RX queues and whether it
// can hash IP/UDP flows over queues (RSS). Validates that the port exists.
result<rx_source_caps> port_caps(uint16_t port_id);

// Configures and starts the port (RX only; a TX queue where the PMD needs one).
result<port_state> port_start(const port_config& config);
void port_stop(const port_state& port);

// The port's ethdev statistics that sluice reports. `rx_dropped` are the frames the port
// could not hand to sluice: imissed (its RX ring was full because RX stopped pulling —
// back-pressure) + rx_nombuf (no mbuf to receive into).
struct port_counters {
    uint64_t ipackets = 0;
    uint64_t imissed = 0;
    uint64_t rx_nombuf = 0;
    uint64_t ierrors = 0;
    uint64_t rx_dropped() const noexcept { return imissed + rx_nombuf; }
};
port_counters port_stats(uint16_t port_id);
uint64_t port_rx_dropped(uint16_t port_id);

// Slots each lcore's mempool cache keeps (DPDK lets a cache grow to 1.5x before it
// flushes to the pool): one ring burst.
inline constexpr uint32_t slot_pool_cache = 64;
// The slot pool's DPDK mempool driver: a LIFO stack. A slot a worker just freed is the
// next one an RX lcore takes, still in cache and TLB, so only the slots in flight cycle;
// DPDK's default ring is FIFO and cycles every slot of the pool (each ~8.5 KB, its own
// pages). "stack" is an array under a spinlock taken once per cache refill or flush (a
// burst of slots, never per event; the default ring's MP/MC CAS is no more preemption-safe).
// The lock-free "lf_stack" walks a linked list per burst and halved the worker's rate in
// sluiced (docs/benchmarks.md, "Slot pool: LIFO instead of FIFO").
inline constexpr const char* slot_pool_ops = "stack";

/// The smallest slot pool that can never starve an RX lcore while the workers idle: what
/// every lcore's mempool cache may hold back (slots freed by a worker sit in that
/// worker's cache), what every RX lcore holds (its stash and a pending burst per
/// worker), and a burst per worker being processed.
uint32_t slots_min(uint32_t rx_lcores, uint32_t workers) noexcept;

/// The default pool: at least 4 Ki slots and twice slots_min(). Few on purpose: the slots
/// cycle through the caches, so a smaller pool keeps them warm (docs/benchmarks.md).
uint32_t slots_default(uint32_t rx_lcores, uint32_t workers) noexcept;

// Every slot leaves and re-enters the pool through these two. The pool's driver
// (librte_mempool_stack) is a DPDK plugin built without ThreadSanitizer, so the order its
// lock gives a put and the next get of the same slot is invisible to TSan, and a worker's
// reads of a slot it returned read as a race with the RX lcore's writes after it takes
// the slot again. In TSan builds each put releases each slot and each get acquires it:
// the order the pool really provides, per slot, no more. In other builds they are exactly
// rte_mempool_get_bulk / rte_mempool_put_bulk.
inline int slot_pool_get(rte_mempool* pool, void** slots, unsigned n) noexcept {
    int rc = rte_mempool_get_bulk(pool, slots, n);
#ifdef SLUICE_TSAN
    if (rc == 0)
        for (unsigned i = 0; i < n; ++i) tsan_acquire(slots[i]);
#endif
    return rc;
}
inline void slot_pool_put(rte_mempool* pool, void* const* slots, unsigned n) noexcept {
#ifdef SLUICE_TSAN
    for (unsigned i = 0; i < n; ++i) tsan_release(slots[i]);
#endif
    rte_mempool_put_bulk(pool, slots, n);
}

result<rte_mempool*> slot_pool_create(uint32_t slots, uint32_t slot_bytes,
                                      const std::string& name = "event_slots");
result<rte_ring*> spsc_ring_create(const std::string& name, uint32_t size);

// How many slots a ring holds, read from a thread that is neither its producer nor its
// consumer at that moment (the stats reader) or from one side about the other (RX's
// room check). DPDK's rte_ring_count reads both tails with plain loads while the two
// sides store them atomically: a data race by the C++ memory model, reported by TSan.
// Relaxed atomic loads are the same instructions on x86 and the count is as approximate
// as DPDK's (either tail may move right after).
inline uint32_t ring_count(const rte_ring* r) noexcept {
    uint32_t prod_tail = __atomic_load_n(&r->prod.tail, __ATOMIC_RELAXED);
    uint32_t cons_tail = __atomic_load_n(&r->cons.tail, __ATOMIC_RELAXED);
    uint32_t count = (prod_tail - cons_tail) & r->mask;
    return count > r->capacity ? r->capacity : count;
}
inline uint32_t ring_free_count(const rte_ring* r) noexcept { return r->capacity - ring_count(r); }

} // namespace sluice::dataplane
