// What a control connection's bytes become (control_loop.h): request lines, the size
// and rate limits, fast commands answered inline, slow ones handed to the pool with a
// deadline and resumed when their reply (or the deadline) comes, idle connections closed.
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "control/control_loop.h"
#include "control/protocol.h"

namespace sluice::control {

using detail::connection;

namespace {

bool blank(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

} // namespace

void control_server::loop::resume(uint32_t slot, std::string reply) {
    connection& c = conns[slot];
    c.reply = std::move(reply);
    c.reply_ready = true;
    if (!c.armed) advance(slot);
}

void control_server::loop::on_done() {
    uint64_t n;
    (void)!::read(server._done_fd, &n, sizeof n); // non-blocking: resets the count
    for (auto& d : server._pool->take_done()) {
        connection& c = conns[d.slot];
        if (c.fd < 0 || !c.waiting || c.reply_ready || c.wait_id != d.id) continue; // stale
        resume(d.slot, std::move(d.reply));
    }
    arm_done();
}

void control_server::loop::expire_waits() {
    const int64_t now = monotonic_ns();
    for (uint32_t i = 0; i < conns.size(); ++i) {
        connection& c = conns[i];
        if (c.fd < 0 || !c.waiting || c.reply_ready || now < c.wait_deadline_ns) continue;
        bump(server._deadline_exceeded);
        c.wait_id = 0;
        resume(i, encode_error("request did not complete within " +
                               std::to_string(server._config.slow_deadline_ms) +
                               " ms (control deadline; see sluicectl stats)"));
    }
}

void control_server::loop::refuse_oversize(connection& c) {
    bump(server._oversize);
    // Floods are cut by the log's per-site rate limit (base/log.h), and counted.
    SLUICE_LOG_WARN("control: closed pid %d uid %u: request over %zu bytes", int(c.pid), c.uid,
                    limits::control_request_bytes_max);
    c.out += encode_error("request exceeds " + std::to_string(limits::control_request_bytes_max) +
                          " bytes (send one JSON object per line)");
    c.out += '\n';
    c.closing = true;
    c.in.clear();
}

void control_server::loop::process_input(connection& c) {
    size_t start = 0;
    while (!c.closing && !c.waiting) {
        size_t nl = c.in.find('\n', start);
        if (nl == std::string::npos) break;
        std::string_view line(c.in.data() + start, nl - start);
        start = nl + 1;
        if (line.size() > limits::control_request_bytes_max) {
            refuse_oversize(c);
            return;
        }
        if (blank(line)) continue;
        answer(c, line);
    }
    if (c.closing) return;
    c.in.erase(0, start);
    // Refuse before the newline arrives, so no client can make us buffer unbounded.
    if (c.in.size() > limits::control_request_bytes_max) return refuse_oversize(c);
    // A client that half-closes after its request needs no trailing newline.
    if (c.peer_eof && !c.waiting && !blank(c.in)) {
        answer(c, c.in);
        c.in.clear();
    }
}

void control_server::loop::answer(connection& c, std::string_view line) {
    int64_t now = monotonic_ns();
    c.last_request_ns = now;
    access_policy a = server.access();
    if (!c.bucket.take(now, a.connection_requests_per_s) ||
        !global_bucket.take(now, a.requests_per_s)) {
        bump(server._requests);
        bump(server._rate_limited);
        SLUICE_LOG_WARN("control: rate limited pid %d uid %u: over %u requests/s per "
                        "connection or %u in all",
                        int(c.pid), c.uid, a.connection_requests_per_s, a.requests_per_s);
        c.out +=
            encode_error("rate limited: over " + std::to_string(a.connection_requests_per_s) +
                         " requests/s on this connection or " + std::to_string(a.requests_per_s) +
                         " in all (slow down and retry; control.requests_per_s)");
        c.out += '\n';
        return;
    }
    control_server::routed r = server.route(line);
    if (!r.slow) {
        c.out += r.reply;
        c.out += '\n';
        return;
    }
    const uint32_t slot = uint32_t(&c - conns.data());
    const uint64_t id = ++next_wait_id;
    const int64_t deadline = now + int64_t(server._config.slow_deadline_ms) * 1'000'000;
    if (!server._pool->submit({id, slot, deadline, std::move(r.slow)})) {
        bump(server._busy);
        c.out += encode_error("busy: " + std::to_string(limits::control_slow_queue_max) +
                              " slow requests are waiting (retry shortly)");
        c.out += '\n';
        return;
    }
    c.waiting = true;
    c.wait_id = id;
    c.wait_deadline_ns = deadline;
}

void control_server::loop::close_idle() {
    uint32_t timeout_ms = server._config.idle_timeout_ms;
    if (timeout_ms == 0) return;
    int64_t now = monotonic_ns();
    const int64_t timeout_ns = int64_t(timeout_ms) * 1'000'000;
    for (uint32_t slot = 0; slot < conns.size(); ++slot) {
        connection& c = conns[slot];
        if (c.fd < 0 || !c.armed || c.abandoned) continue;
        if (c.sending) {
            if (now - std::max(c.last_request_ns, c.last_sent_ns) < timeout_ns) continue;
            if (!c.timed_out) bump(server._idle_closed);
            c.timed_out = c.closing = c.abandoned = true; // closed when the send ends
            ::shutdown(c.fd, SHUT_RDWR);
            cancel(detail::make_tag(detail::op::send, slot)); // a send waiting for room may not wake
            continue;
        }
        if (c.closing || c.timed_out || now - c.last_request_ns < timeout_ns) continue;
        c.timed_out = true;
        c.last_sent_ns = now; // the idle error's send starts its own timeout
        ::shutdown(c.fd, SHUT_RD);
    }
}
} // namespace sluice::control
