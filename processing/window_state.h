#pragma once
// window_state: the open windows of one continuous query on one worker (§3 Windows).
//
// A cell is one (window, group key) with its aggregate blob (aggregates.h). Tumbling and
// hopping cells are keyed by (window start, key); session cells ("pieces") hang off their
// key in a chain, since a key may have several disjoint open sessions while events arrive
// out of order. Everything is sized once from the compiled query and never allocates
// again: a cell array with a free list, blobs beside it, an open-addressing index of
// cell ids (0 = empty, so fresh zero pages are a valid empty index), and a key arena
// with power-of-two size classes. The arrays are anonymous mappings (mmap), so memory
// is touched only as cells are used, however large the budget. Owned by one worker lcore.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "processing/query_runtime.h"
#include "processing/window_assigner.h"

namespace sluice::processing {

class window_state {
  public:
    // Memory per cell besides its key (cell, index slots, blob).
    static uint64_t bytes_per_cell(uint32_t blob_bytes) noexcept;

    explicit window_state(const compiled_query& q);
    ~window_state();
    window_state(const window_state&) = delete;
    window_state& operator=(const window_state&) = delete;

    struct verdict {
        bool late = false;     // a window it belongs to had closed (not aggregated there)
        bool overflow = false; // no room for a cell or its key (not aggregated there)
    };
    // One event of this query: event time t, encoded group key and its hash, the query's
    // current watermark (INT64_MIN: none yet) and the aggregate inputs.
    verdict add(int64_t t_ms, std::string_view key, uint64_t key_hash, int64_t watermark_ms,
                const agg_input* inputs) noexcept;

    // A burst's probes ahead of its adds (processing/worker.cpp, as dedup_filter's burst):
    // prefetch_index() starts fetching the index slot that add() for an event of time
    // t_ms with this key hash probes first (its first window; sessions: the key's chain);
    // prefetch_cell(), called a while later, reads that slot and starts fetching the cell
    // it names and the cell's blob. Hints only: they change nothing, and the index
    // changing in between costs speed at most, never exactness.
    void prefetch_index(int64_t t_ms, uint64_t key_hash) const noexcept {
        __builtin_prefetch(&_index[home_of(first_start(t_ms), key_hash)]);
    }
    void prefetch_cell(int64_t t_ms, uint64_t key_hash) const noexcept {
        const uint32_t v = _index[home_of(first_start(t_ms), key_hash)];
        if (v == 0) return;
        __builtin_prefetch(&_cells[v - 1]);
        __builtin_prefetch(blob(v - 1));
    }

    // Puts a partial cell in (restart rebuild); merges with what is there. False if full.
    bool install(int64_t start_ms, int64_t end_ms, std::string_view key, uint64_t key_hash,
                 const uint8_t* blob) noexcept;

    // Hands every cell ending at or before watermark_ms to sink(start, end, key, blob) and
    // removes it. Returns cells closed.
    template <typename Sink>
    uint32_t close_until(int64_t watermark_ms, Sink&& sink) noexcept;
    // Every open cell, unchanged (live view).
    template <typename Sink>
    void for_each_open(Sink&& sink) const;

    // A lower bound of the earliest end among open cells (INT64_MAX: none).
    int64_t earliest_end_ms() const noexcept { return _earliest_end; }
    // A lower bound of the earliest start among open cells (INT64_MAX: none).
    int64_t open_min_start_ms() const noexcept { return _min_start; }
    // Sessions: per hold bucket, a lower bound of the earliest start of open pieces.
    const int64_t* holds_ms() const noexcept { return _holds; }
    uint32_t open_cells() const noexcept { return _live; }
    uint32_t cells_max() const noexcept { return _cells_max; }

  private:
    struct cell {
        int64_t start;
        int64_t end;
        uint64_t hash;
        uint32_t key_off;
        uint32_t key_len;
        uint32_t next; // session chain (cell id + 1, 0 = none); free list
        uint32_t live;
    };
    // Zero-filled anonymous memory, unmapped on destruction.
    template <typename T>
    struct buffer {
        T* ptr = nullptr;
        size_t bytes = 0;
        buffer() = default;
        buffer(const buffer&) = delete;
        buffer& operator=(const buffer&) = delete;
        ~buffer();
        void allocate(uint64_t n);
        T* get() const noexcept { return ptr; }
        T& operator[](uint64_t i) const noexcept { return ptr[i]; }
    };

