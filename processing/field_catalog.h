#pragma once
// field_catalog: the event fields that continuous queries need beyond the four the RX
// always parses (page, user_id, event_type, event_id): top-level keys ("region") and
// keys inside a top-level object ("metadata.referrer"). The RX's event parser extracts
// each catalog field into the slot (event_slot::extra).
//
// Written by the control thread only, read by RX lcores without locks: entries are
// append-only and immutable once published; publish() stores the count, then bumps the
// generation (release). A parser that sees generation g (acquire) sees every entry
// published with it, and stamps g into each slot it fills, so a query added at
// generation g counts exactly the events parsed with g or later.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "base/limits.h"
#include "base/result.h"

namespace sluice::processing {

class field_catalog {
  public:
    static constexpr uint32_t capacity = limits::query_fields_max;
    static constexpr uint32_t path_bytes_max = 63;

    // Control thread: the index of `path`, appending it unpublished if new.
    result<uint32_t> reserve(std::string_view path) {
        for (uint32_t i = 0; i < _pending; ++i)
            if (path_of(i) == path) return i;
        if (_pending == capacity)
            return make_error(errc::busy,
                              "the queries already use " + std::to_string(capacity) +
                                  " distinct event fields (remove a query or reuse its fields)");
        if (path.empty() || path.size() > path_bytes_max)
            return make_error(errc::invalid_argument, "field path must be 1..63 bytes");
        entry& e = _entries[_pending];
        std::memcpy(e.path, path.data(), path.size());
        e.len = uint8_t(path.size());
        size_t dot = path.find('.');
        e.split = dot == std::string_view::npos ? e.len : uint8_t(dot);
        return _pending++;
    }
    // Control thread: forgets unpublished entries (a query that failed to compile).
    void rollback() noexcept { _pending = _count.load(std::memory_order_relaxed); }
    // Control thread: makes reserved entries visible and starts a new generation.
    uint32_t publish() noexcept {
        _count.store(_pending, std::memory_order_release);
        uint32_t g = _generation.load(std::memory_order_relaxed) + 1;
        _generation.store(g, std::memory_order_release);
        return g;
    }

    // Readers.
    uint32_t generation() const noexcept { return _generation.load(std::memory_order_acquire); }
    uint32_t count() const noexcept { return _count.load(std::memory_order_acquire); }
    std::string_view path_of(uint32_t i) const noexcept { return {_entries[i].path, _entries[i].len}; }
    // The first key of the path ("metadata" of "metadata.referrer").
    std::string_view head_of(uint32_t i) const noexcept {
        return {_entries[i].path, _entries[i].split};
    }
    // The nested key ("referrer"), empty for a top-level path.
    std::string_view tail_of(uint32_t i) const noexcept {
        const entry& e = _entries[i];
        if (e.split == e.len) return {};
        return {e.path + e.split + 1, size_t(e.len - e.split - 1)};
    }

  private:
    struct entry {
        char path[path_bytes_max + 1];
        uint8_t len = 0;
        uint8_t split = 0; // position of the dot, or len
    };
    entry _entries[capacity];
    uint32_t _pending = 0;                 // control thread only
    std::atomic<uint32_t> _count{0};       // published entries
    std::atomic<uint32_t> _generation{0};
};

} // namespace sluice::processing
