#include "dataplane/kafka/kafka_listener.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/counter.h"
#include "base/log.h"
#include "base/tsc.h"
#include "dataplane/kafka/byte_order.h"
#include "dataplane/uring_setup.h"

namespace sluice::dataplane::kafka {

namespace {

enum class op : uint8_t { accept = 1, recv, send, cancel, wake };
constexpr uint16_t buffer_group = 0;

uint64_t tag(op o, uint32_t index) noexcept { return uint64_t(o) << 56 | index; }
op tag_op(uint64_t t) noexcept { return op(t >> 56); }
uint32_t tag_index(uint64_t t) noexcept { return uint32_t(t & 0xffffffu); }

inline void drop(std::atomic<uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

uint32_t pow2_ceil(uint32_t v) noexcept {
    uint32_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

struct tcp_address {
    sockaddr_storage storage{};
    socklen_t len = 0;
    std::string display;
};

result<tcp_address> parse_listen(const std::string& text) {
    const auto colon = text.rfind(':');
    auto bad = [&](const std::string& why) {
        return make_error(errc::bad_config, "Kafka listen address '" + text + "': " + why +
                                                " (use HOST:PORT, e.g. 127.0.0.1:9092 or [::1]:9092)");
    };
    if (colon == std::string::npos || colon == 0) return bad("no port");
    std::string host = text.substr(0, colon);
    const std::string port_text = text.substr(colon + 1);
    char* end = nullptr;
    const long port = std::strtol(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port < 0 || port > 65535)
        return bad("the port must be 0..65535");
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    tcp_address a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(uint16_t(port));
        a.len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(uint16_t(port));
        a.len = sizeof(sockaddr_in6);
    } else {
        return bad("'" + host + "' is not an IPv4 or IPv6 literal");
    }
    a.display = text;
    return a;
}

std::string listen_hint(int err) {
    switch (err) {
    case EADDRINUSE:
        return "another broker or sluiced listens there: stop it, or pick another port with "
               "--kafka ADDR:PORT or kafka.listen";
    case EADDRNOTAVAIL: return "use an address configured on this host";
    case EACCES: return "run as root or use a port >= 1024";
    default: return "check the address and port";
    }
}

} // namespace

const char* close_reason_name(close_reason r) noexcept {
    switch (r) {
    case close_reason::peer_closed: return "peer_closed";
    case close_reason::recv_error: return "recv_error";
    case close_reason::send_error: return "send_error";
    case close_reason::request_too_large: return "request_too_large";
    case close_reason::overrun: return "overrun";
    case close_reason::protocol: return "protocol";
    case close_reason::idle: return "idle";
    case close_reason::shutdown: return "shutdown";
    case close_reason::count_: break;
    }
    return "unknown";
}

struct response_slot {
    std::vector<uint8_t> bytes;
    bool ready = false;
};

struct kafka_listener::connection {
    int fd = -1;
    uint32_t gen = 0;
    bool open = false;    // the slot is in use (until its last operation completed)
    bool closing = false; // closed for the RX loop; waiting for operations to end
    bool recv_armed = false;
    bool cancel_sent = false;
    bool send_in_flight = false;
    bool queued = false; // in _ready
    bool held = false;   // a frame was refused (back-pressure): do not read
    bool eof = false;    // the peer closed its side: finish what it sent, then close
    uint32_t ops = 0;    // operations in the kernel
    std::unique_ptr<uint8_t[]> buf;
    uint32_t cap = 0, head = 0, tail = 0;
    std::unique_ptr<response_slot[]> responses;
    uint32_t r_first = 0, r_count = 0;
    uint32_t sent = 0; // bytes of responses[r_first] already sent
    int64_t active_ms = 0; // when bytes last arrived (monotonic)
    // Arrival stamps of complete frames not yet taken, in order. Offsets count bytes since
    // the connection opened (buf[head] is byte `consumed`), so compaction moves nothing.
    struct frame_stamp {
        uint64_t end; // one past the frame's last byte
        uint64_t tsc;
    };
    frame_stamp stamps[limits::kafka_frame_stamps];
    uint32_t stamp_first = 0, stamp_count = 0;
    uint64_t consumed = 0; // bytes of frames taken
    uint64_t scanned = 0;  // where the first frame not yet stamped starts
};

result<std::unique_ptr<kafka_listener>> kafka_listener::open(const kafka_listener_config& config) {
    if (config.listen.empty() || config.listen.size() > limits::kafka_listen_addresses_max)
        return make_error(errc::bad_config,
                          "kafka.listen must list 1.." +
                              std::to_string(limits::kafka_listen_addresses_max) + " addresses");
    if (config.connections_max == 0 || config.connections_max > limits::kafka_connections_max)
        return make_error(errc::bad_config, "kafka.connections_max must be 1.." +
                                                std::to_string(limits::kafka_connections_max));
    if (config.request_bytes_max < 1024 || config.request_bytes_max > limits::kafka_request_bytes_max)
        return make_error(errc::bad_config, "kafka.request_bytes_max must be 1024.." +
                                                std::to_string(limits::kafka_request_bytes_max));
    if (config.inflight_max == 0 || config.inflight_max > 64)
        return make_error(errc::bad_config, "kafka.inflight_max must be 1..64");
    std::unique_ptr<kafka_listener> l(new kafka_listener());
    SLUICE_TRY(l->setup(config));
    return l;
}

result<void> kafka_listener::setup(const kafka_listener_config& config) {
    _config = config;
    _multishot = config.multishot;
    for (const auto& text : config.listen) {
        auto a = parse_listen(text);
        if (!a) return std::move(a).err();
        const int fd = socket(a->storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return make_error(errc::io_error, "cannot create a TCP socket for Kafka on " +
                                                  a->display + ": " + std::strerror(errno));
        _listen_fds.push_back(fd);
        const int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, reinterpret_cast<const sockaddr*>(&a->storage), a->len) < 0 ||
            ::listen(fd, 1024) < 0) {
            const int err = errno;
            return make_error(err == EADDRINUSE ? errc::busy
                              : err == EACCES   ? errc::permission_denied
                                                : errc::invalid_argument,
                              "cannot listen for Kafka on " + a->display + ": " +
                                  std::strerror(err) + " (" + listen_hint(err) + ")");
        }
        sockaddr_storage bound{};
        socklen_t bound_len = sizeof bound;
        uint16_t port = 0;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0)
            port = ntohs(bound.ss_family == AF_INET6
                             ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
        _ports.push_back(port);
        _display.push_back(a->display);
        _accept_armed.push_back(false);
    }

