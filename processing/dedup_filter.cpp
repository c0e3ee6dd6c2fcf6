#include "processing/dedup_filter.h"

#include <algorithm>
#include <cstring>

#include "base/assert.h"

namespace sluice::processing {

namespace {
constexpr uint32_t sample_size = 4096;

uint64_t floor_pow2(uint64_t v) {
    uint64_t p = 1;
    while (p * 2 <= v) p *= 2;
    return p;
}
} // namespace

dedup_filter::dedup_filter(uint64_t memory_bytes, int64_t horizon_ms) : _horizon_ms(horizon_ms) {
    uint64_t slots = floor_pow2(std::max<uint64_t>(memory_bytes / sizeof(entry), 1024));
    _table = std::make_unique<entry[]>(slots);
    std::memset(_table.get(), 0, slots * sizeof(entry));
    _mask = slots - 1;
    _load_max = slots / 4 * 3;
    _sample.reserve(sample_size);
}

int64_t dedup_filter::cutoff_ms(int64_t max_time_ms) const noexcept {
    int64_t by_horizon = max_time_ms == no_time ? INT64_MIN : max_time_ms - _horizon_ms;
    return std::max({by_horizon, _forced_cutoff_ms, _restored_cutoff_ms});
}

int64_t dedup_filter::effective_horizon_ms(int64_t max_time_ms) const noexcept {
    if (max_time_ms == no_time || _forced_cutoff_ms == INT64_MIN) return _horizon_ms;
    return std::min(_horizon_ms, max_time_ms - _forced_cutoff_ms);
}

dedup_verdict dedup_filter::check_and_insert(const identity& id, int64_t event_time_ms,
                                             int64_t max_time_ms) noexcept {
    int64_t cutoff = cutoff_ms(max_time_ms);
    if (event_time_ms < cutoff) return dedup_verdict::beyond_horizon;

    entry probe{id.hi, id.lo, event_time_ms};
    uint64_t i = home(probe);
    uint64_t reuse = UINT64_MAX; // first expired slot on the probe path
    for (;;) {
        entry& e = _table[i];
        if (empty(e)) break;
        if (e.hi == id.hi && e.lo == id.lo) {
            if (e.time_ms >= cutoff) return dedup_verdict::duplicate;
            e.time_ms = event_time_ms; // expired: this is a new sighting
            return dedup_verdict::accepted;
        }
        if (reuse == UINT64_MAX && e.time_ms < cutoff) reuse = i;
        i = (i + 1) & _mask;
    }
    if (reuse != UINT64_MAX) {
        _table[reuse] = probe;
        return dedup_verdict::accepted;
    }
    _table[i] = probe;
    if (++_used >= _load_max) [[unlikely]] make_room(max_time_ms);
    return dedup_verdict::accepted;
}

// Drop expired entries; if the table is still too full, the budget forces a shorter
// horizon: raise the cutoff to the median time of a sample of live entries.
void dedup_filter::make_room(int64_t max_time_ms) noexcept {
    sweep(cutoff_ms(max_time_ms));
    uint64_t target = (_mask + 1) / 10 * 6;
    while (_used > target) {
        _sample.clear();
        uint64_t step = std::max<uint64_t>((_mask + 1) / sample_size, 1);
        for (uint64_t i = 0; i <= _mask && _sample.size() < sample_size; i += step)
            if (!empty(_table[i])) _sample.push_back(_table[i].time_ms);
        SLUICE_ASSERT(!_sample.empty());
        auto mid = _sample.begin() + _sample.size() / 2;
        std::nth_element(_sample.begin(), mid, _sample.end());
        // +1 so that at least the median itself goes, even when many times are equal.
        _forced_cutoff_ms = std::max(_forced_cutoff_ms, *mid + 1);
        ++_forced_sweeps;
        sweep(cutoff_ms(max_time_ms));
    }
}

void dedup_filter::sweep(int64_t cutoff) noexcept {
    for (uint64_t i = 0; i <= _mask; ++i) {
        // erase_at() shifts a later entry into i: look at i again until it holds a
        // live entry or nothing.
        while (!empty(_table[i]) && _table[i].time_ms < cutoff) erase_at(i);
    }
}

// Backward-shift deletion for linear probing (Knuth 6.4, Algorithm R): no tombstones.
void dedup_filter::erase_at(uint64_t i) noexcept {
    uint64_t j = i;
    for (;;) {
        _table[i] = entry{0, 0, 0};
        for (;;) {
            j = (j + 1) & _mask;
            if (empty(_table[j])) {
                --_used;
                return;
            }
            uint64_t k = home(_table[j]);
            // Move j back to i unless its home lies cyclically in (i, j].
            bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        _table[i] = _table[j];
        i = j;
    }
}

} // namespace sluice::processing
