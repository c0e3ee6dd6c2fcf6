#include "storage/fault_injection.h"

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
    const uint64_t n = g_calls.fetch_add(1, std::memory_order_relaxed) + 1;
    g_calls_by_op[size_t(o)].fetch_add(1, std::memory_order_relaxed);
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

} // namespace sluice::storage::fault
