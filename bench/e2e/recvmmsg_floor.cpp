// recvmmsg-floor: the kernel floor of SPEC §7. A plain UDP receiver that only counts:
// recvmmsg in bursts of 64 on one blocking socket, datagrams, bytes and NDJSON lines
// (memchr), nothing parsed, nothing stored. It exits once `--expect` datagrams arrived or
// the socket was idle for `--idle-ms` after the first datagram, and prints one JSON object
// with the counts, the time from first to last datagram and its own CPU time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/clock.h"

namespace {

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
    uint16_t port = 0;
    uint64_t expect = 0;
    int idle_ms = 1000;
    std::string bind_addr = "127.0.0.1";
    CLI::App app{"recvmmsg-floor: count UDP datagrams as fast as the kernel hands them over"};
    app.add_option("--port", port, "UDP port")->required();
    app.add_option("--bind", bind_addr, "IPv4 address")->capture_default_str();
    app.add_option("--expect", expect, "stop after this many datagrams (0: idle only)");
    app.add_option("--idle-ms", idle_ms, "stop when idle this long after the first datagram")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rcvbuf = 64 << 20;
    // As root, SO_RCVBUFFORCE passes net.core.rmem_max; otherwise the plain option.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, bind_addr.c_str(), &sa.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        std::fprintf(stderr, "recvmmsg-floor: cannot bind %s:%u: %s (pick a free --port)\n",
                     bind_addr.c_str(), port, std::strerror(errno));
        return 1;
    }
    std::printf("{\"listening\":%u}\n", port);
    std::fflush(stdout);

    constexpr unsigned burst = 64;
    constexpr size_t buf_bytes = 65536;
    std::vector<char> bufs(size_t(burst) * buf_bytes);
    std::vector<iovec> iov(burst);
    std::vector<mmsghdr> msgs(burst);
    std::vector<char> ctrl(size_t(burst) * CMSG_SPACE(sizeof(uint32_t)));
    uint64_t datagrams = 0, bytes = 0, lines = 0;
    uint32_t kernel_drops = 0;
    int64_t first_ns = 0, last_ns = 0;
    double cpu_first = 0;
    timeval tv{0, 100 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        for (unsigned k = 0; k < burst; ++k) {
            iov[k] = {bufs.data() + k * buf_bytes, buf_bytes};
            msgs[k] = {};
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            msgs[k].msg_hdr.msg_control = ctrl.data() + k * CMSG_SPACE(sizeof(uint32_t));
            msgs[k].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint32_t));
        }
        int n = recvmmsg(fd, msgs.data(), burst, MSG_WAITFORONE, nullptr);
        int64_t now = sluice::monotonic_ns();
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
            if (datagrams && now - last_ns > int64_t(idle_ms) * 1000000) break;
            continue;
        }
        if (datagrams == 0) {
            first_ns = now;
            cpu_first = cpu_seconds();
        }
        for (int k = 0; k < n; ++k) {
            const char* p = static_cast<const char*>(iov[k].iov_base);
            size_t len = msgs[k].msg_len;
            bytes += len;
            // NDJSON lines: newlines, plus a last line without one.
            const char* end = p + len;
            for (const char* q = p; q < end;) {
                const void* nl = std::memchr(q, '\n', size_t(end - q));
                if (!nl) {
                    ++lines;
                    break;
                }
                if (static_cast<const char*>(nl) > q) ++lines;
                q = static_cast<const char*>(nl) + 1;
            }
            for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[k].msg_hdr); c;
                 c = CMSG_NXTHDR(&msgs[k].msg_hdr, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
                    std::memcpy(&kernel_drops, CMSG_DATA(c), sizeof kernel_drops);
        }
        datagrams += uint64_t(n);
        last_ns = now;
        if (expect && datagrams >= expect) break;
    }
    nlohmann::json out{{"datagrams", datagrams},
                       {"events", lines},
                       {"bytes", bytes},
                       {"kernel_drops", kernel_drops},
                       {"seconds", double(last_ns - first_ns) / 1e9},
                       {"cpu_s", datagrams ? cpu_seconds() - cpu_first : 0.0}};
    std::printf("%s\n", out.dump().c_str());
    close(fd);
    return 0;
}
