#include "control/query_config.h"

namespace sluice::control {

namespace {

using processing::query_def;

error bad(const std::string& where, const std::string& what) {
    return make_error(errc::invalid_argument, where + what);
}

json toml_node(const toml::node& n) {
    if (auto s = n.as_string()) return s->get();
    if (auto i = n.as_integer()) return i->get();
    if (auto f = n.as_floating_point()) return f->get();
    if (auto b = n.as_boolean()) return b->get();
    if (auto a = n.as_array()) {
        json out = json::array();
        for (const auto& e : *a) out.push_back(toml_node(e));
        return out;
    }
    if (auto t = n.as_table()) return toml_to_json(*t);
    return nullptr;
}

result<int64_t> duration(const json& v, const std::string& where) {
    if (v.is_number_integer()) {
        if (v.get<int64_t>() < 0) return bad(where, "must not be negative");
        return v.get<int64_t>();
    }
    if (v.is_string()) {
        auto r = processing::parse_duration_ms(v.get<std::string>());
        if (!r) return bad(where, r.err().message);
        return *r;
    }
    return bad(where, "must be a duration string (\"30s\") or integer milliseconds");
}

} // namespace

json toml_to_json(const toml::table& t) {
    json out = json::object();
    for (const auto& [k, v] : t) out[std::string(k.str())] = toml_node(v);
    return out;
}

result<query_def> query_from_json(const json& j, int64_t default_delay_ms) {
    if (!j.is_object()) return make_error(errc::invalid_argument, "a query must be a JSON object");
    query_def q;
    q.aggregates.clear();
    q.watermark_delay_ms = default_delay_ms;
    auto name = j.find("name");
    if (name == j.end() || !name->is_string())
        return make_error(errc::invalid_argument, "a query needs a \"name\" string");
    q.name = name->get<std::string>();
    SLUICE_TRY(processing::check_query_name(q.name));
    const std::string where = "query \"" + q.name + "\": ";
    static const char* known[] = {"name",     "window",      "size",       "slide",     "gap",
                                  "group_by", "aggregates",  "filter",     "watermark_delay",
                                  "memory_mb", "window_size_ms", "watermark_delay_ms"};
    for (const auto& [k, v] : j.items()) {
        bool ok = false;
        for (const char* n : known) ok |= k == n;
        if (!ok)
            return bad(where, "unknown key \"" + k +
                                  "\" (known: name, window, size, slide, gap, group_by, "
                                  "aggregates, filter, watermark_delay, memory_mb)");
    }
    std::string kind = "tumbling";
    if (auto w = j.find("window"); w != j.end()) {
        if (!w->is_string())
            return bad(where, "window must be \"tumbling\", \"hopping\" or \"session\"");
        kind = w->get<std::string>();
    }
    if (kind == "tumbling") q.window.kind = processing::window_kind::tumbling;
    else if (kind == "hopping" || kind == "sliding") q.window.kind = processing::window_kind::hopping;
    else if (kind == "session") q.window.kind = processing::window_kind::session;
    else return bad(where, "window must be \"tumbling\", \"hopping\" or \"session\", not \"" + kind + "\"");
    q.window.size_ms = 0;
    if (j.contains("window_size_ms")) {
        auto d = duration(j["window_size_ms"], where + "window_size_ms ");
        if (!d) return std::move(d).err();
        q.window.size_ms = *d;
    }
    if (j.contains("size")) {
        auto d = duration(j["size"], where + "size ");
        if (!d) return std::move(d).err();
        q.window.size_ms = *d;
    }
    if (j.contains("slide")) {
        auto d = duration(j["slide"], where + "slide ");
        if (!d) return std::move(d).err();
        q.window.slide_ms = *d;
    }
    if (j.contains("gap")) {
        auto d = duration(j["gap"], where + "gap ");
        if (!d) return std::move(d).err();
        q.window.gap_ms = *d;
    }
    if (q.window.kind != processing::window_kind::session && q.window.size_ms == 0)
        return bad(where, "needs a window size (\"size\": \"1m\")");
    if (q.window.kind == processing::window_kind::session && q.window.gap_ms == 0)
        return bad(where, "a session window needs a gap (\"gap\": \"30s\")");
    if (q.window.kind == processing::window_kind::hopping && q.window.slide_ms == 0)
        return bad(where, "a hopping window needs a slide (\"slide\": \"10s\")");
    if (j.contains("group_by")) {
        const json& g = j["group_by"];
        if (g.is_string()) {
            q.group_by.push_back(g.get<std::string>());
        } else if (g.is_array()) {
            for (const auto& f : g) {
                if (!f.is_string()) return bad(where, "group_by must list field names");
                q.group_by.push_back(f.get<std::string>());
            }
        } else {
            return bad(where, "group_by must be a field name or a list of them");
        }
    }
    if (j.contains("aggregates")) {
        const json& a = j["aggregates"];
        std::vector<std::string> items;
        if (a.is_string()) items.push_back(a.get<std::string>());
        else if (a.is_array())
            for (const auto& e : a) {
                if (!e.is_string()) return bad(where, "aggregates must list strings like \"count\"");
                items.push_back(e.get<std::string>());
            }
        else return bad(where, "aggregates must be a string or a list of strings");
        for (const auto& s : items) {
            auto r = processing::parse_aggregate(s);
            if (!r) return bad(where, r.err().message);
            q.aggregates.push_back(*r);
        }
    } else {
        q.aggregates.push_back(processing::aggregate_def{});
    }
    if (j.contains("filter") && !j["filter"].is_null()) {
        if (!j["filter"].is_string()) return bad(where, "filter must be a string FIELD=VALUE");
        auto f = processing::parse_filter(j["filter"].get<std::string>());
        if (!f) return bad(where, f.err().message);
        q.filter = *f;
    }
    for (const char* key : {"watermark_delay_ms", "watermark_delay"}) {
        if (!j.contains(key)) continue;
        auto d = duration(j[key], where + key + " ");
        if (!d) return std::move(d).err();
        q.watermark_delay_ms = *d;
    }
    if (j.contains("memory_mb")) {
        if (!j["memory_mb"].is_number_integer() || j["memory_mb"].get<int64_t>() <= 0)
            return bad(where, "memory_mb must be a positive integer");
        q.memory_bytes = uint64_t(j["memory_mb"].get<int64_t>()) << 20;
    }
    SLUICE_TRY(processing::validate(q));
    return q;
}

json query_to_json(const query_def& q) {
    json j{{"name", q.name}, {"window", processing::window_kind_name(q.window.kind)}};
    switch (q.window.kind) {
    case processing::window_kind::tumbling:
        j["size"] = processing::format_duration(q.window.size_ms);
        break;
    case processing::window_kind::hopping:
        j["size"] = processing::format_duration(q.window.size_ms);
        j["slide"] = processing::format_duration(q.window.slide_ms);
        break;
    case processing::window_kind::session:
        j["gap"] = processing::format_duration(q.window.gap_ms);
        break;
    }
    j["group_by"] = q.group_by;
    json aggs = json::array();
    for (const auto& a : q.aggregates) aggs.push_back(processing::format_aggregate(a));
    j["aggregates"] = aggs;
    if (q.filter) j["filter"] = processing::format_filter(*q.filter);
    j["watermark_delay"] = processing::format_duration(q.watermark_delay_ms);
    j["memory_mb"] = q.memory_bytes >> 20;
    return j;
}

} // namespace sluice::control
