#include "dataplane/kernel_udp_rx.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/log.h"
#include "dataplane/uring_setup.h"

namespace sluice::dataplane {

// Fallback mode: the msghdr, iovec and control buffer of one in-flight recvmsg. The kernel
// reads them when the request is issued, so each slot owns its own.
struct kernel_udp_rx::slot {
    msghdr msg;
    iovec iov;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))];
};

namespace {

constexpr uint64_t multishot_tag = ~uint64_t{0}; // user_data of the multishot request
constexpr uint16_t buffer_group = 0;
// Room for the one cmsg we enable, SO_RXQ_OVFL's 32-bit drop counter.
constexpr uint32_t control_bytes = CMSG_SPACE(sizeof(uint32_t));
constexpr uint32_t io_uring_cq_entries_max = 65536;

uint32_t pow2_ceil(uint32_t v) noexcept {
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

size_t round_up(size_t v, size_t to) noexcept {
    return (v + to - 1) / to * to;
}

std::string errno_text(int err) {
    return std::strerror(err);
}

struct socket_address {
    sockaddr_storage storage{};
    socklen_t len = 0;
    std::string display; // "127.0.0.1:9000" or "[::1]:9000"
};

result<socket_address> parse_address(const std::string& addr, uint16_t port) {
    std::string host = addr;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    socket_address out;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        out.len = sizeof(sockaddr_in);
        out.display = host + ":" + std::to_string(port);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        out.len = sizeof(sockaddr_in6);
        out.display = "[" + host + "]:" + std::to_string(port);
    } else {
        return make_error(
            errc::invalid_argument,
            "invalid UDP bind address '" + addr +
                "': not an IPv4 or IPv6 literal (use e.g. 127.0.0.1, 0.0.0.0 or ::1)");
    }
    return out;
}

std::string bind_hint(int err) {
    switch (err) {
    case EADDRINUSE: return "stop the other listener or pass --udp-port";
    case EADDRNOTAVAIL: return "use an address configured on this host";
    case EACCES: return "run as root or use a port >= 1024";
    default: return "check the bind address and port";
    }
}

error bind_error(const socket_address& addr, int err) {
    return make_error(err == EADDRINUSE ? errc::busy
                      : err == EACCES   ? errc::permission_denied
                                        : errc::invalid_argument,
                      "cannot bind UDP " + addr.display + ": " + errno_text(err) + " (" +
                          bind_hint(err) + ")");
}

// A kernel that knows IORING_RECV_MULTISHOT on recvmsg completes this with the datagram
// and IORING_CQE_F_MORE; an older one fails the request with -EINVAL. A private socketpair
// keeps the probe off the real socket and off the network.
bool kernel_supports_multishot_recvmsg() {
    struct probe {
        io_uring ring{};
        bool ring_ready = false;
        int fds[2] = {-1, -1};
        void* br_mem = MAP_FAILED;
        size_t br_bytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        alignas(16) char buf[256];
        msghdr msg{};
        ~probe() {
            // The ring is torn down (its requests cancelled) before the memory they use.
            if (ring_ready) io_uring_queue_exit(&ring);
            if (br_mem != MAP_FAILED) munmap(br_mem, br_bytes);
            if (fds[0] >= 0) close(fds[0]);
            if (fds[1] >= 0) close(fds[1]);
        }
    } p;
    if (io_uring_queue_init(4, &p.ring, 0) < 0) return false;
    p.ring_ready = true;
    p.br_mem =
        mmap(nullptr, p.br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p.br_mem == MAP_FAILED) return false;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, p.fds) < 0) return false;
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(p.br_mem);
    reg.ring_entries = 1;
    reg.bgid = buffer_group;
    if (io_uring_register_buf_ring(&p.ring, &reg, 0) < 0) return false;
    auto* br = static_cast<io_uring_buf_ring*>(p.br_mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_ring_add(br, p.buf, sizeof p.buf, 0, io_uring_buf_ring_mask(1), 0);
    io_uring_buf_ring_advance(br, 1);
    if (write(p.fds[1], "p", 1) != 1) return false;
    io_uring_sqe* sqe = io_uring_get_sqe(&p.ring);
    io_uring_prep_recvmsg_multishot(sqe, p.fds[0], &p.msg, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffer_group;
    if (io_uring_submit(&p.ring) != 1) return false;
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec timeout{1, 0};
    if (io_uring_wait_cqe_timeout(&p.ring, &cqe, &timeout) != 0) return false;
    return cqe->res >= 0 && (cqe->flags & IORING_CQE_F_BUFFER);
}

} // namespace

