#include "storage/fault_injection.h"

#include <charconv>

namespace sluice::storage::fault {
namespace {
plan g_plan;
std::atomic<uint64_t> g_calls{0};
std::atomic<uint64_t> g_calls_by_op[size_t(op::count_)];
std::atomic<uint64_t> g_injected{0};
} // namespace

std::atomic<bool> detail::armed{false};

const char* op_name(op o) noexcept {
    switch (o) {
    case op::open: return "open";
    case op::rename: return "rename";
    case op::unlink: return "unlink";
    case op::submit: return "io_uring_submit";
    case op::write: return "write";
    case op::fsync: return "fdatasync";
    case op::count_: break;
    }
    return "?";
}

verdict detail::on_call(op o) noexcept {
    const uint64_t all = g_calls.fetch_add(1, std::memory_order_relaxed) + 1;
    const uint64_t of_op = g_calls_by_op[size_t(o)].fetch_add(1, std::memory_order_relaxed) + 1;
    if (g_plan.only != op::count_ && o != g_plan.only) return {};
    const uint64_t n = g_plan.only == op::count_ ? all : of_op;
    if (g_plan.at == 0 || n < g_plan.at || (n > g_plan.at && !g_plan.persistent)) return {};
    return {g_plan.what, g_plan.err, g_plan.delay_ms};
}

void arm(const plan& p) noexcept {
    g_plan = p;
    g_calls.store(0, std::memory_order_relaxed);
    for (auto& c : g_calls_by_op) c.store(0, std::memory_order_relaxed);
    g_injected.store(0, std::memory_order_relaxed);
    detail::armed.store(true, std::memory_order_release);
}

void disarm() noexcept { detail::armed.store(false, std::memory_order_release); }
uint64_t calls() noexcept { return g_calls.load(std::memory_order_relaxed); }
uint64_t calls(op o) noexcept { return g_calls_by_op[size_t(o)].load(std::memory_order_relaxed); }
uint64_t injected() noexcept { return g_injected.load(std::memory_order_relaxed); }
void count_injected() noexcept { g_injected.fetch_add(1, std::memory_order_relaxed); }

result<plan> parse_plan(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return make_error(errc::invalid_argument,
                          "fault plan \"" + std::string(text) + "\": " + std::string(why) +
                              " (expected AT[:eio|enospc|short|delay[=MS]][:persistent]"
                              "[:open|rename|unlink|submit|write|fsync], e.g. \"37:enospc\")");
    };
    auto number = [](std::string_view s, uint64_t& out) {
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc{} && end == s.data() + s.size() && !s.empty();
    };
    plan p;
    size_t part = 0;
    for (size_t pos = 0; pos <= text.size(); ++part) {
        size_t colon = text.find(':', pos);
        if (colon == std::string_view::npos) colon = text.size();
        std::string_view f = text.substr(pos, colon - pos);
        pos = colon + 1;
        if (part == 0) {
            if (!number(f, p.at)) return bad("the call number AT is not a number");
        } else if (f == "eio") {
            p.what = kind::error, p.err = EIO;
        } else if (f == "enospc") {
            p.what = kind::error, p.err = ENOSPC;
        } else if (f == "short") {
            p.what = kind::short_write;
        } else if (f == "delay" || f.substr(0, 6) == "delay=") {
            p.what = kind::delay;
            uint64_t ms = p.delay_ms;
            if (f.size() > 5 && !number(f.substr(6), ms)) return bad("delay=MS needs a number");
            p.delay_ms = uint32_t(ms);
        } else if (f == "persistent") {
            p.persistent = true;
        } else if (f == "open" || f == "rename" || f == "unlink" || f == "submit" ||
                   f == "write" || f == "fsync") {
            p.only = f == "open"     ? op::open
                     : f == "rename" ? op::rename
                     : f == "unlink" ? op::unlink
                     : f == "submit" ? op::submit
                     : f == "write"  ? op::write
                                     : op::fsync;
        } else {
            return bad("unknown part \"" + std::string(f) + "\"");
        }
    }
    return p;
}

std::string summary() {
    std::string s = std::to_string(calls()) + " calls (";
    for (size_t o = 0; o < size_t(op::count_); ++o)
        s += std::string(o ? ", " : "") + op_name(op(o)) + " " + std::to_string(calls(op(o)));
    return s + "), " + std::to_string(injected()) + " injected";
}

} // namespace sluice::storage::fault
