#include "processing/hll.h"

#include <cmath>

namespace sluice::processing::hll {

double estimate(const uint8_t* regs, uint32_t precision) noexcept {
    const uint32_t m = registers(precision);
    double sum = 0;
    uint32_t zeros = 0;
    for (uint32_t i = 0; i < m; ++i) {
        sum += std::ldexp(1.0, -int(regs[i]));
        zeros += regs[i] == 0;
    }
    const double md = double(m);
    double alpha;
    switch (m) {
    case 16: alpha = 0.673; break;
    case 32: alpha = 0.697; break;
    case 64: alpha = 0.709; break;
    default: alpha = 0.7213 / (1.0 + 1.079 / md); break;
    }
    const double raw = alpha * md * md / sum;
    // Small range: linear counting over the empty registers is the better estimator.
    if (raw <= 2.5 * md && zeros != 0) return md * std::log(md / double(zeros));
    return raw;
}

} // namespace sluice::processing::hll
