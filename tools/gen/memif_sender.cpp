#include "tools/gen/memif_sender.h"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <rte_alarm.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

namespace sluice::tools {

namespace {

constexpr uint16_t mbuf_data_bytes = 16384; // a jumbo frame from the generator fits one mbuf
constexpr uint32_t pool_mbufs = 4095;

void sleep_us(long us) {
    timespec ts{us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, nullptr);
}

// The main lcore may run on any CPU this process is allowed: on a 2-core machine the
// generator then shares fairly with sluiced's lcores.
std::string main_lcore_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    std::string cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
    return "0@(" + (cpus.empty() ? std::string("0") : cpus) + ")";
}

result<void> eal_start(const memif_options& o) {
    std::vector<std::string> args = {"sluice-gen",
                                     "--no-huge",
                                     "--no-pci",
                                     "-m",
                                     "256",
                                     "--file-prefix",
                                     "sluice-gen-" + std::to_string(getpid()),
                                     "--lcores",
                                     main_lcore_cpus(),
                                     "--no-telemetry",
                                     "--log-level",
                                     "*:warning",
                                     "--vdev",
                                     "net_memif_gen0,role=client,id=0,bsize=16384,socket=" +
                                         o.socket};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(int(args.size()), argv.data()) < 0)
        return make_error(errc::io_error, std::string("DPDK EAL initialisation failed: ") +
                                              rte_strerror(rte_errno) +
                                              " (is another sluice-gen --memif running?)");
    return ok_result();
}

// Returns once EAL's interrupt thread has finished every callback it had started. The
// memif PMD runs the connection's set-up there (the control socket's recvmsg, the
// queues' eventfds, the region fds it maps) and closes those descriptors from this
// thread when the port stops. DPDK orders the two (the set-up is done before the link
// is reported up; the stop unregisters the socket's callback under EAL's interrupt
// lock and only then closes), but inside librte_eal and librte_net_memif, built without
// ThreadSanitizer, so TSan saw each close as a race with the interrupt thread (4 reports
// per sluice-gen, docs/RELIABILITY.md "ThreadSanitizer"). An alarm callback runs on that
// same thread after the callbacks before it; its release store, read here with acquire,
// is an order TSan sees. Nothing else in the shutdown changes (about 1 ms).
void mark_passed(void* passed) {
    static_cast<std::atomic<bool>*>(passed)->store(true, std::memory_order_release);
}

void wait_for_interrupt_thread() {
    std::atomic<bool> passed{false};
    if (rte_eal_alarm_set(1, mark_passed, &passed) != 0) return;
    for (int waited_ms = 0; waited_ms < 2000; ++waited_ms) {
        if (passed.load(std::memory_order_acquire)) return;
        sleep_us(1000);
    }
    // Not run within 2 s: take the alarm back (waits for it if it is running now) so it
    // never touches `passed` after this frame is gone.
    rte_eal_alarm_cancel(mark_passed, &passed);
}

} // namespace

