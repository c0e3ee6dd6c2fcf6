#pragma once
// Helpers for processing/ tests: temp dirs, event slots laid out as the RX lays them
// out, a partial_channel that records what a worker publishes, compiled queries.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "processing/event.h"
#include "processing/field_catalog.h"
#include "processing/query_runtime.h"
#include "processing/window_merger.h"
#include "processing/worker.h"

namespace sluice::processing::testing {

struct temp_dir {
    std::string path;
    explicit temp_dir(const char* tag = "processing", const char* base = nullptr) {
        if (base == nullptr) base = std::getenv("TMPDIR");
        if (base == nullptr || *base == '\0') base = "/tmp";
        std::string tmpl = std::string(base) + "/sluice-" + tag + "-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (::mkdtemp(buf.data()) == nullptr) std::abort();
        path = buf.data();
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

// One event_slot with its data area.
class slot_buffer {
  public:
    explicit slot_buffer(uint32_t event_bytes_max = 4096) : _bytes(slot_bytes(event_bytes_max)) {
        _mem = static_cast<event_slot*>(::operator new(_bytes, std::align_val_t(alignof(event_slot))));
        std::memset(static_cast<void*>(_mem), 0, _bytes);
    }
    ~slot_buffer() { ::operator delete(_mem, std::align_val_t(alignof(event_slot))); }
    slot_buffer(const slot_buffer&) = delete;
    slot_buffer& operator=(const slot_buffer&) = delete;

    event_slot* get() { return _mem; }
    event_slot& operator*() { return *_mem; }
    event_slot* operator->() { return _mem; }

    void set_raw(std::string_view raw) {
        _mem->raw_len = _mem->raw_len_orig = uint32_t(raw.size());
        std::memcpy(_mem->data(), raw.data(), raw.size());
        _mem->data_used = _mem->raw_len + slot_parse_padding;
    }
    field_ref add_field(std::string_view s) {
        field_ref f{_mem->data_used, uint32_t(s.size())};
        std::memcpy(_mem->data() + f.off, s.data(), s.size());
        _mem->data_used += f.len;
        return f;
    }

  private:
    size_t _bytes;
    event_slot* _mem;
};

inline identity id_of(std::string_view s) {
    // Any fixed, distinct 128-bit value per string does; the worker never rehashes.
    identity id{std::hash<std::string_view>{}(s) | 1, 0};
    id.lo = id.hi * 0x9E3779B97F4A7C15ULL + s.size();
    return id;
}

// A recorded partial_batch.
struct published_cell {
    int64_t start, end;
    std::string key;
    std::vector<uint8_t> blob;
};
struct published_batch {
    uint32_t worker, query_uid;
    batch_kind kind;
    uint64_t snapshot_id;
    std::vector<published_cell> cells;
};

// The merger side of a worker's partial_channel: a few heap buffers on a free list; a
// published batch is copied out (and, if a merger is attached, merged) and its buffer
// goes back to the free list.
class test_channel {
  public:
    explicit test_channel(uint32_t capacity_bytes = 1 << 20, uint32_t buffers = 3) {
        for (uint32_t i = 0; i < buffers; ++i) {
            _buffers.emplace_back(new char[sizeof(partial_batch) + capacity_bytes]);
            auto* b = reinterpret_cast<partial_batch*>(_buffers.back().get());
            b->capacity = capacity_bytes;
            b->reset(UINT32_MAX, 0);
            _free.push_back(b);
        }
    }
    partial_channel channel() { return {this, &acquire, &publish}; }

    std::vector<published_batch> published;
    std::vector<window_merger*> mergers; // merged into by query uid, when set
    uint32_t acquired = 0;

  private:
    static partial_batch* acquire(void* ctx) noexcept {
        auto* self = static_cast<test_channel*>(ctx);
        // A worker holds at most one buffer at a time: the free list never runs dry.
        SLUICE_ASSERT(!self->_free.empty());
        partial_batch* b = self->_free.back();
        self->_free.pop_back();
        ++self->acquired;
        return b;
    }
    static void publish(void* ctx, partial_batch* batch) noexcept {
        auto* self = static_cast<test_channel*>(ctx);
        published_batch p{batch->worker, batch->query_uid, batch->kind, batch->snapshot_id, {}};
        batch->for_each([&](int64_t start, int64_t end, std::string_view key, const uint8_t* blob) {
            p.cells.push_back(published_cell{start, end, std::string(key), {}});
            p.cells.back().blob.assign(blob, blob + 8); // tests read counts from the first word
        });
        if (batch->kind == batch_kind::closed)
            for (window_merger* m : self->mergers)
                if (m->query().uid == batch->query_uid) m->merge(*batch);
        self->published.push_back(std::move(p));
        self->_free.push_back(batch);
    }

    std::vector<std::unique_ptr<char[]>> _buffers;
    std::vector<partial_batch*> _free;
};

inline uint64_t first_word(const std::vector<uint8_t>& blob) {
    uint64_t v = 0;
    std::memcpy(&v, blob.data(), 8);
    return v;
}

inline std::shared_ptr<compiled_query> compile_or_die(const query_def& def, field_catalog& catalog,
                                                      uint32_t uid = 1, uint32_t generation = 0,
                                                      uint32_t event_bytes_max = 4096) {
    auto q = compile(def, catalog, uid, generation, event_bytes_max);
    if (!q) {
        ADD_FAILURE() << q.err().message;
        return nullptr;
    }
    return std::move(q.value());
}

} // namespace sluice::processing::testing
