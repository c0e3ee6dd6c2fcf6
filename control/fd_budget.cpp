#include "control/fd_budget.h"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>

#include "base/limits.h"

namespace sluice::control {

uint32_t fd_reserve(const fd_budget_input& in) {
    uint64_t r = uint64_t(in.writers) * limits::fd_writer_rotation +
                 uint64_t(std::max(in.writers_max, in.writers) - in.writers) * limits::fd_writer_added +
                 limits::fd_store_headroom + limits::fd_control_server;
    if (in.metrics) r += limits::fd_metrics_http;
    if (in.kafka) r += limits::fd_kafka_listener;
    return uint32_t(std::min<uint64_t>(r, UINT32_MAX));
}

result<fd_budget> plan_fd_budget(const fd_budget_input& in) {
    fd_budget b;
    b.limit = in.limit;
    b.open = in.open;
    b.reserve = fd_reserve(in);
    const uint32_t kafka_wanted = in.kafka ? in.kafka_wanted : 0;
    b.needed = uint64_t(in.open) + b.reserve + limits::control_clients_max + kafka_wanted;
    if (in.limit == RLIM_INFINITY || in.limit >= b.needed) {
        b.control_clients = limits::control_clients_max;
        b.kafka_connections = kafka_wanted;
        return b;
    }
    const uint64_t used = uint64_t(in.open) + b.reserve;
    const uint64_t left = in.limit > used ? in.limit - used : 0;
    const uint64_t least = limits::control_clients_min + (in.kafka ? 1 : 0);
    if (left < least) {
        const auto n = [](uint64_t v) { return std::to_string(static_cast<unsigned long long>(v)); };
        return make_error(
            errc::bad_config,
            "RLIMIT_NOFILE is " + n(in.limit) + " (hard " + n(in.hard) + "), too low: " + n(in.open) +
                " file descriptors are open once the store is up (" + n(in.writers) +
                " table writers) and " + n(b.reserve) +
                " are kept for what the store opens while it runs (rotations, readers, retention, "
                "checkpoints" + std::string(in.kafka ? ", the Kafka sequence journal" : "") +
                ") and the control socket, which leaves " + n(left) + " of the " + n(least) +
                " needed at least for control clients" +
                (in.kafka ? " and one Kafka connection" : "") + ". Raise the limit to " +
                n(b.needed) + " (LimitNOFILE= in the systemd unit, or ulimit -n), or run fewer "
                "workers or queries");
    }
    uint64_t control = std::min<uint64_t>(limits::control_clients_max,
                                          std::max<uint64_t>(limits::control_clients_min, left / 4));
    uint64_t kafka = 0;
    if (in.kafka) {
        kafka = std::min<uint64_t>(kafka_wanted, left - control);
        b.kafka_cut = kafka < kafka_wanted;
    }
    control = std::min<uint64_t>(limits::control_clients_max, left - kafka);
    b.control_clients = uint32_t(control);
    b.kafka_connections = uint32_t(kafka);
    return b;
}

uint32_t count_open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (d == nullptr) return 0;
    uint32_t n = 0;
    while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n > 0 ? n - 1 : 0; // not the directory's own descriptor
}

void raise_fd_limit(uint64_t want, fd_budget_input& in) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        in.limit = in.hard = RLIM_INFINITY;
        return;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min<rlim_t>(want, rl.rlim_max);
        if (::setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
    }
    in.limit = rl.rlim_cur;
    in.hard = rl.rlim_max;
}

std::string describe(const fd_budget& b) {
    const auto n = [](uint64_t v) { return std::to_string(static_cast<unsigned long long>(v)); };
    std::string s = "file descriptors: RLIMIT_NOFILE " +
                    (b.limit == RLIM_INFINITY ? std::string("unlimited") : n(b.limit)) + ", " +
                    n(b.open) + " open at start, " + n(b.reserve) +
                    " kept for the store and servers; at most " + n(b.control_clients) +
                    " control clients";
    if (b.kafka_connections > 0) s += " and " + n(b.kafka_connections) + " Kafka connections";
    return s;
}

} // namespace sluice::control
