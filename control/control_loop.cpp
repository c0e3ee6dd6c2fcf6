// The control server's io_uring event loop (control_loop.h): the ring itself — accept,
// receive, send, the tick, the pool's wake-up, the drain at stop — on one plain thread.
// What a connection's bytes become is control_requests.cpp's.
#include "control/control_server.h"

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "control/control_loop.h"

namespace sluice::control {

using detail::connection;
using detail::make_tag;
using detail::op;
using detail::tag_op;
using detail::tag_slot;
using detail::token_bucket;

namespace {

// At most one op per client, plus accept (or its retry timer), the tick, the stop and
// done polls; the shutdown cancels need as many again, and sqe() submits early when the
// SQ is full.
constexpr unsigned ring_entries = limits::control_clients_max + 4;

std::string sys_error(const std::string& what, int err) {
    return what + ": " + std::strerror(err);
}

} // namespace

control_server::loop::loop(control_server& s) : server(s), conns(s._config.clients_max) {
    for (uint32_t i = s._config.clients_max; i > 0; --i)
        free_slots.push_back(i - 1);
}

control_server::loop::~loop() {
    for (auto& c : conns)
        if (c.fd >= 0) ::close(c.fd);
    if (ring_ready) io_uring_queue_exit(&ring);
}

io_uring_sqe* control_server::loop::sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    if (s == nullptr) {
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    SLUICE_ASSERT(s != nullptr);
    return s;
}

void control_server::loop::arm_accept() {
    io_uring_sqe* s = sqe();
    io_uring_prep_accept(s, server._listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, make_tag(op::accept));
    accept_armed = true;
    ++in_flight;
}

void control_server::loop::arm_accept_retry() {
    io_uring_sqe* s = sqe();
    io_uring_prep_timeout(s, &retry_ts, 0, 0);
    io_uring_sqe_set_data64(s, make_tag(op::retry));
    retry_armed = true;
    ++in_flight;
}

void control_server::loop::arm_tick() {
    io_uring_sqe* s = sqe();
    io_uring_prep_timeout(s, &tick_ts, 0, 0);
    io_uring_sqe_set_data64(s, make_tag(op::tick));
    tick_armed = true;
    ++in_flight;
}

void control_server::loop::arm_stop() {
    io_uring_sqe* s = sqe();
    io_uring_prep_poll_add(s, server._stop_fd, POLLIN);
    io_uring_sqe_set_data64(s, make_tag(op::stop));
    stop_armed = true;
    ++in_flight;
}

void control_server::loop::arm_done() {
    io_uring_sqe* s = sqe();
    io_uring_prep_poll_add(s, server._done_fd, POLLIN);
    io_uring_sqe_set_data64(s, make_tag(op::done));
    done_armed = true;
    ++in_flight;
}

void control_server::loop::arm_recv(uint32_t slot) {
    connection& c = conns[slot];
    SLUICE_DASSERT(!c.armed);
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c.fd, c.chunk.data(), c.chunk.size(), 0);
    io_uring_sqe_set_data64(s, make_tag(op::recv, slot));
    c.armed = true;
    c.sending = false;
    ++in_flight;
}

void control_server::loop::arm_send(uint32_t slot) {
    connection& c = conns[slot];
    SLUICE_DASSERT(!c.armed);
    SLUICE_DASSERT(c.out_sent < c.out.size());
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, make_tag(op::send, slot));
    c.armed = true;
    c.sending = true;
    ++in_flight;
}

void control_server::loop::close_conn(uint32_t slot) {
    connection& c = conns[slot];
    ::close(c.fd);
    c.fd = -1;
    c.armed = c.closing = c.peer_eof = c.timed_out = c.abandoned = c.waiting =
        c.reply_ready = false;
    c.wait_id = 0;
    c.reply.clear();
    c.bucket = token_bucket{};
    c.in.clear();
    c.out.clear();
    c.out_sent = 0;
    free_slots.push_back(slot);
    server._connections_open.fetch_sub(1, std::memory_order_relaxed);
}

