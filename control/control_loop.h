#pragma once
// The control server's io_uring event loop (control_server.h), private to its two files:
// control_loop.cpp drives the ring (accept, receive, send, the tick, the pool's wake-up,
// the drain at stop); control_requests.cpp turns a connection's bytes into requests and
// replies (lines, size and rate limits, fast answers inline, slow ones through the pool
// with a deadline, idle connections). One plain thread runs it.
#include <liburing.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/limits.h"
#include "control/control_connection.h"
#include "control/control_server.h"

namespace sluice::control {

namespace detail {

// What an io_uring completion is for: the op in the low byte, the client slot above.
enum class op : uint8_t {
    accept = 1,
    stop = 2,
    recv = 3,
    send = 4,
    cancel = 5,
    retry = 6,
    tick = 7,
    done = 8
};

constexpr uint64_t make_tag(op o, uint32_t slot = 0) {
    return (uint64_t(slot) << 8) | uint64_t(o);
}
constexpr op tag_op(uint64_t tag) {
    return op(tag & 0xff);
}
constexpr uint32_t tag_slot(uint64_t tag) {
    return uint32_t(tag >> 8);
}

// Back-off before accepting again when out of descriptors, so EMFILE cannot spin.
constexpr long accept_retry_ns = 100'000'000;

} // namespace detail

struct control_server::loop {
    using connection = detail::connection;

    explicit loop(control_server& s);
    ~loop();
    void run();

    // ---- the ring (control_loop.cpp) ----
    io_uring_sqe* sqe();
    void arm_accept();
    void arm_accept_retry();
    void arm_tick();
    void arm_stop();
    void arm_done();
    void arm_recv(uint32_t slot);
    void arm_send(uint32_t slot);
    void dispatch(uint64_t tag, int res);
    void reap();
    void cancel(uint64_t tag);
    // Cancels every op by its tag (works on any io_uring kernel, unlike CANCEL_ANY) and
    // waits for them all, so no completion can write into freed buffers.
    void drain();
    void on_tick();
    void on_accept(int res);
    // Supplementary groups too, so allow_gids means "members of", as file modes do.
    static std::vector<gid_t> peer_groups(int fd);
    void on_recv(uint32_t slot, int res);
    void on_send(uint32_t slot, int res);
    void close_conn(uint32_t slot);
    // After new input or a finished send: send what is pending, else read or close.
    void advance(uint32_t slot);

    // ---- requests and replies (control_requests.cpp) ----
    // The complete lines in c.in, each answered in turn; refuses what is too long.
    void process_input(connection& c);
    // One request line: rate limits first (per connection, then all together).
    void answer(connection& c, std::string_view line);
    void refuse_oversize(connection& c);
    // A slow request's reply, or its deadline error: sent now, or after the send in
    // flight (whose buffer must not move).
    void resume(uint32_t slot, std::string reply);
    // The pool finished jobs: their replies go to their (still waiting) connections.
    void on_done();
    // Slow requests past their deadline get an error now; their late replies are dropped.
    void expire_waits();
    // Closes connections that completed no request within the idle timeout: their
    // reading side is shut, the pending recv ends, and on_recv says why and closes. A
    // client that does not read its replies (a send cannot complete) is abandoned once no
    // byte has moved for the timeout — the idle error itself gets a whole timeout to go
    // out: both sides are shut, the send is cancelled and on_send closes it.
    void close_idle();

    control_server& server;
    io_uring ring{};
    bool ring_ready = false;
    std::vector<connection> conns;
    std::vector<uint32_t> free_slots;
    uint32_t in_flight = 0;
    bool stopping = false;
    bool accept_armed = false;
    bool retry_armed = false;
    bool stop_armed = false;
    bool tick_armed = false;
    bool done_armed = false;
    uint64_t next_wait_id = 0;
    __kernel_timespec retry_ts{0, detail::accept_retry_ns};
    __kernel_timespec tick_ts{};
    detail::token_bucket global_bucket;
};

} // namespace sluice::control
