#include "dataplane/kafka/producer_sequences.h"

#include "base/assert.h"

namespace sluice::dataplane::kafka {

int32_t last_sequence(int32_t first, int32_t last_offset_delta) noexcept {
    const int64_t wrap = int64_t(INT32_MAX) + 1;
    return int32_t((int64_t(first) + int64_t(last_offset_delta)) % wrap);
}

namespace {
uint64_t mix(uint64_t x) noexcept { // splitmix64's finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
} // namespace

producer_sequences::producer_sequences(uint32_t capacity) : _capacity(capacity) {
    SLUICE_ASSERT(capacity > 0);
    uint32_t slots = 2;
    while (slots < 2 * uint64_t(capacity))
        slots *= 2;
    _mask = slots - 1;
    _entries.reset(new entry[capacity]);
    _table.reset(new uint32_t[slots]());
}

producer_sequences::~producer_sequences() = default;

uint32_t producer_sequences::home(const sequence_key& k) const noexcept {
    return uint32_t(mix(uint64_t(k.producer_id) ^ mix(k.topic ^ uint32_t(k.partition)))) & _mask;
}

uint32_t producer_sequences::find(const sequence_key& k) const noexcept {
    for (uint32_t s = home(k);; s = (s + 1) & _mask) {
        const uint32_t v = _table[s];
        if (v == 0) return none;
        if (_entries[v - 1].key == k) return v - 1;
    }
}

void producer_sequences::unlink(uint32_t i) noexcept {
    entry& e = _entries[i];
    if (e.prev != none)
        _entries[e.prev].next = e.next;
    else
        _lru_head = e.next;
    if (e.next != none)
        _entries[e.next].prev = e.prev;
    else
        _lru_tail = e.prev;
    e.prev = e.next = none;
}

void producer_sequences::push_front(uint32_t i) noexcept {
    entry& e = _entries[i];
    e.prev = none;
    e.next = _lru_head;
    if (_lru_head != none) _entries[_lru_head].prev = i;
    _lru_head = i;
    if (_lru_tail == none) _lru_tail = i;
}

// Linear probing's deletion by backward shift: no tombstones, probes stay short.
void producer_sequences::erase_slot_of(uint32_t i) noexcept {
    uint32_t s = home(_entries[i].key);
    while (_table[s] != i + 1)
        s = (s + 1) & _mask;
    for (uint32_t j = (s + 1) & _mask; _table[j] != 0; j = (j + 1) & _mask) {
        const uint32_t h = home(_entries[_table[j] - 1].key);
        // Move j's entry into the hole unless its home lies cyclically in (s, j].
        const bool stays = s <= j ? (s < h && h <= j) : (s < h || h <= j);
        if (!stays) {
            _table[s] = _table[j];
            s = j;
        }
    }
    _table[s] = 0;
}

sequence_check producer_sequences::check(const sequence_key& k, int16_t epoch, int32_t first_seq,
                                         int32_t last_seq) noexcept {
    const uint32_t i = find(k);
    if (i == none) return {};
    unlink(i);
    push_front(i);
    const entry& e = _entries[i];
    if (epoch < e.epoch) return {sequence_verdict::fenced, -1};
    if (epoch > e.epoch)
        return {first_seq == 0 ? sequence_verdict::accept : sequence_verdict::out_of_order, -1};
    for (uint32_t b = 0; b < e.kept; ++b)
        if (e.batches[b].first_seq == first_seq && e.batches[b].last_seq == last_seq)
            return {sequence_verdict::duplicate, e.batches[b].base_offset};
    const int32_t last = e.batches[e.newest].last_seq;
    const int32_t expected = last == INT32_MAX ? 0 : last + 1;
    return {first_seq == expected ? sequence_verdict::accept : sequence_verdict::out_of_order, -1};
}

void producer_sequences::accepted(const sequence_key& k, int16_t epoch, int32_t first_seq,
                                  int32_t last_seq, int64_t base_offset) noexcept {
    uint32_t i = find(k);
    if (i == none) {
        if (_size < _capacity) {
            i = _size++;
        } else {
            i = _lru_tail; // forget the least recently used producer-partition
            erase_slot_of(i);
            unlink(i);
            ++_evictions;
        }
        entry& e = _entries[i];
        e.key = k;
        e.kept = 0;
        e.epoch = epoch;
        uint32_t s = home(k);
        while (_table[s] != 0)
            s = (s + 1) & _mask;
        _table[s] = i + 1;
    } else {
        unlink(i);
    }
    push_front(i);
    entry& e = _entries[i];
    if (epoch != e.epoch) {
        e.epoch = epoch;
        e.kept = 0;
    }
    const uint32_t slot = e.kept < limits::kafka_producer_batches_kept
                              ? e.kept++
                              : (e.newest + 1u) % limits::kafka_producer_batches_kept;
    e.batches[slot] = {first_seq, last_seq, base_offset};
    e.newest = uint8_t(slot);
}

void producer_sequences::erase(uint32_t i) noexcept {
    erase_slot_of(i);
    unlink(i);
    const uint32_t last = _size - 1;
    if (i != last) { // keep the entries dense: the last one moves into the hole
        uint32_t s = home(_entries[last].key);
        while (_table[s] != last + 1)
            s = (s + 1) & _mask;
        _table[s] = i + 1;
        _entries[i] = _entries[last];
        entry& m = _entries[i];
        if (m.prev != none)
            _entries[m.prev].next = i;
        else
            _lru_head = i;
        if (m.next != none)
            _entries[m.next].prev = i;
        else
            _lru_tail = i;
    }
    --_size;
}

void producer_sequences::forget(const sequence_key& k, int16_t epoch, int32_t first_seq,
                                int32_t last_seq) noexcept {
    const uint32_t i = find(k);
    if (i == none) return;
    entry& e = _entries[i];
    constexpr uint32_t kept_max = limits::kafka_producer_batches_kept;
    const auto& newest = e.batches[e.newest];
    if (e.kept <= 1 || e.epoch != epoch || newest.first_seq != first_seq ||
        newest.last_seq != last_seq) {
        erase(i);
        return;
    }
    if (e.kept < kept_max) { // batches [0, kept), newest last
        --e.kept;
        e.newest = uint8_t(e.kept - 1);
        return;
    }
    // A full ring: the others, oldest first, back to [0, kept_max - 1) (the layout
    // accepted() and for_each_batch() expect while the ring is not full).
    entry::batch rest[kept_max];
    for (uint32_t b = 0; b + 1 < kept_max; ++b)
        rest[b] = e.batches[(e.newest + 1u + b) % kept_max];
    for (uint32_t b = 0; b + 1 < kept_max; ++b)
        e.batches[b] = rest[b];
    e.kept = uint8_t(kept_max - 1);
    e.newest = uint8_t(kept_max - 2);
}

} // namespace sluice::dataplane::kafka
