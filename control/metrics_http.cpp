#include "control/metrics_http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <civetweb.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>

#include "base/counter.h"
#include "base/log.h"

namespace sluice::control {

namespace {

struct listen_address {
    std::string host;
    uint16_t port = 0;
};

result<listen_address> parse_listen(const std::string& listen) {
    auto bad = [&](const std::string& why) {
        return make_error(errc::bad_config,
                          "metrics.listen \"" + listen + "\" " + why +
                              " (give \"IPV4:PORT\", e.g. \"127.0.0.1:9464\", or \"\" for no "
                              "HTTP endpoint)");
    };
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0) return bad("is not HOST:PORT");
    listen_address a;
    a.host = listen.substr(0, colon);
    in_addr addr{};
    if (a.host.find(':') != std::string::npos || a.host.front() == '[')
        return bad("is IPv6, which Debian's civetweb is built without");
    if (::inet_pton(AF_INET, a.host.c_str(), &addr) != 1)
        return bad("has no IPv4 address before the port");
    const char* first = listen.data() + colon + 1;
    const char* last = listen.data() + listen.size();
    unsigned port = 0;
    auto [end, ec] = std::from_chars(first, last, port);
    if (first == last || ec != std::errc() || end != last || port > 65535)
        return bad("has no port within 0..65535 after the colon");
    a.port = uint16_t(port);
    return a;
}

// One message for an address that cannot be served, from the preflight probe and from
// civetweb's own bind.
error cannot_serve(const std::string& listen, const std::string& why) {
    return make_error(errc::io_error, "cannot serve metrics on " + listen + ": " + why +
                                          " (is the port taken? set metrics.listen to a free "
                                          "address, or \"\" for none)");
}

// civetweb's errors on a connection in sluice's log (rate limited there). Errors while
// starting (no connection) are in mg_start2's error text, reported once by start().
int on_log_message(const mg_connection* conn, const char* message) {
    if (conn != nullptr) SLUICE_LOG_WARN("metrics http: %s", message);
    return 1;
}

void init_civetweb_once() {
    static std::once_flag once;
    std::call_once(once, [] { mg_init_library(0); });
}

} // namespace

result<void> check_metrics_listen(const std::string& listen) {
    if (listen.empty()) return ok_result();
    auto a = parse_listen(listen);
    if (!a) return std::move(a).err();
    return ok_result();
}

result<void> probe_metrics_listen(const std::string& listen) {
    if (listen.empty()) return ok_result();
    auto a = parse_listen(listen);
    if (!a) return std::move(a).err();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return cannot_serve(listen, std::strerror(errno));
    const int one = 1; // as civetweb binds: a port in TIME_WAIT is free
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(a->port);
    ::inet_pton(AF_INET, a->host.c_str(), &sa.sin_addr);
    const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return cannot_serve(listen, std::strerror(err));
    return ok_result();
}

http_answer answer_metrics_request(std::string_view method, std::string_view path,
                                   const std::function<std::string()>& render) {
    http_answer a;
    a.head = method == "HEAD";
    if (path != "/metrics") {
        a.status = 404;
        a.content_type = "text/plain; charset=utf-8";
        a.body = "not found: sluiced serves its metrics at /metrics\n";
        return a;
    }
    if (method != "GET" && !a.head) {
        a.status = 405;
        a.allow = "GET, HEAD";
        a.content_type = "text/plain; charset=utf-8";
        a.body = "method not allowed: /metrics answers GET and HEAD\n";
        return a;
    }
    try {
        a.body = render();
        a.content_type = std::string(prometheus_content_type) + "; charset=utf-8";
    } catch (const std::exception& e) {
        a.status = 500;
        a.content_type = "text/plain; charset=utf-8";
        a.body = std::string("cannot render the metrics: ") + e.what() + "\n";
    }
    return a;
}

