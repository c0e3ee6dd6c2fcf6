#pragma once
// The daemon: wires EAL lcores, the port (or kernel socket), rings, workers, the window
// merger and the control server together, and runs until a graceful shutdown.
#include "control/config.h"

namespace sluice::control {

// Runs sluiced after EAL is up; returns the process exit code.
int run_daemon(const daemon_config& config);

} // namespace sluice::control
