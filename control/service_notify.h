#pragma once
// systemd's notify protocol (Type=notify) through libsystemd's sd_notify: READY=1 once the
// control socket answers, WATCHDOG=1 at half the unit's WatchdogSec, STOPPING=1 when a
// graceful shutdown starts. Without NOTIFY_SOCKET (not run by systemd) every call is a
// no-op. Control thread only.
#include <cstdint>
#include <string>

namespace sluice::control {

class service_notifier {
  public:
    // Reads WATCHDOG_USEC/WATCHDOG_PID (sd_watchdog_enabled) once.
    service_notifier();
    // READY=1 with a STATUS= line for `systemctl status`.
    void ready(const std::string& status);
    // RELOADING=1 before a SIGHUP reload, READY=1 after it.
    void reloading();
    void reloaded();
    void stopping();
    // Sends WATCHDOG=1 when half the interval has passed since the last one; call often.
    void tick(int64_t now_ns);
    uint64_t watchdog_usec() const { return _watchdog_usec; }

  private:
    uint64_t _watchdog_usec = 0;
    int64_t _last_ping_ns = 0;
};

} // namespace sluice::control
