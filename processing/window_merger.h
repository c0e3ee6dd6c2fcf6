#pragma once
// Partials from every worker meet in the window_merger (§3 Windows): a window's final
// result is written once, when every worker has closed it (each worker reports the
// watermark up to which it has closed windows).
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::processing {

// A buffer of partial aggregates from one worker, handed to the merger over a ring and
// handed back when merged. Records: {int64 window_start, uint64 count, uint32 key_len,
// key bytes}, each padded to 8 bytes.
struct partial_batch {
    uint32_t worker;
    uint32_t records;
    uint32_t used;           // bytes of records
    uint32_t capacity;       // bytes available for records
    int64_t closed_until_ms; // the worker closed every window ending at or before this
    bool final;              // the worker has stopped

    char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
    const char* data() const noexcept { return reinterpret_cast<const char*>(this + 1); }

    void reset(uint32_t worker_index) noexcept {
        worker = worker_index;
        records = used = 0;
        closed_until_ms = INT64_MIN;
        final = false;
    }
    static constexpr uint32_t record_bytes(size_t key_len) noexcept {
        return uint32_t((20 + key_len + 7) & ~size_t(7));
    }
    bool fits(size_t key_len) const noexcept { return used + record_bytes(key_len) <= capacity; }
    void append(int64_t start, std::string_view key, uint64_t count) noexcept {
        char* p = data() + used;
        std::memcpy(p, &start, 8);
        std::memcpy(p + 8, &count, 8);
        uint32_t len = uint32_t(key.size());
        std::memcpy(p + 16, &len, 4);
        std::memcpy(p + 20, key.data(), key.size());
        used += record_bytes(key.size());
        ++records;
    }
    template <typename F>
    void for_each(F&& f) const {
        uint32_t off = 0;
        for (uint32_t r = 0; r < records; ++r) {
            const char* p = data() + off;
            int64_t start;
            uint64_t count;
            uint32_t len;
            std::memcpy(&start, p, 8);
            std::memcpy(&count, p + 8, 8);
            std::memcpy(&len, p + 16, 4);
            f(start, std::string_view(p + 20, len), count);
            off += record_bytes(len);
        }
    }
};

struct window_row {
    int64_t window_start_ms;
    int64_t window_end_ms;
    std::string key;
    uint64_t count;
};

// Runs off the lcores (a plain thread); allocation is fine here.
class window_merger {
  public:
    using emit_fn = std::function<void(const window_row&)>;
    window_merger(uint32_t workers, int64_t window_size_ms, emit_fn emit);

    // Merges a batch; returns the number of windows finalized as a result.
    uint32_t merge(const partial_batch& batch);
    bool all_final() const noexcept { return _finals == _closed_until.size(); }
    uint64_t rows_emitted() const noexcept { return _rows_emitted; }
    size_t open_cells() const noexcept { return _cells.size(); }
    int64_t closed_until_ms() const noexcept;

  private:
    uint32_t finalize();

    int64_t _size_ms;
    emit_fn _emit;
    std::vector<int64_t> _closed_until;
    uint32_t _finals = 0;
    std::map<std::pair<int64_t, std::string>, uint64_t> _cells;
    uint64_t _rows_emitted = 0;
};

} // namespace sluice::processing
