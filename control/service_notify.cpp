#include "control/service_notify.h"

#include <systemd/sd-daemon.h>

#include "base/log.h"

namespace sluice::control {

service_notifier::service_notifier() {
    uint64_t usec = 0;
    // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
    if (sd_watchdog_enabled(0, &usec) > 0) _watchdog_usec = usec;
}

void service_notifier::ready(const std::string& status) {
    const std::string msg = "READY=1\nSTATUS=" + status;
    if (sd_notify(0, msg.c_str()) < 0) SLUICE_LOG_WARN("sd_notify READY=1 failed");
    if (_watchdog_usec)
        SLUICE_LOG_INFO("systemd watchdog: WATCHDOG=1 every %llu ms",
                        (unsigned long long)(_watchdog_usec / 2000));
}

void service_notifier::reloading() { sd_notify(0, "RELOADING=1"); }
void service_notifier::reloaded() { sd_notify(0, "READY=1"); }
void service_notifier::stopping() { sd_notify(0, "STOPPING=1\nSTATUS=stopping: draining"); }

void service_notifier::tick(int64_t now_ns) {
    if (_watchdog_usec == 0) return;
    // Half the interval, as sd_watchdog_enabled(3) advises: one late ping is not a kill.
    if (now_ns - _last_ping_ns < int64_t(_watchdog_usec) * 1000 / 2) return;
    _last_ping_ns = now_ns;
    sd_notify(0, "WATCHDOG=1");
}

} // namespace sluice::control
