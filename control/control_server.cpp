#include "control/control_server.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"

namespace sluice::control {

namespace {

std::string sys_error(const std::string& what, int err) {
    return what + ": " + std::strerror(err);
}

} // namespace

result<std::unique_ptr<control_server>>
control_server::start(const server_config& config, std::map<std::string, handler> handlers) {
    if ((config.mode & ~0777u) != 0) {
        return make_error(errc::bad_config, "control socket mode " + std::to_string(config.mode) +
                                                " has bits outside 0777 (use e.g. 0600 or 0660)");
    }
    if (config.clients_max == 0 || config.clients_max > limits::control_clients_max)
        return make_error(errc::bad_config, "control clients_max must be 1.." +
                                                std::to_string(limits::control_clients_max));
    std::unique_ptr<control_server> s(new control_server(config, std::move(handlers)));
    SLUICE_TRY(s->bind_socket());

    // stop() wakes the loop through the first, the pool's finished jobs through the second.
    for (int* fd : {&s->_stop_fd, &s->_done_fd}) {
        *fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (*fd < 0) return make_error(errc::internal, sys_error("cannot create eventfd", errno));
    }
    s->_pool = std::make_unique<request_pool>(std::max<uint32_t>(config.slow_threads, 1),
                                              limits::control_slow_queue_max, s->_done_fd);
    SLUICE_TRY(s->start_loop());
    SLUICE_LOG_INFO("control: serving %s", s->_config.socket_path.c_str());
    return s;
}

socket_probe probe_control_socket(const std::string& path, int settle_ms, int* err) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return socket_probe::error;
    std::memcpy(addr.sun_path, path.data(), path.size());
    const int64_t deadline = monotonic_ns() + int64_t(settle_ms) * 1000000;
    for (;;) {
        int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            if (err) *err = errno;
            return socket_probe::error;
        }
        const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        const int e = errno;
        ::close(probe);
        if (rc != 0) {
            if (e == ECONNREFUSED || e == ENOENT) return socket_probe::stale;
            if (err) *err = e;
            return socket_probe::error;
        }
        if (monotonic_ns() >= deadline) return socket_probe::live;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

result<void> check_control_socket(const std::string& path) {
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return make_error(errc::bad_config, "control socket path \"" + path + "\" must be 1 to " +
                                                std::to_string(sizeof addr.sun_path - 1) +
                                                " bytes (pass a shorter --control-socket)");
    const std::string dir = std::filesystem::path(path).parent_path().string();
    struct stat st {};
    if (!dir.empty() && ::stat(dir.c_str(), &st) != 0)
        return make_error(errc::not_found,
                          "the control socket's directory " + dir +
                              " does not exist (create it, or pass --control-socket: sluiced "
                              "does not create the directory; the systemd unit's "
                              "RuntimeDirectory=sluice does)");
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return ok_result();
        return make_error(errc::io_error, sys_error("cannot stat " + path, errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return make_error(errc::bad_config,
                          path + " exists and is not a socket (remove it or pass --control-socket)");
    int err = 0;
    switch (probe_control_socket(path, limits::control_socket_settle_ms, &err)) {
    case socket_probe::live:
        return make_error(errc::busy, "another sluiced is serving " + path +
                                          " (stop it or pass --control-socket)");
    case socket_probe::error:
        return make_error(errc::io_error, sys_error("cannot probe existing socket " + path, err) +
                                              " (remove it or pass --control-socket)");
    case socket_probe::stale: break;
    }
    return ok_result();
}

result<void> control_server::bind_socket() {
    const std::string& path = _config.socket_path;
    SLUICE_TRY(check_control_socket(path));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        // Nobody listens (check_control_socket): a dead daemon's leftover.
        if (::unlink(path.c_str()) < 0 && errno != ENOENT) {
            return make_error(errc::io_error,
                              sys_error("cannot remove stale socket " + path, errno));
        }
        SLUICE_LOG_INFO("control: replaced stale socket %s", path.c_str());
    }

    _listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (_listen_fd < 0)
        return make_error(errc::internal, sys_error("cannot create a Unix socket", errno));
    // Linux creates the socket file with the socket inode's mode (less the umask), so the
    // file never exists with more permissions than configured, even for an instant.
    ::fchmod(_listen_fd, _config.mode);
    if (::bind(_listen_fd, sa, sizeof addr) < 0) {
        int err = errno;
        std::string hint =
            err == EADDRINUSE ? " (another sluiced started; stop it or pass --control-socket)"
            : err == ENOENT   ? " (create the directory or pass --control-socket)"
                              : " (check the directory's permissions or pass --control-socket)";
        return make_error(err == EADDRINUSE ? errc::busy : errc::io_error,
                          sys_error("cannot bind control socket " + path, err) + hint);
    }
    if (::stat(path.c_str(), &st) == 0) {
        _socket_dev = st.st_dev;
        _socket_ino = st.st_ino;
    }
    // Exactly the configured mode, whatever the umask took away.
    if (::chmod(path.c_str(), _config.mode) < 0) {
        return make_error(errc::io_error, sys_error("cannot chmod control socket " + path, errno));
    }
    if (_config.group_gid >= 0 && ::chown(path.c_str(), uid_t(-1), gid_t(_config.group_gid)) < 0) {
        return make_error(errc::permission_denied,
                          sys_error("cannot give control socket " + path + " to group " +
                                        std::to_string(_config.group_gid),
                                    errno) +
                              " (run as root or a member of that group)");
    }
    if (::listen(_listen_fd, int(limits::control_clients_max)) < 0) {
        return make_error(errc::io_error, sys_error("cannot listen on " + path, errno));
    }
    return ok_result();
}

server_counters control_server::counters() const noexcept {
    auto rd = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    return {rd(_requests),     rd(_refused_peers), rd(_refused_clients),
            rd(_rate_limited), rd(_oversize),      rd(_malformed),
            rd(_idle_closed),  rd(_connections),   rd(_connections_open),
            rd(_busy),         rd(_deadline_exceeded), rd(_accept_errors),
            _config.clients_max};
}

void control_server::update_access(access_policy access) {
    std::lock_guard lock(_access_mutex);
    _config.access = std::move(access);
}

access_policy control_server::access() const {
    std::lock_guard lock(_access_mutex);
    return _config.access;
}

bool control_server::peer_allowed(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) const {
    if (uid == 0 || uid == ::geteuid()) return true;
    access_policy a = access();
    const auto& uids = a.allow_uids;
    if (std::find(uids.begin(), uids.end(), uid) != uids.end()) return true;
    const auto& gids = a.allow_gids;
    if (std::find(gids.begin(), gids.end(), gid) != gids.end()) return true;
    return std::any_of(groups.begin(), groups.end(), [&](gid_t g) {
        return std::find(gids.begin(), gids.end(), g) != gids.end();
    });
}

control_server::routed control_server::route(std::string_view line) {
    bump(_requests);
    auto req = parse_request(line);
    if (!req.ok()) {
        bump(_malformed);
        return {encode_error(req.err().message), {}};
    }
    const std::string cmd = req.value()["cmd"].get<std::string>();
    auto it = _handlers.find(cmd);
    if (it == _handlers.end()) {
        std::string known;
        for (const auto& [name, h] : _handlers)
            known += (known.empty() ? "" : ", ") + name;
        return {encode_error("unknown command \"" + cmd + "\" (known: " + known + ")"), {}};
    }
    if (_config.slow_commands.contains(cmd))
        return {{}, [this, cmd, &h = it->second, r = std::move(req.value())] {
                    return run_handler(cmd, h, r);
                }};
    return {run_handler(cmd, it->second, req.value()), {}};
}

std::string control_server::run_handler(const std::string& cmd, const handler& h, const json& req) {
    try {
        return encode_reply(h(req));
    } catch (const std::exception& e) {
        return encode_error(e.what());
    } catch (...) {
        return encode_error("command \"" + cmd + "\" failed with an unknown exception");
    }
}

void control_server::stop() {
    // A handler runs on the server thread; joining it from there would deadlock.
    SLUICE_ASSERT(std::this_thread::get_id() != _thread.get_id());
    if (_stopped.exchange(true)) return;
    stop_loop();
    // Running slow handlers finish (their replies go nowhere); queued ones are dropped.
    if (_pool) _pool->stop();
    if (_listen_fd >= 0) ::close(_listen_fd);
    if (_stop_fd >= 0) ::close(_stop_fd);
    if (_done_fd >= 0) ::close(_done_fd);
    _listen_fd = _stop_fd = _done_fd = -1;
    // Only our own file: a successor may have replaced it after we stopped listening.
    struct stat st {};
    if (_socket_ino != 0 && ::lstat(_config.socket_path.c_str(), &st) == 0 &&
        st.st_dev == _socket_dev && st.st_ino == _socket_ino) {
        ::unlink(_config.socket_path.c_str());
    }
    if (_socket_ino != 0)
        SLUICE_LOG_INFO("control: stopped serving %s", _config.socket_path.c_str());
}

} // namespace sluice::control
