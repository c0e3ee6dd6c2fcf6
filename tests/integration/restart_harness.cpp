#include "tests/integration/restart_harness.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/clock.h"
#include "storage/schema.h"
#include "storage/table_reader.h"
#include "tools/gen/generator.h"

namespace sluice::testing {

std::string restart_config_toml(uint32_t flush_interval_ms) {
    return R"toml(
[processing]
watermark_delay_ms = 600000
dedup_horizon_ms = 3600000

[storage]
flush_interval_ms = )toml" +
           std::to_string(flush_interval_ms) + R"toml(

[[query]]
name = "page_views_per_minute"
window = "tumbling"
size = "1m"
group_by = ["page"]
aggregates = ["count"]

[[query]]
name = "referrers"
window = "hopping"
size = "5m"
slide = "1m"
group_by = ["metadata.referrer", "event_type"]
aggregates = ["count", "distinct(user_id)"]
watermark_delay = "2m"

[[query]]
name = "user_sessions"
window = "session"
gap = "20s"
group_by = ["user_id"]
aggregates = ["count", "distinct(page, 10)"]
watermark_delay = "1m"
)toml";
}

const std::vector<std::string> restart_query_tables = {"page_views_per_minute", "referrers",
                                                       "user_sessions"};

gen_stream make_stream(uint64_t events, uint64_t seed, uint32_t events_per_minute) {
    sluice::tools::gen_config g;
    g.events = events;
    g.seed = seed;
    g.events_per_minute = events_per_minute;
    sluice::tools::model_config mc;
    mc.now_ms = sluice::wall_clock_ms();
    gen_stream s{{}, {0}, sluice::tools::reference_model(mc)};
    sluice::tools::traffic_generator gen(g);
    gen.run([&](const sluice::tools::gen_frame& f) {
        if (f.ignored) return;
        s.payloads.emplace_back(f.payload);
        s.model.feed_datagram(f.payload);
        uint64_t n = 0;
        size_t start = 0;
        const std::string& p = s.payloads.back();
        while (start <= p.size()) {
            size_t nl = p.find('\n', start);
            size_t end = nl == std::string::npos ? p.size() : nl;
            if (end > start) ++n;
            if (nl == std::string::npos) break;
            start = nl + 1;
        }
        s.lines.push_back(s.lines.back() + n);
    });
    return s;
}

bool all_lines_taken(const nlohmann::json& stats, uint64_t lines) {
    const nlohmann::json& t = stats["totals"];
    return t["events_received"].get<uint64_t>() == lines &&
           t["events_accepted"].get<uint64_t>() + t["duplicates"].get<uint64_t>() +
                   t["dead_letters"].get<uint64_t>() ==
               lines;
}

namespace {
std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}
} // namespace

std::vector<std::string> table_rows(const std::string& data_dir, const std::string& table) {
    namespace st = sluice::storage;
    std::vector<std::string> rows;
    auto r = st::scan_table(data_dir, table, INT64_MIN, INT64_MAX, [&](const st::column_batch& b) {
        const auto& cols = b.schema().columns;
        for (uint32_t i = 0; i < b.rows(); ++i) {
            std::string line;
            for (size_t c = 0; c < cols.size(); ++c) {
                if (c) line += ',';
                switch (cols[c].type) {
                case st::column_type::i64: line += std::to_string(b.i64_at(int(c), i)); break;
                case st::column_type::u64: line += std::to_string(b.u64_at(int(c), i)); break;
                case st::column_type::u8: line += std::to_string(b.u8_at(int(c), i)); break;
                case st::column_type::f64: {
                    char buf[40];
                    std::snprintf(buf, sizeof buf, "%a", b.f64_at(int(c), i));
                    line += buf;
                    break;
                }
                case st::column_type::string:
                case st::column_type::bytes: line += std::string(b.string_at(int(c), i)); break;
                }
            }
            rows.push_back(line);
        }
    });
    if (!r) rows.push_back("<scan failed: " + r.err().message + ">");
    std::sort(rows.begin(), rows.end());
    return rows;
}

std::vector<std::string> stored_events(const std::string& data_dir) {
    namespace ev = sluice::storage::events_col;
    std::vector<std::string> out;
    // A daemon killed while it starts may not have written the first segment.
    if (!std::filesystem::exists(data_dir + "/events")) return out;
    auto r = sluice::storage::scan_table(
        data_dir, "events", INT64_MIN, INT64_MAX, [&](const sluice::storage::column_batch& b) {
            for (uint32_t i = 0; i < b.rows(); ++i) {
                auto raw = b.string_at(ev::raw, i);
                out.push_back(hex64(XXH3_64bits(raw.data(), raw.size())) + " " +
                              std::to_string(b.u8_at(ev::late, i)));
            }
        });
    if (!r) out.push_back("<scan failed: " + r.err().message + ">");
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> model_reference_rows(const sluice::tools::reference_model& model) {
    std::vector<std::string> want;
    for (const auto& w : model.windows())
        want.push_back(std::to_string(w.window_start_ms) + "," + std::to_string(w.window_end_ms) +
                       "," + w.page + "," + std::to_string(w.count) + ",0");
    std::sort(want.begin(), want.end());
    return want;
}

} // namespace sluice::testing
