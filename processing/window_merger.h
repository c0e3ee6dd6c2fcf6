#pragma once
// Partials from every worker meet in the window_merger (§3 Windows): a cell's final
// result is emitted once, when every worker's published progress shows that no more of
// it can arrive. Runs on the merger thread (never an lcore); it allocates freely.
//
// Protocol with the workers (see worker.h): a worker sends the cells it closed in
// partial_batch buffers, then publishes per query `closed_until_ms` C_w (release) once
// the events in them are durable. The merger reads every C_w (acquire) and, for sessions,
// every worker's holds, BEFORE draining the rings; then
//   tumbling/hopping: a cell is final when end <= min_w C_w;
//   sessions: pieces of one key merge when they overlap; a session is final when
//     end <= min_w C_w and end <= min_w hold_w[bucket(key)] (no open piece elsewhere
//     starts before it ends, so none can still extend or bridge it).
// Large queries merge and finish their cells in parallel shards with TBB.
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "processing/aggregates.h"
#include "processing/query_runtime.h"

namespace sluice::processing {

enum class batch_kind : uint8_t {
    closed,       // cells the worker closed
    snapshot,     // open cells, copied for a live view
    snapshot_end, // the worker's last snapshot batch for snapshot_id
};

// A buffer of cells from one worker for one query, handed to the merger over a ring and
// handed back when merged. Records: {i64 start, i64 end, u32 blob_len, u32 key_len, blob,
// key}, each padded to 8 bytes (blobs stay 8-byte aligned).
struct partial_batch {
    uint32_t worker;
    uint32_t query_uid;
    uint32_t records;
    uint32_t used;     // bytes of records
    uint32_t capacity; // bytes available for records
    batch_kind kind;
    uint64_t snapshot_id;

    char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
    const char* data() const noexcept { return reinterpret_cast<const char*>(this + 1); }

    void reset(uint32_t worker_index, uint32_t uid, batch_kind k = batch_kind::closed,
               uint64_t snapshot = 0) noexcept {
        worker = worker_index;
        query_uid = uid;
        records = used = 0;
        kind = k;
        snapshot_id = snapshot;
    }
    static constexpr uint32_t record_bytes(size_t key_len, size_t blob_len) noexcept {
        return uint32_t((24 + blob_len + key_len + 7) & ~size_t(7));
    }
    bool fits(size_t key_len, size_t blob_len) const noexcept {
        return used + record_bytes(key_len, blob_len) <= capacity;
    }
    void append(int64_t start, int64_t end, std::string_view key, const uint8_t* blob,
                uint32_t blob_len) noexcept {
        char* p = data() + used;
        uint32_t key_len = uint32_t(key.size());
        std::memcpy(p, &start, 8);
        std::memcpy(p + 8, &end, 8);
        std::memcpy(p + 16, &blob_len, 4);
        std::memcpy(p + 20, &key_len, 4);
        std::memcpy(p + 24, blob, blob_len);
        std::memcpy(p + 24 + blob_len, key.data(), key.size());
        used += record_bytes(key.size(), blob_len);
        ++records;
    }
    template <typename F>
    void for_each(F&& f) const {
        uint32_t off = 0;
        for (uint32_t r = 0; r < records; ++r) {
            const char* p = data() + off;
            int64_t start, end;
            uint32_t blob_len, key_len;
            std::memcpy(&start, p, 8);
            std::memcpy(&end, p + 8, 8);
            std::memcpy(&blob_len, p + 16, 4);
            std::memcpy(&key_len, p + 20, 4);
            f(start, end, std::string_view(p + 24 + blob_len, key_len),
              reinterpret_cast<const uint8_t*>(p + 24));
            off += record_bytes(key_len, blob_len);
        }
    }
};

// One final (or, in a live view, open) result: a window, its group key and the values.
struct result_row {
    int64_t start_ms = 0;
    int64_t end_ms = 0;
    std::string key; // encoded as compiled_query::build_key does
    std::vector<agg_value> values;
};

class window_merger {
  public:
    using emit_fn = std::function<void(const result_row&)>;
    static constexpr uint32_t shards = 16;

    window_merger(std::shared_ptr<const compiled_query> query, uint32_t workers);

    const compiled_query& query() const noexcept { return *_query; }
    // Reads the workers' progress (acquire). Call before draining the rings of a round.
    void read_progress() noexcept;
    // Merges a closed batch of this query.
    void merge(const partial_batch& batch);
    // Merges one cell (rebuild, live view).
    void merge_cell(int64_t start, int64_t end, std::string_view key, const uint8_t* blob);
    // Emits the cells that the progress read last allows, in (end, start, key) order.
    uint32_t finalize(const emit_fn& emit);
    // Emits every pending cell regardless of progress (a live view's copy).
    uint32_t finalize_all(const emit_fn& emit);

    // min over workers of closed_until (as last read).
    int64_t closed_until_ms() const noexcept { return _closed_min; }
    // True once every worker finished and nothing is pending.
    bool done() const noexcept { return _closed_min == INT64_MAX && pending_cells() == 0; }
    // True when a worker finished with its events writer failed (worker_progress::
    // abandoned): nothing past what it published will come; the rest is not emitted.
    bool abandoned() const noexcept;
    // Every window not emitted yet starts at or after this (as last read), so replaying
    // the events from here rebuilds all of them: the min of the merger's pending starts,
    // the workers' open starts, and the earliest start a window opened later can have.
    int64_t rebuild_from_ms() const noexcept;
    uint64_t pending_cells() const noexcept;
    uint64_t rows_emitted() const noexcept { return _rows_emitted; }
    // A copy of the pending cells into `other` (same query), for a live view.
    void copy_pending_to(window_merger& other) const;
    // Hands every pending cell to fn(start, end, key, blob) and forgets them (rebuild).
    void take_all(const std::function<void(int64_t, int64_t, std::string_view, const uint8_t*)>& fn);

  private:
    struct piece {
        int64_t end;
        uint64_t hash;
        std::vector<uint8_t> blob;
    };
    struct shard {
        // tumbling/hopping: (end, start, key) -> blob
        std::map<std::tuple<int64_t, int64_t, std::string>, std::vector<uint8_t>> cells;
        // sessions: (key, start) -> piece, and per hold bucket the emission order (end,
        // key, start). A bucket's pieces wait for that bucket's hold alone, so a round
        // reads only what it emits: one long open session holds its bucket back (for as
        // long as it lasts) without every round walking past the pieces it holds.
        std::map<std::pair<std::string, int64_t>, piece> pieces;
        std::set<std::tuple<int64_t, std::string, int64_t>> by_end[hold_buckets];
    };

    void merge_into(shard& s, int64_t start, int64_t end, std::string_view key, uint64_t hash,
                    const uint8_t* blob);
    void collect(shard& s, bool all, std::vector<result_row>& out);
    result_row finish_row(int64_t start, int64_t end, std::string key, const uint8_t* blob) const;

    std::shared_ptr<const compiled_query> _query;
    uint32_t _workers;
    std::vector<shard> _shards;
    int64_t _closed_min = INT64_MIN;
    int64_t _open_min_start = INT64_MAX;
    int64_t _holds[hold_buckets];
    uint64_t _rows_emitted = 0;
};

} // namespace sluice::processing
