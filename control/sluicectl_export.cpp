#include "control/sluicectl_export.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "control/protocol.h"
#include "base/time_format.h"
#include "storage/export.h"
#include "storage/segment_files.h"

namespace sluice::control {
namespace {

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

// The syntax `windows` and `replay` accept for --from/--to: epoch milliseconds or an
// RFC 3339 date-time (parsed as sluiced parses event timestamps).

CLI::Validator time_validator() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
            return parse_time_arg(s) ? ""
                                     : "not a time: " + s +
                                           " (epoch milliseconds or RFC 3339 like 2025-02-28T15:00:00Z)";
        },
        "TIME");
}

// 1234567 -> "1.23M".
std::string si(double v) {
    const char* prefixes[] = {"", "k", "M", "G", "T"};
    int i = 0;
    while (v >= 1000 && i < 4) {
        v /= 1000;
        ++i;
    }
    char buf[32];
    if (i == 0)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.*f%s", v < 10 ? 2 : v < 100 ? 1 : 0, v, prefixes[i]);
    return buf;
}

std::string duration(double s) {
    char buf[32];
    if (s < 100)
        std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 6000)
        std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, int(s) / 60 % 60);
    return buf;
}

// One line: "events  42% [########------------] 1.20M rows  85.3 MB/s read  ETA 3s",
// where the percentage and the rate are of the table's segment bytes read.
std::string progress_line(const std::string& table, const storage::export_progress& p,
                          double elapsed_s) {
    const auto& s = p.scan;
    const double fraction =
        s.bytes_total == 0 ? 1.0 : std::min(1.0, double(s.bytes_done) / double(s.bytes_total));
    constexpr int bar_width = 20;
    const int filled = int(fraction * bar_width);
    std::string bar = std::string(size_t(filled), '#') + std::string(size_t(bar_width - filled), '-');
    const double rate = elapsed_s > 0 ? double(s.bytes_done) / elapsed_s : 0;
    std::string eta = "--";
    if (fraction >= 1.0)
        eta = "0s";
    else if (s.bytes_done > 0 && elapsed_s > 0)
        eta = duration(elapsed_s * double(s.bytes_total - s.bytes_done) / double(s.bytes_done));
    char line[256];
    std::snprintf(line, sizeof line, "%s %3d%% [%s] %s rows  %.1f MB/s read  ETA %s", table.c_str(),
                  int(fraction * 100), bar.c_str(), si(double(p.rows)).c_str(), rate / 1e6,
                  eta.c_str());
    return line;
}

struct export_args {
    std::string table;
    std::string format;
    std::string out;
    std::string from;
    std::string to;
    std::string data_dir;
    bool progress = false;
    bool no_progress = false;
};

int fail(const std::string& why) {
    std::fprintf(stderr, "sluicectl: %s\n", why.c_str());
    return exit_failed;
}

// The data dir: --data-dir, else the one the daemon reports in `status`.
bool find_data_dir(const export_args& a, const std::string& socket_path, int timeout_ms,
                   std::string& dir, int& code) {
    if (!a.data_dir.empty()) {
        dir = a.data_dir;
        return true;
    }
    const std::string fix = "; to export without the daemon, pass --data-dir DIR";
    auto r = request(socket_path, {{"cmd", "status"}}, timeout_ms);
    if (!r.ok()) {
        code = fail(r.err().message + fix);
        return false;
    }
    const json& reply = r.value();
    if (reply.value("ok", false) != true) {
        auto err = reply.find("error");
        code = fail("status failed: " +
                    (err != reply.end() && err->is_string() ? err->get<std::string>() : reply.dump()) +
                    fix);
        return false;
    }
    auto d = reply.find("data_dir");
    if (d == reply.end() || !d->is_string() || d->get<std::string>().empty()) {
        code = fail("the status reply has no data_dir (is sluiced older than sluicectl?)" + fix);
        return false;
    }
    dir = d->get<std::string>();
    return true;
}

