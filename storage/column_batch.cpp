#include "storage/column_batch.h"

namespace sluice::storage {

column_batch::column_batch(const table_schema& schema, uint32_t rows_max, size_t string_bytes_max,
                           size_t row_string_bytes_max)
    : _schema(&schema), _rows_max(rows_max), _row_string_bytes_max(row_string_bytes_max) {
    SLUICE_ASSERT(rows_max > 0);
    SLUICE_ASSERT(string_bytes_max >= row_string_bytes_max);
    _cols.resize(schema.columns.size());
    for (size_t i = 0; i < _cols.size(); ++i) {
        auto& c = _cols[i];
        c.type = schema.columns[i].type;
        c.nullable = schema.columns[i].nullable;
        if (is_variable(c.type)) {
            c.offsets.resize(rows_max);
            c.arena.resize(string_bytes_max);
        } else {
            c.fixed.resize(rows_max);
        }
        if (c.nullable) c.valid.resize(rows_max);
        c.nrefs = uint32_t(schema.columns[i].refs.size());
        if (c.nrefs != 0) {
            c.positions.resize(size_t(rows_max) * c.nrefs);
            c.has_positions.resize(rows_max);
        }
    }
}

bool column_batch::full() const noexcept {
    if (_rows >= _rows_max) return true;
    for (const auto& c : _cols) {
        if (is_variable(c.type) && c.arena.size() - c.arena_used < _row_string_bytes_max)
            return true;
    }
    return false;
}

void column_batch::clear() noexcept {
    _rows = 0;
    for (auto& c : _cols) c.arena_used = 0;
}

void column_batch::push_string(int col, std::string_view s) noexcept {
    auto& c = _cols[col];
    SLUICE_DASSERT(is_variable(c.type));
    SLUICE_DASSERT(s.size() <= _row_string_bytes_max);
    SLUICE_ASSERT(c.arena.size() - c.arena_used >= s.size());
    if (!s.empty()) std::memcpy(c.arena.data() + c.arena_used, s.data(), s.size());
    c.arena_used += s.size();
    c.offsets[_rows] = uint32_t(c.arena_used);
    if (c.nullable) c.valid[_rows] = 1;
    if (c.nrefs != 0) c.has_positions[_rows] = 0;
}

void column_batch::push_string_at(int col, std::string_view s, const uint16_t* positions) noexcept {
    push_string(col, s);
    auto& c = _cols[col];
    SLUICE_DASSERT(c.nrefs != 0);
    std::memcpy(&c.positions[size_t(_rows) * c.nrefs], positions, c.nrefs * sizeof(uint16_t));
    c.has_positions[_rows] = 1;
}

void column_batch::push_null(int col) noexcept {
    auto& c = _cols[col];
    SLUICE_DASSERT(c.nullable);
    if (is_variable(c.type)) {
        c.offsets[_rows] = uint32_t(c.arena_used);
    } else {
        c.fixed[_rows] = 0;
    }
    c.valid[_rows] = 0;
    if (c.nrefs != 0) c.has_positions[_rows] = 0;
}

} // namespace sluice::storage
