#include "tools/gen/udp_sender.h"

#include <cerrno>
#include <cstring>
#include <ctime>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"

namespace sluice::tools {

result<udp_sender> udp_sender::open(const std::string& target, uint64_t pps, uint32_t flows) {
    const size_t colon = target.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == target.size())
        return make_error(errc::invalid_argument,
                          "bad --send target '" + target + "' (expected HOST:PORT or [IPv6]:PORT)");
    if (flows == 0 || flows > 64)
        return make_error(errc::invalid_argument, "--flows must be within 1..64");
    std::string host = target.substr(0, colon);
    const std::string port = target.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
        return make_error(errc::invalid_argument,
                          "cannot resolve --send target '" + target + "': " + gai_strerror(rc));
    udp_sender sender({}, pps);
    for (uint32_t f = 0; f < flows; ++f) {
        const int fd = socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            freeaddrinfo(found);
            return make_error(errc::io_error,
                              std::string("cannot create a UDP socket: ") + std::strerror(errno));
        }
        sender._fds.push_back(fd);
        if (connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
            const int err = errno;
            freeaddrinfo(found);
            return make_error(errc::io_error, "cannot connect a UDP socket to " + target + ": " +
                                                  std::strerror(err));
        }
        // A large send buffer absorbs bursts between pacing sleeps; failure is harmless.
        const int sndbuf = 4 << 20;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    freeaddrinfo(found);
    return sender;
}

udp_sender::udp_sender(udp_sender&& other) noexcept
    : _fds(std::move(other._fds)), _pacer(other._pacer), _sent(other._sent) {
    other._fds.clear();
}

udp_sender::~udp_sender() {
    for (int fd : _fds) ::close(fd);
}

result<void> udp_sender::send(std::string_view payload, uint32_t flow) {
    _pacer.wait(_sent);
    const int fd = _fds[flow % _fds.size()];
    for (;;) {
        const ssize_t n = ::send(fd, payload.data(), payload.size(), 0);
        if (n == ssize_t(payload.size())) break;
        if (n < 0 && (errno == EINTR || errno == ENOBUFS || errno == EAGAIN)) {
            // The local queue is full: wait for it rather than drop a datagram here.
            const timespec ts{0, 20000};
            nanosleep(&ts, nullptr);
            continue;
        }
        if (n < 0 && errno == ECONNREFUSED) continue; // an ICMP from an earlier datagram
        return make_error(errc::io_error,
                          "send to the --send target failed: " +
                              std::string(n < 0 ? std::strerror(errno) : "short send"));
    }
    _sent++;
    return ok_result();
}

} // namespace sluice::tools
