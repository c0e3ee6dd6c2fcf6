#include "base/log.h"

#include <atomic>
#include <ctime>

namespace sluice {

namespace {
std::atomic<int> g_level{static_cast<int>(log_level::info)};

const char* level_name(log_level level) {
    switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
    }
    return "?";
}
} // namespace

void log_set_level(log_level level) noexcept { g_level.store(static_cast<int>(level)); }

void log_write(log_level level, const char* fmt, ...) noexcept {
    if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "sluice %s: %s\n", level_name(level), line);
}

} // namespace sluice
