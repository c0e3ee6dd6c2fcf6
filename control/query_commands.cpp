// The continuous queries' control-socket commands: `queries` (list, add, remove),
// `windows` (closed rows from the store, open ones from a live snapshot) and `replay`.
// They run on the control server's pool threads (they wait for the merger or scan a
// table). Each turns a request into processing's typed calls (processing::merger, the
// stored windows of processing/result_table.h) and the result into a reply.
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "base/time_format.h"
#include "control/query_config.h"
#include "control/query_service.h"
#include "processing/result_table.h"

namespace sluice::control {

using namespace processing;

namespace {

constexpr size_t window_rows_reply_max = 100'000;

json fail(const std::string& message) { return json{{"ok", false}, {"error", message}}; }

// An epoch-ms integer or an RFC 3339 string.
result<int64_t> parse_time(const json& v, const char* what) {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_string())
        if (auto ms = parse_time_arg(v.get_ref<const std::string&>())) return *ms;
    return make_error(errc::invalid_argument,
                      std::string(what) +
                          " must be epoch milliseconds or an RFC 3339 time like 2025-02-28T15:00:00Z");
}

json value_json(const agg_value& v) {
    if (v.is_integer) return v.integer;
    if (!std::isfinite(v.real)) return nullptr;
    return v.real;
}

json stats_json(const query_stats& s) {
    return json{{"name", s.name},
                {"window", window_kind_name(s.window)},
                {"events", s.events},
                {"late_events", s.late_events},
                {"window_overflow", s.window_overflow},
                {"rows_emitted", s.rows_emitted},
                {"pending_cells", s.pending_cells},
                {"closed_until_ms", s.closed_until_ms == INT64_MIN ? json(nullptr) : json(s.closed_until_ms)}};
}

json replay_json(const replay_status& s) {
    json o{{"id", s.id},
           {"query", s.query},
           {"from_ms", s.from_ms},
           {"to_ms", s.to_ms},
           {"state", replay_state_name(s.st)},
           {"events_read", s.events_read},
           {"rows_written", s.rows_written},
           {"segments_done", s.segments_done},
           {"segments_total", s.segments_total}};
    if (s.st == replay_status::state::failed) o["error"] = s.error;
    return o;
}

} // namespace

json query_service::stats() const {
    json out = json::array();
    for (const auto& s : _merger->stats()) out.push_back(stats_json(s));
    return out;
}

json query_service::handle_queries(const json& req) {
    std::string action = req.value("action", std::string("list"));
    if (action == "list") {
        json out = json::array();
        for (const auto& q : _merger->list()) {
            json j = query_to_json(q.def);
            j["stats"] = stats_json(q.stats);
            j["columns"] = q.columns;
            out.push_back(j);
        }
        return json{{"queries", out}};
    }
    if (action == "add") return add_query(req);
    if (action == "remove") return remove_query(req);
    return fail("unknown queries action \"" + action + "\" (use list, add or remove)");
}

json query_service::add_query(const json& req) {
    if (!req.contains("query")) return fail("queries add needs \"query\": {name, window, ...}");
    auto def = query_from_json(req["query"], _config.default_delay_ms);
    if (!def) return fail(def.err().message);
    auto added = _merger->add_query(*def);
    if (!added) return fail(added.err().message);
    return json{{"ok", true}, {"query", query_to_json(*added)}, {"table", added->name}};
}

json query_service::remove_query(const json& req) {
    std::string name = req.value("name", std::string());
    if (name.empty()) return fail("queries remove needs \"name\"");
    auto gone = _merger->remove_query(name);
    if (!gone) return fail(gone.err().message);
    json out{{"ok", true}, {"removed", gone->name}, {"rows_emitted", gone->rows_emitted}};
    if (gone->warning) out["warning"] = *gone->warning;
    return out;
}

json query_service::handle_replay(const json& req) {
    std::string action = req.value("action", std::string("start"));
    if (action == "status") {
        std::optional<replay_status> s;
        if (req.contains("id") && req["id"].is_number_integer()) s = _merger->replay(req["id"].get<uint64_t>());
        if (!s) return fail("no replay with that id (see replay list)");
        return json{{"replay", replay_json(*s)}};
    }
    if (action == "list") {
        json out = json::array();
        for (const auto& s : _merger->replays()) out.push_back(replay_json(s));
        return json{{"replays", out}};
    }
    if (action != "start") return fail("unknown replay action \"" + action + "\" (use start, status or list)");
    std::string name = req.value("query", std::string());
    if (name.empty() || !req.contains("from") || !req.contains("to"))
        return fail("replay needs \"query\", \"from\" and \"to\" (epoch ms or RFC 3339)");
    auto from = parse_time(req["from"], "from");
    if (!from) return fail(from.err().message);
    auto to = parse_time(req["to"], "to");
    if (!to) return fail(to.err().message);
    auto started = _merger->start_replay(name, *from, *to);
    if (!started) return fail(started.err().message);
    return json{{"replay", replay_json(*started)}};
}

json query_service::handle_windows(const json& req) {
    std::string name = req.value("query", std::string());
    if (name.empty()) return fail("windows needs \"query\" (see sluicectl queries list)");
    int64_t from = INT64_MIN, to = INT64_MAX;
    if (req.contains("from") && !req["from"].is_null()) {
        auto t = parse_time(req["from"], "from");
        if (!t) return fail(t.err().message);
        from = *t;
    }
    if (req.contains("to") && !req["to"].is_null()) {
        auto t = parse_time(req["to"], "to");
        if (!t) return fail(t.err().message);
        to = *t;
    }
    size_t limit = std::min<size_t>(req.value("limit", window_rows_reply_max), window_rows_reply_max);
    auto running = _merger->columns(name);
    const bool known = running.has_value();
    // Closed windows: what the store holds, the newest revision of each.
    auto stored = read_stored_windows(_config.data_dir, name, from, to, limit);
    if (!stored && stored.err().code != errc::not_found) return fail(stored.err().message);
    if (!stored && !known) return fail("no query or table named \"" + name + "\" (see sluicectl queries list)");
    json columns = known ? json(*running) : json(stored ? stored->columns : std::vector<std::string>());
    json rows = json::array();
    bool truncated = false;
    if (stored) {
        truncated = stored->truncated;
        for (const auto& r : stored->rows) {
            json row = json::array();
            for (const auto& cell : r)
                std::visit([&](const auto& v) {
                    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, double>)
                        row.push_back(std::isfinite(v) ? json(v) : json(nullptr));
                    else
                        row.push_back(v);
                }, cell);
            rows.push_back(std::move(row));
        }
    }
    json out{{"query", name}, {"columns", columns}, {"rows", rows}, {"truncated", truncated}};
    if (req.value("open", false)) {
        if (!known) return fail("no running query named \"" + name + "\": no open windows to show");
        auto open = _merger->open_windows(name);
        if (!open) return fail(open.err().message);
        json rows = json::array();
        for (const auto& r : *open) {
            json row = json::array({r.start_ms, r.end_ms});
            for (const auto& g : r.group) row.push_back(g);
            for (const auto& v : r.values) row.push_back(value_json(v));
            rows.push_back(row);
        }
        out["open_rows"] = rows;
    }
    return out;
}

} // namespace sluice::control
