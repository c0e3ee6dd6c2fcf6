#pragma once
// What the crash tests (restart_test, crashloop) share: one sluice-gen stream kept in
// memory to be sent again and again, a three-query config, and the store read back as
// sorted text so that a crashed run's store can be compared with an uncrashed one's.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/gen/model.h"

namespace sluice::testing {

// sluiced.toml: a tumbling, a hopping and a session query over one stream, with a
// watermark and dedup horizon wide enough that no re-sent event is late or forgotten.
std::string restart_config_toml(uint32_t flush_interval_ms);
// The query tables restart_config_toml() defines.
extern const std::vector<std::string> restart_query_tables;

struct gen_stream {
    std::vector<std::string> payloads; // UDP datagrams, in order
    std::vector<uint64_t> lines;       // event lines in payloads[0..i)
    sluice::tools::reference_model model{sluice::tools::model_config{}};
};
gen_stream make_stream(uint64_t events, uint64_t seed, uint32_t events_per_minute);

// True when stats say the run has taken exactly `lines` event lines (each accepted,
// duplicate or dead).
bool all_lines_taken(const nlohmann::json& stats, uint64_t lines);

// Every row of a table as text, sorted; doubles printed exactly.
std::vector<std::string> table_rows(const std::string& data_dir, const std::string& table);
// "<xxh3(raw)> <late>" per stored event, sorted; empty before the first segment.
std::vector<std::string> stored_events(const std::string& data_dir);
// The reference query's rows (page_views_per_minute) as the model computes them, sorted
// as table_rows() sorts them.
std::vector<std::string> model_reference_rows(const sluice::tools::reference_model& model);

} // namespace sluice::testing
