#pragma once
// column_batch: a block of rows held column by column, preallocated at construction.
// Writers append one row at a time (one push per column, then end_row()); readers get
// decoded blocks in the same type. Appends never allocate: capacity is fixed, and
// full() turns true while one more row of maximum size still fits.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "base/assert.h"
#include "storage/schema.h"

namespace sluice::storage {

class column_batch {
  public:
    // string_bytes_max: arena bytes per string column; row_string_bytes_max: the most
    // bytes one row may put into one string column (callers truncate to it).
    column_batch(const table_schema& schema, uint32_t rows_max, size_t string_bytes_max,
                 size_t row_string_bytes_max);

    const table_schema& schema() const noexcept { return *_schema; }
    uint32_t rows() const noexcept { return _rows; }
    uint32_t rows_max() const noexcept { return _rows_max; }
    bool empty() const noexcept { return _rows == 0; }
    bool full() const noexcept;
    void clear() noexcept;

    // Appends: one per column, in any order, then end_row(). A nullable column takes
    // push_null() or a value.
    void push_i64(int col, int64_t v) noexcept {
        SLUICE_DASSERT(_cols[col].type == column_type::i64);
        set_fixed(col, uint64_t(v));
    }
    void push_u64(int col, uint64_t v) noexcept {
        SLUICE_DASSERT(_cols[col].type == column_type::u64);
        set_fixed(col, v);
    }
    void push_u8(int col, uint8_t v) noexcept {
        SLUICE_DASSERT(_cols[col].type == column_type::u8);
        set_fixed(col, v);
    }
    void push_f64(int col, double v) noexcept {
        SLUICE_DASSERT(_cols[col].type == column_type::f64);
        uint64_t bits;
        std::memcpy(&bits, &v, 8);
        set_fixed(col, bits);
    }
    void push_string(int col, std::string_view s) noexcept;
    // For a column whose schema declares references (events.raw: the event holds its
    // parsed fields): the value with where each reference's text starts in it, one
    // position per schema reference in the schema's order, no_position where unknown.
    // The skeleton writer (ref_packed_string) checks the bytes at each position and cuts
    // there instead of searching the value; a position that does not hold the
    // reference's text is not cut, so a wrong one costs bytes, never exactness.
    static constexpr uint16_t no_position = UINT16_MAX;
    void push_string_at(int col, std::string_view s, const uint16_t* positions) noexcept;
    void push_null(int col) noexcept;
    void end_row() noexcept { ++_rows; }

    // Reads. A null reads as 0 or "".
    int64_t i64_at(int col, uint32_t row) const noexcept { return int64_t(_cols[col].fixed[row]); }
    uint64_t u64_at(int col, uint32_t row) const noexcept { return _cols[col].fixed[row]; }
    uint8_t u8_at(int col, uint32_t row) const noexcept { return uint8_t(_cols[col].fixed[row]); }
    double f64_at(int col, uint32_t row) const noexcept {
        double v;
        std::memcpy(&v, &_cols[col].fixed[row], 8);
        return v;
    }
    std::string_view string_at(int col, uint32_t row) const noexcept {
        const auto& c = _cols[col];
        uint32_t begin = row == 0 ? 0 : c.offsets[row - 1];
        return {c.arena.data() + begin, c.offsets[row] - begin};
    }
    bool is_null(int col, uint32_t row) const noexcept {
        const auto& c = _cols[col];
        return c.nullable && c.valid[row] == 0;
    }
    // The positions push_string_at() gave row `row`, or nullptr when it was appended
    // without them.
    const uint16_t* positions_at(int col, uint32_t row) const noexcept {
        const auto& c = _cols[col];
        return row < c.has_positions.size() && c.has_positions[row] != 0
                   ? &c.positions[size_t(row) * c.nrefs]
                   : nullptr;
    }

    // Raw access for encoders/decoders.
    struct column {
        column_type type;
        bool nullable = false;
        std::vector<uint64_t> fixed;   // i64/u64/u8 values (one slot per row)
        std::vector<uint32_t> offsets; // string end offsets (one per row)
        std::vector<char> arena;       // string bytes
        std::vector<uint8_t> valid;    // nullable columns: 1 = value, 0 = null (per row)
        size_t arena_used = 0;
        // Columns with references: push_string_at()'s positions, nrefs per row, and
        // per row whether it gave them.
        uint32_t nrefs = 0;
        std::vector<uint16_t> positions;
        std::vector<uint8_t> has_positions;
    };
    column& col(int i) noexcept { return _cols[i]; }
    const column& col(int i) const noexcept { return _cols[i]; }
    // For decoders: set the row count after filling columns directly (rows filled so
    // have no positions).
    void set_rows(uint32_t rows) noexcept {
        _rows = rows;
        for (auto& c : _cols)
            if (c.nrefs != 0)
                std::memset(c.has_positions.data(), 0, std::min<size_t>(rows, c.has_positions.size()));
    }

  private:
    void set_fixed(int col, uint64_t v) noexcept {
        auto& c = _cols[col];
        c.fixed[_rows] = v;
        if (c.nullable) c.valid[_rows] = 1;
    }

    const table_schema* _schema;
    std::vector<column> _cols;
    uint32_t _rows = 0;
    uint32_t _rows_max;
    size_t _row_string_bytes_max;
};

} // namespace sluice::storage
