// sluicectl: the command-line client of sluiced's control socket.
// Exit codes: 0 ok, 1 refused or failed (one line on stderr says why), 2 usage.
//
// Each subcommand is one add_*() function: it declares the subcommand and its options
// with CLI11 and sets what runs it. Adding a command is adding one such function and
// one line in main().
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "base/clock.h"
#include "base/time_format.h"
#include "control/protocol.h"
#include "control/sluicectl_cli.h"
#include "control/sluicectl_export.h"

namespace sluicectl {

int fail(const std::string& why) {
    std::fprintf(stderr, "sluicectl: %s\n", why.c_str());
    return exit_failed;
}

// Sends the request; on anything but an ok reply prints the reason and returns false.
bool call(context& ctx, const json& req, json& reply) {
    auto r = sluice::control::request(ctx.socket_path, req, ctx.timeout_ms);
    if (!r.ok()) {
        ctx.code = fail(r.err().message);
        return false;
    }
    reply = std::move(r.value());
    if (reply.value("ok", false) != true) {
        auto err = reply.find("error");
        ctx.code = fail(err != reply.end() && err->is_string() ? err->get<std::string>()
                                                               : "request failed: " + reply.dump());
        return false;
    }
    return true;
}

void print(const std::string& text) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
}

namespace {

// status, flush, shutdown, reload: no arguments, the reply's fields as `key: value`.
void add_simple(CLI::App& app, context& ctx, const char* name, const char* help) {
    CLI::App* sub = app.add_subcommand(name, help);
    sub->callback([&ctx, name] {
        json reply;
        if (!call(ctx, {{"cmd", name}}, reply)) return;
        std::string text = sluice::control::render_fields(reply);
        print(text.empty() ? "ok\n" : text);
    });
}

void add_stats(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand(
        "stats", "counters, rates, latency percentiles, lag: totals and per core");
    auto as_json = std::make_shared<bool>(false);
    sub->add_flag("--json", *as_json, "print the reply as JSON");
    sub->callback([&ctx, as_json] {
        json reply;
        if (!call(ctx, {{"cmd", "stats"}}, reply)) return;
        print(*as_json ? reply.dump(2) + "\n" : sluice::control::render_stats(reply));
    });
}

} // namespace

std::atomic<bool> g_interrupted{false};
void on_interrupt(int) { g_interrupted = true; }

