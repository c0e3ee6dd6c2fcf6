#pragma once
// Checks that sluiced makes before DPDK starts, so that the commonest start-up mistakes
// are one line naming the cause and the fix, with no EAL output before it: the data dir
// is not writable, the control socket is served by another sluiced or its path is no
// socket or its directory is missing (control_server.h check_control_socket, the check the
// server makes again before it binds, so a race with another process gets the same message),
// the metrics address is taken (metrics_http.h probe_metrics_listen), the data dir's
// filesystem has less than limits::data_dir_free_bytes_min free, the kernel UDP port is
// taken (kernel_udp_rx.h check_udp_port_free), the data dir is locked by another sluiced
// (storage/data_dir_lock.h). The lock it takes is returned and
// must live as long as the daemon.
#include "base/result.h"
#include "control/config.h"
#include "storage/data_dir_lock.h"

namespace sluice::control {

result<void> check_data_dir(const std::string& data_dir);
result<storage::data_dir_lock> preflight(const daemon_config& config);

} // namespace sluice::control
