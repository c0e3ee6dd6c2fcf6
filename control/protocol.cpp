#include "control/protocol.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/time_format.h"
#include "control/render_text.h"

namespace sluice::control {

using text::dump;

namespace {

// A stats reply grows with the core count; this is far above any real one and only
// stops a confused peer from filling our memory.
constexpr size_t reply_bytes_max = 16u << 20;


void append_member(std::string& out, const std::string& key, const json& value) {
    out += ',';
    out += dump(json(key));
    out += ':';
    out += dump(value);
}

// Closes the descriptor on every return path of request().
struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

int remaining_ms(int64_t deadline_ns) {
    if (deadline_ns < 0) return -1;
    int64_t left = (deadline_ns - monotonic_ns()) / 1'000'000;
    return left > 0 ? int(std::min<int64_t>(left, 1 << 30)) : 0;
}

std::string connect_error(const std::string& path, int err) {
    std::string msg = "cannot connect to " + path + ": " + std::strerror(err);
    if (err == EACCES || err == EPERM)
        return msg + " (run as root, as sluiced's user, or in the socket's group)";
    return msg + " (is sluiced running? pass --socket)";
}

result<void> send_all(int fd, const std::string& path, const std::string& data,
                      int64_t deadline_ns) {
    size_t sent = 0;
    while (sent < data.size()) {
        ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n >= 0) {
            sent += size_t(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
            return make_error(errc::io_error,
                              "cannot send to " + path + ": " + std::strerror(errno));
        }
        pollfd p{fd, POLLOUT, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline_ns));
        if (r == 0) return make_error(errc::busy, "timed out sending to " + path);
    }
    return ok_result();
}

// Reads up to the first newline (or EOF) into `line`.
result<void> read_line(int fd, const std::string& path, std::string& line, int64_t deadline_ns,
                       int timeout_ms) {
    char buf[16384];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            line.append(buf, size_t(n));
            size_t nl = line.find('\n');
            if (nl != std::string::npos) {
                line.resize(nl);
                return ok_result();
            }
            if (line.size() > reply_bytes_max) {
                return make_error(errc::corrupt, "reply from " + path + " exceeds " +
                                                     std::to_string(reply_bytes_max) + " bytes");
            }
            continue;
        }
        if (n == 0) {
            if (line.empty()) {
                return make_error(errc::io_error, path + " closed the connection without a reply");
            }
            return ok_result();
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
            return make_error(errc::io_error,
                              "cannot read from " + path + ": " + std::strerror(errno));
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline_ns)) == 0) {
            return make_error(errc::busy, "no reply from " + path + " within " +
                                              std::to_string(timeout_ms) +
                                              " ms (sluiced is busy or stuck; retry or raise "
                                              "--timeout-ms)");
        }
    }
}

} // namespace

std::string encode_reply(const json& body) {
    if (body.is_null()) return encode_reply(json::object());
    if (!body.is_object()) return encode_reply(json{{"result", body}});

    auto ok_it = body.find("ok");
    bool failed = ok_it != body.end() && *ok_it == false;
    std::string out = "{\"ok\":";
    out += ok_it != body.end() ? dump(*ok_it) : "true";
    auto err_it = body.find("error");
    if (err_it != body.end()) append_member(out, "error", *err_it);
    if (!failed && !body.contains("v")) append_member(out, "v", protocol_version);
    for (auto it = body.begin(); it != body.end(); ++it) {
        if (it.key() == "ok" || it.key() == "error") continue;
        append_member(out, it.key(), it.value());
    }
    out += '}';
    return out;
}

std::string encode_error(std::string_view message) {
    return "{\"ok\":false,\"error\":" + dump(json(std::string(message))) + "}";
}

result<json> parse_request(std::string_view line) {
    json req;
    try {
        req = json::parse(line);
    } catch (const json::exception& e) {
        return make_error(errc::invalid_argument,
                          std::string("malformed request (send one JSON object per line): ") +
                              e.what());
    }
    if (!req.is_object()) {
        return make_error(errc::invalid_argument,
                          "request must be a JSON object like {\"v\":1,\"cmd\":\"status\"}");
    }
    auto cmd = req.find("cmd");
    if (cmd == req.end() || !cmd->is_string()) {
        return make_error(errc::invalid_argument,
                          "request has no \"cmd\" string (e.g. {\"v\":1,\"cmd\":\"status\"})");
    }
    auto v = req.find("v");
    if (v != req.end() && !(v->is_number_integer() && *v == protocol_version)) {
        return make_error(errc::unsupported, "unsupported protocol version " + dump(*v) +
                                                 " (this sluiced speaks v" +
                                                 std::to_string(protocol_version) + ")");
    }
    return req;
}

result<json> request(const std::string& socket_path, const json& req, int timeout_ms) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
        return make_error(errc::invalid_argument,
                          "socket path \"" + socket_path + "\" must be 1 to " +
                              std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());

    int64_t deadline_ns =
        timeout_ms > 0 ? monotonic_ns() + int64_t(timeout_ms) * 1'000'000 : int64_t(-1);
    fd_guard fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0) {
        return make_error(errc::io_error,
                          std::string("cannot create a Unix socket: ") + std::strerror(errno));
    }
    // A Unix connect() honours the send timeout while the listen backlog is full.
    if (timeout_ms > 0) {
        timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        ::setsockopt(fd.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int rc;
    do {
        rc = ::connect(fd.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return make_error(errc::not_found, connect_error(socket_path, errno));
    int flags = ::fcntl(fd.fd, F_GETFL);
    ::fcntl(fd.fd, F_SETFL, flags | O_NONBLOCK);

    json full = req;
    if (full.is_object() && !full.contains("v")) full["v"] = protocol_version;
    auto sent = send_all(fd.fd, socket_path, dump(full) + "\n", deadline_ns);
    std::string line;
    auto got = read_line(fd.fd, socket_path, line, deadline_ns, timeout_ms);
    // A server that refuses us replies and closes at once, so a failed send may still
    // have left an explanation to read.
    if (!got.ok()) return sent.ok() ? std::move(got).err() : std::move(sent).err();

    json reply;
    try {
        reply = json::parse(line);
    } catch (const json::exception& e) {
        return make_error(errc::corrupt, "malformed reply from " + socket_path + ": " + e.what());
    }
    if (!reply.is_object() || !reply.contains("ok")) {
        return make_error(errc::corrupt,
                          "malformed reply from " + socket_path + ": not an object with \"ok\"");
    }
    return reply;
}

} // namespace sluice::control
