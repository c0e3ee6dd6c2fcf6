// sluicectl: the command-line client of sluiced's control socket.
// Exit codes: 0 ok, 1 refused or failed (one line on stderr says why), 2 usage.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "control/protocol.h"

namespace {

using sluice::control::json;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

constexpr const char* usage_text =
    "usage: sluicectl [--socket PATH] [--timeout-ms MS] COMMAND\n"
    "\n"
    "commands:\n"
    "  status            daemon state, version, uptime\n"
    "  stats [--json]    counters: totals, per core, ring occupancy, watermark\n"
    "  flush             write open batches to disk and fsync\n"
    "  retention [TABLE|'*' [--max-age-ms MS] [--max-bytes N] | TABLE --clear]\n"
    "                    show retention per table, or set a table's (or the default's)\n"
    "  shutdown          graceful stop: stop RX, drain rings, close windows, flush\n"
    "  call JSON         send a raw request, e.g. call '{\"cmd\":\"status\"}'\n"
    "\n"
    "The socket is --socket, else $SLUICE_SOCKET, else /run/sluice/sluiced.sock.\n"
    "Exit codes: 0 ok, 1 refused or failed, 2 usage.\n";

int usage_error(const std::string& why) {
    std::fprintf(stderr, "sluicectl: %s\n%s", why.c_str(), usage_text);
    return exit_usage;
}

int fail(const std::string& why) {
    std::fprintf(stderr, "sluicectl: %s\n", why.c_str());
    return exit_failed;
}

struct options {
    std::string socket_path;
    int timeout_ms = sluice::control::request_timeout_ms_default;
    std::vector<std::string> args; // COMMAND and its arguments
};

// Returns an error message, empty on success.
std::string parse_options(int argc, char** argv, options& opt) {
    const char* env = std::getenv("SLUICE_SOCKET");
    opt.socket_path = env != nullptr && *env != '\0'
                          ? std::string(env)
                          : std::string(sluice::control::default_socket_path);
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&](std::string_view name, std::string& out) -> bool {
            if (a == name) {
                if (i + 1 >= argc) return false;
                out = argv[++i];
                return true;
            }
            out = std::string(a.substr(name.size() + 1));
            return true;
        };
        if (a == "--socket" || a.rfind("--socket=", 0) == 0) {
            if (!value("--socket", opt.socket_path) || opt.socket_path.empty())
                return "--socket needs a path";
        } else if (a == "--timeout-ms" || a.rfind("--timeout-ms=", 0) == 0) {
            std::string v;
            if (!value("--timeout-ms", v)) return "--timeout-ms needs a number";
            char* end = nullptr;
            long ms = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || ms <= 0 || ms > 3'600'000)
                return "--timeout-ms must be 1 to 3600000";
            opt.timeout_ms = int(ms);
        } else if (a == "-h" || a == "--help") {
            return "help";
        } else if (opt.args.empty() && a.rfind("-", 0) == 0) {
            return "unknown option " + std::string(a);
        } else {
            opt.args.emplace_back(a);
        }
    }
    if (opt.args.empty()) return "no command given";
    return {};
}

// Sends the request; prints the reason and returns false when there is no ok reply.
bool call(const options& opt, const json& req, json& reply, int& code) {
    auto r = sluice::control::request(opt.socket_path, req, opt.timeout_ms);
    if (!r.ok()) {
        code = fail(r.err().message);
        return false;
    }
    reply = std::move(r.value());
    if (reply.value("ok", false) != true) {
        auto err = reply.find("error");
        code = fail(err != reply.end() && err->is_string() ? err->get<std::string>()
                                                           : "request failed: " + reply.dump());
        return false;
    }
    return true;
}