    _buffers_size = size_t{_buffer_bytes} * _buffer_count;
    void* mem = mmap(nullptr, _buffers_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED)
        return make_error(errc::no_space, std::string("cannot allocate the Kafka receive buffers: ") +
                                              std::strerror(errno));
    _buffers = static_cast<uint8_t*>(mem);

    // Every connection may have a receive, a send and a cancel in the kernel at once.
    // (The kernel wants at least as many CQ entries as SQ entries.)
    const uint32_t cq = std::clamp<uint32_t>(pow2_ceil(config.connections_max * 6 + 64), 512, 1u << 16);
    const int rc = init_owner_ring(&_ring, 256, cq, &_ring_disabled);
    if (rc < 0)
        return make_error(errc::unsupported, std::string("cannot set up io_uring for Kafka: ") +
                                                 std::strerror(-rc) +
                                                 " (kernel too old, or io_uring disabled: check "
                                                 "/proc/sys/kernel/io_uring_disabled)");
    _ring_ready = true;

    const uint32_t entries = pow2_ceil(_buffer_count);
    const int reg_rc =
        register_buf_ring(&_ring, entries, buffer_group, &_buf_ring, &_buf_ring_size);
    if (reg_rc == -ENOMEM)
        return make_error(errc::no_space, "cannot allocate the Kafka buffer ring");
    if (reg_rc < 0)
        return make_error(errc::unsupported, std::string("cannot register the Kafka buffer ring: ") +
                                                 std::strerror(-reg_rc) + " (kernel before 5.19)");
    _buf_ring_mask = io_uring_buf_ring_mask(entries);
    for (uint32_t id = 0; id < _buffer_count; ++id)
        io_uring_buf_ring_add(_buf_ring, buffer(id), _buffer_bytes, uint16_t(id), _buf_ring_mask,
                              int(id));
    io_uring_buf_ring_advance(_buf_ring, int(_buffer_count));

