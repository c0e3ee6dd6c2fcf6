#include "processing/window.h"

#include <algorithm>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/assert.h"

namespace sluice::processing {

namespace {
uint64_t ceil_pow2(uint64_t v) {
    uint64_t p = 1;
    while (p < v) p *= 2;
    return p;
}
} // namespace

key_interner::key_interner(uint32_t keys_max, size_t bytes_max) {
    uint64_t n = ceil_pow2(uint64_t(keys_max) * 2);
    _slots.assign(n, slot{0, UINT32_MAX});
    _mask = n - 1;
    _keys.reserve(keys_max);
    _arena.resize(bytes_max);
}

uint32_t key_interner::intern(std::string_view key) noexcept {
    uint64_t h = XXH3_64bits(key.data(), key.size());
    for (uint64_t i = h & _mask;; i = (i + 1) & _mask) {
        slot& s = _slots[i];
        if (s.id == UINT32_MAX) {
            if (_keys.size() == _keys.capacity() || _arena.size() - _arena_used < key.size())
                return UINT32_MAX;
            std::memcpy(_arena.data() + _arena_used, key.data(), key.size());
            s = slot{h, uint32_t(_keys.size())};
            _keys.push_back(span{_arena_used, uint32_t(key.size())});
            _arena_used += key.size();
            return s.id;
        }
        if (s.hash == h && this->key(s.id) == key) return s.id;
    }
}

std::string_view key_interner::key(uint32_t id) const noexcept {
    const span& s = _keys[id];
    return {_arena.data() + s.off, s.len};
}

window_state::window_state(window_spec spec, uint32_t cells_max, uint32_t keys_max,
                           size_t key_bytes_max)
    : _spec(spec), _keys(keys_max, key_bytes_max) {
    SLUICE_ASSERT(spec.size_ms > 0);
    uint64_t n = ceil_pow2(uint64_t(cells_max) * 2);
    _cells.assign(n, cell{INT64_MIN, 0, 0, 0});
    _mask = n - 1;
    _used_max = cells_max;
}

uint64_t window_state::home(int64_t start, uint32_t key) const noexcept {
    uint64_t x = uint64_t(start) * 0x9E3779B97F4A7C15ULL ^ (uint64_t(key) * 0xC2B2AE3D27D4EB4FULL);
    return (x ^ (x >> 29)) & _mask;
}

bool window_state::add(int64_t event_time_ms, std::string_view key, uint64_t count) noexcept {
    uint32_t k = _keys.intern(key);
    if (k == UINT32_MAX) [[unlikely]] return false;
    int64_t start = window_start_of(event_time_ms, _spec.size_ms);
    for (uint64_t i = home(start, k);; i = (i + 1) & _mask) {
        cell& c = _cells[i];
        if (c.start == start && c.key == k) {
            c.count += count;
            return true;
        }
        if (c.start == INT64_MIN) {
            if (_used >= _used_max) [[unlikely]] return false;
            c = cell{start, k, 0, count};
            ++_used;
            _earliest_start = std::min(_earliest_start, start);
            return true;
        }
    }
}

// Backward-shift deletion (see dedup_filter.cpp).
void window_state::erase_at(uint64_t i) noexcept {
    uint64_t j = i;
    for (;;) {
        _cells[i].start = INT64_MIN;
        for (;;) {
            j = (j + 1) & _mask;
            if (_cells[j].start == INT64_MIN) {
                --_used;
                return;
            }
            uint64_t k = home(_cells[j].start, _cells[j].key);
            bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        _cells[i] = _cells[j];
        i = j;
    }
}

} // namespace sluice::processing
