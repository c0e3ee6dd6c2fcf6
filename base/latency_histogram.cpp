#include "base/latency_histogram.h"

#include <algorithm>
#include <cmath>

#include "base/assert.h"
#include "base/tsc.h"

namespace sluice {

histogram_snapshot latency_histogram::snapshot() const noexcept {
    histogram_snapshot s;
    for (uint32_t b = 0; b < bucket_count; ++b)
        s._counts[b] = _counts[b].load(std::memory_order_relaxed);
    s._sum = _sum.load(std::memory_order_relaxed);
    s._max = _max.load(std::memory_order_relaxed);
    return s;
}

uint64_t histogram_snapshot::count() const noexcept {
    uint64_t n = 0;
    for (uint64_t c : _counts)
        n += c;
    return n;
}

double histogram_snapshot::mean() const noexcept {
    uint64_t n = count();
    return n == 0 ? 0.0 : double(_sum) / double(n);
}

uint64_t histogram_snapshot::quantile(double q) const noexcept {
    uint64_t n = count();
    if (n == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    uint64_t rank = std::max<uint64_t>(1, uint64_t(std::ceil(q * double(n))));
    if (rank >= n) return _max;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < latency_histogram::bucket_count; ++b) {
        seen += _counts[b];
        if (seen >= rank) {
            uint64_t lo = latency_histogram::bucket_low(b);
            uint64_t mid = lo + (latency_histogram::bucket_high(b) - lo) / 2;
            return std::min(mid, _max);
        }
    }
    return _max;
}

void histogram_snapshot::merge(const histogram_snapshot& other) noexcept {
    for (uint32_t b = 0; b < latency_histogram::bucket_count; ++b)
        _counts[b] += other._counts[b];
    _sum += other._sum;
    _max = std::max(_max, other._max);
}

histogram_snapshot histogram_snapshot::since(const histogram_snapshot& earlier) const noexcept {
    histogram_snapshot d;
    uint32_t top = 0;
    bool any = false;
    for (uint32_t b = 0; b < latency_histogram::bucket_count; ++b) {
        // Monotonic counts; a torn read of a concurrent record() can only lag, never lead.
        d._counts[b] = _counts[b] >= earlier._counts[b] ? _counts[b] - earlier._counts[b] : 0;
        if (d._counts[b] != 0) {
            top = b;
            any = true;
        }
    }
    d._sum = _sum >= earlier._sum ? _sum - earlier._sum : 0;
    d._max = any ? std::min(latency_histogram::bucket_high(top), _max) : 0;
    return d;
}

pending_latency::pending_latency(uint32_t runs_max)
    : _runs(new run[runs_max]), _mask(uint64_t(runs_max) - 1) {
    SLUICE_ASSERT(runs_max > 0);
    SLUICE_ASSERT((runs_max & (runs_max - 1)) == 0);
}

void pending_latency::complete(uint64_t rows_done, uint64_t now, latency_histogram& h) noexcept {
    while (_rows_completed < rows_done && _head != _tail) {
        run& r = _runs[_head & _mask];
        uint64_t take = std::min(r.rows, rows_done - _rows_completed);
        if (r.stamp != 0) h.record(tsc_elapsed(r.stamp, now), take);
        r.rows -= take;
        _rows_completed += take;
        if (r.rows == 0) ++_head;
    }
}

} // namespace sluice
