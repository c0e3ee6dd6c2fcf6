#pragma once
// The control server: one plain std::thread (never a DPDK lcore) serving a Unix stream
// socket with io_uring. Requests and replies are newline-delimited JSON (see
// control/protocol.h and docs/CONTROL.md). Handlers run on the server thread, one
// request at a time, and must not block for long, except the `slow_commands`: those run
// on a small pool of threads (control/request_pool.h) with a deadline per request, so a
// flush or a table scan never stalls other clients. Slow handlers may run concurrently
// with each other and with the fast ones (they need their own locking). No handler may
// call stop() (ask the daemon's main thread to do it instead).
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/counter.h"
#include "base/limits.h"
#include "base/result.h"
#include "control/protocol.h"
#include "control/request_pool.h"

namespace sluice::control {

/// Returns the reply body. The server adds "ok":true (and "v") unless the body has "ok";
/// a thrown exception becomes {"ok":false,"error":what()}.
using handler = std::function<json(const json& request)>;

/// Who may connect and how fast: changeable while serving (update_access()).
struct access_policy {
    std::vector<uint32_t> allow_uids; ///< besides root and the daemon's own uid
    std::vector<uint32_t> allow_gids; ///< a peer in any of these groups is allowed
    /// Requests per second over all connections, and per connection; a burst of one
    /// second's worth is allowed. Beyond it a request gets a "rate limited" error. 0 = no limit.
    uint32_t requests_per_s = limits::control_requests_per_s_default;
    uint32_t connection_requests_per_s = limits::control_connection_requests_per_s_default;
};

struct server_config {
    std::string socket_path;
    uint32_t mode = 0600;   ///< socket file permissions
    int64_t group_gid = -1; ///< socket file group; -1 keeps the creator's
    access_policy access;
    /// A connection that completes no request for this long is closed; 0 = never.
    uint32_t idle_timeout_ms = limits::control_idle_timeout_ms_default;
    /// Called on the server thread every tick_interval_ms (e.g. to sample stats).
    std::function<void()> on_tick;
    uint32_t tick_interval_ms = 1000;
    /// Commands whose handlers may block: run on `slow_threads` threads, off the loop.
    /// A client waits for its slow request's reply before its next request is read.
    std::set<std::string> slow_commands;
    uint32_t slow_threads = limits::control_slow_threads;
    /// A slow request not answered within this long (checked every tick) gets an error
    /// reply; its late result is dropped.
    uint32_t slow_deadline_ms = limits::control_slow_deadline_ms;
    /// Clients connected at once (1..control_clients_max); sluiced passes what its
    /// descriptor budget fits (control/fd_budget.h). More are told why and closed.
    uint32_t clients_max = limits::control_clients_max;
};

/// What the server has seen since start; every refusal is here and in the log.
struct server_counters {
    uint64_t requests = 0;        ///< request lines handled (including rate-limited ones)
    uint64_t refused_peers = 0;   ///< connections refused by the uid/gid allow list
    uint64_t refused_clients = 0; ///< connections refused: clients_max reached
    uint64_t rate_limited = 0;    ///< requests answered "rate limited"
    uint64_t oversize = 0;        ///< requests over control_request_bytes_max (connection closed)
    uint64_t malformed = 0;       ///< lines that are not a valid request
    uint64_t idle_closed = 0;     ///< connections closed by the idle timeout
    uint64_t connections = 0;     ///< connections accepted and allowed
    uint64_t connections_open = 0;
    uint64_t busy = 0;              ///< slow requests refused: the pool's queue was full
    uint64_t deadline_exceeded = 0; ///< slow requests answered with a deadline error
    uint64_t accept_errors = 0;     ///< accepts that failed (EMFILE, ENFILE, ...), retried
    uint64_t clients_max = 0;       ///< server_config::clients_max in force
};

/// What is at a control socket path that exists as a socket: `live` when a server keeps
/// accepting connections there for `settle_ms`; `stale` when connects are refused (a dead
/// daemon's leftover). A daemon killed with SIGKILL can keep accepting for a moment while
/// the kernel tears its io_uring down, so one successful connect is not proof of a live
/// server: the probe retries until refused or until `settle_ms` have passed.
enum class socket_probe { stale, live, error };
socket_probe probe_control_socket(const std::string& path, int settle_ms, int* err = nullptr);

/// Whether `path` can be served: its length, its directory, nothing there but a socket
/// and no live server behind it. The server checks it before binding; sluiced's
/// preflight checks it before EAL starts, so the error is the one line a user sees.
result<void> check_control_socket(const std::string& path);

class control_server {
  public:
    /// Binds the socket (replacing a stale file left by a dead daemon, refusing a live
    /// one), then starts the server thread. Errors name the cause and the fix.
    static result<std::unique_ptr<control_server>> start(const server_config& config,
                                                         std::map<std::string, handler> handlers);

    /// Stops serving: closes every connection, joins the thread, removes the socket
    /// file. Idempotent; also done by the destructor.
    void stop();

    uint64_t refused_total() const noexcept { return _refused_peers.load(); }
    uint64_t requests_total() const noexcept { return _requests.load(); }
    server_counters counters() const noexcept;
    /// Replaces the allow lists and rate limits (config reload); any thread. Takes effect
    /// for the next connection and the next request.
    void update_access(access_policy access);
    access_policy access() const;
    const std::string& socket_path() const noexcept { return _config.socket_path; }

    ~control_server();
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;

  private:
    struct loop; // the io_uring event loop, driven by the server thread

    control_server(server_config config, std::map<std::string, handler> handlers);
    result<void> bind_socket();
    result<void> start_loop(); // the loop and its thread (control_loop.cpp)
    void stop_loop();          // wakes the loop, joins its thread, frees it
    bool peer_allowed(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) const;
    // A request line: answered at once (`reply`), or, for a slow command, the work to
    // queue on the pool (`slow`, returning the encoded reply).
    struct routed {
        std::string reply;
        std::function<std::string()> slow;
    };
    routed route(std::string_view line);
    std::string run_handler(const std::string& cmd, const handler& h, const json& req);
    static void bump(std::atomic<uint64_t>& c) noexcept { bump_shared(c); }

    server_config _config;
    std::map<std::string, handler> _handlers;
    int _listen_fd = -1;
    int _stop_fd = -1; // eventfd: stop() writes it, the loop polls it
    int _done_fd = -1; // eventfd: the pool writes it per finished job, the loop polls it
    dev_t _socket_dev = 0;
    ino_t _socket_ino = 0; // so stop() removes our socket file, not a successor's
    std::unique_ptr<loop> _loop;
    std::unique_ptr<request_pool> _pool;
    std::thread _thread;
    std::atomic<bool> _stopped{false};
    mutable std::mutex _access_mutex; // guards _config.access
    std::atomic<uint64_t> _requests{0};
    std::atomic<uint64_t> _refused_peers{0};
    std::atomic<uint64_t> _refused_clients{0};
    std::atomic<uint64_t> _rate_limited{0};
    std::atomic<uint64_t> _oversize{0};
    std::atomic<uint64_t> _malformed{0};
    std::atomic<uint64_t> _idle_closed{0};
    std::atomic<uint64_t> _connections{0};
    std::atomic<uint64_t> _connections_open{0};
    std::atomic<uint64_t> _busy{0};
    std::atomic<uint64_t> _deadline_exceeded{0};
    std::atomic<uint64_t> _accept_errors{0};
};

} // namespace sluice::control
