#pragma once
// Continuous query definitions as JSON (the control protocol, the query registry in the
// data dir) and from TOML ([[query]] tables of sluiced.toml, converted to the same JSON
// shape first). docs/CONTROL.md and docs/sluiced.toml show the keys:
//
//   {"name":"views","window":"hopping","size":"10m","slide":"1m",
//    "group_by":["page","metadata.referrer"],
//    "aggregates":["count","distinct(user_id)","quantile(metadata.latency_ms, 0.5, 0.99)"],
//    "filter":"event_type=page_view","watermark_delay":"10m","memory_mb":32}
//
// Durations are strings ("30s", "1m") or integers of milliseconds.
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "base/result.h"
#include "processing/query.h"

namespace sluice::control {

using json = nlohmann::json;

// `default_delay_ms` applies when the definition has no watermark_delay.
result<processing::query_def> query_from_json(const json& j, int64_t default_delay_ms);
json query_to_json(const processing::query_def& q);
// A TOML table as JSON (strings, integers, floats, booleans, arrays, tables).
json toml_to_json(const toml::table& t);

} // namespace sluice::control
