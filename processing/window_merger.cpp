#include "processing/window_merger.h"

#include <algorithm>

#include "base/assert.h"

namespace sluice::processing {

window_merger::window_merger(uint32_t workers, int64_t window_size_ms, emit_fn emit)
    : _size_ms(window_size_ms), _emit(std::move(emit)), _closed_until(workers, INT64_MIN) {
    SLUICE_ASSERT(workers > 0);
}

int64_t window_merger::closed_until_ms() const noexcept {
    return *std::min_element(_closed_until.begin(), _closed_until.end());
}

uint32_t window_merger::merge(const partial_batch& batch) {
    SLUICE_ASSERT(batch.worker < _closed_until.size());
    batch.for_each([&](int64_t start, std::string_view key, uint64_t count) {
        _cells[{start, std::string(key)}] += count;
    });
    // A worker's watermark never moves backwards; keep the max in case batches of one
    // worker were ever reordered.
    auto& cu = _closed_until[batch.worker];
    cu = std::max(cu, batch.closed_until_ms);
    if (batch.final) ++_finals;
    return finalize();
}

// Cells are ordered by window start, so the closed ones form a prefix.
uint32_t window_merger::finalize() {
    int64_t closed = closed_until_ms();
    uint32_t rows = 0;
    auto it = _cells.begin();
    while (it != _cells.end() && (closed == INT64_MAX || it->first.first + _size_ms <= closed)) {
        window_row row{it->first.first, it->first.first + _size_ms, it->first.second, it->second};
        _emit(row);
        ++rows;
        it = _cells.erase(it);
    }
    _rows_emitted += rows;
    return rows;
}

} // namespace sluice::processing