void control_server::loop::advance(uint32_t slot) {
    connection& c = conns[slot];
    if (c.out_sent < c.out.size()) return arm_send(slot);
    c.out.clear();
    c.out_sent = 0;
    if (c.waiting) {
        // Nothing is armed while the pool works: its reply (on_done) or the
        // deadline (on_tick) resumes the connection.
        if (!c.reply_ready) return;
        c.out = std::move(c.reply) + '\n';
        c.reply.clear();
        c.waiting = c.reply_ready = false;
        c.wait_id = 0;
        process_input(c); // the requests pipelined behind it
        return advance(slot);
    }
    if (c.closing || c.peer_eof) return close_conn(slot);
    arm_recv(slot);
}

void control_server::loop::on_tick() {
    if (server._config.on_tick) {
        try {
            server._config.on_tick();
        } catch (const std::exception& e) {
            SLUICE_LOG_ERROR("control: periodic task failed: %s", e.what());
        }
    }
    close_idle();
    expire_waits();
    arm_tick();
}

void control_server::loop::on_accept(int res) {
    if (res < 0) {
        if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
            bump(server._accept_errors);
            SLUICE_LOG_WARN("control: cannot accept on %s: %s (retrying)",
                            server._config.socket_path.c_str(), std::strerror(-res));
            return arm_accept_retry();
        }
        return arm_accept();
    }
    arm_accept();
    int fd = res;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        SLUICE_LOG_WARN("control: SO_PEERCRED failed: %s", std::strerror(errno));
        ::close(fd);
        return;
    }
    if (free_slots.empty()) {
        // Over the bound: explain and close without taking a slot.
        std::string busy =
            encode_error("too many control clients (" +
                         std::to_string(server._config.clients_max) + " connected); retry later") +
            "\n";
        // Counted before the client can read why: whoever reads the reply sees the count.
        bump(server._refused_clients);
        (void)!::send(fd, busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        ::close(fd);
        SLUICE_LOG_WARN("control: refused pid %d uid %u: too many clients", int(cred.pid),
                        cred.uid);
        return;
    }
    uint32_t slot = free_slots.back();
    free_slots.pop_back();
    connection& c = conns[slot];
    c.fd = fd;
    c.uid = cred.uid;
    c.pid = cred.pid;
    c.last_request_ns = monotonic_ns();
    server._connections_open.fetch_add(1, std::memory_order_relaxed);
    if (!server.peer_allowed(cred.uid, cred.gid, peer_groups(fd))) {
        bump(server._refused_peers);
        SLUICE_LOG_WARN("control: refused peer pid %d uid %u gid %u on %s: not in "
                        "control.allow_uids/allow_gids",
                        int(cred.pid), cred.uid, cred.gid, server._config.socket_path.c_str());
        c.out = encode_error("permission denied: uid " + std::to_string(cred.uid) +
                             " is not allowed (add it to control.allow_uids)") +
                "\n";
        c.closing = true;
    } else {
        bump(server._connections);
    }
    advance(slot);
}

std::vector<gid_t> control_server::loop::peer_groups(int fd) {
    std::vector<gid_t> groups(64);
    for (int tries = 0; tries < 2; ++tries) {
        socklen_t len = socklen_t(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
            groups.resize(len / sizeof(gid_t));
            return groups;
        }
        if (errno != ERANGE) break;
        groups.resize(len / sizeof(gid_t) + 1);
    }
    return {};
}

void control_server::loop::on_recv(uint32_t slot, int res) {
    connection& c = conns[slot];
    if (res == -EINTR || res == -EAGAIN) return arm_recv(slot);
    if (res < 0) return close_conn(slot);
    if (c.timed_out) {
        bump(server._idle_closed);
        c.in.clear();
        c.out = encode_error("closed: no request within " +
                             std::to_string(server._config.idle_timeout_ms) +
                             " ms (control idle timeout)") +
                "\n";
        c.closing = true;
        return advance(slot);
    }
    if (res == 0)
        c.peer_eof = true;
    else
        c.in.append(c.chunk.data(), size_t(res));
    process_input(c);
    advance(slot);
}

