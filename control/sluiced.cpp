// sluiced: EAL options, then `--`, then sluice's own options (see `sluiced -- --help`).
// With no EAL options at all (`sluiced -- ...`), it picks defaults that work on any
// machine: hugepages where enough are reserved and mounted (scripts/hugepages), else
// --no-huge; no PCI scan; and lcores that share the available CPUs.
#include <rte_eal.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/daemon.h"
#include "control/preflight.h"
#include "dataplane/eal_setup.h"
#include "storage/fault_injection.h"

namespace {

// Free hugepages worth using: a hugetlbfs mount and at least 512 MiB free in pages of
// one size (EAL allocates from them on demand; fewer would fail part way).
bool hugepages_ready() {
    std::ifstream mounts("/proc/mounts");
    std::string dev, dir, type, rest;
    bool mounted = false;
    while (mounts >> dev >> dir >> type && std::getline(mounts, rest))
        if (type == "hugetlbfs") mounted = true;
    if (!mounted) return false;
    for (const char* size : {"2048kB", "1048576kB"}) {
        std::ifstream f(std::string("/sys/kernel/mm/hugepages/hugepages-") + size +
                        "/free_hugepages");
        uint64_t pages = 0;
        if (!(f >> pages)) continue;
        const uint64_t kb = std::strtoull(size, nullptr, 10);
        if (pages * kb >= 512u * 1024) return true;
    }
    return false;
}

void print_help() {
    std::printf(
        "Usage: sluiced [EAL OPTIONS] -- [OPTIONS]\n"
        "sluiced: the sluice streaming ingestion appliance. Events arrive on a DPDK port, a\n"
        "kernel UDP socket or as Kafka produce requests; workers deduplicate them, aggregate\n"
        "them in event-time windows and store them in a columnar store; sluicectl controls it\n"
        "over a Unix socket.\n\n"
        "EAL options (before --) are DPDK's: e.g. -l/--lcores, --vdev, -a PCI, --no-huge, -m,\n"
        "--file-prefix (see dpdk's EAL parameters). With none, sluiced picks: hugepages when\n"
        "at least 512 MiB are free and mounted (else --no-huge -m 1024), --no-pci, and lcores\n"
        "over the CPUs it may use.\n\n"
        "  -h, --help      print this help and exit\n"
        "  -V, --version   print the version and exit\n\n");
    auto r = [] {
        char prog[] = "sluiced", help[] = "--help";
        char* argv[] = {prog, help, nullptr};
        return sluice::control::load_config(2, argv);
    }();
    if (!r) std::printf("%s\n", r.err().message.c_str());
    const sluice::control::daemon_config defaults;
    std::printf("Signals: SIGTERM/SIGINT stop gracefully, SIGHUP re-reads the config file.\n"
                "Files: /etc/sluice/sluiced.toml (the packaged config), %s (data),\n"
                "%s (control socket).\n",
                defaults.sluice.data_dir.c_str(), defaults.sluice.control_socket.c_str());
}

// Main and RX lcores on the first CPU, one worker lcore on each other CPU (at least
// one worker, sharing the first CPU on a single-CPU machine). `kafka_beside`: a Kafka
// listener beside another input gets one more lcore on the first CPU.
std::vector<std::string> default_eal_args(bool kafka_beside) {
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) cpus.push_back(c);
    if (cpus.empty()) cpus.push_back(0);
    std::string map = "0@" + std::to_string(cpus[0]) + ",1@" + std::to_string(cpus[0]);
    const size_t first_worker = kafka_beside ? 3 : 2;
    if (kafka_beside) map += ",2@" + std::to_string(cpus[0]);
    size_t workers = cpus.size() > 1 ? cpus.size() - 1 : 1;
    for (size_t w = 0; w < workers; ++w)
        map += "," + std::to_string(first_worker + w) + "@" +
               std::to_string(cpus[cpus.size() > 1 ? 1 + w : 0]);
    std::vector<std::string> args = {"--no-pci", "--file-prefix",
                                     "sluiced-" + std::to_string(getpid()), "--lcores", map,
                                     "--log-level", "*:warning"};
    if (!hugepages_ready()) args.insert(args.begin(), {"--no-huge", "-m", "1024"});
    return args;
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
        print_help();
        return 0;
    }
    if (argc == 2 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "-V") == 0)) {
        std::printf("sluiced %s\n", SLUICE_VERSION);
        return 0;
    }
    std::vector<std::string> storage;
    std::vector<char*> args(argv, argv + argc);
    if (argc == 1 || std::strcmp(argv[1], "--") == 0) {
        // The options decide the default lcores (a Kafka listener beside another input
        // needs one more); errors are reported below, after the same parse.
        std::vector<char*> own_first(argv + std::min(argc, 2), argv + argc);
        own_first.insert(own_first.begin(), argv[0]);
        own_first.push_back(nullptr);
        auto first = sluice::control::load_config(int(own_first.size()) - 1, own_first.data());
        const bool kafka_beside = first && !first->kafka.listen.empty() &&
                                  first->input.mode != sluice::control::input_mode::kafka;
        storage = default_eal_args(kafka_beside);
        args.insert(args.begin() + 1, storage.size(), nullptr);
        for (size_t i = 0; i < storage.size(); ++i) args[1 + i] = storage[i].data();
        if (argc == 1) args.push_back(const_cast<char*>("--"));
    }
    int n = int(args.size());
    // sluice's own options (after `--`) are read before EAL starts: a bad config or option
    // is one line on stderr, with nothing of EAL's start-up before it.
    int sep = 1;
    while (sep < n && std::strcmp(args[sep], "--") != 0) ++sep;
    std::vector<char*> own(args.begin() + std::min(sep + 1, n), args.end());
    own.insert(own.begin(), argv[0]);
    own.push_back(nullptr);
    auto config = sluice::control::load_config(int(own.size()) - 1, own.data());
    if (!config) {
        std::fprintf(stderr, "sluiced: %s\n", config.err().message.c_str());
        return config.err().code == sluice::errc::invalid_argument ? 2 : 1;
    }
    sluice::control::apply_log_config(config.value());
    // Held until sluiced returns: one daemon per data dir.
    auto data_dir_lock = sluice::control::preflight(config.value());
    if (!data_dir_lock) {
        std::fprintf(stderr, "sluiced: %s\n", data_dir_lock.err().message.c_str());
        return 1;
    }
    args.push_back(nullptr);
    auto eal = sluice::dataplane::eal_init(n, args.data());
    if (!eal) {
        std::fprintf(stderr, "sluiced: %s\n", eal.err().message.c_str());
        return 1;
    }
    std::printf("sluiced: memory: %s\n", sluice::dataplane::eal_memory_mode().describe().c_str());
    std::fflush(stdout);
    // SIGHUP re-reads the file with the same command-line overrides.
    std::vector<std::string> own_args(own.begin(), own.end() - 1);
    auto reload = [own_args]() mutable {
        std::vector<char*> argv;
        for (auto& a : own_args) argv.push_back(a.data());
        argv.push_back(nullptr);
        return sluice::control::load_config(int(own_args.size()), argv.data());
    };
    // Test only (tests/integration/fault_walk.cpp): SLUICE_TEST_FAULT arms the store's
    // fault injection hook (storage/fault_injection.h) for the whole run, recovery included.
    const char* fault_plan = std::getenv("SLUICE_TEST_FAULT");
    if (fault_plan && *fault_plan) {
        auto plan = sluice::storage::fault::parse_plan(fault_plan);
        if (!plan) {
            std::fprintf(stderr, "sluiced: SLUICE_TEST_FAULT: %s\n", plan.err().message.c_str());
            return 2;
        }
        sluice::storage::fault::arm(plan.value());
    }
    int rc = sluice::control::run_daemon(config.value(), reload);
    if (fault_plan && *fault_plan)
        std::fprintf(stderr, "sluiced: fault injection: %s\n",
                     sluice::storage::fault::summary().c_str());
    rte_eal_cleanup();
    return rc;
}
