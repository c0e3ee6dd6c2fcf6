#pragma once
// Observability helpers on the control thread: latency percentiles from the workers'
// histograms, the Prometheus exposition that control/stats.h renders into, and the Kafka
// listener's metrics. Nothing here touches the data plane: they work on copies.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

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

/// Prometheus families being built for one exposition (prometheus-cpp's data model),
/// serialized by its text serializer. Families keep the order of their first sample.
using labels = std::vector<std::pair<std::string, std::string>>;
using prometheus::ClientMetric;

class exposition {
  public:
    void counter(const std::string& name, const std::string& help, const labels& l, double v);
    void gauge(const std::string& name, const std::string& help, const labels& l, double v);
    ClientMetric& add(const std::string& name, const std::string& help,
                      prometheus::MetricType type, const labels& l);
    std::string text() const;

  private:
    std::vector<prometheus::MetricFamily> _families;
};

/// The Kafka listener's metrics from `stats.kafka` (docs/KAFKA.md); nothing when it is
/// not an object (no listener).
void kafka_metrics(exposition& e, const json& kafka);

} // namespace sluice::control
