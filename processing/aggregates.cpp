#include "processing/aggregates.h"

#include <cmath>
#include <cstring>
#include <limits>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/assert.h"
#include "processing/hll.h"
#include "processing/quantile_sketch.h"

namespace sluice::processing {

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

uint32_t state_bytes(const aggregate_def& a) {
    switch (a.kind) {
    case agg_kind::count: return 8;
    case agg_kind::sum: return 8;
    case agg_kind::min: return 8;
    case agg_kind::max: return 8;
    case agg_kind::mean: return 16; // sum, n
    case agg_kind::distinct: return (hll::registers(a.precision) + 7) & ~7u;
    case agg_kind::quantile: return uint32_t(sizeof(qsketch::sketch));
    }
    return 0;
}

template <typename T>
T& at(uint8_t* blob, uint32_t off) noexcept {
    return *reinterpret_cast<T*>(blob + off);
}
template <typename T>
const T& at(const uint8_t* blob, uint32_t off) noexcept {
    return *reinterpret_cast<const T*>(blob + off);
}

} // namespace

agg_layout::agg_layout(const std::vector<aggregate_def>& aggs, const std::vector<uint32_t>& inputs) {
    SLUICE_ASSERT(aggs.size() == inputs.size());
    static_assert(sizeof(qsketch::sketch) % 8 == 0);
    for (size_t i = 0; i < aggs.size(); ++i) {
        const auto& a = aggs[i];
        _slots.push_back(slot{a.kind, _bytes, a.precision, inputs[i], a.quantiles});
        _bytes += state_bytes(a);
        _values += a.kind == agg_kind::quantile ? uint32_t(a.quantiles.size()) : 1;
    }
}

void agg_layout::init(uint8_t* blob) const noexcept {
    for (const slot& s : _slots) {
        switch (s.kind) {
        case agg_kind::count: at<uint64_t>(blob, s.offset) = 0; break;
        case agg_kind::sum: at<double>(blob, s.offset) = 0; break;
        case agg_kind::min: at<double>(blob, s.offset) = inf; break;
        case agg_kind::max: at<double>(blob, s.offset) = -inf; break;
        case agg_kind::mean:
            at<double>(blob, s.offset) = 0;
            at<uint64_t>(blob, s.offset + 8) = 0;
            break;
        case agg_kind::distinct:
            std::memset(blob + s.offset, 0, hll::registers(s.precision));
            break;
        case agg_kind::quantile: qsketch::init(at<qsketch::sketch>(blob, s.offset)); break;
        }
    }
}

void agg_layout::update(uint8_t* blob, const agg_input* inputs) const noexcept {
    for (const slot& s : _slots) {
        const agg_input& in = inputs[s.input];
        switch (s.kind) {
        case agg_kind::count: ++at<uint64_t>(blob, s.offset); break;
        case agg_kind::sum:
            if (in.numeric) at<double>(blob, s.offset) += in.number;
            break;
        case agg_kind::min:
            if (in.numeric && in.number < at<double>(blob, s.offset))
                at<double>(blob, s.offset) = in.number;
            break;
        case agg_kind::max:
            if (in.numeric && in.number > at<double>(blob, s.offset))
                at<double>(blob, s.offset) = in.number;
            break;
        case agg_kind::mean:
            if (in.numeric) {
                at<double>(blob, s.offset) += in.number;
                ++at<uint64_t>(blob, s.offset + 8);
            }
            break;
        case agg_kind::distinct:
            // An absent field is not a value: it does not count as one more distinct.
            if (in.present)
                hll::add(blob + s.offset, s.precision, XXH3_64bits(in.text.data(), in.text.size()));
            break;
        case agg_kind::quantile:
            if (in.numeric) qsketch::add(at<qsketch::sketch>(blob, s.offset), in.number);
            break;
        }
    }
}

void agg_layout::merge(uint8_t* dst, const uint8_t* src) const noexcept {
    for (const slot& s : _slots) {
        switch (s.kind) {
        case agg_kind::count: at<uint64_t>(dst, s.offset) += at<uint64_t>(src, s.offset); break;
        case agg_kind::sum: at<double>(dst, s.offset) += at<double>(src, s.offset); break;
        case agg_kind::min:
            if (at<double>(src, s.offset) < at<double>(dst, s.offset))
                at<double>(dst, s.offset) = at<double>(src, s.offset);
            break;
        case agg_kind::max:
            if (at<double>(src, s.offset) > at<double>(dst, s.offset))
                at<double>(dst, s.offset) = at<double>(src, s.offset);
            break;
        case agg_kind::mean:
            at<double>(dst, s.offset) += at<double>(src, s.offset);
            at<uint64_t>(dst, s.offset + 8) += at<uint64_t>(src, s.offset + 8);
            break;
        case agg_kind::distinct: hll::merge(dst + s.offset, src + s.offset, s.precision); break;
        case agg_kind::quantile:
            qsketch::merge(at<qsketch::sketch>(dst, s.offset), at<qsketch::sketch>(src, s.offset));
            break;
        }
    }
}

void agg_layout::finish(const uint8_t* blob, std::vector<agg_value>& out) const {
    auto real = [&](double v) { out.push_back(agg_value{false, 0, v}); };
    for (const slot& s : _slots) {
        switch (s.kind) {
        case agg_kind::count: out.push_back(agg_value{true, at<uint64_t>(blob, s.offset), 0}); break;
        case agg_kind::sum: real(at<double>(blob, s.offset)); break;
        case agg_kind::min: {
            double v = at<double>(blob, s.offset);
            real(v == inf ? nan : v); // no numeric value in the window
            break;
        }
        case agg_kind::max: {
            double v = at<double>(blob, s.offset);
            real(v == -inf ? nan : v);
            break;
        }
        case agg_kind::mean: {
            uint64_t n = at<uint64_t>(blob, s.offset + 8);
            real(n == 0 ? nan : at<double>(blob, s.offset) / double(n));
            break;
        }
        case agg_kind::distinct:
            out.push_back(agg_value{
                true, uint64_t(std::llround(hll::estimate(blob + s.offset, s.precision))), 0});
            break;
        case agg_kind::quantile:
            for (double q : s.quantiles) real(qsketch::quantile(at<qsketch::sketch>(blob, s.offset), q));
            break;
        }
    }
}

} // namespace sluice::processing