    // Twice the limit: a closed connection keeps its slot until its last operation has
    // completed, and must not count against the clients that replace it.
    _slots = config.connections_max * 2;
    _conns = std::make_unique<connection[]>(_slots);
    _free.reserve(_slots);
    for (uint32_t i = _slots; i-- > 0;) _free.push_back(i);
    _ready.reserve(size_t{_slots} * 2);
    _wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (_wake_fd < 0)
        return make_error(errc::io_error, std::string("cannot create the Kafka wake eventfd: ") +
                                              std::strerror(errno));
    return ok_result();
}

kafka_listener::~kafka_listener() {
    if (_ring_ready) io_uring_queue_exit(&_ring);
    if (_buf_ring) munmap(_buf_ring, _buf_ring_size);
    if (_buffers) munmap(_buffers, _buffers_size);
    if (_wake_fd >= 0) ::close(_wake_fd);
    for (int fd : _listen_fds) ::close(fd);
    if (_conns)
        for (uint32_t i = 0; i < _slots; ++i)
            if (_conns[i].fd >= 0) ::close(_conns[i].fd);
}

void kafka_listener::start() noexcept {
    _owner = std::this_thread::get_id();
    if (_ring_disabled) {
        const long rc = syscall(__NR_io_uring_register, _ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
                                nullptr, 0);
        SLUICE_ASSERT(rc == 0);
    }
    _started = true;
    _now_ms = monotonic_ns() / 1'000'000;
    for (uint32_t l = 0; l < _listen_fds.size(); ++l) arm_accept(l);
    arm_wake();
}

// One read of the wake eventfd is always in the kernel: a write completes it (and ends a
// wait()); poll() re-arms it. The read also resets the eventfd's count.
void kafka_listener::arm_wake() noexcept {
    io_uring_sqe* s = sqe();
    io_uring_prep_read(s, _wake_fd, &_wake_value, sizeof _wake_value, 0);
    io_uring_sqe_set_data64(s, tag(op::wake, 0));
}

void kafka_listener::wait(uint32_t timeout_us) noexcept {
    if (!_started) [[unlikely]]
        start();
    if (io_uring_cq_ready(&_ring) != 0) return;
    __kernel_timespec ts{timeout_us / 1'000'000, (long long)(timeout_us % 1'000'000) * 1000};
    io_uring_cqe* cqe = nullptr;
    // -EINTR just ends the wait; the caller polls. After a timeout (-ETIME) the next poll
    // looks at idle connections and accept retries (else due every 256 polls, which a
    // lcore that mostly waits would take seconds to reach).
    if (io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, &ts, nullptr) == -ETIME) _polls = 0;
}

io_uring_sqe* kafka_listener::sqe() noexcept {
    io_uring_sqe* s = io_uring_get_sqe(&_ring);
    if (s == nullptr) {
        (void)io_uring_submit(&_ring);
        s = io_uring_get_sqe(&_ring);
    }
    SLUICE_ASSERT(s != nullptr);
    return s;
}

// One accept at a time per address, armed again once its connection is taken or refused:
// a multishot accept would go on installing descriptors in the kernel for every client
// in the backlog before the loop sees them, past any budget (control/fd_budget.h).
void kafka_listener::arm_accept(uint32_t l) noexcept {
    io_uring_sqe* s = sqe();
    io_uring_prep_accept(s, _listen_fds[l], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, tag(op::accept, l));
    _accept_armed[l] = true;
}

void kafka_listener::arm_recv(uint32_t index) noexcept {
    connection& c = _conns[index];
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c.fd, nullptr, 0, 0);
    if (_multishot) s->ioprio |= IORING_RECV_MULTISHOT;
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = buffer_group;
    io_uring_sqe_set_data64(s, tag(op::recv, index));
    c.recv_armed = true;
    c.cancel_sent = false;
    ++c.ops;
}

