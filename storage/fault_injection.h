#pragma once
// fault_injection: a test hook through which the store's I/O can be made to fail at the
// Nth call (SQLite's approach: walk N over every I/O call of a run). It covers the
// segment writer's io_uring submissions, writes and fdatasyncs (their completions), those
// of the Kafka sequence journal (dataplane/kafka/sequence_journal.cpp), and the open,
// rename and unlink calls of the writer, recovery, the journal and atomic_file.
//
// Always compiled in, so tests exercise the shipped code. Off (the default: nothing
// arms it outside tests), a hook costs one relaxed load and a predictable branch per
// I/O operation — never per row, no virtual call. State is process-wide; arm it only
// while one writer (one thread) runs.
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sluice::storage::fault {

// write / fsync: the writer's io_uring writes and fdatasyncs, judged when queued (an
// error replaces the operation by a no-op whose completion reports the error, so the
// write really does not happen; short_write queues half of it; delay holds back its
// completion). submit: io_uring_submit itself.
enum class op : uint8_t { open, rename, unlink, submit, write, fsync, count_ };
const char* op_name(op o) noexcept;

enum class kind : uint8_t {
    none,
    error,       // the call fails with `err` (EIO, ENOSPC, ...)
    short_write, // a write writes half its bytes (others: not applicable)
    delay,       // the completion is held back `delay_ms` (later completions may pass it)
};

struct plan {
    uint64_t at = 0;          // the call (1-based, over all ops) that fails; 0: count only
    kind what = kind::error;
    int err = EIO;
    uint32_t delay_ms = 5;
    bool persistent = false;  // fail every call from `at` on, not just that one
    op only = op::count_;     // count_: `at` counts every call; else only this op's (and
                              // only this op's calls fail)
};

struct verdict {
    kind what = kind::none;
    int err = 0;
    uint32_t delay_ms = 0;
};

namespace detail {
extern std::atomic<bool> armed;
verdict on_call(op o) noexcept;
} // namespace detail

// A hook that applied a fault counts it here (short_write on a non-write is not applied).
void count_injected() noexcept;

inline bool armed() noexcept { return detail::armed.load(std::memory_order_relaxed); }

// The hook: what to do with this call.
inline verdict check(op o) noexcept {
    if (!armed()) [[likely]]
        return {};
    return detail::on_call(o);
}

// For a plain syscall (open, rename, unlink): true, with errno set, when the plan fails
// this call; the caller then skips the call and handles the error as its own.
inline bool fails(op o) noexcept {
    if (!armed()) [[likely]]
        return false;
    verdict v = detail::on_call(o);
    if (v.what != kind::error) return false;
    count_injected();
    errno = v.err;
    return true;
}

void arm(const plan& p) noexcept; // resets the counters
void disarm() noexcept;
uint64_t calls() noexcept;        // calls seen since arm()
uint64_t calls(op o) noexcept;
uint64_t injected() noexcept;     // faults injected since arm() (short/delay: where applicable)

// A plan as text, for arming the hook in a whole daemon (sluiced reads it from the
// SLUICE_TEST_FAULT environment variable at start; test use only):
// "AT[:KIND][:persistent][:OP]", KIND one of eio (the default), enospc, short, delay[=MS];
// OP one of open, rename, unlink, submit, write, fsync: AT then counts (and fails) only
// that op's calls. AT 0 only counts the calls. E.g. "37", "12:enospc:persistent",
// "80:delay=3", "1:eio:persistent:fsync" (every fdatasync fails, from the first on).
result<plan> parse_plan(std::string_view text);
// "N calls (open A, rename B, ...), K injected": what the hook saw since arm().
std::string summary();

} // namespace sluice::storage::fault
