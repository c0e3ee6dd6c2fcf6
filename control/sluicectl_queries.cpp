// sluicectl's continuous-query commands: `queries list|add|remove`, `windows` (closed
// rows, open ones, --follow) and `replay` (start, wait, status). Shared pieces:
// sluicectl_cli.h.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/time_format.h"
#include "control/sluicectl_cli.h"

namespace sluicectl {

namespace {

std::string cell_text(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return "-";
    if (v.is_number_float()) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
        return buf;
    }
    return v.dump();
}

// Columns padded to their widest cell, a header row first.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> width(header.size());
    for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
    for (const auto& r : rows)
        for (size_t c = 0; c < r.size() && c < width.size(); ++c) width[c] = std::max(width[c], r[c].size());
    std::string out;
    auto line = [&](const std::vector<std::string>& r) {
        for (size_t c = 0; c < width.size(); ++c) {
            std::string v = c < r.size() ? r[c] : "";
            out += v;
            if (c + 1 < width.size()) out += std::string(width[c] - v.size() + 2, ' ');
        }
        out += "\n";
    };
    line(header);
    for (const auto& r : rows) line(r);
    return out;
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

} // namespace

void add_queries(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand("queries", "list, add or remove continuous queries at run time");
    sub->require_subcommand(1, 1);

    CLI::App* list = sub->add_subcommand("list", "the running queries with their counters");
    auto list_json = std::make_shared<bool>(false);
    list->add_flag("--json", *list_json, "print the reply as JSON");
    list->callback([&ctx, list_json] {
        json reply;
        if (!call(ctx, {{"cmd", "queries"}, {"action", "list"}}, reply)) return;
        if (*list_json) {
            print(reply.dump(2) + "\n");
            return;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& q : reply.value("queries", json::array())) {
            std::string window = q.value("window", std::string());
            if (q.contains("size")) window += " " + q["size"].get<std::string>();
            if (q.contains("slide")) window += "/" + q["slide"].get<std::string>();
            if (q.contains("gap")) window += " gap " + q["gap"].get<std::string>();
            std::string group, aggs;
            for (const auto& g : q.value("group_by", json::array())) group += (group.empty() ? "" : ",") + cell_text(g);
            for (const auto& a : q.value("aggregates", json::array())) aggs += (aggs.empty() ? "" : ", ") + cell_text(a);
            const json& st = q.value("stats", json::object());
            rows.push_back({cell_text(q.value("name", json())), window, group.empty() ? "-" : group, aggs,
                            q.contains("filter") ? cell_text(q["filter"]) : "-",
                            cell_text(q.value("watermark_delay", json())), cell_text(st.value("events", json())),
                            cell_text(st.value("late_events", json())), cell_text(st.value("rows_emitted", json()))});
        }
        print(render_table({"name", "window", "group_by", "aggregates", "filter", "delay", "events", "late",
                            "rows"},
                           rows));
    });

    CLI::App* add = sub->add_subcommand("add", "start a continuous query (its table is named after it)");
    auto q = std::make_shared<json>(json::object());
    auto name = std::make_shared<std::string>();
    auto window = std::make_shared<std::string>("tumbling");
    auto size = std::make_shared<std::string>(), slide = std::make_shared<std::string>(),
         gap = std::make_shared<std::string>(), delay = std::make_shared<std::string>(),
         filter = std::make_shared<std::string>(), raw = std::make_shared<std::string>();
    auto group = std::make_shared<std::vector<std::string>>();
    auto aggs = std::make_shared<std::vector<std::string>>();
    auto memory = std::make_shared<int64_t>(0);
    add->add_option("NAME", *name, "the query's name (letters, digits, _ or -)");
    add->add_option("--window", *window, "tumbling (default), hopping or session")
        ->check(CLI::IsMember({"tumbling", "hopping", "sliding", "session"}));
    add->add_option("--size", *size, "window size, e.g. 1m (tumbling, hopping)");
    add->add_option("--slide", *slide, "slide, e.g. 10s (hopping)");
    add->add_option("--gap", *gap, "inactivity gap, e.g. 30s (session)");
    add->add_option("--group-by", *group, "fields, e.g. page,metadata.referrer")->delimiter(',');
    add->add_option("--agg", *aggs,
                    "an aggregate, repeatable: count, sum(F), min(F), max(F), mean(F), distinct(F), "
                    "quantile(F, 0.5, 0.99); default count");
    add->add_option("--filter", *filter, "FIELD=VALUE or FIELD!=VALUE");
    add->add_option("--delay", *delay, "watermark delay, e.g. 10m (default: the daemon's)");
    add->add_option("--memory-mb", *memory, "window state per worker")->check(CLI::Range(1, 65536));
    add->add_option("--json", *raw, "the whole definition as JSON instead of the options above");
    add->callback([&ctx, name, window, size, slide, gap, delay, filter, raw, group, aggs, memory] {
        json def;
        if (!raw->empty()) {
            def = json::parse(*raw, nullptr, false);
            if (!def.is_object()) {
                ctx.code = fail("--json: not a JSON object: " + *raw);
                return;
            }
        } else {
            if (name->empty()) {
                ctx.code = fail("queries add needs a NAME (or --json)");
                return;
            }
            def = {{"name", *name}, {"window", *window}};
            if (!size->empty()) def["size"] = *size;
            if (!slide->empty()) def["slide"] = *slide;
            if (!gap->empty()) def["gap"] = *gap;
            if (!group->empty()) def["group_by"] = *group;
            if (!aggs->empty()) def["aggregates"] = *aggs;
            if (!filter->empty()) def["filter"] = *filter;
            if (!delay->empty()) def["watermark_delay"] = *delay;
            if (*memory > 0) def["memory_mb"] = *memory;
        }
        json reply;
        if (!call(ctx, {{"cmd", "queries"}, {"action", "add"}, {"query", def}}, reply)) return;
        print("added " + reply["query"].value("name", std::string()) + ": " + reply["query"].dump() + "\n");
    });

    CLI::App* remove = sub->add_subcommand("remove", "stop a query (its table stays on disk)");
    auto rname = std::make_shared<std::string>();
    remove->add_option("NAME", *rname, "the query to stop")->required();
    remove->callback([&ctx, rname] {
        json reply;
        if (!call(ctx, {{"cmd", "queries"}, {"action", "remove"}, {"name", *rname}}, reply)) return;
        print("removed " + *rname + " (" + cell_text(reply.value("rows_emitted", json())) + " rows emitted)\n");
    });
}