void control_server::loop::on_send(uint32_t slot, int res) {
    connection& c = conns[slot];
    if (res == -EINTR || res == -EAGAIN) return arm_send(slot);
    if (res <= 0) return close_conn(slot);
    // Short sends are normal: advance() sends the rest.
    c.out_sent += size_t(res);
    c.last_sent_ns = monotonic_ns();
    advance(slot);
}

void control_server::loop::dispatch(uint64_t tag, int res) {
    op o = tag_op(tag);
    if (o == op::cancel) return;
    --in_flight;
    if (stopping) {
        // Draining: every completion ends its op; nothing is re-armed.
        if (o == op::recv || o == op::send) conns[tag_slot(tag)].armed = false;
        return;
    }
    switch (o) {
    case op::accept: accept_armed = false; return on_accept(res);
    case op::retry: retry_armed = false; return arm_accept();
    case op::tick: tick_armed = false; return on_tick();
    case op::done: done_armed = false; return on_done();
    case op::stop:
        stop_armed = false;
        stopping = true;
        return;
    case op::recv: conns[tag_slot(tag)].armed = false; return on_recv(tag_slot(tag), res);
    case op::send: conns[tag_slot(tag)].armed = false; return on_send(tag_slot(tag), res);
    case op::cancel: return;
    }
}

void control_server::loop::reap() {
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        dispatch(io_uring_cqe_get_data64(cqe), cqe->res);
    }
    io_uring_cq_advance(&ring, seen);
}

void control_server::loop::cancel(uint64_t tag) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, tag, 0);
    io_uring_sqe_set_data64(s, make_tag(op::cancel));
}

void control_server::loop::drain() {
    stopping = true;
    if (accept_armed) cancel(make_tag(op::accept));
    if (retry_armed) cancel(make_tag(op::retry));
    if (stop_armed) cancel(make_tag(op::stop));
    if (tick_armed) cancel(make_tag(op::tick));
    if (done_armed) cancel(make_tag(op::done));
    for (uint32_t i = 0; i < conns.size(); ++i) {
        if (conns[i].armed) cancel(make_tag(conns[i].sending ? op::send : op::recv, i));
    }
    while (in_flight > 0) {
        int rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR) {
            SLUICE_LOG_ERROR("control: io_uring wait failed while stopping: %s",
                             std::strerror(-rc));
            break;
        }
        reap();
    }
}

void control_server::loop::run() {
    arm_accept();
    arm_stop();
    arm_tick();
    arm_done();
    while (!stopping) {
        int rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR) {
            SLUICE_LOG_ERROR("control: io_uring wait failed: %s; control socket %s stops "
                             "serving",
                             std::strerror(-rc), server._config.socket_path.c_str());
            break;
        }
        reap();
    }
    drain();
}
control_server::control_server(server_config config, std::map<std::string, handler> handlers)
    : _config(std::move(config)), _handlers(std::move(handlers)) {}

control_server::~control_server() {
    stop();
}

result<void> control_server::start_loop() {
    _loop = std::make_unique<loop>(*this);
    uint32_t tick_ms = std::max<uint32_t>(_config.tick_interval_ms, 10);
    _loop->tick_ts = {int64_t(tick_ms / 1000), int64_t(tick_ms % 1000) * 1'000'000};
    int rc = io_uring_queue_init(ring_entries, &_loop->ring, 0);
    if (rc < 0) {
        return make_error(errc::unsupported,
                          sys_error("cannot set up io_uring for the control socket", -rc) +
                              " (needs Linux >= 5.6 with io_uring enabled: check "
                              "/proc/sys/kernel/io_uring_disabled and seccomp)");
    }
    _loop->ring_ready = true;
    _thread = std::thread([this] { _loop->run(); });
    pthread_setname_np(_thread.native_handle(), "sluice-control");
    return ok_result();
}

void control_server::stop_loop() {
    if (_thread.joinable()) {
        uint64_t one = 1;
        (void)!::write(_stop_fd, &one, sizeof one);
        _thread.join();
    }
    _loop.reset();
}

} // namespace sluice::control
