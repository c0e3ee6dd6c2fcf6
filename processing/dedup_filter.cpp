#include "processing/dedup_filter.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <utility>

#include "base/assert.h"

namespace sluice::processing {

namespace {
constexpr uint32_t sample_size = 4096;
constexpr uint32_t kicks_max = 500;
constexpr uint32_t reclaim_buckets = 64;  // per reclaim_some() call: 4 KiB of table
constexpr int64_t base_span = int64_t(1) << 31; // live span kept below this after a rebase
constexpr uint64_t offset_limit = uint64_t(1) << 32;

uint64_t mulhi(uint64_t a, uint64_t b) noexcept {
    return uint64_t((unsigned __int128)a * b >> 64);
}

// a - b without signed overflow, saturating at INT64_MIN.
int64_t minus(int64_t a, int64_t b) noexcept {
    int64_t r;
    return __builtin_sub_overflow(a, b, &r) ? INT64_MIN : r;
}

constexpr size_t huge_page = size_t(2) << 20;
constexpr size_t small_page = 4096;

size_t round_up(size_t n, size_t to) noexcept { return (n + to - 1) / to * to; }
} // namespace

void dedup_filter::unmap_table::operator()(bucket* p) const noexcept {
    munmap(p, mapped_bytes);
}

dedup_filter::dedup_filter(uint64_t memory_bytes, int64_t horizon_ms, dedup_pages pages)
    : _buckets(std::max<uint64_t>(memory_bytes / sizeof(bucket), 256)),
      _pages(pages),
      _table(nullptr, unmap_table{0}),
      _horizon_ms(std::min(horizon_ms, horizon_ms_max)) {
    // Anonymous memory is zeroed: every slot empty. Aligned to 2 MB so that
    // transparent huge pages can back all of it.
    const size_t mapped = round_up(_buckets * sizeof(bucket), small_page);
    const size_t span = mapped + huge_page;
    void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc(); // as make_unique did
    const auto at = reinterpret_cast<uintptr_t>(p);
    const uintptr_t aligned = round_up(at, huge_page);
    if (aligned != at) munmap(p, aligned - at);
    munmap(reinterpret_cast<void*>(aligned + mapped), at + span - (aligned + mapped));
    p = reinterpret_cast<void*>(aligned);
    (void)madvise(p, mapped, _pages == dedup_pages::normal ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
    // Touch every page now rather than on the hot path.
    for (size_t off = 0; off < mapped; off += small_page) static_cast<volatile char*>(p)[off] = 0;
    _table = std::unique_ptr<bucket[], unmap_table>(static_cast<bucket*>(p), unmap_table{mapped});
    _sample.reserve(sample_size);
}

// Two buckets from the identity's high half (the low half routes it to this worker, so
// its low bits are the same for every identity here). Multiply-shift maps onto any
// bucket count, so the whole budget is used, not the largest power of two below it.
uint64_t dedup_filter::bucket_a(uint64_t hi) const noexcept { return mulhi(hi, _buckets); }

uint64_t dedup_filter::bucket_b(uint64_t hi) const noexcept {
    uint64_t x = hi * 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    return mulhi(x * 0x94d049bb133111ebULL, _buckets);
}

int64_t dedup_filter::cutoff_ms(int64_t max_time_ms) const noexcept {
    int64_t by_horizon = max_time_ms == no_time ? INT64_MIN : minus(max_time_ms, _horizon_ms);
    return std::max({by_horizon, _forced_cutoff_ms, _restored_cutoff_ms});
}

int64_t dedup_filter::effective_horizon_ms(int64_t max_time_ms) const noexcept {
    if (max_time_ms == no_time || _forced_cutoff_ms == INT64_MIN) return _horizon_ms;
    return std::min(_horizon_ms, max_time_ms - _forced_cutoff_ms);
}

uint64_t dedup_filter::cutoff_offset(int64_t cutoff) const noexcept {
    if (cutoff <= _base_ms) return 0;
    return std::min(uint64_t(cutoff) - uint64_t(_base_ms), offset_limit);
}

dedup_filter::slot* dedup_filter::free_slot_in(bucket& bk, uint64_t off_cutoff) noexcept {
    for (slot& e : bk.s)
        if (empty(e) || e.time < off_cutoff) return &e;
    return nullptr;
}

dedup_filter::key dedup_filter::key_of(const identity& id) const noexcept {
    uint64_t hi = id.hi;
    uint32_t lo = uint32_t(id.lo >> 32);
    if (hi == 0 && lo == 0) lo = 1; // (0, 0) marks an empty slot
    return key{hi, lo, bucket_a(hi), bucket_b(hi)};
}

dedup_verdict dedup_filter::check_and_insert(const identity& id, int64_t event_time_ms,
                                             int64_t max_time_ms) noexcept {
    if (event_time_ms < cutoff_ms(max_time_ms)) return dedup_verdict::beyond_horizon;
    key k = key_of(id);
    __builtin_prefetch(&_table[k.b]);
    return check_and_insert(k, event_time_ms, max_time_ms);
}

// Two passes over the burst: the buckets of every event first (hashing only), then the
// events in order, the buckets of event i + ahead prefetched while event i is checked, so
// that the cache and TLB misses of `ahead` events overlap. 16 events (32 lines) in
// flight: 8 did as well, 32 and all 64 at once worse (docs/benchmarks.md, issue 14). Prefetches are only hints: the table changing under
// them (earlier events of the burst inserting or moving entries) costs speed at most,
// never exactness, since check_and_insert() runs in order on the table as it is.
// Prefetching also the buckets that move_one_aside() would read (where an event's two
// buckets are full) lost: reading the buckets ahead stalls more than it saves.
void dedup_filter::check_and_insert_burst(const dedup_request* req, uint32_t n,
                                          dedup_verdict* verdicts) noexcept {
    constexpr uint32_t chunk = 64;
    constexpr uint32_t ahead = 16;
    key keys[chunk];
    for (uint32_t start = 0; start < n; start += chunk) {
        const uint32_t m = std::min(n - start, chunk);
        const dedup_request* r = req + start;
        for (uint32_t i = 0; i < m; ++i) keys[i] = key_of(r[i].id);
        for (uint32_t i = 0; i < std::min(m, ahead); ++i) {
            __builtin_prefetch(&_table[keys[i].a]);
            __builtin_prefetch(&_table[keys[i].b]);
        }
        for (uint32_t i = 0; i < m; ++i) {
            if (i + ahead < m) {
                __builtin_prefetch(&_table[keys[i + ahead].a]);
                __builtin_prefetch(&_table[keys[i + ahead].b]);
            }
            verdicts[start + i] = r[i].event_time_ms < cutoff_ms(r[i].max_time_ms)
                                      ? dedup_verdict::beyond_horizon
                                      : check_and_insert(keys[i], r[i].event_time_ms,
                                                         r[i].max_time_ms);
        }
    }
}

// The event is not beyond the cutoff.
dedup_verdict dedup_filter::check_and_insert(const key& k, int64_t event_time_ms,
                                             int64_t max_time_ms) noexcept {
    int64_t cutoff = cutoff_ms(max_time_ms);
    const uint64_t hi = k.hi;
    const uint32_t lo = k.lo;
    if (_used == 0) [[unlikely]]
        _base_ms = std::max(cutoff, minus(event_time_ms, base_span));
    if (event_time_ms < _base_ms ||
        uint64_t(event_time_ms) - uint64_t(_base_ms) >= offset_limit) [[unlikely]] {
        if (!rebase(event_time_ms, max_time_ms)) return dedup_verdict::beyond_horizon;
        cutoff = cutoff_ms(max_time_ms);
    }
    const uint64_t off_cutoff = cutoff_offset(cutoff);
    const uint32_t off = uint32_t(uint64_t(event_time_ms) - uint64_t(_base_ms));

    bucket& ba = _table[k.a];
    bucket& bb = _table[k.b];
    for (bucket* bk : {&ba, &bb}) {
        for (slot& e : bk->s) {
            if (e.hi != hi || e.lo != lo) continue;
            if (e.time >= off_cutoff) return dedup_verdict::duplicate;
            e.time = off; // expired: this is a new sighting
            return dedup_verdict::accepted;
        }
    }
    slot* f = free_slot_in(ba, off_cutoff);
    if (f == nullptr) f = free_slot_in(bb, off_cutoff);
    if (f != nullptr) [[likely]] {
        _used += empty(*f);
        *f = slot{hi, lo, off};
        return dedup_verdict::accepted;
    }
    if (!move_one_aside(ba, bb, slot{hi, lo, off}, off_cutoff)) [[unlikely]]
        place(slot{hi, lo, off}, k.a, max_time_ms);
    return dedup_verdict::accepted;
}

// One level of breadth-first search before the random walk: the eight entries of both
// buckets each have another bucket; fetch all eight at once (their cache misses
// overlap) and move the first entry whose other bucket has room. At 90% live load
// this places all but a few percent of the inserts that found both buckets full.
bool dedup_filter::move_one_aside(bucket& ba, bucket& bb, const slot& e,
                                  uint64_t off_cutoff) noexcept {
    uint64_t other[2 * slots_per_bucket];
    slot* from[2 * slots_per_bucket];
    uint32_t n = 0;
    for (bucket* bk : {&ba, &bb}) {
        uint64_t here = uint64_t(bk - _table.get());
        for (slot& s : bk->s) {
            uint64_t sa = bucket_a(s.hi);
            uint64_t alt = here == sa ? bucket_b(s.hi) : sa;
            __builtin_prefetch(&_table[alt]);
            other[n] = alt;
            from[n++] = &s;
        }
    }
    for (uint32_t k = 0; k < n; ++k) {
        if (slot* f = free_slot_in(_table[other[k]], off_cutoff)) {
            _used += empty(*f);
            *f = *from[k];
            *from[k] = e;
            return true;
        }
    }
    return false;
}

// Both buckets hold live entries only: make room by moving entries to their other
// bucket. When no walk finds room, the table is full of live entries for this budget:
// the cutoff rises (cut_horizon) and the entry in hand is placed again, or dropped when
// the cut expired it.
void dedup_filter::place(slot e, uint64_t b, int64_t max_time_ms) noexcept {
    for (;;) {
        uint64_t off_cutoff = cutoff_offset(cutoff_ms(max_time_ms));
        if (e.time < off_cutoff) return;
        if (kick_walk(e, b, off_cutoff)) return;
        cut_horizon(max_time_ms);
        b = bucket_a(e.hi);
    }
}

// A random walk: evict a slot of bucket b for `e`, then try the evicted entry's other
// bucket. Every identity stays in exactly one slot; on failure `e` is the one entry left
// out of the table.
bool dedup_filter::kick_walk(slot& e, uint64_t b, uint64_t off_cutoff) noexcept {
    for (uint32_t kick = 0; kick < kicks_max; ++kick) {
        if (slot* f = free_slot_in(_table[b], off_cutoff)) {
            _used += empty(*f);
            *f = e;
            return true;
        }
        _rng ^= _rng << 13;
        _rng ^= _rng >> 7;
        _rng ^= _rng << 17;
        std::swap(e, _table[b].s[_rng % slots_per_bucket]);
        uint64_t ea = bucket_a(e.hi);
        b = b == ea ? bucket_b(e.hi) : ea;
    }
    return false;
}

// The budget forces a shorter horizon: raise the cutoff past the oldest eighth of a
// sample of live entries.
void dedup_filter::cut_horizon(int64_t max_time_ms) noexcept {
    uint64_t off_cutoff = cutoff_offset(cutoff_ms(max_time_ms));
    _sample.clear();
    uint64_t step = std::max<uint64_t>(_buckets * slots_per_bucket / sample_size, 1);
    for (uint64_t i = 0; i < _buckets * slots_per_bucket && _sample.size() < sample_size;
         i += step) {
        const slot& e = _table[i / slots_per_bucket].s[i % slots_per_bucket];
        if (!empty(e) && e.time >= off_cutoff) _sample.push_back(e.time);
    }
    SLUICE_ASSERT(!_sample.empty());
    auto q = _sample.begin() + _sample.size() / 8;
    std::nth_element(_sample.begin(), q, _sample.end());
    // +1 so that at least the quantile's own time goes, even when many times are equal.
    _forced_cutoff_ms = std::max(_forced_cutoff_ms, _base_ms + int64_t(*q) + 1);
    ++_horizon_cuts;
}

// Rare: an event older than the base, or 2^32 ms past it (event time moved ~24 days
// since the last rebase, or jumped). Expired entries go; the new base is the cutoff, or
// 2^31 ms below the newest time when the cutoff lies further down, so that the next
// rebase is at least 2^31 ms of event time away. A live span wider than 2^31 ms (a jump
// in event time) is cut to it, like a budget cut (counted in horizon_cuts).
bool dedup_filter::rebase(int64_t event_time_ms, int64_t max_time_ms) noexcept {
    ++_rebases;
    int64_t cutoff = cutoff_ms(max_time_ms);
    uint64_t off_cutoff = cutoff_offset(cutoff);
    int64_t low = event_time_ms, high = event_time_ms;
    for (uint64_t i = 0; i < _buckets; ++i) {
        for (slot& e : _table[i].s) {
            if (empty(e)) continue;
            if (e.time < off_cutoff) {
                e = slot{};
                --_used;
                continue;
            }
            int64_t t = _base_ms + int64_t(e.time);
            low = std::min(low, t);
            high = std::max(high, t);
        }
    }
    if (uint64_t(high) - uint64_t(low) > uint64_t(base_span)) {
        _forced_cutoff_ms = std::max(_forced_cutoff_ms, high - base_span);
        ++_horizon_cuts;
        cutoff = cutoff_ms(max_time_ms);
    }
    int64_t base = std::max(cutoff, high - base_span);
    for (uint64_t i = 0; i < _buckets; ++i) {
        for (slot& e : _table[i].s) {
            if (empty(e)) continue;
            int64_t t = _base_ms + int64_t(e.time);
            if (t < base) {
                e = slot{};
                --_used;
            } else {
                e.time = uint32_t(t - base);
            }
        }
    }
    _base_ms = base;
    return event_time_ms >= cutoff;
}

void dedup_filter::reclaim_some(int64_t max_time_ms) noexcept {
    uint64_t off_cutoff = cutoff_offset(cutoff_ms(max_time_ms));
    if (off_cutoff == 0) return;
    for (uint32_t n = 0; n < reclaim_buckets; ++n) {
        for (slot& e : _table[_reclaim_next].s) {
            if (!empty(e) && e.time < off_cutoff) {
                e = slot{};
                --_used;
            }
        }
        if (++_reclaim_next == _buckets) _reclaim_next = 0;
    }
}

} // namespace sluice::processing
