#include "processing/window_state.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "processing/window_assigner.h"

namespace sluice::processing {

namespace {

uint64_t ceil_pow2(uint64_t v) {
    uint64_t p = 1;
    while (p < v) p *= 2;
    return p;
}


uint32_t key_class(uint32_t len) noexcept {
    uint32_t k = 0;
    while ((16u << k) < len) ++k;
    return k;
}

} // namespace

template <typename T>
void window_state::buffer<T>::allocate(uint64_t n) {
    bytes = std::max<size_t>(n * sizeof(T), 1);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    SLUICE_ASSERT(p != MAP_FAILED);
    ptr = static_cast<T*>(p);
}

template <typename T>
window_state::buffer<T>::~buffer() {
    if (ptr != nullptr) ::munmap(ptr, bytes);
}

window_state::~window_state() = default;

uint64_t window_state::bytes_per_cell(uint32_t blob_bytes) noexcept {
    return sizeof(cell) + 2 * sizeof(uint32_t) + blob_bytes;
}

window_state::window_state(const compiled_query& q)
    : _aggs(q.aggs), _window(q.def.window), _kind(q.def.window.kind),
      _blob_bytes(q.aggs.blob_bytes()), _cells_max(q.cells_max) {
    SLUICE_ASSERT(_cells_max > 0);
    SLUICE_ASSERT(_blob_bytes % 8 == 0);
    uint64_t slots = ceil_pow2(uint64_t(_cells_max) * 2);
    _cells.allocate(_cells_max);
    _blobs.allocate(uint64_t(_cells_max) * std::max<uint32_t>(_blob_bytes, 8));
    _index.allocate(slots);
    _index_mask = slots - 1;
    _keys_bytes = std::max<uint64_t>(q.key_arena_bytes, 2ull << key_class(q.key_bytes_max) << 4);
    SLUICE_ASSERT(key_class(q.key_bytes_max) < key_classes);
    _keys.allocate(_keys_bytes);
    std::fill(std::begin(_key_free), std::end(_key_free), 0u);
    std::fill(std::begin(_holds), std::end(_holds), INT64_MAX);
}

uint64_t window_state::find_slot(int64_t start, std::string_view key, uint64_t hash) const noexcept {
    for (uint64_t i = home_of(start, hash);; i = (i + 1) & _index_mask) {
        uint32_t v = _index[i];
        if (v == 0) return i;
        const cell& c = _cells[v - 1];
        if (c.hash == hash && (sessions() || c.start == start) && key_of(c) == key) return i;
    }
}

uint32_t window_state::key_alloc(uint32_t len) noexcept {
    uint32_t k = key_class(len);
    if (_key_free[k] != 0) {
        uint32_t off = _key_free[k] - 1;
        std::memcpy(&_key_free[k], _keys.get() + off, 4);
        return off;
    }
    uint64_t size = 16u << k;
    if (_keys_used + size > _keys_bytes) return UINT32_MAX;
    uint32_t off = uint32_t(_keys_used);
    _keys_used += size;
    return off;
}

void window_state::key_free(uint32_t off, uint32_t len) noexcept {
    uint32_t k = key_class(len);
    std::memcpy(_keys.get() + off, &_key_free[k], 4);
    _key_free[k] = off + 1;
}

uint32_t window_state::new_cell(int64_t start, int64_t end, std::string_view key,
                                uint64_t hash) noexcept {
    if (_live == _cells_max) [[unlikely]] return UINT32_MAX;
    uint32_t off = key_alloc(uint32_t(key.size()));
    if (off == UINT32_MAX) [[unlikely]] return UINT32_MAX;
    uint32_t id;
    if (_free_head != 0) {
        id = _free_head - 1;
        _free_head = _cells[id].next;
    } else {
        id = _high_water++;
    }
    std::memcpy(_keys.get() + off, key.data(), key.size());
    _cells[id] = cell{start, end, hash, off, uint32_t(key.size()), 0, 1};
    _aggs.init(blob(id));
    ++_live;
    note_open(_cells[id]);
    return id;
}

void window_state::free_cell(uint32_t id) noexcept {
    cell& c = _cells[id];
    key_free(c.key_off, c.key_len);
    c.live = 0;
    c.next = _free_head;
    _free_head = id + 1;
    --_live;
}

// Backward-shift deletion (Knuth 6.4, Algorithm R): no tombstones.
void window_state::erase_slot(uint64_t i) noexcept {
    uint64_t j = i;
    for (;;) {
        _index[i] = 0;
        for (;;) {
            j = (j + 1) & _index_mask;
            if (_index[j] == 0) return;
            const cell& c = _cells[_index[j] - 1];
            uint64_t k = home_of(c.start, c.hash);
            bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        _index[i] = _index[j];
        i = j;
    }
}

void window_state::remove(uint32_t id) noexcept {
    cell& c = _cells[id];
    uint64_t slot = find_slot(c.start, key_of(c), c.hash);
    SLUICE_DASSERT(_index[slot] != 0);
    if (!sessions()) {
        erase_slot(slot);
    } else if (_index[slot] == id + 1) {
        // The chain's head: its successor (same key, same home) takes the slot.
        if (c.next != 0) _index[slot] = c.next;
        else erase_slot(slot);
    } else {
        uint32_t prev = _index[slot] - 1;
        while (_cells[prev].next != id + 1) prev = _cells[prev].next - 1;
        _cells[prev].next = c.next;
    }
    free_cell(id);
}

void window_state::note_open(const cell& c) noexcept {
    _earliest_end = std::min(_earliest_end, c.end);
    _min_start = std::min(_min_start, c.start);
    if (sessions()) {
        int64_t& h = _holds[hold_bucket_of(c.hash)];
        h = std::min(h, c.start);
    }
}

void window_state::recompute_bounds() noexcept {
    _earliest_end = _min_start = INT64_MAX;
    std::fill(std::begin(_holds), std::end(_holds), INT64_MAX);
    for (uint32_t id = 0; id < _high_water; ++id)
        if (_cells[id].live) note_open(_cells[id]);
}

uint32_t window_state::cell_for_window(int64_t start, int64_t end, std::string_view key,
                                       uint64_t hash) noexcept {
    uint64_t slot = find_slot(start, key, hash);
    if (_index[slot] != 0) return _index[slot] - 1;
    uint32_t id = new_cell(start, end, key, hash);
    if (id != UINT32_MAX) _index[slot] = id + 1;
    return id;
}

// The piece of `key` covering [start, end): pieces that overlap it are merged into one
// (pieces of one key never overlap each other, so overlapping the new interval is the
// only way to touch the union).
uint32_t window_state::session_piece(int64_t start, int64_t end, std::string_view key,
                                     uint64_t hash) noexcept {
    uint64_t slot = find_slot(0, key, hash);
    uint32_t target = UINT32_MAX;
    for (uint32_t next = _index[slot]; next != 0;) {
        uint32_t id = next - 1;
        next = _cells[id].next;
        cell& c = _cells[id];
        if (!(c.start < end && c.end > start)) continue;
        if (target == UINT32_MAX) {
            target = id;
            continue;
        }
        cell& t = _cells[target];
        _aggs.merge(blob(target), blob(id));
        t.start = std::min(t.start, c.start);
        t.end = std::max(t.end, c.end);
        remove(id);
        slot = find_slot(0, key, hash); // the head may have changed
    }
    if (target == UINT32_MAX) {
        uint32_t id = new_cell(start, end, key, hash);
        if (id == UINT32_MAX) return id;
        slot = find_slot(0, key, hash); // new_cell does not touch the index
        _cells[id].next = _index[slot];
        _index[slot] = id + 1;
        return id;
    }
    cell& t = _cells[target];
    t.start = std::min(t.start, start);
    t.end = std::max(t.end, end);
    note_open(t);
    return target;
}

window_state::verdict window_state::add(int64_t t, std::string_view key, uint64_t key_hash,
                                        int64_t watermark_ms, const agg_input* inputs) noexcept {
    verdict v;
    // Which windows, and whether late: processing/window_assigner.h (shared with the
    // restart rebuild and replay).
    v.late = for_each_window(_window, t, watermark_ms, [&](int64_t start, int64_t end) noexcept {
        uint32_t id = sessions() ? session_piece(start, end, key, key_hash)
                                 : cell_for_window(start, end, key, key_hash);
        if (id == UINT32_MAX) [[unlikely]] {
            v.overflow = true;
            return;
        }
        _aggs.update(blob(id), inputs);
    });
    return v;
}

bool window_state::install(int64_t start, int64_t end, std::string_view key, uint64_t key_hash,
                           const uint8_t* src) noexcept {
    uint32_t id = sessions() ? session_piece(start, end, key, key_hash)
                             : cell_for_window(start, end, key, key_hash);
    if (id == UINT32_MAX) return false;
    _aggs.merge(blob(id), src);
    return true;
}

} // namespace sluice::processing
