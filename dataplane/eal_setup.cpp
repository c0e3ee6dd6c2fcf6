#include "dataplane/eal_setup.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_memory.h>

#include "base/limits.h"
#include "base/log.h"
#include "dataplane/pcap_replay.h"

namespace sluice::dataplane {

namespace {

// "0-2,5" -> {0,1,2,5}; false on anything else.
bool parse_cpu_list(std::string_view s, std::vector<int>& out) {
    while (!s.empty()) {
        size_t comma = s.find(',');
        std::string_view item = s.substr(0, comma);
        s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
        size_t dash = item.find('-');
        int lo = 0, hi = 0;
        auto num = [](std::string_view v, int& n) {
            if (v.empty() || v.size() > 5) return false;
            n = 0;
            for (char c : v) {
                if (c < '0' || c > '9') return false;
                n = n * 10 + (c - '0');
            }
            return true;
        };
        if (dash == std::string_view::npos) {
            if (!num(item, lo)) return false;
            hi = lo;
        } else if (!num(item.substr(0, dash), lo) || !num(item.substr(dash + 1), hi) || hi < lo) {
            return false;
        }
        for (int c = lo; c <= hi; ++c) out.push_back(c);
    }
    return true;
}

// The CPUs an -l or --lcores value pins to: "0-3" or "0@0,1@0,2@1" or "(1,2)@(3,4)".
// False where the syntax is beyond this simple reading (EAL then judges it).
bool cpus_of_lcore_option(const std::string& opt, const std::string& value, std::vector<int>& out) {
    if (opt == "-l") return parse_cpu_list(value, out);
    std::string v;
    for (char c : value) if (c != '(' && c != ')') v += c;
    // Elements are "lcores@cpus" or "lcores" (their own CPUs); split at commas that start
    // a new element, i.e. those not inside a CPU list. Good enough: only plain forms.
    if (value.find('(') != std::string::npos) return false;
    size_t start = 0;
    while (start <= v.size()) {
        size_t comma = v.find(',', start);
        std::string el = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        size_t at = el.find('@');
        if (!parse_cpu_list(at == std::string::npos ? el : el.substr(at + 1), out)) return false;
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return true;
}

// EAL's answer to a CPU this process may not use is its whole usage text; one line that
// names the CPU and the fix is what an operator needs.
result<void> check_lcore_cpus(int argc, char** argv) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return ok_result();
    std::string allowed_list;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &allowed)) allowed_list += (allowed_list.empty() ? "" : ",") + std::to_string(c);
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") break;
        std::string opt, value;
        if ((a == "-l" || a == "--lcores") && i + 1 < argc) {
            opt = a, value = argv[i + 1];
        } else if (a.rfind("--lcores=", 0) == 0) {
            opt = "--lcores", value = a.substr(9);
        } else if (a.rfind("-l", 0) == 0 && a.size() > 2 && a[2] >= '0' && a[2] <= '9') {
            opt = "-l", value = a.substr(2);
        } else {
            continue;
        }
        std::vector<int> cpus;
        if (!cpus_of_lcore_option(opt, value, cpus)) continue;
        for (int c : cpus)
            if (c >= CPU_SETSIZE || !CPU_ISSET(c, &allowed))
                return make_error(errc::bad_config,
                                  opt + " '" + value + "' pins to CPU " + std::to_string(c) +
                                      ", which this process may not use (allowed: " +
                                      allowed_list +
                                      "; fix the list, or the unit's CPUAffinity= / taskset)");
    }
    return ok_result();
}

// The devices the EAL options name (--vdev, -a/--allow): when none of them becomes a port,
// port_caps() says so rather than "no DPDK port found".
std::vector<std::string> devices_given;

// The value of an EAL option before `--`, in "--opt V" or "--opt=V" form; "" if absent.
std::string eal_option(int argc, char** argv, const std::string& opt, bool* present = nullptr) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--") break;
        if (a == opt) {
            if (present) *present = true;
            return i + 1 < argc ? argv[i + 1] : "";
        }
        if (a.rfind(opt + "=", 0) == 0) {
            if (present) *present = true;
            return a.substr(opt.size() + 1);
        }
    }
    return "";
}

