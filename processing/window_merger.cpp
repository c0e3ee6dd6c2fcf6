#include "processing/window_merger.h"

#include <algorithm>

#include <tbb/parallel_for.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/assert.h"
#include "processing/window_assigner.h"

namespace sluice::processing {

namespace {
// Below these, a round's work is too small to pay for TBB's fork and join.
constexpr uint32_t parallel_merge_records = 512;
constexpr uint64_t parallel_finish_cells = 2048;

uint64_t key_hash(std::string_view key) noexcept { return XXH3_64bits(key.data(), key.size()); }
uint32_t shard_of(uint64_t hash) noexcept { return uint32_t(hash & (window_merger::shards - 1)); }
} // namespace

window_merger::window_merger(std::shared_ptr<const compiled_query> query, uint32_t workers)
    : _query(std::move(query)), _workers(workers), _shards(shards) {
    SLUICE_ASSERT(workers > 0 && workers <= limits::workers_max);
    std::fill(std::begin(_holds), std::end(_holds), INT64_MAX);
}

void window_merger::read_progress() noexcept {
    int64_t closed = INT64_MAX, open = INT64_MAX;
    int64_t holds[hold_buckets];
    std::fill(std::begin(holds), std::end(holds), INT64_MAX);
    const bool sessions = _query->kind() == window_kind::session;
    for (uint32_t w = 0; w < _workers; ++w) {
        const worker_progress& p = _query->shared->workers[w];
        // C first: everything the worker published with it (holds, batches) is visible.
        closed = std::min(closed, p.closed_until_ms.load(std::memory_order_acquire));
        open = std::min(open, p.open_min_start_ms.load(std::memory_order_acquire));
        if (sessions)
            for (uint32_t b = 0; b < hold_buckets; ++b)
                holds[b] = std::min(holds[b], p.holds_ms[b].load(std::memory_order_acquire));
    }
    _closed_min = closed;
    _open_min_start = open;
    std::copy(std::begin(holds), std::end(holds), std::begin(_holds));
}

bool window_merger::abandoned() const noexcept {
    for (uint32_t w = 0; w < _workers; ++w)
        if (_query->shared->workers[w].abandoned.load(std::memory_order_acquire)) return true;
    return false;
}

void window_merger::merge_into(shard& s, int64_t start, int64_t end, std::string_view key,
                              uint64_t hash, const uint8_t* blob) {
    const agg_layout& aggs = _query->aggs;
    if (_query->kind() != window_kind::session) {
        auto [it, fresh] = s.cells.try_emplace({end, start, std::string(key)});
        if (fresh) it->second.assign(blob, blob + aggs.blob_bytes());
        else aggs.merge(it->second.data(), blob);
        return;
    }
    // Pieces of one key that overlap [start, end) become one.
    std::string k(key);
    piece merged{end, hash, std::vector<uint8_t>(blob, blob + aggs.blob_bytes())};
    int64_t merged_start = start;
    auto it = s.pieces.lower_bound({k, INT64_MIN});
    while (it != s.pieces.end() && it->first.first == k) {
        int64_t ps = it->first.second;
        piece& p = it->second;
        if (!(ps < end && p.end > start)) {
            ++it;
            continue;
        }
        aggs.merge(merged.blob.data(), p.blob.data());
        merged_start = std::min(merged_start, ps);
        merged.end = std::max(merged.end, p.end);
        s.by_end[hold_bucket_of(hash)].erase({p.end, k, ps});
        it = s.pieces.erase(it);
    }
    s.by_end[hold_bucket_of(hash)].insert({merged.end, k, merged_start});
    s.pieces.emplace(std::make_pair(std::move(k), merged_start), std::move(merged));
}

void window_merger::merge_cell(int64_t start, int64_t end, std::string_view key, const uint8_t* blob) {
    uint64_t h = key_hash(key);
    merge_into(_shards[shard_of(h)], start, end, key, h, blob);
}

void window_merger::merge(const partial_batch& batch) {
    SLUICE_ASSERT(batch.query_uid == _query->uid);
    SLUICE_ASSERT(batch.worker < _workers);
    if (batch.records < parallel_merge_records) {
        batch.for_each([&](int64_t start, int64_t end, std::string_view key, const uint8_t* blob) {
            merge_cell(start, end, key, blob);
        });
        return;
    }
    // A big batch: split by shard, then merge the shards in parallel (each shard's map
    // is touched by one task only).
    struct rec {
        int64_t start, end;
        std::string_view key;
        uint64_t hash;
        const uint8_t* blob;
    };
    std::vector<std::vector<rec>> by_shard(shards);
    batch.for_each([&](int64_t start, int64_t end, std::string_view key, const uint8_t* blob) {
        uint64_t h = key_hash(key);
        by_shard[shard_of(h)].push_back(rec{start, end, key, h, blob});
    });
    tbb::parallel_for(uint32_t(0), shards, [&](uint32_t i) {
        for (const rec& r : by_shard[i]) merge_into(_shards[i], r.start, r.end, r.key, r.hash, r.blob);
    });
}

result_row window_merger::finish_row(int64_t start, int64_t end, std::string key,
                                    const uint8_t* blob) const {
    result_row row{start, end, std::move(key), {}};
    row.values.reserve(_query->aggs.values());
    _query->aggs.finish(blob, row.values);
    return row;
}

void window_merger::collect(shard& s, bool all, std::vector<result_row>& out) {
    const int64_t closed = all ? INT64_MAX : _closed_min;
    if (_query->kind() != window_kind::session) {
        auto it = s.cells.begin();
        while (it != s.cells.end() && window_closed(std::get<0>(it->first), closed)) {
            const auto& [end, start, key] = it->first;
            out.push_back(finish_row(start, end, key, it->second.data()));
            it = s.cells.erase(it);
        }
        return;
    }
    for (uint32_t b = 0; b < hold_buckets; ++b) {
        auto& order = s.by_end[b];
        auto it = order.begin();
        // In end order: the first piece that is not closed, or that the bucket's hold keeps
        // back (an open piece elsewhere may still extend or bridge it), ends the bucket.
        while (it != order.end() && window_closed(std::get<0>(*it), closed) &&
               (all || std::get<0>(*it) <= _holds[b])) {
            const auto& [end, key, start] = *it;
            auto p = s.pieces.find({key, start});
            SLUICE_ASSERT(p != s.pieces.end());
            out.push_back(finish_row(start, end, key, p->second.blob.data()));
            s.pieces.erase(p);
            it = order.erase(it);
        }
    }
}

uint32_t window_merger::finalize(const emit_fn& emit) {
    std::vector<result_row> rows;
    if (pending_cells() < parallel_finish_cells) {
        for (auto& s : _shards) collect(s, false, rows);
    } else {
        std::vector<std::vector<result_row>> parts(shards);
        tbb::parallel_for(uint32_t(0), shards, [&](uint32_t i) { collect(_shards[i], false, parts[i]); });
        for (auto& p : parts)
            for (auto& r : p) rows.push_back(std::move(r));
    }
    std::sort(rows.begin(), rows.end(), [](const result_row& a, const result_row& b) {
        return std::tie(a.end_ms, a.start_ms, a.key) < std::tie(b.end_ms, b.start_ms, b.key);
    });
    for (const auto& r : rows) emit(r);
    _rows_emitted += rows.size();
    return uint32_t(rows.size());
}

uint32_t window_merger::finalize_all(const emit_fn& emit) {
    std::vector<result_row> rows;
    for (auto& s : _shards) collect(s, true, rows);
    std::sort(rows.begin(), rows.end(), [](const result_row& a, const result_row& b) {
        return std::tie(a.end_ms, a.start_ms, a.key) < std::tie(b.end_ms, b.start_ms, b.key);
    });
    for (const auto& r : rows) emit(r);
    return uint32_t(rows.size());
}

uint64_t window_merger::pending_cells() const noexcept {
    uint64_t n = 0;
    for (const auto& s : _shards) n += s.cells.size() + s.pieces.size();
    return n;
}

int64_t window_merger::rebuild_from_ms() const noexcept {
    // Windows a worker opens after publishing C end after C: for tumbling and hopping
    // they start after C - size; session pieces start at or after C.
    int64_t created_later = _closed_min;
    const window_def& w = _query->def.window;
    if (w.kind != window_kind::session && created_later != INT64_MIN && created_later != INT64_MAX)
        created_later -= w.size_ms - 1;
    int64_t r = std::min(created_later, _open_min_start);
    for (const auto& s : _shards) {
        for (const auto& [k, blob] : s.cells) r = std::min(r, std::get<1>(k));
        for (const auto& [k, p] : s.pieces) r = std::min(r, k.second);
    }
    return r;
}

void window_merger::take_all(
    const std::function<void(int64_t, int64_t, std::string_view, const uint8_t*)>& fn) {
    for (auto& s : _shards) {
        for (const auto& [k, blob] : s.cells) fn(std::get<1>(k), std::get<0>(k), std::get<2>(k), blob.data());
        for (const auto& [k, p] : s.pieces) fn(k.second, p.end, k.first, p.blob.data());
        s.cells.clear();
        s.pieces.clear();
        for (auto& order : s.by_end) order.clear();
    }
}

void window_merger::copy_pending_to(window_merger& other) const {
    for (const auto& s : _shards) {
        for (const auto& [k, blob] : s.cells)
            other.merge_cell(std::get<1>(k), std::get<0>(k), std::get<2>(k), blob.data());
        for (const auto& [k, p] : s.pieces) other.merge_cell(k.second, p.end, k.first, p.blob.data());
    }
}

} // namespace sluice::processing
