#pragma once
// dedup_filter: exact, memory-bounded duplicate detection over 128-bit identities
// (§3 Dedup). One per worker; touched only by its worker lcore.
//
// The horizon is measured in event time, not arrival time: a replayed hour of old data
// must dedup exactly as it did live. An entry older than the cutoff is treated as absent
// whether or not its slot has been reclaimed yet, so results never depend on when
// reclaiming happens.
//
// Layout: bucketized cuckoo hashing, 4 slots of 16 bytes per 64-byte (one cache line)
// bucket, two candidate buckets per identity. A slot holds 96 bits of the identity (all
// of `hi`, the upper half of `lo`: the lower half carries the worker routing) and the
// event time as a 32-bit offset from a per-table base. A lookup reads two cache lines; an
// insert that finds both buckets full of live entries moves entries to their other
// bucket (a bounded random walk), so the table works up to ~95% live load. Expired slots
// count as free: they are reused in place and reclaimed by a pass over the table spread
// across ticks (reclaim_some()). docs/ARCHITECTURE.md §7.5 gives the false-duplicate
// bound of the 96-bit fingerprint.
#include <cstdint>
#include <memory>
#include <vector>

#include "processing/event.h"

namespace sluice::processing {

enum class dedup_verdict : uint8_t { accepted, duplicate, beyond_horizon };

// What backs the table. transparent_huge: memory the kernel is asked to back with 2 MB
// transparent huge pages (madvise MADV_HUGEPAGE), which it does where THP is not
// disabled (/sys/kernel/mm/transparent_hugepage/enabled) and free memory allows, else
// with 4 KB pages, silently. normal: 4 KB pages only (MADV_NOHUGEPAGE), for comparison.
// With 2 MB pages a 10M-identity table (170 MiB) needs 85 TLB entries, not 43,000:
// bursts at 10M ran ~2x faster. Pages from the hugetlb pool (MAP_HUGETLB) measured the
// same as transparent ones and would take pages reserved for DPDK (docs/benchmarks.md,
// issue 14).
enum class dedup_pages : uint8_t { normal, transparent_huge };

// One event of a burst: check_and_insert()'s arguments.
struct dedup_request {
    identity id;
    int64_t event_time_ms;
    int64_t max_time_ms;
};

class dedup_filter {
  public:
    // Horizons are capped here (2^31 ms, 24.8 days) so that the live time span always
    // fits the 32-bit offsets with room to grow; the config refuses longer ones.
    static constexpr int64_t horizon_ms_max = (int64_t(1) << 31) - 1;

    // memory_bytes: this filter's budget (the table is sized once, here: one bucket
    // per 64 bytes, at least 256 buckets).
    // The table is mapped and touched here: no page fault on the hot path.
    dedup_filter(uint64_t memory_bytes, int64_t horizon_ms,
                 dedup_pages pages = dedup_pages::transparent_huge);

    // max_time_ms: the largest event time seen before this event (no_time if none).
    dedup_verdict check_and_insert(const identity& id, int64_t event_time_ms,
                                   int64_t max_time_ms) noexcept;

    // A burst: verdicts[i] is what check_and_insert(req[i]...) would return called for
    // i = 0, 1, ... n - 1 in turn, and the table ends the same (a duplicate of an earlier
    // event of the same burst is a duplicate). Faster: it hashes the whole burst first
    // and prefetches the buckets of the events ahead, so that the cache and TLB misses
    // of many events overlap, as rte_hash_lookup_bulk does. Any n (taken 64 at a time).
    void check_and_insert_burst(const dedup_request* req, uint32_t n,
                                dedup_verdict* verdicts) noexcept;

    // Frees the expired slots of the next few buckets (a full pass over the table every
    // capacity() / 256 calls), so that tracked() counts live entries closely.
    void reclaim_some(int64_t max_time_ms) noexcept;