// A second DPDK primary with the same --file-prefix gets EAL's "Cannot create lock on
// .../config. Is another primary process running?" and an rte_errno of 0: name the prefix,
// the process holding it and the fix instead. EAL locks its config file with fcntl; the
// file lives in /var/run/dpdk/PREFIX for root, else in $XDG_RUNTIME_DIR (or /tmp)/dpdk.
result<void> check_file_prefix(int argc, char** argv) {
    bool in_memory = false, no_shconf = false;
    eal_option(argc, argv, "--in-memory", &in_memory);
    eal_option(argc, argv, "--no-shconf", &no_shconf);
    if (in_memory || no_shconf) return ok_result();
    std::string prefix = eal_option(argc, argv, "--file-prefix");
    if (prefix.empty()) prefix = "rte";
    std::string base = "/var/run";
    if (::getuid() != 0) {
        const char* xdg = std::getenv("XDG_RUNTIME_DIR");
        base = xdg && *xdg ? xdg : "/tmp";
    }
    const std::string config = base + "/dpdk/" + prefix + "/config";
    const int fd = ::open(config.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ok_result();
    struct flock lk {};
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    const bool held = ::fcntl(fd, F_GETLK, &lk) == 0 && lk.l_type != F_UNLCK;
    ::close(fd);
    if (!held) return ok_result();
    return make_error(errc::busy,
                      "DPDK file prefix '" + prefix + "' is in use by another DPDK process (pid " +
                          std::to_string(lk.l_pid) + ", " + config +
                          ") (give each sluiced its own --file-prefix before `--`, e.g. in "
                          "SLUICED_EAL_ARGS, or stop the other one)");
}

// EAL options without --no-huge need free hugepages; with none, EAL's answer is "Cannot
// get hugepage information" and an rte_errno of EACCES ("Permission denied").
result<void> check_hugepages_free(int argc, char** argv) {
    bool no_huge = false;
    eal_option(argc, argv, "--no-huge", &no_huge);
    if (no_huge) return ok_result();
    uint64_t reserved = 0, free_pages = 0;
    for (const char* size : {"2048kB", "1048576kB"}) {
        const std::string dir = std::string("/sys/kernel/mm/hugepages/hugepages-") + size;
        uint64_t n = 0, f = 0;
        if (FILE* in = std::fopen((dir + "/nr_hugepages").c_str(), "r")) {
            if (std::fscanf(in, "%lu", &n) != 1) n = 0;
            std::fclose(in);
        }
        if (FILE* in = std::fopen((dir + "/free_hugepages").c_str(), "r")) {
            if (std::fscanf(in, "%lu", &f) != 1) f = 0;
            std::fclose(in);
        }
        reserved += n;
        free_pages += f;
    }
    if (free_pages > 0) return ok_result();
    return make_error(errc::no_space,
                      "the EAL options ask for hugepages (no --no-huge) and none are free (" +
                          std::to_string(reserved) +
                          " reserved) (reserve them: sluice-hugepages --size 2M --count 1024, "
                          "docs/DEPLOY.md; or pass --no-huge -m 1024)");
}

} // namespace

result<int> eal_init(int argc, char** argv) {
    SLUICE_TRY(check_lcore_cpus(argc, argv));
    SLUICE_TRY(check_file_prefix(argc, argv));
    SLUICE_TRY(check_hugepages_free(argc, argv));
    devices_given.clear();
    for (int i = 1; i + 1 < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--") break;
        if (a == "--vdev" || a == "-a" || a == "--allow") devices_given.push_back(argv[i + 1]);
    }
    // On a bad option EAL prints its whole usage to stdout, burying the line that says
    // what was wrong (its log, on stderr): keep stdout quiet while it parses.
    std::fflush(stdout);
    int saved = ::dup(STDOUT_FILENO);
    int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved >= 0 && null_fd >= 0) ::dup2(null_fd, STDOUT_FILENO);
    int n = rte_eal_init(argc, argv);
    const int err = rte_errno;
    std::fflush(stdout);
    if (saved >= 0 && null_fd >= 0) ::dup2(saved, STDOUT_FILENO);
    if (saved >= 0) ::close(saved);
    if (null_fd >= 0) ::close(null_fd);
    if (n < 0)
        return make_error(errc::bad_config,
                          std::string("DPDK EAL initialisation failed") +
                              (err != 0 ? std::string(": ") + rte_strerror(err) : "") +
                              " (EAL's lines above name the option; fix the EAL options before "
                              "`--`, see `sluiced --help`; without hugepages pass --no-huge "
                              "--no-pci -m 1024, and a unique --file-prefix per instance)");
    return n;
}

