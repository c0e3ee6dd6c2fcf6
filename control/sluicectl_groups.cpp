// sluicectl groups: the Kafka consumer groups sluiced coordinates (docs/KAFKA.md "Consumer
// groups"): state, generation, members and their assignments, and per partition the
// committed offset, the high watermark and the lag between them.
#include <cstdio>
#include <memory>
#include <string>

#include "control/sluicectl_cli.h"

namespace sluicectl {
namespace {

std::string field(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return "-";
    return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string render_groups(const json& groups) {
    if (!groups.is_array() || groups.empty()) return "no consumer groups\n";
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "%-28s %-20s %10s %7s %10s\n", "GROUP", "STATE", "GENERATION",
                  "MEMBERS", "LAG");
    out += line;
    for (const auto& g : groups) {
        std::snprintf(line, sizeof line, "%-28s %-20s %10s %7zu %10s\n", field(g, "group").c_str(),
                      field(g, "state").c_str(), field(g, "generation").c_str(),
                      g.value("members", json::array()).size(), field(g, "lag").c_str());
        out += line;
    }
    for (const auto& g : groups) {
        out += "\ngroup " + field(g, "group") + " (" + field(g, "state") + ", generation " +
               field(g, "generation");
        if (!g.value("protocol", std::string()).empty())
            out += ", " + field(g, "protocol_type") + "/" + field(g, "protocol") + ", leader " +
                   field(g, "leader");
        out += ")\n";
        for (const auto& m : g.value("members", json::array())) {
            std::string assigned;
            for (const auto& a : m.value("assignment", json::array()))
                assigned +=
                    (assigned.empty() ? "" : " ") + field(a, "topic") + field(a, "partitions");
            out += "  member " + field(m, "member_id") + " (client " + field(m, "client_id") +
                   ", heard " + field(m, "since_heard_ms") +
                   " ms ago): " + (assigned.empty() ? "no partitions" : assigned) + "\n";
        }
        const json parts = g.value("partitions", json::array());
        if (parts.empty()) continue;
        std::snprintf(line, sizeof line, "  %-24s %9s %12s %14s %10s  %s\n", "TOPIC", "PARTITION",
                      "COMMITTED", "HIGH-WATERMARK", "LAG", "MEMBER");
        out += line;
        for (const auto& p : parts) {
            std::snprintf(
                line, sizeof line, "  %-24s %9s %12s %14s %10s  %s\n", field(p, "topic").c_str(),
                field(p, "partition").c_str(), field(p, "committed").c_str(),
                field(p, "high_watermark").c_str(), field(p, "lag").c_str(),
                p.value("member", std::string()).empty() ? "-" : field(p, "member").c_str());
            out += line;
        }
    }
    return out;
}

} // namespace

void add_groups(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand(
        "groups", "Kafka consumer groups: state, members, assignments, committed offsets, lag");
    auto as_json = std::make_shared<bool>(false);
    sub->add_flag("--json", *as_json, "print the reply as JSON");
    sub->callback([&ctx, as_json] {
        json reply;
        if (!call(ctx, {{"cmd", "groups"}}, reply)) return;
        print(*as_json ? reply.dump(2) + "\n" : render_groups(reply.value("groups", json())));
    });
}

} // namespace sluicectl
