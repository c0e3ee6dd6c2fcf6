#pragma once
// Control-path logging to stderr. Never called on the hot path.
#include <cstdarg>
#include <cstdio>

namespace sluice {

enum class log_level { debug, info, warn, error };

void log_set_level(log_level level) noexcept;
void log_write(log_level level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

} // namespace sluice

#define SLUICE_LOG_INFO(...) ::sluice::log_write(::sluice::log_level::info, __VA_ARGS__)
#define SLUICE_LOG_WARN(...) ::sluice::log_write(::sluice::log_level::warn, __VA_ARGS__)
#define SLUICE_LOG_ERROR(...) ::sluice::log_write(::sluice::log_level::error, __VA_ARGS__)
#define SLUICE_LOG_DEBUG(...) ::sluice::log_write(::sluice::log_level::debug, __VA_ARGS__)
