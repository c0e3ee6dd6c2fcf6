#pragma once
// The daemon: wires EAL lcores, the port (or kernel socket), rings, workers, the window
// merger and the control server together, and runs until a graceful shutdown.
#include <functional>

#include "control/config.h"

namespace sluice::control {

// Loads the configuration again (the file and the same command-line overrides): what
// SIGHUP and the `reload` command apply.
using config_loader = std::function<result<daemon_config>()>;

// Runs sluiced after EAL is up; returns the process exit code.
int run_daemon(const daemon_config& config, config_loader reload_config);

} // namespace sluice::control