    bool sessions() const noexcept { return _kind == window_kind::session; }
    uint64_t home_of(int64_t start, uint64_t hash) const noexcept {
        uint64_t x = hash;
        if (!sessions()) x ^= uint64_t(start) * 0x9E3779B97F4A7C15ULL;
        x ^= x >> 31;
        x *= 0xC2B2AE3D27D4EB4FULL;
        x ^= x >> 29;
        return x & _index_mask;
    }
    // The start find_slot() is given for an event's first window (sessions: 0).
    int64_t first_start(int64_t t_ms) const noexcept {
        return sessions() ? 0 : first_window_start(_window, t_ms);
    }
    std::string_view key_of(const cell& c) const noexcept { return {_keys.get() + c.key_off, c.key_len}; }
    uint8_t* blob(uint32_t id) noexcept { return _blobs.get() + uint64_t(id) * _blob_bytes; }
    const uint8_t* blob(uint32_t id) const noexcept { return _blobs.get() + uint64_t(id) * _blob_bytes; }
    // Index slot holding the cell for (start, key) (sessions: the key's chain head), or the
    // empty slot where it would go.
    uint64_t find_slot(int64_t start, std::string_view key, uint64_t hash) const noexcept;
    uint32_t new_cell(int64_t start, int64_t end, std::string_view key, uint64_t hash) noexcept;
    void free_cell(uint32_t id) noexcept;
    void erase_slot(uint64_t slot) noexcept;
    void remove(uint32_t id) noexcept; // from the index (or its chain) and freed
    uint32_t key_alloc(uint32_t len) noexcept;
    void key_free(uint32_t off, uint32_t len) noexcept;
    uint32_t cell_for_window(int64_t start, int64_t end, std::string_view key, uint64_t hash) noexcept;
    uint32_t session_piece(int64_t start, int64_t end, std::string_view key, uint64_t hash) noexcept;
    void note_open(const cell& c) noexcept;
    void recompute_bounds() noexcept;

    const agg_layout& _aggs;
    window_def _window;
    window_kind _kind;
    uint32_t _blob_bytes;
    uint32_t _cells_max;
    uint32_t _live = 0;
    uint32_t _high_water = 0; // cells [0, _high_water) have been used
    uint32_t _free_head = 0;  // cell id + 1
    buffer<cell> _cells;
    buffer<uint8_t> _blobs;
    buffer<uint32_t> _index; // cell id + 1, 0 = empty
    uint64_t _index_mask;
    buffer<char> _keys;
    uint64_t _keys_bytes;
    uint64_t _keys_used = 0;
    static constexpr uint32_t key_classes = 20; // 16 B .. 8 MiB
    uint32_t _key_free[key_classes];             // offset + 1, 0 = none
    int64_t _earliest_end = INT64_MAX;
    int64_t _min_start = INT64_MAX;
    int64_t _holds[hold_buckets];
};

template <typename Sink>
uint32_t window_state::close_until(int64_t watermark_ms, Sink&& sink) noexcept {
    // window_closed() (processing/window_assigner.h) is the rule; no cell is closed
    // while even the earliest end is not.
    if (!window_closed(_earliest_end, watermark_ms)) return 0;
    uint32_t closed = 0;
    for (uint32_t id = 0; id < _high_water; ++id) {
        const cell& c = _cells[id];
        if (!c.live || !window_closed(c.end, watermark_ms)) continue;
        sink(c.start, c.end, key_of(c), static_cast<const uint8_t*>(blob(id)));
        remove(id);
        ++closed;
    }
    recompute_bounds();
    return closed;
}

template <typename Sink>
void window_state::for_each_open(Sink&& sink) const {
    for (uint32_t id = 0; id < _high_water; ++id) {
        const cell& c = _cells[id];
        if (c.live) sink(c.start, c.end, key_of(c), blob(id));
    }
}

} // namespace sluice::processing