result<std::unique_ptr<memif_sender>> memif_sender::open(const memif_options& o) {
    if (o.socket.empty())
        return make_error(errc::invalid_argument, "no memif socket (pass --memif NAME)");
    if (o.queues == 0 || o.queues > 16)
        return make_error(errc::invalid_argument, "--memif-queues must be within 1..16");
    SLUICE_TRY(eal_start(o));
    std::unique_ptr<memif_sender> s(new memif_sender());
    uint16_t port = 0;
    if (rte_eth_dev_get_port_by_name("net_memif_gen0", &port) != 0)
        return make_error(errc::internal, "the net_memif port did not appear");
    s->_port = port;
    s->_queues = o.queues;
    s->_pool =
        rte_pktmbuf_pool_create("gen_mbufs", pool_mbufs, 256, 0,
                                RTE_PKTMBUF_HEADROOM + mbuf_data_bytes, int(rte_socket_id()));
    if (s->_pool == nullptr)
        return make_error(errc::no_space,
                          std::string("cannot create the mbuf pool: ") + rte_strerror(rte_errno));
    rte_eth_conf conf;
    std::memset(&conf, 0, sizeof conf);
    // memif rings come in pairs; the RX side is unused but must exist.
    if (int rc = rte_eth_dev_configure(port, o.queues, o.queues, &conf); rc != 0)
        return make_error(errc::io_error,
                          std::string("cannot configure the memif port: ") + strerror(-rc));
    for (uint16_t q = 0; q < o.queues; ++q) {
        if (rte_eth_rx_queue_setup(port, q, 1024, rte_socket_id(), nullptr, s->_pool) != 0 ||
            rte_eth_tx_queue_setup(port, q, 1024, rte_socket_id(), nullptr) != 0)
            return make_error(errc::io_error, "cannot set up the memif queues");
    }
    if (int rc = rte_eth_dev_start(port); rc != 0)
        return make_error(errc::io_error,
                          std::string("cannot start the memif port: ") + strerror(-rc));
    s->_started = true;
    s->_pending = std::make_unique<pending[]>(o.queues);
    // The link comes up once sluiced's server has accepted the connection.
    for (uint32_t waited_ms = 0;; waited_ms += 10) {
        rte_eth_link link;
        if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP) break;
        if (waited_ms >= o.connect_timeout_s * 1000)
            return make_error(errc::not_found,
                              "no memif server answered on socket '" + o.socket + "' within " +
                                  std::to_string(o.connect_timeout_s) +
                                  " s (start sluiced with --vdev net_memif0,role=server,socket=" +
                                  o.socket + " first)");
        sleep_us(10000);
    }
    return s;
}

memif_sender::~memif_sender() {
    if (_pending)
        for (uint16_t q = 0; q < _queues; ++q)
            rte_pktmbuf_free_bulk(_pending[q].bufs, _pending[q].count);
    if (_started) {
        wait_for_interrupt_thread();
        rte_eth_dev_stop(_port);
        rte_eth_dev_close(_port);
    }
    // EAL leaves its runtime directory (/var/run/dpdk/<prefix>) behind: remove it.
    const std::string runtime = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    if (runtime.find("sluice-gen-") != std::string::npos) std::filesystem::remove_all(runtime, ec);
}

result<void> memif_sender::send(std::span<const uint8_t> frame, uint32_t flow) {
    if (frame.size() > mbuf_data_bytes)
        return make_error(errc::invalid_argument, "frame of " + std::to_string(frame.size()) +
                                                      " bytes does not fit an mbuf");
    const uint16_t q = uint16_t(flow % _queues);
    rte_mbuf* m = nullptr;
    while ((m = rte_pktmbuf_alloc(_pool)) == nullptr) {
        // Every mbuf is queued: send what is pending to make room.
        SLUICE_TRY(flush());
        sleep_us(10);
    }
    std::memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
    pending& p = _pending[q];
    p.bufs[p.count++] = m;
    if (p.count == burst) return send_queue(q);
    return ok_result();
}

result<void> memif_sender::send_queue(uint16_t q) {
    pending& p = _pending[q];
    uint32_t done = 0;
    while (done < p.count) {
        done += rte_eth_tx_burst(_port, q, p.bufs + done, uint16_t(p.count - done));
        if (done == p.count) break;
        // The ring is full: sluiced has not caught up yet (back-pressure, no loss).
        rte_eth_link link;
        if (rte_eth_link_get_nowait(_port, &link) == 0 && link.link_status != RTE_ETH_LINK_UP) {
            rte_pktmbuf_free_bulk(p.bufs + done, p.count - done);
            p.count = 0;
            return make_error(errc::io_error, "the memif server disconnected while sending");
        }
        sleep_us(5);
    }
    _sent += p.count;
    p.count = 0;
    return ok_result();
}

result<void> memif_sender::flush() {
    for (uint16_t q = 0; q < _queues; ++q)
        if (_pending[q].count) SLUICE_TRY(send_queue(q));
    return ok_result();
}

} // namespace sluice::tools