result<int> eal_init_deviceless(const std::string& program, uint32_t memory_mb,
                                const std::string& lcores) {
    std::vector<std::string> args = {program,
                                     "--no-huge",
                                     "--no-pci",
                                     "-m",
                                     std::to_string(memory_mb),
                                     "--file-prefix=" + program + "-" + std::to_string(::getpid()),
                                     "--log-level",
                                     "*:error",
                                     "--no-telemetry"};
    if (!lcores.empty()) {
        args.push_back("-l");
        args.push_back(lcores);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return eal_init(int(argv.size()), argv.data());
}

void eal_cleanup_deviceless() {
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ignored;
    std::filesystem::remove_all(runtime_dir, ignored);
}

namespace {
// The flows sluice wants spread: UDP over IPv4/IPv6 by addresses and ports.
constexpr uint64_t rss_flow_types = RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP;
} // namespace

result<rx_source_caps> port_caps(uint16_t port_id) {
    uint16_t avail = rte_eth_dev_count_avail();
    if (avail == 0 && !devices_given.empty()) {
        std::string list;
        for (const auto& d : devices_given) list += (list.empty() ? "" : " ") + d;
        return make_error(errc::not_found,
                          "no DPDK port: the device(s) given (" + list +
                              ") did not start; DPDK's lines above say why (a socket, interface "
                              "or NIC that another process holds: stop it or give this one its "
                              "own; a NIC not bound to vfio-pci, docs/DEPLOY.md; a PMD not "
                              "installed, librte-net-*)");
    }
    if (avail == 0)
        return make_error(errc::not_found,
                          "no DPDK port found (pass a device, e.g. --vdev "
                          "net_pcap0,rx_pcap=FILE, or bind a NIC to vfio-pci; or run with "
                          "--kernel-udp)");
    if (!rte_eth_dev_is_valid_port(port_id))
        return make_error(errc::not_found, "DPDK port " + std::to_string(port_id) +
                                               " does not exist (" + std::to_string(avail) +
                                               " port(s) available; pass --port-id)");
    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0)
        return make_error(errc::io_error, std::string("cannot query port: ") + strerror(-rc));
    rx_source_caps caps;
    char name[RTE_ETH_NAME_MAX_LEN] = "";
    rte_eth_dev_get_name_by_port(port_id, name);
    caps.name = "port " + std::to_string(port_id) + " (" + name + ", " + info.driver_name + ")";
    caps.max_rx_queues = info.max_rx_queues;
    caps.rss = (info.flow_type_rss_offloads & rss_flow_types) != 0;
    return caps;
}