// retention [TABLE [--max-age-ms MS] [--max-bytes N] | TABLE --clear]
int run_retention(const options& opt) {
    json req{{"cmd", "retention"}};
    const auto& a = opt.args;
    if (a.size() > 1) {
        if (a[1].rfind("-", 0) == 0) return usage_error("retention: the table comes first");
        req["table"] = a[1];
        for (size_t i = 2; i < a.size(); ++i) {
            if (a[i] == "--clear") {
                req["clear"] = true;
                continue;
            }
            if (a[i] != "--max-age-ms" && a[i] != "--max-bytes")
                return usage_error("retention: unknown argument " + a[i]);
            if (i + 1 >= a.size()) return usage_error("retention: " + a[i] + " needs a number");
            char* end = nullptr;
            errno = 0;
            long long v = std::strtoll(a[i + 1].c_str(), &end, 10);
            if (errno != 0 || *end != '\0' || a[i + 1].empty() || v < 0)
                return usage_error("retention: " + a[i] + " needs a number >= 0 (0: no limit)");
            req[a[i] == "--max-age-ms" ? "max_age_ms" : "max_bytes"] = v;
            ++i;
        }
        if (!req.contains("clear") && !req.contains("max_age_ms") && !req.contains("max_bytes"))
            return usage_error("retention: give --max-age-ms and/or --max-bytes, or --clear");
    }
    json reply;
    int code = exit_ok;
    if (!call(opt, req, reply, code)) return code;
    std::printf("default: max_age_ms %lld, max_bytes %llu (0 = no limit)\n",
                static_cast<long long>(reply["default"].value("max_age_ms", 0ll)),
                static_cast<unsigned long long>(reply["default"].value("max_bytes", 0ull)));
    std::printf("%-24s %-7s %14s %14s %9s %14s %12s %9s\n", "table", "policy", "max_age_ms",
                "max_bytes", "segments", "bytes", "rows", "deleted");
    for (const auto& t : reply.value("tables", json::array()))
        std::printf("%-24s %-7s %14lld %14llu %9llu %14llu %12llu %9llu\n",
                    t.value("table", std::string()).c_str(),
                    t.value("policy", std::string()).c_str(),
                    static_cast<long long>(t.value("max_age_ms", 0ll)),
                    static_cast<unsigned long long>(t.value("max_bytes", 0ull)),
                    static_cast<unsigned long long>(t.value("segments", 0ull)),
                    static_cast<unsigned long long>(t.value("bytes", 0ull)),
                    static_cast<unsigned long long>(t.value("rows", 0ull)),
                    static_cast<unsigned long long>(t.value("segments_deleted", 0ull)));
    return exit_ok;
}

int run(const options& opt) {
    const std::string& cmd = opt.args[0];
    const size_t extra = opt.args.size() - 1;
    json reply;
    int code = exit_ok;

    if (cmd == "call") {
        if (extra != 1) return usage_error("call needs exactly one JSON request argument");
        json req = json::parse(opt.args[1], nullptr, false);
        if (req.is_discarded() || !req.is_object())
            return usage_error("call: not a JSON object: " + opt.args[1]);
        auto r = sluice::control::request(opt.socket_path, req, opt.timeout_ms);
        if (!r.ok()) return fail(r.err().message);
        // Scripts get the reply verbatim on stdout, and the exit code says ok or not.
        std::printf("%s\n", r.value().dump().c_str());
        if (r.value().value("ok", false) == true) return exit_ok;
        auto err = r.value().find("error");
        return fail(err != r.value().end() && err->is_string() ? err->get<std::string>()
                                                               : "request failed");
    }
    if (cmd == "stats") {
        bool as_json = false;
        for (size_t i = 1; i < opt.args.size(); ++i) {
            if (opt.args[i] != "--json")
                return usage_error("stats: unknown argument " + opt.args[i]);
            as_json = true;
        }
        if (!call(opt, {{"cmd", "stats"}}, reply, code)) return code;
        std::string text = as_json ? reply.dump(2) + "\n" : sluice::control::render_stats(reply);
        std::fputs(text.c_str(), stdout);
        return exit_ok;
    }
    if (cmd == "retention") return run_retention(opt);
    if (cmd == "status" || cmd == "flush" || cmd == "shutdown") {
        if (extra != 0) return usage_error(cmd + " takes no arguments");
        if (!call(opt, {{"cmd", cmd}}, reply, code)) return code;
        std::string text = sluice::control::render_fields(reply);
        std::fputs(text.empty() ? "ok\n" : text.c_str(), stdout);
        return exit_ok;
    }
    return usage_error("unknown command " + cmd);
}

} // namespace

int main(int argc, char** argv) {
    options opt;
    std::string err = parse_options(argc, argv, opt);
    if (err == "help") {
        std::fputs(usage_text, stdout);
        return exit_ok;
    }
    if (!err.empty()) return usage_error(err);
    return run(opt);
}