namespace {

void print_windows(const json& reply, const std::string& format, bool header, bool open) {
    std::vector<std::string> cols;
    for (const auto& c : reply.value("columns", json::array())) cols.push_back(c.get<std::string>());
    if (open) cols.push_back("open");
    std::vector<std::pair<json, bool>> rows;
    for (const auto& r : reply.value("rows", json::array())) rows.push_back({r, false});
    for (const auto& r : reply.value("open_rows", json::array())) rows.push_back({r, true});
    std::string out;
    if (format == "json") {
        for (const auto& [r, is_open] : rows) {
            json o = json::object();
            for (size_t c = 0; c < r.size() && c < cols.size(); ++c) o[cols[c]] = r[c];
            if (open) o["open"] = is_open;
            out += o.dump() + "\n";
        }
    } else if (format == "csv") {
        if (header) {
            for (size_t c = 0; c < cols.size(); ++c) out += (c ? "," : "") + csv_field(cols[c]);
            out += "\n";
        }
        for (const auto& [r, is_open] : rows) {
            for (size_t c = 0; c < r.size(); ++c)
                out += (c ? "," : "") + csv_field(r[c].is_null() ? "" : r[c].is_string() ? r[c].get<std::string>() : r[c].dump());
            if (open) out += is_open ? ",true" : ",false";
            out += "\n";
        }
    } else {
        std::vector<std::vector<std::string>> text;
        for (const auto& [r, is_open] : rows) {
            std::vector<std::string> t;
            for (size_t c = 0; c < r.size(); ++c)
                t.push_back(c < 2 && r[c].is_number_integer() ? sluice::format_rfc3339_ms(r[c].get<int64_t>()) : cell_text(r[c]));
            if (open) t.push_back(is_open ? "open" : "closed");
            text.push_back(std::move(t));
        }
        out = header ? render_table(cols, text) : render_table(cols, text).substr(render_table(cols, {}).size());
        if (reply.value("truncated", false)) out += "(truncated: narrow --from/--to)\n";
    }
    print(out);
}

} // namespace