result<port_state> port_start(const port_config& config) {
    SLUICE_TRY(port_caps(config.port_id));
    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(config.port_id, &info); rc != 0)
        return make_error(errc::io_error, std::string("cannot query port: ") + strerror(-rc));
    if (config.rx_queues > info.max_rx_queues)
        return make_error(errc::bad_config,
                          "port " + std::to_string(config.port_id) + " (" + info.driver_name +
                              ") has " + std::to_string(info.max_rx_queues) +
                              " RX queue(s), asked for " + std::to_string(config.rx_queues));

    int socket = rte_eth_dev_socket_id(config.port_id);
    if (socket < 0) socket = int(rte_socket_id());
    std::string pool_name = "mbufs_p" + std::to_string(config.port_id);
    // Large enough data room that jumbo frames from a capture fit one mbuf.
    uint32_t data_room = RTE_PKTMBUF_HEADROOM + 16384;
    // Every queue's descriptors may hold an mbuf, plus a burst in flight per queue and
    // the per-lcore caches.
    const uint32_t mbufs_min =
        config.rx_queues * (limits::rx_descriptors + limits::rx_burst_max + 256) + 1024;
    uint64_t pool_size = std::max(config.mbufs, mbufs_min);
    // net_pcap with infinite_rx=1 holds its whole capture in mbufs (pcap_replay.h): one
    // more per frame, each only as large as the capture's largest frame.
    auto replay = pcap_replay_of(config.port_id);
    if (!replay) return std::move(replay).err();
    if (*replay && (*replay)->infinite) {
        const pcap_replay& r = **replay;
        pool_size = std::max<uint64_t>(pool_size, mbufs_min + r.frames);
        data_room = RTE_PKTMBUF_HEADROOM + std::max<uint32_t>(2048, (r.frame_bytes_max + 63) & ~63u);
        SLUICE_LOG_INFO("net_pcap infinite_rx: %llu frame(s) kept in mbufs; mbuf pool sized to "
                        "%llu of %u bytes",
                        (unsigned long long)r.frames, (unsigned long long)pool_size, data_room);
    }
    if (pool_size > UINT32_MAX || data_room > UINT16_MAX)
        return make_error(errc::bad_config, "the capture is too large to replay with "
                                            "infinite_rx=1 (" + std::to_string(pool_size) +
                                                " mbufs; replay it without infinite_rx)");
    rte_mempool* mbufs = rte_pktmbuf_pool_create(pool_name.c_str(), uint32_t(pool_size), 256, 0,
                                                 uint16_t(data_room), socket);
    if (mbufs == nullptr)
        return make_error(errc::no_space,
                          "cannot create the mbuf pool (" + std::to_string(pool_size) + " x " +
                              std::to_string(data_room) + " bytes, " +
                              std::to_string((pool_size * (data_room + 256)) >> 20) +
                              " MiB): " + rte_strerror(rte_errno) +
                              " (give EAL more memory with -m or reserve hugepages with "
                              "scripts/hugepages; or lower [input] mbufs)");

    rte_eth_conf conf;
    std::memset(&conf, 0, sizeof conf);
    const bool rss = config.rss && config.rx_queues > 1 &&
                     (info.flow_type_rss_offloads & rss_flow_types) != 0;
    if (rss) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = nullptr; // the PMD's default key
        conf.rx_adv_conf.rss_conf.rss_hf = rss_flow_types & info.flow_type_rss_offloads;
    }
    if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
        conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    // sluice never transmits, but some PMDs (net_tap, net_memif) pair RX with TX queues.
    uint16_t tx_queues = std::min(config.rx_queues, info.max_tx_queues);
    if (int rc = rte_eth_dev_configure(config.port_id, config.rx_queues, tx_queues, &conf); rc != 0)
        return make_error(errc::io_error, std::string("cannot configure port: ") + strerror(-rc));
    uint16_t rx_desc = limits::rx_descriptors, tx_desc = 512;
    rte_eth_dev_adjust_nb_rx_tx_desc(config.port_id, &rx_desc, &tx_desc);
    for (uint16_t q = 0; q < config.rx_queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(config.port_id, q, rx_desc, socket, nullptr, mbufs);
            rc != 0)
            return make_error(
                errc::io_error,
                "cannot set up RX queue " + std::to_string(q) + " of port " +
                    std::to_string(config.port_id) + " (" + info.driver_name + ", " +
                    std::to_string(pool_size) + " mbufs): " + strerror(-rc) +
                    " (DPDK's line above says why; if it wants more mbufs, raise [input] mbufs "
                    "in the config file and give EAL the memory with -m)");
    }
    for (uint16_t q = 0; q < tx_queues; ++q) {
        if (int rc = rte_eth_tx_queue_setup(config.port_id, q, tx_desc, socket, nullptr); rc != 0)
            return make_error(errc::io_error,
                              std::string("cannot set up TX queue: ") + strerror(-rc));
    }
    if (int rc = rte_eth_dev_start(config.port_id); rc != 0)
        return make_error(errc::io_error, std::string("cannot start port: ") + strerror(-rc));
    rte_eth_promiscuous_enable(config.port_id);
    return port_state{config.port_id, config.rx_queues, rss, info.driver_name, mbufs};
}

void port_stop(const port_state& port) {
    rte_eth_dev_stop(port.port_id);
    rte_eth_dev_close(port.port_id);
}