result<void> check_udp_port_free(const std::string& bind_addr, uint16_t port) {
    auto addr = parse_address(bind_addr, port);
    if (!addr) return std::move(addr).err();
    // A sluiced killed a moment ago (kill -9, then a restart) still holds the port while the
    // kernel tears its io_uring down, after the process is gone (~0.1 s): only a port
    // that stays taken is another listener.
    for (uint32_t waited_ms = 0;; waited_ms += 50) {
        const int fd = socket(addr->storage.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return make_error(errc::io_error, "cannot create UDP socket for " + addr->display +
                                                  ": " + errno_text(errno));
        const int rc = bind(fd, reinterpret_cast<const sockaddr*>(&addr->storage), addr->len);
        const int err = errno;
        close(fd);
        if (rc == 0) return ok_result();
        if (err != EADDRINUSE || waited_ms >= limits::udp_port_release_wait_ms)
            return bind_error(*addr, err);
        usleep(50 * 1000);
    }
}

result<std::unique_ptr<kernel_udp_rx>> kernel_udp_rx::open(const kernel_rx_config& config) {
    if (config.buffers == 0 || config.buffers > buffers_max)
        return make_error(errc::invalid_argument, "kernel UDP receive buffers must be 1.." +
                                                      std::to_string(buffers_max) + ", got " +
                                                      std::to_string(config.buffers));
    if (config.buffer_bytes == 0 || config.buffer_bytes > buffer_bytes_max)
        return make_error(errc::invalid_argument, "kernel UDP buffer_bytes must be 1.." +
                                                      std::to_string(buffer_bytes_max) + ", got " +
                                                      std::to_string(config.buffer_bytes));
    auto addr = parse_address(config.bind_addr, config.port);
    if (!addr) return std::move(addr).err();

    std::unique_ptr<kernel_udp_rx> rx(new kernel_udp_rx());
    rx->_fd = socket(addr->storage.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rx->_fd < 0)
        return make_error(errc::io_error, "cannot create UDP socket for " + addr->display + ": " +
                                              errno_text(errno));

    // SO_RCVBUFFORCE lets root go past net.core.rmem_max; others get what rmem_max allows.
    if (setsockopt(rx->_fd, SOL_SOCKET, SO_RCVBUFFORCE, &config.rcvbuf_bytes, sizeof(int)) < 0)
        (void)setsockopt(rx->_fd, SOL_SOCKET, SO_RCVBUF, &config.rcvbuf_bytes, sizeof(int));
    int rcvbuf = 0;
    socklen_t optlen = sizeof rcvbuf;
    // The kernel reports twice the usable size (it counts its bookkeeping).
    if (getsockopt(rx->_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &optlen) == 0 &&
        rcvbuf / 2 < config.rcvbuf_bytes)
        SLUICE_LOG_WARN("UDP receive buffer is %d bytes, asked for %d (raise net.core.rmem_max "
                        "or run as root)",
                        rcvbuf / 2, config.rcvbuf_bytes);
    const int one = 1;
    // Without it kernel_drops() stays 0; receiving still works.
    (void)setsockopt(rx->_fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);

    if (config.reuse_port &&
        setsockopt(rx->_fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        return make_error(errc::io_error, "cannot set SO_REUSEPORT on UDP " + addr->display +
                                              ": " + errno_text(errno) +
                                              " (use one RX lcore: --rx 1)");
    if (bind(rx->_fd, reinterpret_cast<const sockaddr*>(&addr->storage), addr->len) < 0)
        return bind_error(*addr, errno);
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    if (getsockname(rx->_fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0)
        rx->_local_port =
            ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

    bool multishot = config.multishot;
    if (multishot && !kernel_supports_multishot_recvmsg()) {
        SLUICE_LOG_INFO("kernel refuses multishot recvmsg: receiving on %s with %u single-shot "
                        "requests",
                        addr->display.c_str(), config.buffers);
        multishot = false;
    }
    SLUICE_TRY(rx->setup_ring(config, multishot));
    return rx;
}

result<void> kernel_udp_rx::setup_ring(const kernel_rx_config& config, bool multishot) {
    _multishot = multishot;
    _buffer_count = config.buffers;
    // Multishot writes a header and the cmsg area in front of each payload.
    const size_t front = multishot ? sizeof(io_uring_recvmsg_out) + control_bytes : 0;
    _stride = static_cast<uint32_t>(round_up(front + config.buffer_bytes, 64));
    _payload_bytes = static_cast<uint32_t>(_stride - front);
    _buffers_bytes = size_t{_stride} * _buffer_count;
    // Populated up front: no page faults on the receive path.
    void* mem = mmap(nullptr, _buffers_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED)
        return make_error(errc::no_space,
                          "cannot allocate " + std::to_string(_buffers_bytes >> 20) +
                              " MiB of UDP receive buffers: " + errno_text(errno) +
                              " (lower the kernel receive buffers or buffer_bytes)");
    _buffers = static_cast<char*>(mem);

    const uint32_t sq_entries = multishot ? 8 : pow2_ceil(_buffer_count);
    // Every buffer can complete before the owner reaps, plus the multishot's final CQE.
    const uint32_t cq_entries = std::min(pow2_ceil(_buffer_count + 8), io_uring_cq_entries_max);
    bool disabled = false;
    const int rc = init_owner_ring(&_ring, sq_entries, cq_entries, &disabled);
    if (rc < 0)
        return make_error(errc::unsupported, "cannot set up io_uring: " + errno_text(-rc) +
                                                 " (kernel too old, or io_uring disabled: check "
                                                 "/proc/sys/kernel/io_uring_disabled and seccomp)");
    _ring_ready = true;
    _ring_disabled = disabled; // enabled by its owner thread in start()

    if (multishot) {
        const uint32_t entries = pow2_ceil(_buffer_count);
        const int reg_rc =
            register_buf_ring(&_ring, entries, buffer_group, &_buf_ring, &_buf_ring_bytes);
        if (reg_rc == -ENOMEM)
            return make_error(errc::no_space,
                              "cannot allocate the io_uring buffer ring: " + errno_text(ENOMEM));
        if (reg_rc < 0)
            return make_error(errc::unsupported,
                              "cannot register the io_uring buffer ring: " + errno_text(-reg_rc) +
                                  " (kernel before 5.19: open with multishot = false)");
        _buf_ring_mask = io_uring_buf_ring_mask(entries);
        for (uint32_t id = 0; id < _buffer_count; ++id)
            io_uring_buf_ring_add(_buf_ring, buffer(id), _stride, static_cast<uint16_t>(id),
                                  _buf_ring_mask, static_cast<int>(id));
        io_uring_buf_ring_advance(_buf_ring, static_cast<int>(_buffer_count));
        _msg_template.msg_namelen = 0; // the sender's address is not needed
        _msg_template.msg_controllen = control_bytes;
    } else {
        _slots = std::make_unique<slot[]>(_buffer_count);
        for (uint32_t id = 0; id < _buffer_count; ++id) {
            slot& s = _slots[id];
            s.iov = iovec{buffer(id), _stride};
            s.msg = msghdr{};
            s.msg.msg_iov = &s.iov;
            s.msg.msg_iovlen = 1;
        }
    }
    return ok_result();
}

kernel_udp_rx::~kernel_udp_rx() {
    // The ring goes first: its teardown cancels the requests that point into the buffers.
    if (_ring_ready) io_uring_queue_exit(&_ring);
    if (_buf_ring) munmap(_buf_ring, _buf_ring_bytes);
    if (_buffers) munmap(_buffers, _buffers_bytes);
    if (_fd >= 0) close(_fd);
}

void kernel_udp_rx::start() noexcept {
    _owner = std::this_thread::get_id();
    if (_ring_disabled) {
        // liburing 2.3 declares io_uring_enable_rings() but its .so does not export it
        // (fixed in 2.4): register directly.
        const long rc = syscall(__NR_io_uring_register, _ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
                                nullptr, 0);
        SLUICE_ASSERT(rc == 0);
    }
    _started = true;
    if (_multishot) {
        arm_multishot();
    } else {
        for (uint32_t id = 0; id < _buffer_count; ++id)
            arm_slot(id);
    }
}

void kernel_udp_rx::arm_multishot() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    SLUICE_ASSERT(sqe != nullptr); // the SQ holds nothing else
    io_uring_prep_recvmsg_multishot(sqe, _fd, &_msg_template, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffer_group;
    io_uring_sqe_set_data64(sqe, multishot_tag);
    _armed = true;
}

void kernel_udp_rx::arm_slot(uint32_t id) noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    SLUICE_ASSERT(sqe != nullptr); // SQ size >= slots, and each slot has one request at most
    slot& s = _slots[id];
    // The kernel may not write the control length back: a zeroed area reads as no cmsg.
    std::memset(s.control, 0, sizeof s.control);
    s.msg.msg_control = s.control;
    s.msg.msg_controllen = sizeof s.control;
    s.msg.msg_flags = 0;
    // MSG_TRUNC: the result is the datagram's real length, so an oversize one is seen.
    io_uring_prep_recvmsg(sqe, _fd, &s.msg, MSG_TRUNC);
    io_uring_sqe_set_data64(sqe, id);
}

uint64_t kernel_udp_rx::kernel_drops() const noexcept {
    uint32_t meminfo[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof meminfo;
    if (_fd >= 0 && getsockopt(_fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) == 0 &&
        len > SK_MEMINFO_DROPS * sizeof(uint32_t)) {
        // The kernel's count is 32-bit: extend it across wraps (one reader, the control
        // thread, so a plain read-modify-write suffices).
        const uint64_t seen = _meminfo_drops.load(std::memory_order_relaxed);
        uint64_t now = (seen & ~uint64_t{0xffffffff}) | meminfo[SK_MEMINFO_DROPS];
        if (now < seen) now += uint64_t{1} << 32;
        _meminfo_drops.store(now, std::memory_order_relaxed);
        return now;
    }
    return _kernel_drops.load(std::memory_order_relaxed);
}

void kernel_udp_rx::note_drop_counter(const cmsghdr* cmsg) noexcept {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SO_RXQ_OVFL) return;
    if (cmsg->cmsg_len < CMSG_LEN(sizeof(uint32_t))) return;
    uint32_t counter;
    std::memcpy(&counter, CMSG_DATA(cmsg), sizeof counter);
    // The kernel's counter is cumulative and 32-bit: add the (wrapping) difference.
    const uint32_t delta = counter - _last_drop_counter;
    _last_drop_counter = counter;
    _kernel_drops.store(_kernel_drops.load(std::memory_order_relaxed) + delta,
                        std::memory_order_relaxed);
}

bool kernel_udp_rx::reap_multishot(const io_uring_cqe* cqe, datagram* out) noexcept {
    if (!(cqe->flags & IORING_CQE_F_MORE)) _armed = false;
    if (cqe->res < 0) [[unlikely]] {
        // Out of buffers is back-pressure, not an error: the request is re-armed once the
        // caller releases some, and the socket buffer absorbs (or drops and counts) meanwhile.
        if (cqe->res != -ENOBUFS)
            _errors.store(_errors.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return false;
    }
    SLUICE_ASSERT(cqe->flags & IORING_CQE_F_BUFFER);
    const uint32_t id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    SLUICE_DASSERT(id < _buffer_count);
    io_uring_recvmsg_out* o = io_uring_recvmsg_validate(buffer(id), cqe->res, &_msg_template);
    if (o == nullptr || (o->flags & MSG_TRUNC)) [[unlikely]] {
        auto& counter = o == nullptr ? _errors : _oversize;
        counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        io_uring_buf_ring_add(_buf_ring, buffer(id), _stride, static_cast<uint16_t>(id),
                              _buf_ring_mask, 0);
        io_uring_buf_ring_advance(_buf_ring, 1);
        return false;
    }
    for (cmsghdr* c = io_uring_recvmsg_cmsg_firsthdr(o, &_msg_template); c != nullptr;
         c = io_uring_recvmsg_cmsg_nexthdr(o, &_msg_template, c))
        note_drop_counter(c);
    out->data = static_cast<const char*>(io_uring_recvmsg_payload(o, &_msg_template));
    out->len = io_uring_recvmsg_payload_length(o, cqe->res, &_msg_template);
    out->buffer_id = id;
    return true;
}

bool kernel_udp_rx::reap_slot(const io_uring_cqe* cqe, datagram* out) noexcept {
    const uint64_t id = io_uring_cqe_get_data64(cqe);
    SLUICE_DASSERT(id < _buffer_count);
    if (cqe->res < 0) [[unlikely]] {
        _errors.store(_errors.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        arm_slot(static_cast<uint32_t>(id));
        return false;
    }
    const slot& s = _slots[id];
    const auto* c = reinterpret_cast<const cmsghdr*>(s.control);
    if (c->cmsg_len != 0) note_drop_counter(c);
    if (static_cast<uint32_t>(cqe->res) > _payload_bytes) [[unlikely]] {
        _oversize.store(_oversize.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        arm_slot(static_cast<uint32_t>(id));
        return false;
    }
    out->data = buffer(static_cast<uint32_t>(id));
    out->len = static_cast<uint32_t>(cqe->res);
    out->buffer_id = static_cast<uint32_t>(id);
    return true;
}

uint32_t kernel_udp_rx::receive_burst(datagram* out, uint32_t max) noexcept {
    if (!_started) [[unlikely]]
        start();
    SLUICE_DASSERT(std::this_thread::get_id() == _owner);
    if (_multishot && !_armed && _outstanding < _buffer_count) arm_multishot();
    // Enter the kernel only with something to submit or completions waiting to be run: an
    // idle poll costs two loads, a busy one a single io_uring_enter per burst.
    const unsigned sq_flags = IO_URING_READ_ONCE(*_ring.sq.kflags);
    if (io_uring_sq_ready(&_ring) != 0 ||
        (sq_flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0)
        (void)io_uring_submit_and_get_events(&_ring);

    uint32_t n = 0;
    unsigned seen = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&_ring, head, cqe) {
        if (n == max) break;
        ++seen;
        const bool got = cqe->user_data == multishot_tag ? reap_multishot(cqe, &out[n])
                                                         : reap_slot(cqe, &out[n]);
        n += got;
    }
    io_uring_cq_advance(&_ring, seen);
    _outstanding += n;
    _datagrams.store(_datagrams.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return n;
}

void kernel_udp_rx::release(const datagram* d, uint32_t n) noexcept {
    SLUICE_DASSERT(std::this_thread::get_id() == _owner);
    SLUICE_ASSERT(n <= _outstanding);
    if (_multishot) {
        for (uint32_t i = 0; i < n; ++i) {
            SLUICE_DASSERT(d[i].buffer_id < _buffer_count);
            io_uring_buf_ring_add(_buf_ring, buffer(d[i].buffer_id), _stride,
                                  static_cast<uint16_t>(d[i].buffer_id), _buf_ring_mask,
                                  static_cast<int>(i));
        }
        io_uring_buf_ring_advance(_buf_ring, static_cast<int>(n));
    } else {
        // Submitted with the next receive_burst(): one io_uring_enter for the whole batch.
        for (uint32_t i = 0; i < n; ++i) {
            SLUICE_DASSERT(d[i].buffer_id < _buffer_count);
            arm_slot(d[i].buffer_id);
        }
    }
    _outstanding -= n;
}

} // namespace sluice::dataplane
