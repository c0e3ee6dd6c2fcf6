#pragma once
// Fixed-memory latency histograms for the hot path, merged on read.
//
// latency_histogram: log-linear buckets over the whole uint64_t range (HdrHistogram's
// layout): values below 32 each have a bucket, and every power of two above is split
// into 32 buckets, so a bucket is at most 1/32 of its lower bound wide and a reported
// quantile (the bucket's middle) is within about 1.6% of the true value. 1920 buckets,
// 15 KiB, allocated once. One thread (the owning lcore) records with relaxed stores, no
// lock and no atomic read-modify-write; any thread may snapshot() at any time.
//
// histogram_snapshot: a plain copy that merges (per-core histograms into one), subtracts
// (two snapshots of the same histogram give the interval between them) and answers
// quantiles.
//
// pending_latency: latency to a later event that completes rows in order (an fsync that
// makes a prefix of the rows durable). Rows are remembered by their stamp, run-length
// encoded (the events of one RX burst share a stamp), in a fixed ring of runs.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

namespace sluice {

class histogram_snapshot;

class alignas(64) latency_histogram {
  public:
    static constexpr unsigned sub_bits = 5;
    static constexpr unsigned sub_count = 1u << sub_bits;
    static constexpr unsigned bucket_count = (64 - sub_bits + 1) * sub_count;

    static constexpr uint32_t bucket_of(uint64_t v) noexcept {
        if (v < sub_count) return uint32_t(v);
        unsigned msb = 63u - unsigned(__builtin_clzll(v));
        unsigned shift = msb - sub_bits;
        return uint32_t((shift + 1) * sub_count + ((v >> shift) - sub_count));
    }
    /// Smallest value in bucket `b`.
    static constexpr uint64_t bucket_low(uint32_t b) noexcept {
        if (b < sub_count) return b;
        unsigned shift = b / sub_count - 1;
        return uint64_t(b % sub_count + sub_count) << shift;
    }
    /// Largest value in bucket `b`.
    static constexpr uint64_t bucket_high(uint32_t b) noexcept {
        if (b < sub_count) return b;
        unsigned shift = b / sub_count - 1;
        return bucket_low(b) + ((uint64_t(1) << shift) - 1);
    }

    /// `n` events of latency `v`. Owner thread only.
    void record(uint64_t v, uint64_t n = 1) noexcept {
        std::atomic<uint64_t>& c = _counts[bucket_of(v)];
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        _sum.store(_sum.load(std::memory_order_relaxed) + v * n, std::memory_order_relaxed);
        if (v > _max.load(std::memory_order_relaxed)) _max.store(v, std::memory_order_relaxed);
    }

    /// Any thread. The copy is not atomic as a whole: a concurrent record() may be in
    /// the counts and not yet in the sum; both are monotonic, so intervals stay sane.
    histogram_snapshot snapshot() const noexcept;

  private:
    std::array<std::atomic<uint64_t>, bucket_count> _counts{};
    std::atomic<uint64_t> _sum{0};
    std::atomic<uint64_t> _max{0};
};

class histogram_snapshot {
  public:
    uint64_t count() const noexcept;
    uint64_t sum() const noexcept { return _sum; }
    /// The largest value recorded (exact for a histogram's own snapshot; for an interval,
    /// the top of the highest non-empty bucket, capped by the later snapshot's max).
    uint64_t max() const noexcept { return _max; }
    double mean() const noexcept;
    /// The value at quantile q (0 < q <= 1): the middle of the bucket that holds the
    /// ceil(q * count)-th smallest value, capped by max(); max() for the top rank; 0 when
    /// empty.
    uint64_t quantile(double q) const noexcept;
    uint64_t bucket(uint32_t b) const noexcept { return _counts[b]; }

    void merge(const histogram_snapshot& other) noexcept;
    /// What was recorded after `earlier` (a snapshot of the same histograms).
    histogram_snapshot since(const histogram_snapshot& earlier) const noexcept;

  private:
    friend class latency_histogram;
    std::array<uint64_t, latency_histogram::bucket_count> _counts{};
    uint64_t _sum = 0;
    uint64_t _max = 0;
};

class pending_latency {
  public:
    /// `runs_max`: distinct stamps that may await completion at once (a power of two).
    explicit pending_latency(uint32_t runs_max);

    /// The next row, stamped `stamp` (0: unstamped, counted but never measured). When
    /// runs_max stamps already wait, the row joins the newest run: its latency is then
    /// overstated (measured from an older stamp), never understated.
    void add_row(uint64_t stamp) noexcept {
        if (_tail != _head) {
            run& last = _runs[(_tail - 1) & _mask];
            if (last.stamp == stamp || _tail - _head == _mask + 1) [[likely]] {
                if (last.stamp != stamp) ++_merged_rows;
                ++last.rows;
                return;
            }
        }
        _runs[_tail++ & _mask] = run{stamp, 1};
    }

    /// The first `rows_done` rows ever added are complete now (`now` in stamp units):
    /// records the latency of those not recorded yet into `h`.
    void complete(uint64_t rows_done, uint64_t now, latency_histogram& h) noexcept;

    uint64_t rows_completed() const noexcept { return _rows_completed; }
    /// Rows that joined an older run because the ring was full.
    uint64_t merged_rows() const noexcept { return _merged_rows; }

  private:
    struct run {
        uint64_t stamp;
        uint64_t rows;
    };
    std::unique_ptr<run[]> _runs;
    uint64_t _mask;
    uint64_t _head = 0;
    uint64_t _tail = 0;
    uint64_t _rows_completed = 0;
    uint64_t _merged_rows = 0;
};

} // namespace sluice