void add_windows(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand(
        "windows", "a query's closed windows from the store (and its open ones with --open)");
    auto query = std::make_shared<std::string>();
    auto from = std::make_shared<std::string>(), to = std::make_shared<std::string>();
    auto format = std::make_shared<std::string>("table");
    auto open = std::make_shared<bool>(false), follow = std::make_shared<bool>(false);
    auto limit = std::make_shared<int64_t>(0);
    sub->add_option("QUERY", *query, "the query (its table)")->required();
    sub->add_option("--from", *from, "windows ending at or after: epoch ms or RFC 3339");
    sub->add_option("--to", *to, "windows ending at or before: epoch ms or RFC 3339");
    sub->add_option("--format", *format, "table (default), json (one object per line) or csv")
        ->check(CLI::IsMember({"table", "json", "csv"}));
    sub->add_flag("--open", *open, "also the windows still open (a live view of partial results)");
    sub->add_flag("--follow", *follow, "keep printing windows as they close (Ctrl-C quits)");
    sub->add_option("--limit", *limit, "at most this many closed rows")->check(CLI::Range(1, 100000));
    sub->callback([&ctx, query, from, to, format, open, follow, limit] {
        auto time_arg = [](const std::string& s) -> json {
            if (s.empty()) return nullptr;
            char* end = nullptr;
            long long v = std::strtoll(s.c_str(), &end, 10);
            return *end == '\0' ? json(v) : json(s);
        };
        json req{{"cmd", "windows"}, {"query", *query}, {"from", time_arg(*from)}, {"to", time_arg(*to)},
                 {"open", *open && !*follow}};
        if (*limit > 0) req["limit"] = *limit;
        json reply;
        if (!call(ctx, req, reply)) return;
        print_windows(reply, *format, true, *open && !*follow);
        if (!*follow) return;
        // A subscriber by polling: windows ending after the last one printed.
        struct sigaction sa {};
        sa.sa_handler = on_interrupt;
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        int64_t last_end = INT64_MIN;
        for (const auto& r : reply.value("rows", json::array())) last_end = std::max(last_end, r[1].get<int64_t>());
        while (!g_interrupted) {
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
            json next = req;
            if (last_end != INT64_MIN) next["from"] = last_end + 1;
            if (!call(ctx, next, reply)) return;
            for (const auto& r : reply.value("rows", json::array())) last_end = std::max(last_end, r[1].get<int64_t>());
            // The reply is newest first; a follow stream reads in the order windows close.
            if (reply.contains("rows") && reply["rows"].is_array())
                std::reverse(reply["rows"].begin(), reply["rows"].end());
            if (!reply.value("rows", json::array()).empty()) print_windows(reply, *format, false, false);
        }
    });
}

void add_replay(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand(
        "replay", "re-run the stored events of a time range through a query to rebuild its windows");
    auto query = std::make_shared<std::string>();
    auto from = std::make_shared<std::string>(), to = std::make_shared<std::string>();
    auto no_wait = std::make_shared<bool>(false);
    sub->add_option("QUERY", *query, "the (running) query")->required();
    sub->add_option("--from", *from, "range start: epoch ms or RFC 3339")->required();
    sub->add_option("--to", *to, "range end (exclusive): epoch ms or RFC 3339")->required();
    sub->add_flag("--no-wait", *no_wait, "start it and print its id; `replay-status ID` follows it");
    sub->callback([&ctx, query, from, to, no_wait] {
        auto time_arg = [](const std::string& s) -> json {
            char* end = nullptr;
            long long v = std::strtoll(s.c_str(), &end, 10);
            return *end == '\0' && !s.empty() ? json(v) : json(s);
        };
        json reply;
        if (!call(ctx, {{"cmd", "replay"}, {"query", *query}, {"from", time_arg(*from)}, {"to", time_arg(*to)}},
                  reply))
            return;
        json job = reply["replay"];
        if (*no_wait) {
            print("replay " + cell_text(job["id"]) + " started\n");
            return;
        }
        while (job.value("state", std::string()) == "running") {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            if (!call(ctx, {{"cmd", "replay"}, {"action", "status"}, {"id", job["id"]}}, reply)) return;
            job = reply["replay"];
        }
        if (job.value("state", std::string()) != "done") {
            ctx.code = fail("replay " + cell_text(job["id"]) + " failed: " + cell_text(job.value("error", json())));
            return;
        }
        print("replay " + cell_text(job["id"]) + " of " + *query + ": " + cell_text(job["events_read"]) +
              " events read, " + cell_text(job["rows_written"]) + " windows written (revision " +
              cell_text(job["id"]) + ")\n");
    });
    CLI::App* status = app.add_subcommand("replay-status", "a replay's progress (or every replay's)");
    auto id = std::make_shared<int64_t>(0);
    status->add_option("ID", *id, "the replay id (default: list all)");
    status->callback([&ctx, id] {
        json reply;
        json req = *id > 0 ? json{{"cmd", "replay"}, {"action", "status"}, {"id", *id}}
                           : json{{"cmd", "replay"}, {"action", "list"}};
        if (!call(ctx, req, reply)) return;
        print(reply.dump(2) + "\n");
    });
}

} // namespace sluicectl
