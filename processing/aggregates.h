#pragma once
// The aggregate state of one window cell: a fixed-size, 8-byte aligned blob laid out by
// agg_layout from a query's aggregates. Workers update blobs per event (no allocation,
// a switch per aggregate, no virtual call); the merger merges blobs of the same cell from
// every worker and turns the final blob into output values. Every merge is exact and
// order-independent: counts and sums add (sums of doubles are exact while the values'
// partial sums are exactly representable), min/max compare, HyperLogLog registers take
// the max, and quantile sketch bins add (quantile_sketch.h).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "processing/query.h"

namespace sluice::processing {

// One output value: an unsigned integer (count, distinct) or a double.
struct agg_value {
    bool is_integer = false;
    uint64_t integer = 0;
    double real = 0;
    friend bool operator==(const agg_value&, const agg_value&) = default;
};

// What an event offers an aggregate: a field's text (hashed for distinct) and, when the
// field is a JSON number, its value.
struct agg_input {
    std::string_view text;
    bool present = false;
    bool numeric = false;
    double number = 0;
};

class agg_layout {
  public:
    struct slot {
        agg_kind kind;
        uint32_t offset;       // into the blob
        uint32_t precision;    // distinct
        uint32_t input;        // index of the input (field) it reads
        std::vector<double> quantiles;
    };

    agg_layout() = default;
    // `inputs[i]` is the index of aggregate i's field among the query's value fields.
    agg_layout(const std::vector<aggregate_def>& aggs, const std::vector<uint32_t>& inputs);

    uint32_t blob_bytes() const noexcept { return _bytes; }
    uint32_t values() const noexcept { return _values; } // output columns
    const std::vector<slot>& slots() const noexcept { return _slots; }

    void init(uint8_t* blob) const noexcept;
    // inputs: one per value field of the query (see compiled_query).
    void update(uint8_t* blob, const agg_input* inputs) const noexcept;
    void merge(uint8_t* dst, const uint8_t* src) const noexcept;
    // Appends values() output values.
    void finish(const uint8_t* blob, std::vector<agg_value>& out) const;

  private:
    std::vector<slot> _slots;
    uint32_t _bytes = 0;
    uint32_t _values = 0;
};

} // namespace sluice::processing