    // Events older than this are beyond the horizon (INT64_MIN when nothing is).
    int64_t cutoff_ms(int64_t max_time_ms) const noexcept;
    // After a restart: the cutoff the previous run had reached (its largest event time
    // minus the horizon). The cutoff never falls below it, even while this run's M is
    // lower, so an event the previous run would have rejected as beyond the horizon is
    // not accepted now; the identities loaded from the store cover everything above it.
    void set_restored_cutoff(int64_t cutoff_ms) noexcept { _restored_cutoff_ms = cutoff_ms; }
    // The configured horizon, or the shorter one the memory budget forced.
    int64_t effective_horizon_ms(int64_t max_time_ms) const noexcept;

    // Slots in use: live entries plus expired ones not reclaimed yet.
    uint64_t tracked() const noexcept { return _used; }
    uint64_t capacity() const noexcept { return _buckets * slots_per_bucket; }
    uint64_t memory_bytes() const noexcept { return _buckets * sizeof(bucket); }
    dedup_pages pages() const noexcept { return _pages; }
    // How often the budget forced the cutoff up (the table was full of live entries).
    uint64_t horizon_cuts() const noexcept { return _horizon_cuts; }
    // How often the time base moved (the live span outgrew the 32-bit offsets).
    uint64_t rebases() const noexcept { return _rebases; }

  private:
    static constexpr uint32_t slots_per_bucket = 4;
    struct slot {
        uint64_t hi;   // identity.hi
        uint32_t lo;   // identity.lo >> 32; hi == 0 && lo == 0 marks an empty slot
        uint32_t time; // event time - _base_ms
    };
    struct alignas(64) bucket {
        slot s[slots_per_bucket];
    };
    static_assert(sizeof(slot) == 16 && sizeof(bucket) == 64);

    static bool empty(const slot& e) noexcept { return e.hi == 0 && e.lo == 0; }
    // An identity as stored: its 96 bits and its two buckets.
    struct key {
        uint64_t hi;
        uint32_t lo;
        uint64_t a, b;
    };
    key key_of(const identity& id) const noexcept;
    dedup_verdict check_and_insert(const key& k, int64_t event_time_ms,
                                   int64_t max_time_ms) noexcept;
    uint64_t bucket_a(uint64_t hi) const noexcept;
    uint64_t bucket_b(uint64_t hi) const noexcept;
    // Offsets below this are expired (2^32: every entry is).
    uint64_t cutoff_offset(int64_t cutoff) const noexcept;
    // Places `e` (not in the table) in a free or expired slot, moving others as needed;
    // raises the cutoff when the table is full of live entries.
    void place(slot e, uint64_t b, int64_t max_time_ms) noexcept;
    bool move_one_aside(bucket& ba, bucket& bb, const slot& e, uint64_t off_cutoff) noexcept;
    bool kick_walk(slot& e, uint64_t b, uint64_t off_cutoff) noexcept;
    void cut_horizon(int64_t max_time_ms) noexcept;
    // Moves the time base so that event_time_ms and every live entry fit; false when
    // event_time_ms itself fell below the cutoff that this forced.
    bool rebase(int64_t event_time_ms, int64_t max_time_ms) noexcept;
    slot* free_slot_in(bucket& bk, uint64_t off_cutoff) noexcept;

    struct unmap_table {
        size_t mapped_bytes;
        void operator()(bucket* p) const noexcept;
    };

    uint64_t _buckets;
    dedup_pages _pages;
    std::unique_ptr<bucket[], unmap_table> _table;
    uint64_t _used = 0;
    int64_t _base_ms = 0;
    int64_t _horizon_ms;
    int64_t _forced_cutoff_ms = INT64_MIN;
    int64_t _restored_cutoff_ms = INT64_MIN;
    uint64_t _horizon_cuts = 0;
    uint64_t _rebases = 0;
    uint64_t _reclaim_next = 0;
    uint64_t _rng = 0x9e3779b97f4a7c15ULL; // picks the slot a kick evicts
    std::vector<uint32_t> _sample;         // preallocated scratch for choosing a cut
};

} // namespace sluice::processing
