#pragma once
// dedup_filter: exact, memory-bounded duplicate detection over 128-bit identities
// (§3 Dedup). One per worker; touched only by its worker lcore.
//
// The horizon is measured in event time, not arrival time: a replayed hour of old data
// must dedup exactly as it did live. An entry older than the cutoff is treated as absent
// whether or not it has been swept yet, so results never depend on when sweeps run.
#include <cstdint>
#include <memory>
#include <vector>

#include "processing/event.h"

namespace sluice::processing {

enum class dedup_verdict : uint8_t { accepted, duplicate, beyond_horizon };

class dedup_filter {
  public:
    // memory_bytes: this filter's budget (the table is sized once, here).
    dedup_filter(uint64_t memory_bytes, int64_t horizon_ms);

    // max_time_ms: the largest event time seen before this event (no_time if none).
    dedup_verdict check_and_insert(const identity& id, int64_t event_time_ms,
                                   int64_t max_time_ms) noexcept;

    // Events older than this are beyond the horizon (INT64_MIN when nothing is).
    int64_t cutoff_ms(int64_t max_time_ms) const noexcept;
    // After a restart: the cutoff the previous run had reached (its largest event time
    // minus the horizon). The cutoff never falls below it, even while this run's M is
    // lower, so an event the previous run would have rejected as beyond the horizon is
    // not accepted now; the identities loaded from the store cover everything above it.
    void set_restored_cutoff(int64_t cutoff_ms) noexcept { _restored_cutoff_ms = cutoff_ms; }
    // The configured horizon, or the shorter one the memory budget forced.
    int64_t effective_horizon_ms(int64_t max_time_ms) const noexcept;

    uint64_t tracked() const noexcept { return _used; }
    uint64_t capacity() const noexcept { return _mask + 1; }
    uint64_t memory_bytes() const noexcept { return capacity() * sizeof(entry); }
    uint64_t forced_sweeps() const noexcept { return _forced_sweeps; }

  private:
    struct entry {
        uint64_t hi;
        uint64_t lo;
        int64_t time_ms;
    };
    static_assert(sizeof(entry) == 24);

    bool empty(const entry& e) const noexcept { return e.hi == 0 && e.lo == 0; }
    uint64_t home(const entry& e) const noexcept { return (e.lo ^ (e.hi >> 7)) & _mask; }
    void make_room(int64_t max_time_ms) noexcept;
    void sweep(int64_t cutoff) noexcept;
    void erase_at(uint64_t i) noexcept;

    std::unique_ptr<entry[]> _table;
    uint64_t _mask;
    uint64_t _used = 0;
    uint64_t _load_max;
    int64_t _horizon_ms;
    int64_t _forced_cutoff_ms = INT64_MIN;
    int64_t _restored_cutoff_ms = INT64_MIN;
    uint64_t _forced_sweeps = 0;
    std::vector<int64_t> _sample; // preallocated scratch for choosing a forced cutoff
};

} // namespace sluice::processing
