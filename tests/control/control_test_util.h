#pragma once
// Helpers shared by the control tests: a temporary directory, a raw client socket that
// can send anything (the protocol helper only sends well-formed requests), and the
// handlers of a small test server.
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "control/control_server.h"

namespace sluice::control::testing {

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/sluice-control-XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        if (p == nullptr) std::abort();
        path = p;
        // Traversable by others, so a test can show that the socket's own mode or the
        // peer check (not the directory) is what keeps a user out.
        ::chmod(p, 0755);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name) const { return path + "/" + name; }
};

// Restores RLIMIT_NOFILE and closes the descriptors a test took when the test ends, on
// every path: a failed ASSERT returns early, and a lowered limit or leftover fillers would
// make every later test's connect fail with EMFILE (the CI hang of 2026-12-04).
struct fd_limit_guard {
    rlimit saved{};
    std::vector<int> taken;
    fd_limit_guard() { ::getrlimit(RLIMIT_NOFILE, &saved); }
    ~fd_limit_guard() {
        for (int fd : taken)
            ::close(fd);
        ::setrlimit(RLIMIT_NOFILE, &saved);
    }
    fd_limit_guard(const fd_limit_guard&) = delete;
    fd_limit_guard& operator=(const fd_limit_guard&) = delete;
};

// The highest descriptor open once the count has stopped changing for 200 ms (a stopped
// server's io_uring releases its connections' files a little after stop returns), within
// a 10 s deadline.
inline int settled_highest_fd() {
    auto scan = [] {
        int highest = 0, count = 0;
        for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
            highest = std::max(highest, std::atoi(e.path().filename().c_str()));
            ++count;
        }
        return std::pair{highest, count};
    };
    auto last = scan();
    auto stable_since = std::chrono::steady_clock::now();
    const auto deadline = stable_since + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline &&
           std::chrono::steady_clock::now() - stable_since < std::chrono::milliseconds(200)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        auto now = scan();
        if (now != last) {
            last = now;
            stable_since = std::chrono::steady_clock::now();
        }
    }
    return last.first;
}

inline sockaddr_un unix_addr(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    return addr;
}

// Returns a connected fd, or -errno.
inline int raw_connect(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    sockaddr_un addr = unix_addr(path);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        int err = errno;
        ::close(fd);
        return -err;
    }
    return fd;
}

inline bool send_all(int fd, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
        ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        sent += size_t(n);
    }
    return true;
}

// One line without its newline; "<eof>", "<error>" or "<timeout>" otherwise. Bytes
// after the newline are kept in `pending` for the next call.
inline std::string read_line(int fd, std::string& pending, int timeout_ms = 5000) {
    for (;;) {
        size_t nl = pending.find('\n');
        if (nl != std::string::npos) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            return line;
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) == 0) return "<timeout>";
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) return "<eof>";
        if (n < 0) return errno == EINTR ? read_line(fd, pending, timeout_ms) : "<error>";
        pending.append(buf, size_t(n));
    }
}

inline std::string read_line(int fd, int timeout_ms = 5000) {
    std::string pending;
    return read_line(fd, pending, timeout_ms);
}

// True when the peer closed (EOF or reset) within the timeout, with no more data.
inline bool closed_by_peer(int fd, int timeout_ms = 5000) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) == 0) return false;
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

} // namespace sluice::control::testing