void kafka_listener::on_accept(uint32_t l, const io_uring_cqe* cqe) noexcept {
    if (!(cqe->flags & IORING_CQE_F_MORE)) _accept_armed[l] = false;
    bool retry_later = false;
    if (cqe->res < 0) {
        bump(_counters.accept_errors);
        // Out of file descriptors or memory: the connection stays in the backlog and would
        // fail again at once; try again a little later instead of spinning on it.
        retry_later = cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOMEM ||
                      cqe->res == -ENOBUFS;
    } else if (_counters.connections_open.load(std::memory_order_relaxed) >=
                   _config.connections_max ||
               _fds_held >= _config.connections_max + limits::kafka_closing_fds_max ||
               _free.empty()) {
        // Beyond connections_max (or too many closing ones still holding their
        // descriptors): refused as the kernel would refuse a full backlog.
        ::close(cqe->res);
        bump(_counters.connections_refused);
    } else {
        const uint32_t index = _free.back();
        _free.pop_back();
        connection& c = _conns[index];
        const uint32_t gen = c.gen;
        c = connection{};
        c.gen = gen;
        c.fd = cqe->res;
        ++_fds_held;
        c.open = true;
        c.active_ms = monotonic_ns() / 1'000'000;
        const int one = 1;
        (void)setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // The frame buffer comes with the first bytes (append): an idle connection costs its
        // slot, its response slots and its socket, not 64 KiB.
        c.responses.reset(new (std::nothrow) response_slot[_config.inflight_max]);
        bump(_counters.connections_total);
        bump(_counters.connections_open);
        if (!c.responses) {
            // Nothing is armed on it yet: close() frees the slot (a second free would put
            // the slot on the free list twice).
            close(conn_ref{index, c.gen}, close_reason::overrun);
        } else {
            arm_recv(index);
        }
    }
    if (retry_later && !_accept_armed[l]) {
        _accept_retry_ms = monotonic_ns() / 1'000'000 + limits::kafka_accept_retry_ms;
    } else if (!_accept_armed[l] && _accept_retry_ms == 0) {
        arm_accept(l);
    }
}

bool kafka_listener::append(connection& c, const uint8_t* data, uint32_t len) noexcept {
    if (c.tail + len > c.cap && c.head > 0) {
        std::memmove(c.buf.get(), c.buf.get() + c.head, c.tail - c.head);
        c.tail -= c.head;
        c.head = 0;
    }
    if (c.tail + len > c.cap) {
        const uint64_t hard = uint64_t(_config.request_bytes_max) + 4 + limits::kafka_connection_slack_bytes;
        if (uint64_t(c.tail) + len > hard) return false;
        const uint64_t doubled = std::max<uint64_t>(uint64_t(c.cap) * 2, limits::kafka_connection_buffer_initial);
        const uint32_t cap = uint32_t(std::min<uint64_t>(hard, std::max<uint64_t>(doubled, c.tail + len)));
        std::unique_ptr<uint8_t[]> grown(new (std::nothrow) uint8_t[cap]);
        if (!grown) return false;
        if (c.tail > 0) std::memcpy(grown.get(), c.buf.get(), c.tail);
        c.buf = std::move(grown);
        c.cap = cap;
    }
    std::memcpy(c.buf.get() + c.tail, data, len);
    c.tail += len;
    return true;
}

// The frames this receive completed arrived now: one stamp each (a frame header read per
// frame, no clock read). A frame too large or too short is left for peek_frame to refuse.
void kafka_listener::stamp_frames(connection& c, uint64_t now_tsc) noexcept {
    const uint64_t received = c.consumed + (c.tail - c.head);
    while (received - c.scanned >= 4) {
        const uint8_t* p = c.buf.get() + c.head + (c.scanned - c.consumed);
        const uint32_t size = load_be32(p);
        if (size > _config.request_bytes_max || size < 8) return;
        if (received - c.scanned < uint64_t(size) + 4) return;
        c.scanned += uint64_t(size) + 4;
        if (c.stamp_count == limits::kafka_frame_stamps) {
            // Full: the newest stamp (older than now) covers this frame too.
            c.stamps[(c.stamp_first + c.stamp_count - 1) % limits::kafka_frame_stamps].end =
                c.scanned;
        } else {
            c.stamps[(c.stamp_first + c.stamp_count) % limits::kafka_frame_stamps] = {c.scanned,
                                                                                      now_tsc};
            ++c.stamp_count;
        }
    }
}

