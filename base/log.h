#pragma once
// Control-path logging to stderr, one line per message. Never called on the hot path.
//
// Lines are what journald and operators expect: no colours, never split (control
// characters in a message are escaped), a syslog priority prefix (`<4>`) when stderr is
// the journal (systemd sets JOURNAL_STREAM), and optionally one JSON object per line.
// Each call site may write at most `burst` lines per `interval_ms`; more are dropped and
// counted (log_suppressed_total(), the `sluice_log_lines_suppressed_total` metric), and the
// site's next line says how many of its lines were dropped, so a flood of bad input
// cannot fill the journal.
#include <cstdarg>
#include <cstdint>
#include <cstdio>

#include "base/limits.h"

namespace sluice {

enum class log_level { debug, info, warn, error };
enum class log_format { text, json };

/// Lines per call site: `burst` in each `interval_ms`; burst 0 = no limit.
struct log_rate_limit {
    uint32_t burst = limits::log_rate_limit_burst_default;
    uint32_t interval_ms = limits::log_rate_limit_interval_ms_default;
    bool operator==(const log_rate_limit&) const = default;
};

void log_set_level(log_level level) noexcept;
void log_set_format(log_format format) noexcept;
void log_set_rate_limit(log_rate_limit limit) noexcept;
/// Whether text lines start with their syslog priority (`<4>`) for journald.
void log_set_journal(bool on) noexcept;
/// True when stderr is the stream systemd connected to the journal (JOURNAL_STREAM).
bool log_stderr_is_journal() noexcept;
/// "text" or "json" (the `--log-format` and `[log] format` values); false for others.
bool parse_log_format(const char* name, log_format* out) noexcept;
/// Lines dropped by the rate limit since start, all call sites together.
uint64_t log_suppressed_total() noexcept;

/// `site` identifies the call site for the rate limit (the macros pass one address per
/// site); log_write() has no site and no limit.
void log_write_at(const void* site, log_level level, const char* fmt, ...) noexcept
    __attribute__((format(printf, 3, 4)));
void log_write(log_level level, const char* fmt, ...) noexcept
    __attribute__((format(printf, 2, 3)));

} // namespace sluice

// One address per call site (a lambda's static is unique to its expansion): the key of
// the per-site rate limit.
#define SLUICE_LOG_SITE_                                                                           \
    ([]() noexcept -> const void* {                                                                \
        static const char site = 0;                                                                \
        return &site;                                                                              \
    }())
#define SLUICE_LOG_INFO(...)                                                                       \
    ::sluice::log_write_at(SLUICE_LOG_SITE_, ::sluice::log_level::info, __VA_ARGS__)
#define SLUICE_LOG_WARN(...)                                                                       \
    ::sluice::log_write_at(SLUICE_LOG_SITE_, ::sluice::log_level::warn, __VA_ARGS__)
#define SLUICE_LOG_ERROR(...)                                                                      \
    ::sluice::log_write_at(SLUICE_LOG_SITE_, ::sluice::log_level::error, __VA_ARGS__)
#define SLUICE_LOG_DEBUG(...)                                                                      \
    ::sluice::log_write_at(SLUICE_LOG_SITE_, ::sluice::log_level::debug, __VA_ARGS__)
