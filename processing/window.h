#pragma once
// Event-time windows of one continuous query on one worker (§3 Windows).
//
// window_state keeps partial aggregates per (window start, group key) in flat,
// preallocated tables; close_until() hands every cell whose window ended at or before
// the watermark to a sink and forgets it. Partials travel to the merger in
// partial_batch buffers (see window_merger.h).
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace sluice::processing {

struct window_spec {
    int64_t size_ms = 60'000; // tumbling
};

inline int64_t window_start_of(int64_t t_ms, int64_t size_ms) noexcept {
    int64_t q = t_ms / size_ms;
    if (t_ms % size_ms < 0) --q; // floor for times before the epoch
    return q * size_ms;
}

// Interns group-key strings into dense ids; preallocated, never shrinks.
class key_interner {
  public:
    key_interner(uint32_t keys_max, size_t bytes_max);
    // UINT32_MAX when full.
    uint32_t intern(std::string_view key) noexcept;
    std::string_view key(uint32_t id) const noexcept;
    uint32_t size() const noexcept { return uint32_t(_keys.size()); }

  private:
    struct slot {
        uint64_t hash;
        uint32_t id; // UINT32_MAX = empty
    };
    struct span {
        uint64_t off;
        uint32_t len;
    };
    std::vector<slot> _slots;
    std::vector<span> _keys;
    std::vector<char> _arena;
    uint64_t _mask;
    size_t _arena_used = 0;
};

class window_state {
  public:
    window_state(window_spec spec, uint32_t cells_max, uint32_t keys_max, size_t key_bytes_max);

    // Adds one event's contribution; false when the state is full (the caller counts it).
    bool add(int64_t event_time_ms, std::string_view key, uint64_t count = 1) noexcept;

    // Emits and removes every cell with window end <= watermark_ms:
    // sink(window_start_ms, key, count). Returns cells emitted.
    template <typename Sink>
    uint32_t close_until(int64_t watermark_ms, Sink&& sink) noexcept;

    // The earliest window end among open cells (INT64_MAX if none).
    int64_t earliest_end_ms() const noexcept { return _earliest_start == INT64_MAX ? INT64_MAX : _earliest_start + _spec.size_ms; }
    uint32_t open_cells() const noexcept { return _used; }
    const window_spec& spec() const noexcept { return _spec; }

  private:
    struct cell {
        int64_t start; // INT64_MIN = empty
        uint32_t key;
        uint32_t pad;
        uint64_t count;
    };
    uint64_t home(int64_t start, uint32_t key) const noexcept;
    void erase_at(uint64_t i) noexcept;

    window_spec _spec;
    std::vector<cell> _cells;
    uint64_t _mask;
    uint32_t _used = 0;
    uint32_t _used_max;
    int64_t _earliest_start = INT64_MAX;
    key_interner _keys;
};

template <typename Sink>
uint32_t window_state::close_until(int64_t watermark_ms, Sink&& sink) noexcept {
    if (earliest_end_ms() > watermark_ms) return 0;
    uint32_t emitted = 0;
    int64_t earliest = INT64_MAX;
    for (uint64_t i = 0; i <= _mask; ++i) {
        for (;;) {
            cell& c = _cells[i];
            if (c.start == INT64_MIN) break;
            if (c.start + _spec.size_ms > watermark_ms) {
                earliest = std::min(earliest, c.start);
                break;
            }
            sink(c.start, _keys.key(c.key), c.count);
            ++emitted;
            erase_at(i); // may shift a later cell into i: look again
        }
    }
    _earliest_start = earliest;
    return emitted;
}

} // namespace sluice::processing
