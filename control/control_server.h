#pragma once
// The control server: one plain std::thread (never a DPDK lcore) serving a Unix stream
// socket with io_uring. Requests and replies are newline-delimited JSON (see
// control/protocol.h and docs/CONTROL.md). Handlers run on the server thread, one
// request at a time, so they need no locking among themselves but must not block for
// long, and must not call stop() (ask the daemon's main thread to do it instead).
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "control/protocol.h"

namespace sluice::control {

/// Returns the reply body. The server adds "ok":true (and "v") unless the body has "ok";
/// a thrown exception becomes {"ok":false,"error":what()}.
using handler = std::function<json(const json& request)>;

struct server_config {
    std::string socket_path;
    uint32_t mode = 0600;             ///< socket file permissions
    int64_t group_gid = -1;           ///< socket file group; -1 keeps the creator's
    std::vector<uint32_t> allow_uids; ///< besides root and the daemon's own uid
    std::vector<uint32_t> allow_gids; ///< a peer in any of these groups is allowed
};

class control_server {
  public:
    /// Binds the socket (replacing a stale file left by a dead daemon, refusing a live
    /// one), then starts the server thread. Errors name the cause and the fix.
    static result<std::unique_ptr<control_server>> start(const server_config& config,
                                                         std::map<std::string, handler> handlers);

    /// Stops serving: closes every connection, joins the thread, removes the socket
    /// file. Idempotent; also done by the destructor.
    void stop();

    uint64_t refused_total() const noexcept { return _refused_total.load(); }
    uint64_t requests_total() const noexcept { return _requests_total.load(); }
    const std::string& socket_path() const noexcept { return _config.socket_path; }

    ~control_server();
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;

  private:
    struct loop; // the io_uring event loop, driven by the server thread

    control_server(server_config config, std::map<std::string, handler> handlers);
    result<void> bind_socket();
    bool peer_allowed(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) const;
    std::string handle_line(std::string_view line);

    server_config _config;
    std::map<std::string, handler> _handlers;
    int _listen_fd = -1;
    int _stop_fd = -1; // eventfd: stop() writes it, the loop polls it
    dev_t _socket_dev = 0;
    ino_t _socket_ino = 0; // so stop() removes our socket file, not a successor's
    std::unique_ptr<loop> _loop;
    std::thread _thread;
    std::atomic<bool> _stopped{false};
    std::atomic<uint64_t> _refused_total{0};
    std::atomic<uint64_t> _requests_total{0};
};

} // namespace sluice::control
