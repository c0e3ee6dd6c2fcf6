#pragma once
// Prometheus' scrape endpoint: `GET /metrics` over HTTP/1.1, served by civetweb (Debian's
// libcivetweb, which prometheus-cpp's own pull library uses) on threads of its own: never
// the control server's loop, never an lcore. The body is whatever the renderer returns:
// in sluiced, the very text the `metrics` control command answers (control/stats.h
// prometheus_text of one snapshot), so both can never disagree.
//
// HTTP as Prometheus and operators meet it: keep-alive and pipelining, HEAD, 404 for any
// other path, 405 (with Allow) for any other method, a request over
// limits::metrics_http_request_bytes_max refused with 400, and a client that sends its
// request too slowly (or idles between requests) closed after its timeout.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/limits.h"
#include "base/result.h"
#include "control/stats.h"

struct mg_context;
struct mg_connection;

namespace sluice::control {

struct metrics_http_config {
    /// "IPV4:PORT"; port 0 takes a free one (port() says which).
    std::string listen;
    uint32_t threads = limits::metrics_http_threads;
    size_t request_bytes_max = limits::metrics_http_request_bytes_max;
    uint32_t request_timeout_ms = limits::metrics_http_request_timeout_ms;
    uint32_t keep_alive_timeout_ms = limits::metrics_http_keep_alive_timeout_ms;
};

/// Checks a `[metrics] listen` value: "" (off) or "IPV4:PORT" with PORT in 0..65535.
/// The message names the key and an example.
result<void> check_metrics_listen(const std::string& listen);
/// The check above, then a bind of the address (released at once): sluiced's preflight,
/// so a taken port is one line before EAL starts. The server's own bind gives the same
/// message if the port is taken in between.
result<void> probe_metrics_listen(const std::string& listen);

/// What the endpoint answers for one request, before any byte is sent: pure, so the
/// routing is tested without sockets.
struct http_answer {
    int status = 200;
    std::string content_type; ///< empty: no body
    std::string body;
    bool head = false;           ///< a HEAD request: the length is sent, the body is not
    const char* allow = nullptr; ///< the Allow header of a 405
};
http_answer answer_metrics_request(std::string_view method, std::string_view path,
                                   const std::function<std::string()>& render);

class metrics_http_server {
  public:
    using renderer = std::function<std::string()>;

    /// Listens on config.listen and starts civetweb's threads; `render` is called on a
    /// thread of the server's own, one render at a time. The error names the address and the fix.
    static result<std::unique_ptr<metrics_http_server>> start(const metrics_http_config& config,
                                                              renderer render);
    /// Stops accepting, waits for the requests in progress, joins the threads. Idempotent.
    void stop();
    ~metrics_http_server() { stop(); }
    metrics_http_server(const metrics_http_server&) = delete;
    metrics_http_server& operator=(const metrics_http_server&) = delete;

    /// The port listened on (the one taken when config.listen asked for port 0).
    uint16_t port() const noexcept { return _port; }
    /// "http://HOST:PORT/metrics".
    std::string url() const;
    /// What it has answered since start: 200s (GET and HEAD), 404s, 405s, 500s (the
    /// renderer threw).
    metrics_http_stats counters() const noexcept;

  private:
    explicit metrics_http_server(renderer render);
    static int on_request(mg_connection* conn);
    // civetweb's threads have Debian's compiled-in 100 KiB stacks, too small for a stats
    // snapshot: they queue the render for _render_thread (a default stack) and wait.
    std::string render_on_own_thread();
    void render_loop();

    renderer _render;
    std::mutex _render_mutex;
    std::condition_variable _render_cv;
    std::deque<std::packaged_task<std::string()>*> _render_queue;
    bool _render_stopping = false;
    std::thread _render_thread;
    mg_context* _ctx = nullptr;
    std::string _host;
    uint16_t _port = 0;
    std::atomic<uint64_t> _ok{0}, _not_found{0}, _method_not_allowed{0}, _error{0};
};

} // namespace sluice::control
