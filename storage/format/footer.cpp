#include "storage/format/footer.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "storage/format/bytes.h"
#include "storage/format/headers.h"

namespace sluice::storage::format {

namespace {

// Min and max of the values of rows with a value, compared as Int (the values' bits).
template <typename Int>
void min_max(const column_batch::column& c, uint32_t rows, column_stats& st) noexcept {
    Int lo = std::numeric_limits<Int>::max(), hi = std::numeric_limits<Int>::min();
    for (uint32_t r = 0; r < rows; ++r) {
        if (c.nullable && !c.valid[r]) continue;
        lo = std::min(lo, Int(c.fixed[r]));
        hi = std::max(hi, Int(c.fixed[r]));
    }
    st.min = uint64_t(lo);
    st.max = uint64_t(hi);
}

void length_min_max(const column_batch::column& c, uint32_t rows, column_stats& st) noexcept {
    uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        if (c.nullable && !c.valid[r]) continue;
        const uint64_t len = c.offsets[r] - (r == 0 ? 0 : c.offsets[r - 1]);
        lo = std::min(lo, len);
        hi = std::max(hi, len);
        st.value_bytes += len;
    }
    st.min = lo;
    st.max = hi;
}

} // namespace

column_stats stats_of(const column_batch::column& c, uint32_t rows) noexcept {
    column_stats st;
    if (c.nullable)
        for (uint32_t r = 0; r < rows; ++r)
            st.null_count += c.valid[r] ^ 1;
    st.values = rows - st.null_count;
    switch (c.type) {
    case column_type::i64: min_max<int64_t>(c, rows, st); break;
    case column_type::u64:
    case column_type::u8: min_max<uint64_t>(c, rows, st); break;
    case column_type::f64: break;
    case column_type::string:
    case column_type::bytes: length_min_max(c, rows, st); break;
    }
    if (st.values == 0) st.min = st.max = 0;
    return st;
}

void merge_stats(column_type type, column_stats& into, const column_stats& from) noexcept {
    into.null_count += from.null_count;
    into.value_bytes += from.value_bytes;
    if (from.values == 0) return;
    if (into.values == 0) {
        into.min = from.min;
        into.max = from.max;
    } else if (type == column_type::i64) {
        into.min = uint64_t(std::min(int64_t(into.min), int64_t(from.min)));
        into.max = uint64_t(std::max(int64_t(into.max), int64_t(from.max)));
    } else {
        into.min = std::min(into.min, from.min);
        into.max = std::max(into.max, from.max);
    }
    into.values += from.values;
}

size_t write_footer_block(const footer& f, uint64_t block_index, uint8_t* out) noexcept {
    const size_t payload = footer_payload_bytes(f.columns.size());
    const size_t total = block_bytes(payload);
    std::memset(out, 0, total);
    uint8_t* pl = out + block_header_bytes;
    put<uint64_t>(pl + 0, f.rows);
    put<uint64_t>(pl + 8, f.data_blocks);
    put<int64_t>(pl + 16, f.min_time_ms);
    put<int64_t>(pl + 24, f.max_time_ms);
    put<uint64_t>(pl + 32, f.data_end_offset);
    put<uint32_t>(pl + 40, uint32_t(f.columns.size()));
    uint8_t* c = pl + footer_fixed_bytes;
    for (const auto& s : f.columns) {
        put<uint64_t>(c + 0, s.null_count);
        put<uint64_t>(c + 8, s.values ? s.min : 0);
        put<uint64_t>(c + 16, s.values ? s.max : 0);
        put<uint64_t>(c + 24, s.value_bytes);
        c += footer_column_bytes;
    }
    block_header h;
    h.kind = block_kind::footer;
    h.min_time_ms = f.min_time_ms;
    h.max_time_ms = f.max_time_ms;
    h.payload_bytes = payload;
    h.payload_xxh3 = checksum(pl, payload);
    h.block_index = block_index;
    write_block_header(h, out);
    return total;
}

bool read_footer_payload(const uint8_t* payload, size_t len, footer& f) {
    if (len < footer_fixed_bytes) return false;
    f.rows = get<uint64_t>(payload + 0);
    f.data_blocks = get<uint64_t>(payload + 8);
    f.min_time_ms = get<int64_t>(payload + 16);
    f.max_time_ms = get<int64_t>(payload + 24);
    f.data_end_offset = get<uint64_t>(payload + 32);
    uint32_t n = get<uint32_t>(payload + 40);
    if (get<uint32_t>(payload + 44) != 0 || len != footer_payload_bytes(n)) return false;
    f.columns.assign(n, {});
    const uint8_t* c = payload + footer_fixed_bytes;
    for (auto& s : f.columns) {
        s.null_count = get<uint64_t>(c + 0);
        s.min = get<uint64_t>(c + 8);
        s.max = get<uint64_t>(c + 16);
        s.value_bytes = get<uint64_t>(c + 24);
        if (s.null_count > f.rows) return false;
        s.values = f.rows - s.null_count;
        c += footer_column_bytes;
    }
    return true;
}

} // namespace sluice::storage::format
