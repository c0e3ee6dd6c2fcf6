// sluicectl's renderings of replies: `stats` as text, the `watch` frame, and any other
// reply as `key: value` lines (control/protocol.h). Text helpers: control/render_text.h.
#include "control/protocol.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "base/time_format.h"
#include "control/render_text.h"

namespace sluice::control {

using namespace text;

namespace {

// Rows of the latency table: since start, and recent when the reply has it.
std::vector<std::vector<std::string>> latency_rows(const json& lat) {
    std::vector<std::vector<std::string>> rows{
        {"", "count", "p50", "p99", "p99.9", "max", "mean"}};
    auto add = [&](const std::string& name, const json* s) {
        if (s == nullptr) return;
        if (number_or(*s, "count", 0) == 0) {
            rows.push_back({name, "0", "-", "-", "-", "-", "-"});
            return;
        }
        rows.push_back({name, format_si(number_or(*s, "count", 0)),
                        format_us(number_or(*s, "p50_us", 0)), format_us(number_or(*s, "p99_us", 0)),
                        format_us(number_or(*s, "p999_us", 0)), format_us(number_or(*s, "max_us", 0)),
                        format_us(number_or(*s, "mean_us", 0))});
    };
    const json* recent = find_object(lat, "recent");
    std::string window =
        recent ? " (last " + format_number(number_or(*recent, "interval_s", 0)) + " s)" : "";
    if (recent) {
        add("window-visible" + window, find_object(*recent, "window_visible"));
        add("durable" + window, find_object(*recent, "durable"));
    }
    add("window-visible (since start)", find_object(lat, "window_visible"));
    add("durable (since start)", find_object(lat, "durable"));
    return rows;
}

// Rows of the Kafka produce-ack latency table: per acks mode, recent and since start.
std::vector<std::vector<std::string>> ack_latency_rows(const json& ack) {
    std::vector<std::vector<std::string>> rows{{"", "count", "p50", "p99", "p99.9", "max", "mean"}};
    const json* recent = find_object(ack, "recent");
    std::string window =
        recent ? " (last " + format_number(number_or(*recent, "interval_s", 0)) + " s)" : "";
    for (const char* mode : {"0", "1", "all"}) {
        // latency_rows() formats one stage; reuse it per mode and keep its data rows.
        json one{{"window_visible", ack.value(mode, json::object())}};
        if (recent)
            one["recent"] = {{"interval_s", number_or(*recent, "interval_s", 0)},
                             {"window_visible", recent->value(mode, json::object())}};
        auto r = latency_rows(one);
        for (size_t i = 1; i < r.size(); ++i) {
            r[i][0] = std::string("acks ") + mode + (i + 1 < r.size() ? window : " (since start)");
            rows.push_back(std::move(r[i]));
        }
    }
    return rows;
}

// One line for `watch`: connections, request/record/error rates and ack p99 per acks mode
// (over the recent interval when the reply has it).
std::string kafka_watch_line(const json& k) {
    const json rates = k.value("rates", json::object());
    std::string out = "kafka: " + format_si(number_or(k, "connections_open", 0)) + " connected, " +
                      format_si(number_or(rates, "requests_per_s", 0)) + " requests/s, " +
                      format_si(number_or(rates, "records_per_s", 0)) + " records/s, " +
                      format_si(number_or(rates, "errors_per_s", 0)) + " errors/s";
    if (const json* ack = find_object(k, "ack_latency")) {
        const json* recent = find_object(*ack, "recent");
        out +=
            std::string(", ack p99") +
            (recent ? " (last " + format_number(number_or(*recent, "interval_s", 0)) + " s)" : "") +
            ":";
        for (const char* mode : {"0", "1", "all"}) {
            const json* s = find_object(recent ? *recent : *ack, mode);
            out += std::string(" ") + mode + " ";
            out += s && number_or(*s, "count", 0) > 0 ? format_us(number_or(*s, "p99_us", 0)) : "-";
        }
    }
    return out + "\n";
}

std::string headline(const json& reply) {
    std::string out;
    if (const json* up = find_number(reply, "uptime_s"))
        out += "uptime     " + format_scalar(*up) + " s\n";
    if (const json* wm = find_number(reply, "watermark_ms")) {
        out += "watermark  " + format_time_ms(wm->get<int64_t>());
        std::string notes;
        if (const json* d = find_number(reply, "watermark_delay_ms"))
            notes += "delay " + format_number(d->get<double>() / 1000.0) + " s";
        if (const json* lag = find_object(reply, "lag"))
            if (const json* l = find_number(*lag, "watermark_lag_ms"))
                notes += std::string(notes.empty() ? "" : ", ") +
                         format_duration_s(l->get<double>() / 1000.0) + " behind the wall clock";
        if (!notes.empty()) out += "  (" + notes + ")";
        out += "\n";
    }
    return out;
}

// Worker lag: the slots waiting in the rings that feed each worker.
std::map<std::string, double> worker_lag(const json& reply) {
    std::map<std::string, double> lag;
    auto rings = reply.find("rings");
    if (rings == reply.end() || !rings->is_array()) return lag;
    for (const auto& r : *rings)
        if (r.is_object() && r.contains("worker") && find_number(r, "occupancy"))
            lag[format_scalar(r["worker"])] += r["occupancy"].get<double>();
    return lag;
}

} // namespace

std::string render_stats(const json& reply) {
    if (!reply.is_object()) return dump(reply) + "\n";
    std::string out = headline(reply);
    if (const json* totals = find_object(reply, "totals")) {
        out += "\ntotals\n";
        render_object(out, *totals, 2);
    }
    if (const json* rates = find_object(reply, "rates")) {
        json r = *rates;
        r.erase("interval_s");
        out += "\nrates (per second, over the last " +
               format_number(number_or(*rates, "interval_s", 0)) + " s)\n";
        render_object(out, r, 2);
    }
    if (const json* lat = find_object(reply, "latency")) {
        out += "\nlatency from RX (per event)\n";
        out += text_table(latency_rows(*lat));
    }
    auto cores = reply.find("per_core");
    if (cores != reply.end() && cores->is_array() && !cores->empty()) {
        // One table per role, so each shows only its own counters.
        std::vector<std::string> roles;
        for (const auto& c : *cores) {
            std::string role = c.is_object() && c.contains("role") ? format_scalar(c["role"]) : "";
            if (std::find(roles.begin(), roles.end(), role) == roles.end()) roles.push_back(role);
        }
        for (const auto& role : roles) {
            json rows = json::array();
            for (const auto& c : *cores) {
                std::string r = c.is_object() && c.contains("role") ? format_scalar(c["role"]) : "";
                if (r == role) rows.push_back(c);
            }
            out += "\nper core" + (role.empty() ? std::string() : " (" + role + ")") + "\n";
            render_table(out, rows, {}, {});
        }
    }
    auto rings = reply.find("rings");
    if (rings != reply.end() && rings->is_array() && !rings->empty()) {
        // Ring occupancy is the consumer's lag; the fill ratio makes it comparable.
        std::vector<std::vector<std::string>> fill;
        for (const auto& r : *rings) {
            std::string cell = "-";
            if (r.is_object() && r.contains("occupancy") && r.contains("capacity") &&
                r["occupancy"].is_number() && r["capacity"].is_number() &&
                r["capacity"].get<double>() > 0) {
                double pct = 100.0 * r["occupancy"].get<double>() / r["capacity"].get<double>();
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.1f%%", pct);
                cell = buf;
            }
            fill.push_back({cell});
        }
        out += "\nrings (occupancy = consumer lag)\n";
        render_table(out, *rings, {"fill"}, fill);
    }
    for (const char* section : {"lag", "control", "kafka"}) {
        if (const json* obj = find_object(reply, section)) {
            out += std::string("\n") + section + "\n";
            json rest = *obj;
            rest.erase("ack_latency"); // a table below, not its buckets
            render_object(out, rest, 2);
            if (const json* ack = find_object(*obj, "ack_latency")) {
                out += "\nkafka produce-ack latency (from the request's arrival)\n";
                out += text_table(ack_latency_rows(*ack));
            }
        }
    }
    auto storage = reply.find("storage");
    if (storage != reply.end() && storage->is_object()) {
        // What is durable per table, the writers' state and retention.
        out += "\nstorage  " + format_scalar(storage->value("state", json("?")));
        if (storage->contains("error")) out += "  " + format_scalar((*storage)["error"]);
        out += "\n";
        auto tables = storage->find("tables");
        if (tables != storage->end() && tables->is_array() && !tables->empty())
            render_table(out, *tables, {}, {});
    }
    std::string other;
    for (auto it = reply.begin(); it != reply.end(); ++it) {
        static const char* const known[] = {
            "ok",     "v",     "uptime_s", "watermark_ms", "watermark_delay_ms", "totals",
            "rates",  "latency", "per_core", "rings",       "lag",                "control",
            "version", "storage",  "kafka"};
        if (std::find(std::begin(known), std::end(known), it.key()) != std::end(known)) continue;
        flatten(other, it.value(), "  " + it.key());
    }
    if (!other.empty()) out += "\nother\n" + other;
    return out;
}

std::string render_watch(const json& reply, int64_t now_ms) {
    if (!reply.is_object()) return dump(reply) + "\n";
    std::string out = "sluiced";
    if (reply.contains("version")) out += " " + format_scalar(reply["version"]);
    if (const json* up = find_number(reply, "uptime_s"))
        out += "   up " + format_duration_s(up->get<double>());
    out += "   " + format_time_ms(now_ms);
    const json rates = reply.value("rates", json::object());
    out += "   rates over " + format_number(number_or(rates, "interval_s", 0)) + " s\n";
    const json lag = reply.value("lag", json::object());
    if (const json* wm = find_number(reply, "watermark_ms")) {
        out += "watermark " + format_time_ms(wm->get<int64_t>());
        if (const json* l = find_number(lag, "watermark_lag_ms"))
            out += ", " + format_duration_s(l->get<double>() / 1000) + " behind";
        out += "   ring lag " + format_si(number_or(lag, "ring_occupancy_total", 0)) + " slots (max " +
               format_si(number_or(lag, "ring_occupancy_max", 0)) + ")\n";
    }
    out += "\n";
    std::vector<std::vector<std::string>> flow{{"per second", "received", "accepted", "duplicates",
                                                "late", "dead letters", "rx bytes", "disk bytes",
                                                "rx dropped"}};
    flow.push_back({"all cores", format_si(number_or(rates, "events_received_per_s", 0)),
                    format_si(number_or(rates, "events_accepted_per_s", 0)),
                    format_si(number_or(rates, "duplicates_per_s", 0)),
                    format_si(number_or(rates, "late_events_per_s", 0)),
                    format_si(number_or(rates, "dead_letters_per_s", 0)),
                    format_si(number_or(rates, "rx_bytes_per_s", 0), "B"),
                    format_si(number_or(rates, "bytes_written_per_s", 0), "B"),
                    format_si(number_or(rates, "rx_dropped_per_s", 0))});
    out += text_table(flow, 0);
    std::string reasons;
    if (const json* by = find_object(rates, "dead_letters_by_reason_per_s"))
        for (auto it = by->begin(); it != by->end(); ++it)
            if (it->is_number() && it->get<double>() > 0)
                reasons += "  " + it.key() + " " + format_si(it->get<double>());
    out += "dead letters/s:" + (reasons.empty() ? std::string("  none") : reasons) + "\n\n";
    if (const json* lat = find_object(reply, "latency")) {
        auto rows = latency_rows(*lat);
        rows[0][0] = "latency from RX";
        out += text_table(rows, 0) + "\n";
    }
    std::vector<std::vector<std::string>> cores{{"lcore", "role", "events/s", "bytes/s", "ring lag"}};
    std::map<std::string, double> lag_by_worker = worker_lag(reply);
    auto pc = reply.find("per_core");
    if (pc != reply.end() && pc->is_array())
        for (const auto& c : *pc) {
            if (!c.is_object()) continue;
            std::string role = c.contains("role") ? format_scalar(c["role"]) : "-";
            std::string ring = "-";
            if (role == "worker" && c.contains("worker"))
                ring = format_si(lag_by_worker[format_scalar(c["worker"])]);
            cores.push_back({c.contains("lcore") ? format_scalar(c["lcore"]) : "-", role,
                             format_si(number_or(c, "events_per_s", 0)),
                             format_si(number_or(c, "bytes_per_s", 0), "B"), ring});
        }
    out += text_table(cores, 0);
    if (const json* ctl = find_object(reply, "control"))
        out += "\ncontrol: " + format_si(number_or(*ctl, "requests", 0)) + " requests, " +
               format_si(number_or(*ctl, "refused_peers", 0)) + " peers refused, " +
               format_si(number_or(*ctl, "rate_limited", 0)) + " rate limited, " +
               format_si(number_or(*ctl, "connections_open", 0)) + " connected\n";
    if (const json* k = find_object(reply, "kafka")) out += kafka_watch_line(*k);
    return out;
}

std::string render_fields(const json& reply) {
    if (!reply.is_object()) return dump(reply) + "\n";
    json rest = reply;
    rest.erase("ok");
    rest.erase("v");
    std::string out;
    flatten(out, rest, "");
    return out;
}

} // namespace sluice::control