result<std::unique_ptr<metrics_http_server>>
metrics_http_server::start(const metrics_http_config& config, renderer render) {
    auto addr = parse_listen(config.listen);
    if (!addr) return std::move(addr).err();
    init_civetweb_once();
    std::unique_ptr<metrics_http_server> s(new metrics_http_server(std::move(render)));
    s->_host = addr->host;
    const std::string threads = std::to_string(config.threads);
    const std::string request_max = std::to_string(config.request_bytes_max);
    const std::string request_timeout = std::to_string(config.request_timeout_ms);
    const std::string keep_alive_timeout = std::to_string(config.keep_alive_timeout_ms);
    // Name, value pairs.
    // clang-format off
    const char* options[] = {"listening_ports", config.listen.c_str(),
                             "num_threads", threads.c_str(),
                             "max_request_size", request_max.c_str(),
                             "request_timeout_ms", request_timeout.c_str(),
                             "keep_alive_timeout_ms", keep_alive_timeout.c_str(),
                             "enable_keep_alive", "yes",
                             // Headers and body are two sends: without it, Nagle holds
                             // the body for the client's delayed ACK (40 ms a scrape).
                             "tcp_nodelay", "1",
                             nullptr};
    // clang-format on
    mg_callbacks callbacks{};
    callbacks.begin_request = on_request;
    callbacks.log_message = on_log_message;
    char error_text[256] = "";
    unsigned error_code = 0;
    mg_error_data error{&error_code, error_text, sizeof error_text};
    mg_init_data init{&callbacks, s.get(), options};
    s->_ctx = mg_start2(&init, &error);
    if (s->_ctx == nullptr)
        return cannot_serve(config.listen, error_text[0] ? error_text : "civetweb failed to start");
    mg_server_port ports[1]{};
    if (mg_get_server_ports(s->_ctx, 1, ports) == 1) s->_port = uint16_t(ports[0].port);
    return s;
}

metrics_http_server::metrics_http_server(renderer render) : _render(std::move(render)) {
    _render_thread = std::thread([this] { render_loop(); });
    pthread_setname_np(_render_thread.native_handle(), "sluice-metrics");
}

void metrics_http_server::stop() {
    if (_ctx != nullptr) {
        mg_stop(_ctx); // joins civetweb's threads once the requests in progress are answered
        _ctx = nullptr;
    }
    if (_render_thread.joinable()) {
        {
            std::lock_guard lock(_render_mutex);
            _render_stopping = true;
        }
        _render_cv.notify_all();
        _render_thread.join();
    }
}

std::string metrics_http_server::render_on_own_thread() {
    std::packaged_task<std::string()> task(_render);
    std::future<std::string> result = task.get_future();
    {
        std::lock_guard lock(_render_mutex);
        _render_queue.push_back(&task);
    }
    _render_cv.notify_one();
    return result.get(); // the renderer's exception, if it threw
}

void metrics_http_server::render_loop() {
    std::unique_lock lock(_render_mutex);
    for (;;) {
        _render_cv.wait(lock, [this] { return _render_stopping || !_render_queue.empty(); });
        // Stopping comes after mg_stop: no civetweb thread is left waiting on the queue.
        if (_render_queue.empty()) return;
        auto* task = _render_queue.front();
        _render_queue.pop_front();
        lock.unlock();
        (*task)();
        lock.lock();
    }
}

std::string metrics_http_server::url() const {
    return "http://" + _host + ":" + std::to_string(_port) + "/metrics";
}

metrics_http_stats metrics_http_server::counters() const noexcept {
    return {_ok.load(), _not_found.load(), _method_not_allowed.load(), _error.load()};
}

// Every request, whatever its method and path: civetweb's begin_request, so nothing of
// civetweb's own file serving is reachable. Returns the status (civetweb: "handled").
int metrics_http_server::on_request(mg_connection* conn) {
    auto* self = static_cast<metrics_http_server*>(mg_get_user_data(mg_get_context(conn)));
    const mg_request_info* ri = mg_get_request_info(conn);
    http_answer a = answer_metrics_request(ri->request_method ? ri->request_method : "",
                                           ri->local_uri ? ri->local_uri : "",
                                           [self] { return self->render_on_own_thread(); });
    switch (a.status) {
    case 200: bump_shared(self->_ok); break;
    case 404: bump_shared(self->_not_found); break;
    case 405: bump_shared(self->_method_not_allowed); break;
    default: bump_shared(self->_error); break;
    }
    mg_response_header_start(conn, a.status);
    if (a.allow) mg_response_header_add(conn, "Allow", a.allow, -1);
    mg_response_header_add(conn, "Content-Type", a.content_type.c_str(), -1);
    mg_response_header_add(conn, "Content-Length", std::to_string(a.body.size()).c_str(), -1);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    mg_response_header_send(conn);
    if (!a.head) mg_write(conn, a.body.data(), a.body.size());
    return a.status;
}

} // namespace sluice::control