namespace {

void add_watch(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand(
        "watch", "live view of rates, latency and lag, refreshed like top (Ctrl-C quits)");
    auto interval_s = std::make_shared<double>(1.0);
    auto count = std::make_shared<int>(0);
    sub->add_option("-n,--interval", *interval_s, "seconds between refreshes (default 1)")
        ->check(CLI::Range(0.1, 3600.0));
    sub->add_option("-c,--count", *count, "stop after this many refreshes (default: never)")
        ->check(CLI::Range(0, 1'000'000));
    sub->callback([&ctx, interval_s, count] {
        struct sigaction sa {};
        sa.sa_handler = on_interrupt;
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        const bool tty = ::isatty(STDOUT_FILENO) == 1;
        for (int frame = 0; (*count == 0 || frame < *count) && !g_interrupted; ++frame) {
            if (frame > 0) {
                auto until = std::chrono::steady_clock::now() +
                             std::chrono::milliseconds(int64_t(*interval_s * 1000));
                while (std::chrono::steady_clock::now() < until && !g_interrupted)
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                if (g_interrupted) break;
            }
            json reply;
            if (!call(ctx, {{"cmd", "stats"}}, reply)) return;
            std::string view = sluice::control::render_watch(reply, sluice::wall_clock_ms());
            // On a terminal, redraw in place; in a pipe or file, one frame after another.
            print(tty ? "\x1b[H\x1b[2J" + view : (frame > 0 ? "\n" : "") + view);
        }
    });
}

void add_metrics(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand(
        "metrics", "Prometheus text exposition (e.g. for node_exporter's textfile collector)");
    sub->callback([&ctx] {
        json reply;
        if (!call(ctx, {{"cmd", "metrics"}}, reply)) return;
        auto text = reply.find("text");
        if (text == reply.end() || !text->is_string()) {
            ctx.code = fail("the metrics reply has no \"text\" (is sluiced older than sluicectl?)");
            return;
        }
        print(text->get<std::string>());
    });
}

// retention [TABLE|'*' [--max-age-ms MS] [--max-bytes N] | TABLE --clear]: lists every
// table's retention, or first sets one table's policy (or the default's, with '*').
void add_retention(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand(
        "retention", "show retention per table; with TABLE (or '*' for the default) set it");
    auto table = std::make_shared<std::string>();
    auto max_age_ms = std::make_shared<int64_t>(-1);
    auto max_bytes = std::make_shared<int64_t>(-1);
    auto clear = std::make_shared<bool>(false);
    sub->add_option("TABLE", *table, "a table of the data dir, or '*' for every table's default");
    sub->add_option("--max-age-ms", *max_age_ms,
                    "delete segments whose newest row is older than this (0: no limit)")
        ->check(CLI::Range(int64_t(0), INT64_MAX));
    sub->add_option("--max-bytes", *max_bytes,
                    "delete the oldest segments while the table is larger (0: no limit)")
        ->check(CLI::Range(int64_t(0), INT64_MAX));
    sub->add_flag("--clear", *clear, "drop the table's own policy: the default applies again");
    sub->callback([&ctx, table, max_age_ms, max_bytes, clear] {
        json req{{"cmd", "retention"}};
        const bool change = *max_age_ms >= 0 || *max_bytes >= 0 || *clear;
        if (change && table->empty()) {
            std::fprintf(stderr, "sluicectl: retention: name the TABLE (or '*') to change\n");
            ctx.code = exit_usage;
            return;
        }
        if (!table->empty()) {
            if (!change) {
                std::fprintf(stderr, "sluicectl: retention: give --max-age-ms and/or --max-bytes, "
                                     "or --clear\n");
                ctx.code = exit_usage;
                return;
            }
            req["table"] = *table;
            if (*clear) req["clear"] = true;
            if (*max_age_ms >= 0) req["max_age_ms"] = *max_age_ms;
            if (*max_bytes >= 0) req["max_bytes"] = *max_bytes;
        }
        json reply;
        if (!call(ctx, req, reply)) return;
        char line[256];
        std::string out;
        std::snprintf(line, sizeof line, "default: max_age_ms %lld, max_bytes %llu (0 = no limit)\n",
                      static_cast<long long>(reply["default"].value("max_age_ms", 0ll)),
                      static_cast<unsigned long long>(reply["default"].value("max_bytes", 0ull)));
        out += line;
        std::snprintf(line, sizeof line, "%-24s %-7s %14s %14s %9s %14s %12s %9s\n", "table",
                      "policy", "max_age_ms", "max_bytes", "segments", "bytes", "rows", "deleted");
        out += line;
        for (const auto& t : reply.value("tables", json::array())) {
            std::snprintf(line, sizeof line, "%-24s %-7s %14lld %14llu %9llu %14llu %12llu %9llu\n",
                          t.value("table", std::string()).c_str(),
                          t.value("policy", std::string()).c_str(),
                          static_cast<long long>(t.value("max_age_ms", 0ll)),
                          static_cast<unsigned long long>(t.value("max_bytes", 0ull)),
                          static_cast<unsigned long long>(t.value("segments", 0ull)),
                          static_cast<unsigned long long>(t.value("bytes", 0ull)),
                          static_cast<unsigned long long>(t.value("rows", 0ull)),
                          static_cast<unsigned long long>(t.value("segments_deleted", 0ull)));
            out += line;
        }
        print(out);
    });
}

void add_call(CLI::App& app, context& ctx) {
    CLI::App* sub = app.add_subcommand(
        "call", "send a raw request, print the raw reply: call '{\"cmd\":\"status\"}'");
    auto request = std::make_shared<std::string>();
    sub->add_option("JSON", *request, "one request object")
        ->required()
        ->check(CLI::Validator(
            [](std::string& s) -> std::string {
                json j = json::parse(s, nullptr, false);
                return j.is_object() ? "" : "not a JSON object: " + s;
            },
            "JSON"));
    sub->callback([&ctx, request] {
        auto r = sluice::control::request(ctx.socket_path, json::parse(*request), ctx.timeout_ms);
        if (!r.ok()) {
            ctx.code = fail(r.err().message);
            return;
        }
        // Scripts get the reply verbatim on stdout, and the exit code says ok or not.
        print(r.value().dump() + "\n");
        if (r.value().value("ok", false) == true) return;
        auto err = r.value().find("error");
        ctx.code = fail(err != r.value().end() && err->is_string() ? err->get<std::string>()
                                                                   : "request failed");
    });
}


// CLI11's usage line, in the lower case our error messages and docs use.
class formatter : public CLI::Formatter {
  public:
    std::string make_usage(const CLI::App* app, std::string name) const override {
        std::string u = CLI::Formatter::make_usage(app, std::move(name));
        auto pos = u.find("Usage:");
        if (pos != std::string::npos) u.replace(pos, 6, "usage:");
        return u;
    }
};

} // namespace
} // namespace sluicectl

