#pragma once
// event_parse: one NDJSON line -> an event_slot (§2.1, §3 Bad input). The line is copied
// into the slot once; simdjson's on-demand parser then reads it in place, and keys and
// string values without escapes are used in place too (field_refs into the raw bytes).
#include <cstdint>
#include <string_view>

#include <simdjson.h>

#include "base/limits.h"
#include "base/time_format.h"
#include "processing/event.h"
#include "processing/field_catalog.h"

namespace sluice::dataplane {

struct parse_config {
    uint32_t event_bytes_max = limits::event_bytes_default;
    int64_t max_future_skew_ms = limits::max_future_skew_ms_default;
    // Fields the continuous queries need besides the four standard ones (may be null).
    const processing::field_catalog* fields = nullptr;
};

class event_parser {
  public:
    explicit event_parser(const parse_config& config);

    // Fills `slot` (kind event or dead_letter with its reason) from `line`. The slot's
    // data area must hold processing::slot_data_bytes(event_bytes_max) bytes.
    void parse(std::string_view line, int64_t now_ms, processing::event_slot& slot) noexcept;

  private:
    processing::dead_letter_reason parse_fields(processing::event_slot& slot, int64_t now_ms) noexcept;
    // A top-level key the catalog may want: stores its value (or its nested keys' values).
    simdjson::error_code extract_extra(std::string_view key, simdjson::ondemand::value& v,
                                       simdjson::ondemand::json_type type,
                                       processing::event_slot& slot) noexcept;
    static simdjson::error_code string_field(simdjson::ondemand::value& v,
                                             processing::event_slot& slot,
                                             processing::field_ref& out) noexcept;
    simdjson::error_code store_extra(uint32_t index, simdjson::ondemand::value& v,
                                     simdjson::ondemand::json_type type,
                                     processing::event_slot& slot) noexcept;

    parse_config _config;
    simdjson::ondemand::parser _parser;
    rfc3339_reader _time; // keeps the last minute: a datagram's events share it
    uint32_t _generation = 0; // of the catalog, as last seen
    uint32_t _fields = 0;     // catalog entries to extract
};

} // namespace sluice::dataplane