void kafka_listener::return_buffer(uint32_t bid) noexcept {
    io_uring_buf_ring_add(_buf_ring, buffer(bid), _buffer_bytes, uint16_t(bid), _buf_ring_mask, 0);
    io_uring_buf_ring_advance(_buf_ring, 1);
}

void kafka_listener::on_recv(uint32_t index, const io_uring_cqe* cqe) noexcept {
    connection& c = _conns[index];
    const bool ended = !(cqe->flags & IORING_CQE_F_MORE);
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        const uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (cqe->res > 0 && !c.closing) {
            bump(_counters.bytes_in, uint64_t(cqe->res));
            // One clock read per receive completion (up to 64 KiB), not per event.
            c.active_ms = monotonic_ns() / 1'000'000;
            if (append(c, buffer(bid), uint32_t(cqe->res))) {
                stamp_frames(c, tsc_now());
                enqueue(index);
            } else {
                close(conn_ref{index, c.gen}, close_reason::overrun);
            }
        }
        return_buffer(bid);
    }
    if (ended) {
        c.recv_armed = false;
        c.cancel_sent = false;
        --c.ops;
    }
    if (!c.closing) {
        if (cqe->res == 0) {
            // The requests it sent before closing are still handled (acks=0 clients close
            // right after their last send); update_reading() closes once they are done.
            c.eof = true;
            enqueue(index);
        } else if (cqe->res == -EINVAL && _multishot) {
            // A kernel without multishot recv: single-shot receives from now on.
            SLUICE_LOG_INFO("kernel refuses multishot recv: Kafka connections use single-shot "
                            "receives");
            _multishot = false;
        } else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
            close(conn_ref{index, c.gen}, close_reason::recv_error);
        }
    }
    if (!c.closing) update_reading(index);
    op_done(index);
}

void kafka_listener::on_send(uint32_t index, const io_uring_cqe* cqe) noexcept {
    connection& c = _conns[index];
    c.send_in_flight = false;
    --c.ops;
    if (!c.closing) {
        if (cqe->res < 0) {
            close(conn_ref{index, c.gen}, close_reason::send_error);
        } else {
            bump(_counters.bytes_out, uint64_t(cqe->res));
            response_slot& r = c.responses[c.r_first];
            c.sent += uint32_t(cqe->res);
            if (c.sent >= r.bytes.size()) {
                r.bytes.clear();
                r.ready = false;
                c.r_first = (c.r_first + 1) % _config.inflight_max;
                --c.r_count;
                c.sent = 0;
                enqueue(index); // a response slot freed: buffered frames may be taken
                update_reading(index);
            }
            start_send(index);
        }
    }
    op_done(index);
}

void kafka_listener::op_done(uint32_t index) noexcept {
    connection& c = _conns[index];
    if (c.closing && c.ops == 0 && c.open) free_connection(index);
}

void kafka_listener::free_connection(uint32_t index) noexcept {
    connection& c = _conns[index];
    if (c.fd >= 0) {
        ::close(c.fd);
        --_fds_held;
    }
    c.fd = -1;
    c.open = false;
    c.buf.reset();
    c.responses.reset();
    ++c.gen;
    _free.push_back(index);
}

bool kafka_listener::can_take(uint32_t index) const noexcept {
    const connection& c = _conns[index];
    return c.open && !c.closing && c.r_count < _config.inflight_max;
}

bool kafka_listener::has_frame(const connection& c) const noexcept {
    const uint32_t avail = c.tail - c.head;
    if (avail < 4) return false;
    const uint8_t* p = c.buf.get() + c.head;
    const uint32_t size = load_be32(p);
    return size <= _config.request_bytes_max && avail >= size + 4;
}