int main(int argc, char** argv) {
    using namespace sluicectl;
    context ctx;
    CLI::App app{"sluicectl: control a running sluiced over its Unix socket.\n"
                 "Exit codes: 0 ok, 1 refused or failed, 2 usage.",
                 "sluicectl"};
    app.formatter(std::make_shared<formatter>());
    app.require_subcommand(1, 1);
    app.fallthrough(); // global options may also follow the subcommand
    const char* env = std::getenv("SLUICE_SOCKET");
    ctx.socket_path = env != nullptr && *env != '\0'
                          ? std::string(env)
                          : std::string(sluice::control::default_socket_path);
    app.add_option("--socket", ctx.socket_path,
                   "control socket (default $SLUICE_SOCKET, else " +
                       std::string(sluice::control::default_socket_path) + ")")
        ->check([](const std::string& s) { return s.empty() ? "--socket needs a path" : ""; });
    app.set_version_flag("--version", std::string("sluicectl ") + SLUICE_VERSION);
    app.add_option("--timeout-ms", ctx.timeout_ms,
                   "how long to wait for a reply (default " +
                       std::to_string(sluice::control::request_timeout_ms_default) + ")")
        ->check(CLI::Range(1, 3'600'000));

    add_simple(app, ctx, "status", "daemon state, version, lcore map, uptime");
    add_stats(app, ctx);
    add_watch(app, ctx);
    add_metrics(app, ctx);
    add_simple(app, ctx, "flush", "write open batches to disk and fsync");
    add_simple(app, ctx, "reload", "re-read the config file (as SIGHUP); lists what was applied");
    add_retention(app, ctx);
    add_groups(app, ctx);
    sluice::control::add_export_command(app, ctx.socket_path, ctx.timeout_ms, ctx.code);
    add_simple(app, ctx, "shutdown", "graceful stop: stop RX, drain rings, close windows, flush");
    add_queries(app, ctx);
    add_windows(app, ctx);
    add_replay(app, ctx);
    add_call(app, ctx);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        return exit_ok;
    } catch (const CLI::CallForVersion& e) {
        std::printf("%s\n", e.what());
        return exit_ok;
    } catch (const CLI::ParseError& e) {
        std::string why = e.what();
        if (argc == 1) why = "no command given";
        std::fprintf(stderr, "sluicectl: %s\n%s", why.c_str(), app.help().c_str());
        return exit_usage;
    }
    return ctx.code;
}
