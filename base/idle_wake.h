#pragma once
// idle_wake: lets an idle polling loop (a worker lcore, the merger) block instead of
// sleeping in short steps, and lets the threads that hand it work wake it without a
// syscall while it is busy.
//
// The sleeper: prepare(), look once more for work (its rings, anything a producer may
// have published before seeing the flag), and only if there is none block(timeout);
// then done(). A producer: publish the work (ring enqueue, atomic store), then notify().
// Both sides order their store before their load with a full fence (Dekker), so either
// the sleeper sees the work in its last look or the producer sees the flag and writes
// the eventfd: no wake-up is lost. notify() writes only when the sleeper is asleep and
// only once per sleep (the flag is taken with an exchange); a busy loop costs a fence and
// a load per burst handed over, never a syscall.
//
// The eventfd may also be registered on io_uring instances (io_uring_register_eventfd),
// so that their completions end a wait too.
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace sluice {

class idle_wake {
  public:
    idle_wake() noexcept : _fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
    ~idle_wake() {
        if (_fd >= 0) ::close(_fd);
    }
    idle_wake(const idle_wake&) = delete;
    idle_wake& operator=(const idle_wake&) = delete;

    // False when no eventfd could be created: the owner keeps polling.
    bool ok() const noexcept { return _fd >= 0; }
    int fd() const noexcept { return _fd; }

    // Sleeper side.
    void prepare() noexcept {
        _sleeping.store(1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    // Blocks until notify(), a completion of a ring this eventfd is registered on, or
    // timeout_ns. Returns whether it was woken (false: timed out).
    bool block(int64_t timeout_ns) noexcept {
        pollfd p{_fd, POLLIN, 0};
        timespec ts{time_t(timeout_ns / 1'000'000'000), long(timeout_ns % 1'000'000'000)};
        const int n = ::ppoll(&p, 1, &ts, nullptr);
        if (n <= 0) return false;
        uint64_t v;
        (void)!::read(_fd, &v, sizeof v); // clears it (nonblocking)
        return true;
    }
    void done() noexcept { _sleeping.store(0, std::memory_order_relaxed); }

    // Producer side, after publishing the work. Any thread.
    void notify() noexcept {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (_sleeping.load(std::memory_order_relaxed) == 0) [[likely]]
            return;
        if (_sleeping.exchange(0, std::memory_order_relaxed) == 0) return; // another woke it
        const uint64_t one = 1;
        (void)!::write(_fd, &one, sizeof one); // a full eventfd (EAGAIN) is readable anyway
        _wakes.fetch_add(1, std::memory_order_relaxed);
    }
    // Eventfd writes notify() made (tests, and to see the hot path pays none while busy).
    uint64_t wakes() const noexcept { return _wakes.load(std::memory_order_relaxed); }
    bool sleeping() const noexcept { return _sleeping.load(std::memory_order_relaxed) != 0; }

  private:
    int _fd;
    alignas(64) std::atomic<uint32_t> _sleeping{0};
    std::atomic<uint64_t> _wakes{0};
};

} // namespace sluice