void kafka_listener::update_reading(uint32_t index) noexcept {
    connection& c = _conns[index];
    if (!c.open || c.closing) return;
    if (c.eof) {
        // Nothing more will arrive: close once every complete request is answered.
        if (!has_frame(c) && c.r_count == 0) close(conn_ref{index, c.gen}, close_reason::peer_closed);
        return;
    }
    const bool want = !c.held && c.r_count < _config.inflight_max &&
                      c.tail - c.head < _config.request_bytes_max + 4;
    if (want && !c.recv_armed) {
        arm_recv(index);
    } else if (!want && c.recv_armed && _multishot && !c.cancel_sent) {
        // Stop reading: TCP's window holds the client back until the connection drains.
        io_uring_sqe* s = sqe();
        io_uring_prep_cancel64(s, tag(op::recv, index), 0);
        io_uring_sqe_set_data64(s, tag(op::cancel, index));
        c.cancel_sent = true;
        ++c.ops;
        bump(_counters.paused);
    }
}

int kafka_listener::peek_frame(uint32_t index, kafka_frame* out) noexcept {
    connection& c = _conns[index];
    const uint32_t avail = c.tail - c.head;
    if (avail < 4) return 0;
    const uint8_t* p = c.buf.get() + c.head;
    const uint32_t size = load_be32(p);
    if (size > _config.request_bytes_max || size < 8) {
        // Kafka closes a connection whose request exceeds socket.request.max.bytes; a frame
        // shorter than a request header cannot be answered either.
        close(conn_ref{index, c.gen}, close_reason::request_too_large);
        return -1;
    }
    if (avail < size + 4) return 0;
    out->conn = conn_ref{index, c.gen};
    out->data = p + 4;
    out->len = size;
    // The first stamp reaching past the frame's end is the receive that completed it.
    out->arrival_tsc = 0;
    const uint64_t end = c.consumed + size + 4;
    for (uint32_t i = 0; i < c.stamp_count; ++i) {
        const connection::frame_stamp& st =
            c.stamps[(c.stamp_first + i) % limits::kafka_frame_stamps];
        if (st.end >= end) {
            out->arrival_tsc = st.tsc;
            break;
        }
    }
    return 1;
}

void kafka_listener::consume_frame(uint32_t index, const kafka_frame& f) noexcept {
    connection& c = _conns[index];
    c.head += f.len + 4;
    c.consumed += uint64_t(f.len) + 4;
    while (c.stamp_count > 0 && c.stamps[c.stamp_first].end <= c.consumed) {
        c.stamp_first = (c.stamp_first + 1) % limits::kafka_frame_stamps;
        --c.stamp_count;
    }
    if (c.head == c.tail) c.head = c.tail = 0;
    c.held = false;
    bump(_counters.frames);
}

uint32_t kafka_listener::pop_ready() noexcept {
    const uint32_t index = _ready[_ready_head++];
    if (_ready_head == _ready.size()) {
        _ready.clear();
        _ready_head = 0;
    }
    _conns[index].queued = false;
    return index;
}

void kafka_listener::enqueue(uint32_t index, bool held) noexcept {
    connection& c = _conns[index];
    if (held) c.held = true;
    if (c.queued) return;
    c.queued = true;
    if (_ready_head > 0 && _ready.size() == _ready.capacity()) {
        _ready.erase(_ready.begin(), _ready.begin() + ptrdiff_t(_ready_head));
        _ready_head = 0;
    }
    _ready.push_back(index);
}

int32_t kafka_listener::reserve_response(conn_ref ref) noexcept {
    if (!alive(ref)) return -1;
    connection& c = _conns[ref.index];
    if (c.r_count == _config.inflight_max) return -1;
    const uint32_t slot = (c.r_first + c.r_count) % _config.inflight_max;
    ++c.r_count;
    c.responses[slot].bytes.clear();
    c.responses[slot].ready = false;
    return int32_t(slot);
}

std::vector<uint8_t>* kafka_listener::response_buffer(conn_ref ref, int32_t slot) noexcept {
    if (!alive(ref) || slot < 0) return nullptr;
    return &_conns[ref.index].responses[slot].bytes;
}

void kafka_listener::response_ready(conn_ref ref, int32_t slot) noexcept {
    if (!alive(ref) || slot < 0) return;
    _conns[ref.index].responses[slot].ready = true;
    start_send(ref.index);
}

