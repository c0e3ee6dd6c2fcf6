// sluiced: EAL options, then `--`, then sluice's own options (see --help).
#include <rte_eal.h>

#include <cstdio>

#include "control/config.h"
#include "control/daemon.h"
#include "dataplane/eal_setup.h"

int main(int argc, char** argv) {
    auto eal = sluice::dataplane::eal_init(argc, argv);
    if (!eal) {
        std::fprintf(stderr, "sluiced: %s\n", eal.err().message.c_str());
        return 1;
    }
    int used = eal.value();
    // After EAL: argv[used] is the `--` (or the first sluice option).
    argv[used] = argv[0];
    auto config = sluice::control::load_config(argc - used, argv + used);
    if (!config) {
        std::fprintf(stderr, "sluiced: %s\n", config.err().message.c_str());
        rte_eal_cleanup();
        return config.err().code == sluice::errc::invalid_argument ? 2 : 1;
    }
    int rc = sluice::control::run_daemon(config.value());
    rte_eal_cleanup();
    return rc;
}
