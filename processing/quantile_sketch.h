#pragma once
// A mergeable quantile sketch with a relative-error guarantee (DDSketch, Masson et al.,
// VLDB 2019), in fixed-size state so that it can live in a window cell.
//
// A value x > 0 falls into bin i = ceil(log(x) / log(gamma)), gamma = (1 + a) / (1 - a),
// which covers (gamma^(i-1), gamma^i]; negative values go to a mirrored store by -x, and
// zero is counted apart. A quantile q returns the representative 2 gamma^i / (gamma + 1)
// of the bin holding the value of rank floor(q * (n - 1)) (0-based, ascending), so
//
//     |returned - exact| <= a * |exact|,  a = relative_accuracy = 1%,
//
// where `exact` is that rank's value. Each store keeps `bins` = 1024 bins: a dynamic range
// of gamma^1023 (about 7e8) per sign. Beyond it, the bins of the smallest magnitudes fold
// into the lowest kept bin, so only quantiles that land in the folded bin lose the bound.
// The folding point depends on the largest index ever added, never on the order, and
// bins only add: merging partials in any order gives exactly the same sketch.
#include <cmath>
#include <cstdint>

namespace sluice::processing::qsketch {

inline constexpr double relative_accuracy = 0.01;
inline constexpr int32_t bins = 1024;

struct store {
    int32_t offset; // absolute index of counts[0]
    int32_t lo;     // lowest and highest non-empty absolute index; lo > hi when empty
    int32_t hi;
    uint32_t pad;
    uint64_t counts[bins];
};

struct sketch {
    uint64_t count; // values added
    uint64_t zero_count;
    store positive; // x > 0, by the index of x
    store negative; // x < 0, by the index of -x
};

double gamma() noexcept;
// ceil(log(magnitude) / log(gamma)) for magnitude > 0.
int32_t index_of(double magnitude) noexcept;
// 2 gamma^index / (gamma + 1).
double value_of(int32_t index) noexcept;

void init(sketch& s) noexcept;
// x must be finite.
void add(sketch& s, double x) noexcept;
void merge(sketch& dst, const sketch& src) noexcept;
// NaN when the sketch is empty; q in [0, 1].
double quantile(const sketch& s, double q) noexcept;

} // namespace sluice::processing::qsketch