memory_mode eal_memory_mode() {
    memory_mode m;
    m.hugepages = rte_eal_has_hugepages() != 0;
    m.iova_va = rte_eal_iova_mode() == RTE_IOVA_VA;
    // EAL sets up a list per page size it finds (1 GiB ones too, with no page reserved):
    // the mode's page size is that of the list holding the most memory, not the first.
    struct walk {
        uint64_t page_bytes = 0, bytes = 0;
    } w;
    rte_memseg_list_walk(
        [](const rte_memseg_list* msl, void* arg) {
            auto* w = static_cast<walk*>(arg);
            const uint64_t bytes = uint64_t(msl->memseg_arr.count) * msl->page_sz;
            if (!msl->external && (w->page_bytes == 0 || bytes > w->bytes)) {
                w->page_bytes = msl->page_sz;
                w->bytes = bytes;
            }
            return 0;
        },
        &w);
    m.page_bytes = w.page_bytes;
    return m;
}

std::string memory_mode::describe() const {
    const std::string page = page_bytes >= (1u << 30) ? std::to_string(page_bytes >> 30) + " GiB"
                             : page_bytes >= (1u << 20) ? std::to_string(page_bytes >> 20) + " MiB"
                                                        : std::to_string(page_bytes >> 10) + " KiB";
    if (hugepages)
        return "hugepages (" + page + " pages, IOVA as " + (iova_va ? "VA" : "PA") + ")";
    return "no hugepages (--no-huge: " + page +
           " pages, slower; reserve hugepages with scripts/hugepages, see docs/DEPLOY.md)";
}

port_counters port_stats(uint16_t port_id) {
    rte_eth_stats st;
    if (rte_eth_stats_get(port_id, &st) != 0) return {};
    return port_counters{st.ipackets, st.imissed, st.rx_nombuf, st.ierrors};
}

uint64_t port_rx_dropped(uint16_t port_id) { return port_stats(port_id).rx_dropped(); }

uint32_t slots_min(uint32_t rx_lcores, uint32_t workers) noexcept {
    const uint32_t cached = (rx_lcores + workers) * (slot_pool_cache * 3 / 2);
    const uint32_t held_by_rx = rx_lcores * (limits::ring_burst_max + workers * limits::ring_burst_max);
    const uint32_t in_process = workers * limits::ring_burst_max;
    return cached + held_by_rx + in_process;
}

uint32_t slots_default(uint32_t rx_lcores, uint32_t workers) noexcept {
    return std::max<uint32_t>(4096, 2 * slots_min(rx_lcores, workers));
}

result<rte_mempool*> slot_pool_create(uint32_t slots, uint32_t slot_bytes,
                                      const std::string& name) {
    rte_mempool* pool = rte_mempool_create_empty(name.c_str(), slots, slot_bytes, slot_pool_cache,
                                                 0, int(rte_socket_id()), 0);
    if (pool != nullptr) {
        bool ops_set = rte_mempool_set_ops_byname(pool, slot_pool_ops, nullptr) == 0;
        if (!ops_set) {
            // The driver is a plugin of the DPDK install (librte_mempool_stack): without it
            // the pool works as before, on DPDK's default FIFO ring, only colder.
            SLUICE_LOG_WARN("event slot pool: mempool driver %s unavailable, using %s",
                            slot_pool_ops, rte_mbuf_best_mempool_ops());
            ops_set = rte_mempool_set_ops_byname(pool, rte_mbuf_best_mempool_ops(), nullptr) == 0;
        }
        if (!ops_set || rte_mempool_populate_default(pool) < 0) {
            rte_mempool_free(pool);
            pool = nullptr;
        }
    }
    if (pool == nullptr)
        return make_error(errc::no_space,
                          std::string("cannot create the event slot pool (") +
                              std::to_string(uint64_t(slots) * slot_bytes >> 20) +
                              " MiB): " + rte_strerror(rte_errno) +
                              " (give EAL more memory with -m, or lower input.event_bytes_max)");
    return pool;
}

result<rte_ring*> spsc_ring_create(const std::string& name, uint32_t size) {
    rte_ring* r = rte_ring_create(name.c_str(), size, int(rte_socket_id()),
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (r == nullptr)
        return make_error(errc::no_space,
                          "cannot create ring " + name + ": " + rte_strerror(rte_errno));
    return r;
}

} // namespace sluice::dataplane
