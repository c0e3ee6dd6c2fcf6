#pragma once
// Observability on the control thread: latency percentiles from the workers' histograms,
// rates from a short history of counter samples, and the Prometheus text exposition of
// a `stats` reply. Nothing here touches the data plane: the daemon copies counters and
// histogram snapshots (relaxed reads) into a stats_sample and these functions work on
// the copies.
#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "base/latency_histogram.h"

namespace sluice::control {

using json = nlohmann::json;

/// Latency bucket bounds for JSON and Prometheus histograms, in microseconds.
inline constexpr double latency_bounds_us[] = {10,     25,     50,     100,    250,    500,
                                               1e3,    2.5e3,  5e3,    10e3,   25e3,   50e3,
                                               100e3,  250e3,  500e3,  1e6,    2.5e6,  5e6,
                                               10e6,   30e6,   60e6};

/// A snapshot's count, mean, p50/p99/p99.9 and max in microseconds; with `histogram`,
/// also cumulative counts at latency_bounds_us (`le_us`, `cumulative`, the last entry
/// of `cumulative` being the total, Prometheus' +Inf bucket).
json latency_json(const histogram_snapshot& s, double ticks_per_us, bool histogram);

/// The counters that rates are computed from, at one instant, and the latency
/// histograms merged over all workers.
struct stats_sample {
    int64_t at_ns = 0;
    std::map<std::string, uint64_t> counters;
    histogram_snapshot window_visible;
    histogram_snapshot durable;
    // The Kafka RX lcore's produce-ack latency per acks mode (0, 1, all); empty without one.
    std::array<histogram_snapshot, 3> kafka_ack;
};

/// Per-second change of `key` from `base` to `now` (0 when absent or no time passed).
double rate_per_s(const stats_sample& now, const stats_sample& base, const std::string& key);

/// The last few samples, one per control tick, oldest first. One thread only.
class stats_history {
  public:
    explicit stats_history(size_t samples_max) : _samples_max(samples_max) {}
    void push(stats_sample s);
    /// The newest sample taken at least `min_age_ns` before `now_ns`, else the oldest;
    /// nullptr when there is none.
    const stats_sample* base_for_rates(int64_t now_ns, int64_t min_age_ns) const;
    const stats_sample* oldest() const { return _samples.empty() ? nullptr : &_samples.front(); }
    size_t size() const { return _samples.size(); }

  private:
    size_t _samples_max;
    std::deque<stats_sample> _samples;
};

/// The Prometheus text exposition format (version 0.0.4) of a `stats` reply: counters
/// per core and per reason, gauges for watermark, lag, rings and rates, and the latency
/// as a histogram (since start) and a summary (quantiles over the recent interval).
/// Fields missing from the reply are left out. Serialized by prometheus-cpp.
std::string prometheus_text(const json& stats);

/// The content type to serve prometheus_text() with.
inline constexpr const char* prometheus_content_type = "text/plain; version=0.0.4";

} // namespace sluice::control
