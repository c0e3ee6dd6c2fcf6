#pragma once
// A TCP connection to 127.0.0.1:port for tests (the Kafka listener, the metrics endpoint,
// descriptor budgets); header-only, so tests that do not link daemon_harness use it too.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace sluice::testing {

// Connected socket, or -1. `rcvbuf` > 0 sets SO_RCVBUF before connecting (a small window
// for a client that reads slowly).
inline int connect_loopback_tcp(uint16_t port, int rcvbuf = 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace sluice::testing