void run_export(const export_args& a, const std::string& socket_path, int timeout_ms, int& code) {
    storage::export_options opt;
    opt.format = *storage::parse_export_format(a.format); // checked by CLI11
    if (!a.from.empty()) opt.from_ms = *parse_time_arg(a.from);
    if (!a.to.empty()) opt.to_ms = *parse_time_arg(a.to);
    if (opt.from_ms > opt.to_ms) {
        std::fprintf(stderr, "sluicectl: export: --from is after --to\n");
        code = exit_usage;
        return;
    }
    std::string dir;
    if (!find_data_dir(a, socket_path, timeout_ms, dir, code)) return;

    auto tables = storage::list_tables(dir);
    if (!tables) {
        code = fail("cannot read the data dir: " + tables.err().message +
                    " (export reads it directly: run as a user who can read it)");
        return;
    }
    if (std::find(tables->begin(), tables->end(), a.table) == tables->end()) {
        std::string known;
        for (const auto& t : *tables) known += (known.empty() ? "" : ", ") + t;
        code = fail("no table '" + a.table + "' in " + dir + " (tables: " +
                    (known.empty() ? "none yet" : known) + ")");
        return;
    }
    struct stat st {};
    if (::stat(a.out.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        code = fail("--out " + a.out + " is a directory (name the file to write)");
        return;
    }

    // The bar goes to stderr, on a terminal only (or when forced), redrawn at most
    // ten times a second and once more at 100%.
    const bool show = a.progress || (!a.no_progress && ::isatty(STDERR_FILENO) == 1);
    const auto start = std::chrono::steady_clock::now();
    auto elapsed_s = [&start] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    bool drawn = false;
    auto last_draw = start - std::chrono::seconds(1);
    if (show) {
        opt.progress = [&](const storage::export_progress& p) {
            const auto now = std::chrono::steady_clock::now();
            const bool done = p.scan.bytes_done == p.scan.bytes_total &&
                              p.scan.segments_done == p.scan.segments_total;
            if (!done && now - last_draw < std::chrono::milliseconds(100)) return;
            last_draw = now;
            std::fprintf(stderr, "\r%s\x1b[K", progress_line(a.table, p, elapsed_s()).c_str());
            std::fflush(stderr);
            drawn = true;
        };
    }
    auto r = storage::export_table_to_file(dir, a.table, opt, a.out);
    const double secs = elapsed_s();
    if (drawn) std::fputs("\n", stderr);
    if (!r.ok()) {
        code = fail("export of " + a.table + " failed: " + r.err().message);
        return;
    }
    const auto& sum = r.value();
    if (sum.scan.damaged_segments > 0)
        std::fprintf(stderr,
                     "sluicectl: warning: %" PRIu64 " damaged segment(s) of %s were read only up "
                     "to the damage (sluiced's recovery repairs them at its next start)\n",
                     sum.scan.damaged_segments, a.table.c_str());
    if (sum.invalid_utf8_values > 0)
        std::fprintf(stderr,
                     "sluicectl: note: %" PRIu64 " text value(s) were not UTF-8; their bad bytes "
                     "became U+FFFD\n",
                     sum.invalid_utf8_values);
    std::printf("exported %" PRIu64 " rows of %s to %s (%s, %" PRIu64 " bytes) in %.2f s\n",
                sum.rows, a.table.c_str(), a.out.c_str(), a.format.c_str(), sum.bytes, secs);
    std::fflush(stdout);
}

} // namespace

void add_export_command(CLI::App& app, const std::string& socket_path, const int& timeout_ms,
                        int& exit_code) {
    CLI::App* sub = app.add_subcommand(
        "export", "write a table's rows (in a time range) to a JSON Lines, CSV or Parquet file; "
                  "reads the data dir directly");
    auto a = std::make_shared<export_args>();
    sub->add_option("TABLE", a->table, "a table of the data dir: events, dead_letters, a query's table")
        ->required();
    sub->add_option("--format", a->format, "jsonl, csv or parquet")
        ->required()
        ->check(CLI::IsMember({"jsonl", "csv", "parquet"}));
    sub->add_option("--out", a->out, "the file to write (through FILE.tmp, then renamed)")
        ->required()
        ->check([](const std::string& s) { return s.empty() ? "--out needs a path" : ""; });
    sub->add_option("--from", a->from, "rows at or after: epoch ms or RFC 3339 (default: all)")
        ->check(time_validator());
    sub->add_option("--to", a->to, "rows at or before: epoch ms or RFC 3339 (default: all)")
        ->check(time_validator());
    sub->add_option("--data-dir", a->data_dir,
                    "read this data dir (no daemon needed); default: the one sluiced reports")
        ->check([](const std::string& s) { return s.empty() ? "--data-dir needs a path" : ""; });
    auto* on = sub->add_flag("--progress", a->progress, "show the progress bar even when stderr "
                                                        "is not a terminal");
    sub->add_flag("--no-progress", a->no_progress, "no progress bar")->excludes(on);
    sub->callback([a, &socket_path, &timeout_ms, &exit_code] {
        run_export(*a, socket_path, timeout_ms, exit_code);
    });
}

} // namespace sluice::control
