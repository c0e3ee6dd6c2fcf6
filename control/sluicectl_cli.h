#pragma once
// sluicectl's shared pieces: the context every subcommand reads and sets, sending a
// request, printing, and the interrupt flag of the following commands (watch, windows
// --follow). sluicectl.cpp holds main() and the daemon commands, sluicectl_queries.cpp
// the continuous-query commands (queries, windows, replay).
#include <atomic>
#include <string>

#include <CLI/CLI.hpp>

#include "control/protocol.h"

namespace sluicectl {

using sluice::control::json;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

struct context {
    std::string socket_path;
    int timeout_ms = sluice::control::request_timeout_ms_default;
    int code = exit_ok; // what the subcommand that ran decided
};

// Prints `sluicectl: why` on stderr; returns exit_failed.
int fail(const std::string& why);
// Sends the request; on anything but an ok reply prints the reason and returns false.
bool call(context& ctx, const json& req, json& reply);
void print(const std::string& text);

// Set by SIGINT/SIGTERM once on_interrupt is installed.
extern std::atomic<bool> g_interrupted;
void on_interrupt(int);

void add_queries(CLI::App& app, context& ctx);
void add_windows(CLI::App& app, context& ctx);
void add_replay(CLI::App& app, context& ctx);
void add_groups(CLI::App& app, context& ctx); // sluicectl_groups.cpp

} // namespace sluicectl
