#pragma once
// The file-descriptor budget of sluiced (issue 15, item 6): control clients and Kafka
// connections share the process's descriptor table with the store, and a client must
// never take a descriptor a segment rotation, a checkpoint or a reader needs. Once the
// store is up, sluiced counts the descriptors open, keeps free what the store and its
// servers may still open (base/limits.h, "File descriptors"), and caps control clients
// and Kafka connections to what is left of RLIMIT_NOFILE; clients beyond the caps are
// refused and counted like those beyond the configured limits.
#include <cstdint>
#include <string>

#include "base/result.h"

namespace sluice::control {

struct fd_budget_input {
    uint64_t limit = 0;        ///< the soft RLIMIT_NOFILE in force (RLIM_INFINITY: no limit)
    uint64_t hard = 0;         ///< the hard RLIMIT_NOFILE, for the message
    uint32_t open = 0;         ///< descriptors open now (the store up, no client yet)
    uint32_t writers = 0;      ///< table writers open now
    uint32_t writers_max = 0;  ///< table writers that may be open at once
    bool metrics = false;      ///< the Prometheus endpoint is still to start
    bool kafka = false;        ///< a Kafka listener is open
    uint32_t kafka_wanted = 0; ///< kafka.connections_max
};

struct fd_budget {
    uint64_t limit = 0;             ///< RLIMIT_NOFILE planned with
    uint32_t open = 0;              ///< descriptors open at start
    uint32_t reserve = 0;           ///< kept free for the store and the servers
    uint32_t control_clients = 0;   ///< control clients accepted at once
    uint32_t kafka_connections = 0; ///< Kafka connections accepted at once (0: no listener)
    bool kafka_cut = false;         ///< fewer Kafka connections than configured
    /// Descriptors that would give every client its configured limit.
    uint64_t needed = 0;
};

/// Descriptors kept free beside those open: rotations, writers still to come, readers,
/// retention, checkpoints and journals, the control server, metrics, Kafka's closing
/// connections.
uint32_t fd_reserve(const fd_budget_input& in);

/// Splits what is left of the limit: every client its limit when it fits; otherwise
/// control clients a quarter of what is left (at least limits::control_clients_min),
/// Kafka connections the rest, control clients what Kafka leaves. An error naming the
/// cause and the fix when not even control_clients_min (and one Kafka connection) fit.
result<fd_budget> plan_fd_budget(const fd_budget_input& in);

/// Descriptors this process has open (/proc/self/fd); 0 if it cannot be read.
uint32_t count_open_fds();

/// Raises the soft RLIMIT_NOFILE towards `want` (never above the hard limit); fills
/// `limit` and `hard` of `in` with what is in force afterwards.
void raise_fd_limit(uint64_t want, fd_budget_input& in);

/// One log line: the limit, what is open, the reserve, the caps.
std::string describe(const fd_budget& b);

} // namespace sluice::control