void kafka_listener::start_send(uint32_t index) noexcept {
    connection& c = _conns[index];
    if (c.closing || c.send_in_flight || c.r_count == 0) return;
    response_slot& r = c.responses[c.r_first];
    if (!r.ready) return;
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c.fd, r.bytes.data() + c.sent, r.bytes.size() - c.sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, tag(op::send, index));
    c.send_in_flight = true;
    ++c.ops;
}

bool kafka_listener::alive(conn_ref ref) const noexcept {
    if (ref.index >= _slots) return false;
    const connection& c = _conns[ref.index];
    return c.open && !c.closing && c.gen == ref.gen;
}

void kafka_listener::close(conn_ref ref, close_reason why) noexcept {
    if (!alive(ref)) return;
    connection& c = _conns[ref.index];
    c.closing = true;
    bump(_counters.closed[int(why)]);
    drop(_counters.connections_open);
    // Ends the receive (it completes with 0) and fails a pending send; the slot is freed
    // when the last operation has completed.
    ::shutdown(c.fd, SHUT_RDWR);
    if (c.recv_armed && !c.cancel_sent) {
        io_uring_sqe* s = sqe();
        io_uring_prep_cancel64(s, tag(op::recv, ref.index), 0);
        io_uring_sqe_set_data64(s, tag(op::cancel, ref.index));
        c.cancel_sent = true;
        ++c.ops;
    }
    if (c.ops == 0) free_connection(ref.index);
}

void kafka_listener::close_all() noexcept {
    for (uint32_t i = 0; i < _slots; ++i)
        if (_conns[i].open && !_conns[i].closing) close(conn_ref{i, _conns[i].gen}, close_reason::shutdown);
    if (_started) (void)io_uring_submit(&_ring);
}

// Every 256 polls: accepts that failed for want of descriptors are re-armed once
// kafka_accept_retry_ms has passed; connections with nothing received and nothing to answer for
// idle_timeout_ms are closed.
void kafka_listener::expire_idle() noexcept {
    _now_ms = monotonic_ns() / 1'000'000;
    if (_accept_retry_ms != 0 && _now_ms >= _accept_retry_ms) {
        _accept_retry_ms = 0;
        for (uint32_t l = 0; l < _listen_fds.size(); ++l)
            if (!_accept_armed[l]) arm_accept(l);
    }
    if (_config.idle_timeout_ms == 0) return;
    for (uint32_t i = 0; i < _slots; ++i) {
        connection& c = _conns[i];
        if (c.open && !c.closing && c.r_count == 0 &&
            _now_ms - c.active_ms >= int64_t(_config.idle_timeout_ms))
            close(conn_ref{i, c.gen}, close_reason::idle);
    }
}

uint32_t kafka_listener::poll() noexcept {
    if (!_started) [[unlikely]]
        start();
    if ((_polls++ & 255) == 0) expire_idle();
    SLUICE_DASSERT(std::this_thread::get_id() == _owner);
    const unsigned sq_flags = IO_URING_READ_ONCE(*_ring.sq.kflags);
    if (io_uring_sq_ready(&_ring) != 0 ||
        (sq_flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0)
        (void)io_uring_submit_and_get_events(&_ring);
    uint32_t seen = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&_ring, head, cqe) {
        ++seen;
        const uint64_t t = io_uring_cqe_get_data64(cqe);
        const uint32_t index = tag_index(t);
        switch (tag_op(t)) {
        case op::accept: on_accept(index, cqe); break;
        case op::recv: on_recv(index, cqe); break;
        case op::send: on_send(index, cqe); break;
        case op::cancel:
            --_conns[index].ops;
            op_done(index);
            break;
        case op::wake:
            // An error (the ring closing) ends the wake-ups; waits then end by their timeout.
            if (cqe->res >= 0) arm_wake();
            break;
        }
    }
    io_uring_cq_advance(&_ring, seen);
    // What the completions started (re-armed receives, sends) goes out now, not a poll later.
    if (io_uring_sq_ready(&_ring) != 0) (void)io_uring_submit(&_ring);
    return seen;
}

} // namespace sluice::dataplane::kafka
