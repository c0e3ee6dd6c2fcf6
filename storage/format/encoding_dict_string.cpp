// dict_string (id 6): varint d, the d distinct values in first-appearance order (varint
// length, bytes), then one index per row: u8 when d <= 256, else u16. Chosen for string
// columns with at most min(rows / 4, 65536) distinct values when it is the smallest form.
#include <xxhash.h>

#include <algorithm>
#include <bit>

#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format::dict_string {

dictionary::dictionary(uint32_t rows_max) {
    uint32_t entries = std::min(rows_max / 4, dict_entries_max);
    _table.resize(std::bit_ceil(std::max<uint32_t>(entries * 2, 16)));
    _first_row.resize(std::max<uint32_t>(entries, 1));
    _row_ids.resize(rows_max);
}

size_t dictionary::plan(const column_batch::column& c, uint32_t rows) noexcept {
    _count = 0;
    uint32_t limit = std::min<uint32_t>(rows / 4, uint32_t(_first_row.size()));
    if (limit == 0) return 0;
    if (++_generation == 0) { // wrapped: really clear once every 2^32 blocks
        for (auto& s : _table)
            s.generation = 0;
        _generation = 1;
    }
    const size_t mask = _table.size() - 1;
    uint32_t count = 0;
    size_t bytes = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        std::string_view s = value_at(c, r);
        uint64_t h = XXH3_64bits(s.data(), s.size());
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            slot& sl = _table[i];
            if (sl.generation != _generation) {
                if (count == limit) return 0; // too many distinct values
                sl = {h, _generation, count};
                _first_row[count] = r;
                _row_ids[r] = count++;
                bytes += varint_size(s.size()) + s.size();
                break;
            }
            if (sl.hash == h && value_at(c, _first_row[sl.id]) == s) {
                _row_ids[r] = sl.id;
                break;
            }
        }
    }
    _count = count;
    return varint_size(count) + bytes + size_t(rows) * (count <= 256 ? 1 : 2);
}

size_t dictionary::encode(const column_batch::column& c, uint32_t rows,
                          uint8_t* out) const noexcept {
    size_t n = put_varint(out, _count);
    for (uint32_t id = 0; id < _count; ++id) {
        std::string_view s = value_at(c, _first_row[id]);
        n += put_varint(out + n, s.size());
        if (!s.empty()) std::memcpy(out + n, s.data(), s.size());
        n += s.size();
    }
    if (_count <= 256) {
        for (uint32_t r = 0; r < rows; ++r)
            out[n++] = uint8_t(_row_ids[r]);
    } else {
        for (uint32_t r = 0; r < rows; ++r, n += 2)
            put<uint16_t>(out + n, uint16_t(_row_ids[r]));
    }
    return n;
}

const char* decode(decode_args& a) {
    const uint8_t *p = a.p, *const end = a.end; // copies: see encoding.h
    string_sink out(a.batch.col(a.col), a.rows, size_t(end - p));
    uint64_t count;
    if (!get_varint(p, end, count) || count > dict_entries_max)
        return "dictionary size out of range";
    std::vector<std::pair<const uint8_t*, uint32_t>> dict(count);
    for (auto& e : dict) {
        uint64_t n;
        if (!get_varint(p, end, n) || uint64_t(end - p) < n) return "dictionary truncated";
        e = {p, uint32_t(n)};
        p += n;
    }
    const size_t width = count <= 256 ? 1 : 2;
    if (uint64_t(end - p) != uint64_t(a.rows) * width) return "dictionary index length";
    for (uint32_t r = 0; r < a.rows; ++r, p += width) {
        uint32_t id = width == 1 ? *p : get<uint16_t>(p);
        if (id >= count) return "dictionary index out of range";
        if (!out.append(dict[id].first, dict[id].second)) return too_long;
        out.end_row(r);
    }
    a.p = p;
    return out.finish();
}

} // namespace sluice::storage::format::dict_string
