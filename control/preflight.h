#pragma once
// Checks that sluiced makes before DPDK starts, so that the commonest start-up mistakes
// are one line naming the cause and the fix, with no EAL output before it: the data dir
// is not writable, the control socket is served by another sluiced or its path is no
// socket or its directory is missing (control_server.h check_control_socket, the check the
// server makes again before it binds, so a race with another process gets the same message).
#include "base/result.h"
#include "control/config.h"

namespace sluice::control {

result<void> check_data_dir(const std::string& data_dir);
result<void> preflight(const daemon_config& config);

} // namespace sluice::control
