// suffix_number_string (id 8): a value ending in 1..18 decimal digits (no leading zero
// unless the number is "0") is its text prefix plus that number. Layout: varint P, P
// bytes of prefixes (per row varint h = prefix length << 1 | has_number, then the
// prefix), then per row with a number varint zz(number - previous number). Values like
// `e-1041`, `order-17` or `12345` cost a byte or two.
#include <charconv>

#include "base/assert.h"
#include "storage/format/bytes.h"
#include "storage/format/encoding.h"

namespace sluice::storage::format::suffix_number_string {
namespace {

inline bool split_suffix_number(std::string_view s, size_t& prefix_len, uint64_t& number) noexcept {
    size_t d = 0;
    while (d < s.size() && d <= 18 && s[s.size() - 1 - d] >= '0' && s[s.size() - 1 - d] <= '9')
        ++d;
    prefix_len = s.size() - d;
    if (d == 0 || d > 18 || (d > 1 && s[prefix_len] == '0')) {
        prefix_len = s.size();
        return false;
    }
    number = 0;
    for (size_t i = prefix_len; i < s.size(); ++i)
        number = number * 10 + uint64_t(s[i] - '0');
    return true;
}

// Calls fn(value, prefix length, has_number, zz(number - previous number)) per row.
template <typename Fn>
inline void split_rows(const column_batch::column& c, uint32_t rows, Fn fn) noexcept {
    uint64_t prev = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        std::string_view s = value_at(c, r);
        size_t prefix;
        uint64_t v = 0;
        const bool num = split_suffix_number(s, prefix, v);
        fn(s, prefix, num, num ? zigzag(int64_t(v - prev)) : 0);
        if (num) prev = v;
    }
}

} // namespace

plan_t plan(const column_batch::column& c, uint32_t rows) noexcept {
    plan_t p;
    size_t numbers = 0;
    split_rows(c, rows, [&](std::string_view, size_t prefix, bool num, uint64_t delta) {
        p.prefix_section += varint_size((uint64_t(prefix) << 1) | (num ? 1 : 0)) + prefix;
        if (num) numbers += varint_size(delta);
    });
    p.total = varint_size(p.prefix_section) + p.prefix_section + numbers;
    return p;
}

size_t encode(const column_batch::column& c, uint32_t rows, const plan_t& plan,
              uint8_t* out) noexcept {
    size_t n = put_varint(out, plan.prefix_section);
    uint8_t* nums = out + n + plan.prefix_section;
    size_t m = 0;
    split_rows(c, rows, [&](std::string_view s, size_t prefix, bool num, uint64_t delta) {
        n += put_varint(out + n, (uint64_t(prefix) << 1) | (num ? 1 : 0));
        if (prefix) std::memcpy(out + n, s.data(), prefix);
        n += prefix;
        if (num) m += put_varint(nums + m, delta);
    });
    SLUICE_DASSERT(n + m == plan.total);
    return n + m;
}

const char* decode(decode_args& a) {
    const uint8_t *p = a.p, *const end = a.end; // copies: see encoding.h
    string_sink out(a.batch.col(a.col), a.rows, size_t(end - p));
    uint64_t section;
    if (!get_varint(p, end, section) || uint64_t(end - p) < section)
        return "prefix section truncated";
    const uint8_t* nums = p + section;
    const uint8_t* prefix_end = nums;
    uint64_t prev = 0;
    char digits[24];
    for (uint32_t r = 0; r < a.rows; ++r) {
        uint64_t h;
        if (!get_varint(p, prefix_end, h) || uint64_t(prefix_end - p) < (h >> 1))
            return "prefix truncated";
        if (!out.append(p, h >> 1)) return too_long;
        p += h >> 1;
        if (h & 1) {
            uint64_t d;
            if (!get_varint(nums, end, d)) return "numbers truncated";
            prev += uint64_t(unzigzag(d));
            if (prev >= 1000000000000000000ull) return "number out of range";
            auto tc = std::to_chars(digits, digits + sizeof digits, prev);
            if (!out.append(digits, size_t(tc.ptr - digits))) return too_long;
        }
        out.end_row(r);
    }
    if (p != prefix_end) return "prefix section length mismatch";
    a.p = nums;
    return out.finish();
}

} // namespace sluice::storage::format::suffix_number_string
