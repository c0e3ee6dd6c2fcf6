#include "base/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "base/clock.h"
#include "base/time_format.h"

namespace sluice {

namespace {

std::atomic<int> g_level{static_cast<int>(log_level::info)};
std::atomic<int> g_format{static_cast<int>(log_format::text)};
std::atomic<uint64_t> g_suppressed{0};
std::atomic<bool> g_journal{false};

const char* level_name(log_level level) {
    switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
    }
    return "?";
}

// sd-daemon(3) priorities, which journald reads from a `<N>` line prefix.
int syslog_priority(log_level level) {
    switch (level) {
    case log_level::debug: return 7;
    case log_level::info: return 6;
    case log_level::warn: return 4;
    case log_level::error: return 3;
    }
    return 6;
}

// Per-site pacing: a fixed table keyed by the site's address (open addressing, no
// allocation); sites beyond it share the last slot.
struct site_state {
    const void* site = nullptr;
    int64_t window_start_ns = 0;
    uint32_t lines = 0;      // written in the current window
    uint64_t suppressed = 0; // dropped since the site's last written line
};
constexpr size_t sites_max = 256;

struct limiter {
    std::mutex mutex; // also keeps lines from several threads whole
    log_rate_limit limit;
    site_state sites[sites_max];

    site_state& find(const void* site) {
        size_t h = (uintptr_t(site) >> 4) % (sites_max - 1);
        for (size_t probe = 0; probe < sites_max - 1; ++probe) {
            site_state& s = sites[(h + probe) % (sites_max - 1)];
            if (s.site == site) return s;
            if (s.site == nullptr) {
                s.site = site;
                return s;
            }
        }
        return sites[sites_max - 1];
    }
};

limiter& the_limiter() {
    static limiter l;
    return l;
}

// Control characters would split a line or colour a terminal: escaped, so that one
// message stays one line whatever an error string carries.
void append_escaped(std::string& out, const char* s, bool json) {
    for (; *s; ++s) {
        const unsigned char c = static_cast<unsigned char>(*s);
        if (json && (c == '"' || c == '\\')) {
            out += '\\';
            out += char(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += json ? "\\t" : "\t";
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += char(c);
        }
    }
}

std::string format_line(log_level level, const char* message, uint64_t suppressed) {
    std::string line;
    char note[96] = "";
    if (suppressed != 0)
        std::snprintf(note, sizeof note,
                      " (%" PRIu64 " more from here suppressed by the log rate limit)", suppressed);
    if (log_format(g_format.load(std::memory_order_relaxed)) == log_format::json) {
        line = "{\"ts\":\"" + format_rfc3339_ms(wall_clock_ms()) + "\",\"level\":\"" +
               level_name(level) + "\",\"msg\":\"";
        append_escaped(line, message, true);
        line += "\"";
        if (suppressed != 0) line += ",\"suppressed\":" + std::to_string(suppressed);
        line += "}\n";
        return line;
    }
    if (g_journal.load(std::memory_order_relaxed))
        line = "<" + std::to_string(syslog_priority(level)) + ">";
    line += "sluice ";
    line += level_name(level);
    line += ": ";
    append_escaped(line, message, false);
    line += note;
    line += '\n';
    return line;
}

void write_line(const void* site, log_level level, const char* fmt, va_list ap) {
    if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
    limiter& l = the_limiter();
    std::lock_guard lock(l.mutex);
    uint64_t suppressed = 0;
    if (site != nullptr && l.limit.burst != 0) {
        site_state& s = l.find(site);
        const int64_t now = monotonic_ns();
        if (s.lines == 0 || now - s.window_start_ns >= int64_t(l.limit.interval_ms) * 1'000'000) {
            s.window_start_ns = now;
            s.lines = 0;
        }
        if (s.lines >= l.limit.burst) {
            ++s.suppressed;
            g_suppressed.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        ++s.lines;
        suppressed = std::exchange(s.suppressed, 0);
    }
    char message[1024];
    std::vsnprintf(message, sizeof message, fmt, ap);
    try {
        const std::string line = format_line(level, message, suppressed);
        std::fwrite(line.data(), 1, line.size(), stderr);
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "sluice %s: %s\n", level_name(level), message); // out of memory
    }
}

} // namespace

void log_set_level(log_level level) noexcept {
    g_level.store(static_cast<int>(level));
}

void log_set_format(log_format format) noexcept {
    g_format.store(static_cast<int>(format));
}

void log_set_journal(bool on) noexcept {
    g_journal.store(on);
}

// systemd sets JOURNAL_STREAM=DEV:INO to the stream it connected to stdout/stderr; only
// when stderr is that stream does a priority prefix reach journald (and not a file).
bool log_stderr_is_journal() noexcept {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return uint64_t(st.st_dev) == dev && uint64_t(st.st_ino) == ino;
}

void log_set_rate_limit(log_rate_limit limit) noexcept {
    limiter& l = the_limiter();
    std::lock_guard lock(l.mutex);
    l.limit = limit;
    for (auto& s : l.sites)
        s = site_state{};
}

bool parse_log_format(const char* name, log_format* out) noexcept {
    if (std::strcmp(name, "text") == 0) {
        *out = log_format::text;
        return true;
    }
    if (std::strcmp(name, "json") == 0) {
        *out = log_format::json;
        return true;
    }
    return false;
}

uint64_t log_suppressed_total() noexcept {
    return g_suppressed.load(std::memory_order_relaxed);
}

void log_write_at(const void* site, log_level level, const char* fmt, ...) noexcept {
    va_list ap;
    va_start(ap, fmt);
    write_line(site, level, fmt, ap);
    va_end(ap);
}

void log_write(log_level level, const char* fmt, ...) noexcept {
    va_list ap;
    va_start(ap, fmt);
    write_line(nullptr, level, fmt, ap);
    va_end(ap);
}

} // namespace sluice
