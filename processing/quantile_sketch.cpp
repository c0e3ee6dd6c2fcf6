#include "processing/quantile_sketch.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace sluice::processing::qsketch {

namespace {

const double g_gamma = (1 + relative_accuracy) / (1 - relative_accuracy);
const double g_log_gamma = std::log(g_gamma);

void store_init(store& s) noexcept {
    s.offset = 0;
    s.lo = 1;
    s.hi = 0;
    s.pad = 0;
    std::memset(s.counts, 0, sizeof s.counts);
}

// Moves the window so that it holds [new_lo, new_hi]; bins below `floor_index` fold
// into it. Rare (the range grew), so a scratch copy is fine.
void relocate(store& s, int32_t new_lo, int32_t new_hi, int32_t floor_index) noexcept {
    uint64_t moved[bins];
    std::memset(moved, 0, sizeof moved);
    const int32_t new_offset = new_lo - (bins - (new_hi - new_lo + 1)) / 2;
    for (int32_t i = s.lo; i <= s.hi; ++i) {
        uint64_t c = s.counts[i - s.offset];
        if (c == 0) continue;
        moved[std::max(i, floor_index) - new_offset] += c;
    }
    std::memcpy(s.counts, moved, sizeof moved);
    s.offset = new_offset;
}

void store_add(store& s, int32_t index, uint64_t c) noexcept {
    if (s.lo > s.hi) {
        s.offset = index - bins / 2;
        s.lo = s.hi = index;
        s.counts[index - s.offset] += c;
        return;
    }
    const int32_t new_hi = std::max(s.hi, index);
    const int32_t floor_index = new_hi - (bins - 1);
    index = std::max(index, floor_index);
    const int32_t new_lo = std::max(std::min(s.lo, index), floor_index);
    if (new_lo < s.offset || new_hi >= s.offset + bins || s.lo < floor_index) [[unlikely]]
        relocate(s, new_lo, new_hi, floor_index);
    s.lo = new_lo;
    s.hi = new_hi;
    s.counts[index - s.offset] += c;
}

void store_merge(store& dst, const store& src) noexcept {
    if (src.lo > src.hi) return;
    // Highest first: the fold point is then final before the lower bins arrive.
    for (int32_t i = src.hi; i >= src.lo; --i) {
        uint64_t c = src.counts[i - src.offset];
        if (c != 0) store_add(dst, i, c);
    }
}

} // namespace

double gamma() noexcept { return g_gamma; }

int32_t index_of(double magnitude) noexcept {
    return int32_t(std::ceil(std::log(magnitude) / g_log_gamma));
}

double value_of(int32_t index) noexcept {
    return 2 * std::pow(g_gamma, double(index)) / (g_gamma + 1);
}

void init(sketch& s) noexcept {
    s.count = 0;
    s.zero_count = 0;
    store_init(s.positive);
    store_init(s.negative);
}

void add(sketch& s, double x) noexcept {
    ++s.count;
    if (x > 0) store_add(s.positive, index_of(x), 1);
    else if (x < 0) store_add(s.negative, index_of(-x), 1);
    else ++s.zero_count;
}

void merge(sketch& dst, const sketch& src) noexcept {
    dst.count += src.count;
    dst.zero_count += src.zero_count;
    store_merge(dst.positive, src.positive);
    store_merge(dst.negative, src.negative);
}

double quantile(const sketch& s, double q) noexcept {
    if (s.count == 0) return std::numeric_limits<double>::quiet_NaN();
    q = std::clamp(q, 0.0, 1.0);
    const uint64_t target = uint64_t(std::floor(q * double(s.count - 1)));
    uint64_t seen = 0;
    const store& neg = s.negative;
    for (int32_t i = neg.hi; i >= neg.lo; --i) {
        seen += neg.counts[i - neg.offset];
        if (seen > target) return -value_of(i);
    }
    seen += s.zero_count;
    if (seen > target) return 0;
    const store& pos = s.positive;
    for (int32_t i = pos.lo; i <= pos.hi; ++i) {
        seen += pos.counts[i - pos.offset];
        if (seen > target) return value_of(i);
    }
    return value_of(pos.hi); // unreachable when counts are consistent
}

} // namespace sluice::processing::qsketch
