#include "control/daemon.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "control/admin_commands.h"
#include "control/control_server.h"
#include "control/fd_budget.h"
#include "control/metrics_http.h"
#include "control/pipeline.h"
#include "control/service_notify.h"
#include "storage/retention.h"

namespace sluice::control {

namespace {

std::atomic<bool> g_signal_shutdown{false};
std::atomic<bool> g_signal_reload{false};

void on_signal(int) {
    g_signal_shutdown.store(true);
}
void on_reload_signal(int) {
    g_signal_reload.store(true);
}

class daemon {
  public:
    daemon(const daemon_config& config, config_loader reload_config)
        : _config(config), _reload_config(std::move(reload_config)) {}
    result<void> start();
    int run();

  private:
    result<void> start_control();

    daemon_config _config;
    config_loader _reload_config;
    // Lcores, pools, rings, workers and the query service (control/pipeline.h).
    std::unique_ptr<pipeline> _pipeline;
    std::unique_ptr<storage::retention_manager> _retention;
    std::unique_ptr<admin_commands> _commands;
    std::unique_ptr<control_server> _control;
    std::unique_ptr<metrics_http_server> _metrics_http; // null: metrics.listen is ""
    service_notifier _notify; // systemd Type=notify (control/service_notify.h)
};

result<void> daemon::start() {
    auto p = pipeline::prepare(_config);
    if (!p) return std::move(p).err();
    _pipeline = std::move(p.value());
    _retention = std::make_unique<storage::retention_manager>(
        _config.sluice.data_dir, _config.retention.defaults, _config.retention.tables, [] {
            return int64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
        });
    _retention->start(_config.retention.interval_ms);
    SLUICE_TRY(_pipeline->build());
    // Before the socket answers: whoever can reach the daemon can read its map in the log.
    _pipeline->print_startup_map();
    SLUICE_TRY(start_control());
    return ok_result();
}

result<void> daemon::start_control() {
    _commands = std::make_unique<admin_commands>(_config, _reload_config, *_pipeline, *_retention,
                                                 &g_signal_shutdown);
    server_config sc;
    sc.socket_path = _config.sluice.control_socket;
    sc.mode = _config.control.socket_mode;
    sc.group_gid = _config.control.socket_group_gid;
    sc.access = access_policy_of(_config.control);
    sc.idle_timeout_ms = _config.control.idle_timeout_ms;
    sc.clients_max = _pipeline->control_clients_max(); // what the descriptors fit
    // One sample a second feeds the rates and the recent latency percentiles; the first
    // is taken now, before the server thread exists, so every reply has a base.
    _commands->sample();
    sc.on_tick = [c = _commands.get()] { c->sample(); };
    sc.tick_interval_ms = 1000;
    // flush, queries, windows and replay may block: off the server's loop, on its pool.
    sc.slow_commands = admin_commands::slow_commands();
    auto server = control_server::start(sc, _commands->handlers());
    if (!server) return std::move(server).err();
    _control = std::move(server.value());
    _commands->attach(_control.get());
    if (!_config.metrics.listen.empty()) {
        // civetweb's threads render from the same snapshot as the `metrics` command.
        auto http = metrics_http_server::start({.listen = _config.metrics.listen},
                                               [c = _commands.get()] { return c->metrics_text(); });
        if (!http) return std::move(http).err();
        _metrics_http = std::move(http.value());
        _commands->attach(_metrics_http.get());
        SLUICE_LOG_INFO("metrics: Prometheus can scrape %s", _metrics_http->url().c_str());
    }
    return ok_result();
}

int daemon::run() {
    _pipeline->launch();
    _notify.ready(std::string(input_mode_name(_config.input.mode)) + " input, " +
                  std::to_string(_pipeline->workers().size()) + " worker(s), control socket " +
                  _config.sluice.control_socket);

    while (!_commands->shutdown_requested() && !g_signal_shutdown.load()) {
        if (g_signal_reload.exchange(false)) {
            _notify.reloading();
            _commands->reload("SIGHUP");
            _notify.reloaded();
        }
        _notify.tick(monotonic_ns());
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    _notify.stopping();
    SLUICE_LOG_INFO("graceful shutdown: stopping RX, draining rings, closing windows");
    const int rc = _pipeline->stop();
    // Before the pipeline is released: its renders read the pipeline.
    if (_metrics_http) _metrics_http->stop();
    // The server first: its tick writes the stats history that the last reply reads.
    _control->stop();
    // Every counter is final now (RX stopped, rings drained, workers done): one line
    // for logs and for tests that compare exact counts after a run.
    std::printf("sluiced: final stats %s\n", _commands->stats_reply().dump().c_str());
    std::fflush(stdout);
    _retention->stop();
    _pipeline->release();
    SLUICE_LOG_INFO("stopped: %s", rc == 0 ? "all data flushed and synced" : "with storage errors");
    return rc;
}

} // namespace

int run_daemon(const daemon_config& config, config_loader reload_config) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    struct sigaction hup {};
    hup.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &hup, nullptr);
    daemon d(config, std::move(reload_config));
    if (auto r = d.start(); !r) {
        std::string message = r.err().message;
        // Out of descriptors before the budget could be planned (the store's own files at
        // start): say which limit and how to raise it.
        if (message.find(std::strerror(EMFILE)) != std::string::npos) {
            fd_budget_input in;
            raise_fd_limit(0, in);
            message += " (RLIMIT_NOFILE is " + std::to_string(static_cast<unsigned long long>(in.limit)) +
                       ": raise it with LimitNOFILE= in the systemd unit or ulimit -n, or run "
                       "fewer workers or queries)";
        }
        std::fprintf(stderr, "sluiced: %s\n", message.c_str());
        return 1;
    }
    return d.run();
}

} // namespace sluice::control
