// sluice-gen: writes seed-shaped traffic (a pcap, and optionally live UDP) and the exact
// outcome that sluice must reach on it, computed by a separate reference model of §3.
// See docs/sluice-gen.md.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "tools/gen/gen_run.h"

int main(int argc, char** argv) {
    using sluice::tools::run_options;
    run_options o;
    sluice::tools::gen_config& g = o.gen;

    CLI::App app{"sluice-gen: deterministic traffic for sluice and the exact expected outcome"};
    const auto rate = CLI::Range(0.0, 1.0);
    // Required unless --replay (checked after parsing).
    app.add_option("--events", g.events, "event lines in total (duplicates, malformed included)");
    app.add_option("--seed", g.seed, "seed; the same seed gives the same bytes");
    app.add_option("--out", o.out_dir, "output directory (pcap and expected/)");
    app.add_option("--pcap", o.pcap_path, "pcap file (default DIR/events.pcap)");
    app.add_option("--dst-port", g.dst_port, "UDP port the events go to")->capture_default_str();
    app.add_option("--dup-rate", g.dup_rate, "exact byte re-sends")
        ->check(rate)
        ->capture_default_str();
    app.add_option("--id-dup-rate", g.id_dup_rate, "same event_id, other bytes")
        ->check(rate)
        ->capture_default_str();
    app.add_option("--disorder-rate", g.disorder_rate, "jittered back <= 5 min")
        ->check(rate)
        ->capture_default_str();
    app.add_option("--late-rate", g.late_rate, "late events")->check(rate)->capture_default_str();
    app.add_option("--horizon-rate", g.horizon_rate, "beyond the dedup horizon")
        ->check(rate)
        ->capture_default_str();
    app.add_option("--malformed-rate", g.malformed_rate, "dead letters at RX")
        ->check(rate)
        ->capture_default_str();
    app.add_option("--ignored-rate", g.ignored_rate, "ignored frames (ARP, TCP, ...)")
        ->check(CLI::Range(0.0, 0.99))
        ->capture_default_str();
    app.add_option("--ipv6-rate", g.ipv6_rate, "IPv6 datagrams")
        ->check(rate)
        ->capture_default_str();
    app.add_option("--vlan-rate", g.vlan_rate, "802.1Q-tagged frames")
        ->check(rate)
        ->capture_default_str();
    app.add_flag("!--no-fragments", g.fragments,
                 "leave IPv4 fragments out of the ignored frames (net_af_packet's fanout "
                 "holds them in the kernel)");
    app.add_option("--max-event-bytes", g.event_bytes_max, "sluice's event size limit")
        ->check(CLI::Range(1u, 65536u))
        ->capture_default_str();
    app.add_option("--events-per-minute", g.events_per_minute, "event-time density")
        ->check(CLI::Range(1u, 60000000u))
        ->capture_default_str();
    app.add_option("--send", o.send_target, "also send the datagrams to HOST:PORT over UDP");
    app.add_option("--pps", o.pps, "paced rate: datagrams per second for --send, frames per second for --memif "
                   "(0: unpaced)")
        ->capture_default_str();
    app.add_option("--flows", o.flows, "--send: UDP source sockets the flows are spread over")
        ->check(CLI::Range(1u, 64u))
        ->capture_default_str();
    app.add_option("--pcap-queues", o.pcap_queues,
                   "also write the frames split by flow into N files DIR/events-qI.pcap "
                   "(one per net_pcap RX queue)")
        ->check(CLI::Range(1u, 16u))
        ->capture_default_str();
    app.add_option("--memif", o.memif_socket,
                   "also send every frame over DPDK net_memif (client) to the memif server "
                   "socket NAME that sluiced listens on");
    app.add_option("--memif-queues", o.memif_queues, "memif rings (= sluiced's RX queues)")
        ->check(CLI::Range(1, 16))
        ->capture_default_str();
    app.add_option("--linger-s", o.linger_s,
                   "--memif: keep the link up this long after the last frame (SIGTERM ends "
                   "it early)")
        ->capture_default_str();
    app.add_option("--replay", o.replay_pcap,
                   "with --memif: send the frames of this capture (e.g. an earlier run's "
                   "events.pcap) instead of generating; no model, no files written");
    app.add_option("--now-ms", o.now_ms, "wall clock for future_timestamp (default: now)");
    std::string format = "json";
    app.add_option("--format", format, "datagram payloads: json (NDJSON) or binary (docs/BINARY.md)")
        ->check(CLI::IsMember({"json", "binary"}))
        ->capture_default_str();
    bool order_free = false;
    app.add_flag("--order-free", order_free,
                 "traffic whose outcome does not depend on how flows interleave (several RX "
                 "queues): no late, beyond-horizon or same-event_id lines, and at most 4 "
                 "minutes of event time");
    CLI11_PARSE(app, argc, argv);
    if (!o.replay_pcap.empty()) {
        auto sent = sluice::tools::replay_over_memif(o);
        if (!sent) {
            std::fprintf(stderr, "sluice-gen: %s\n", sent.err().message.c_str());
            return 1;
        }
        std::printf("sluice-gen: replayed %llu frames of %s over memif %s\n",
                    (unsigned long long)*sent, o.replay_pcap.c_str(), o.memif_socket.c_str());
        return 0;
    }
    for (const char* name : {"--events", "--seed", "--out"}) {
        if (app.count(name) == 0) {
            std::fprintf(stderr, "sluice-gen: %s is required (unless --replay)\n", name);
            return 2;
        }
    }
    g.binary = format == "binary";
    if (order_free) {
        g.late_rate = g.horizon_rate = g.id_dup_rate = 0;
        // Disorder reaches 5 min back; with at most 4 min of event time, W = M - 10 min
        // stays below every event's window however the queues interleave: nothing is late
        // and every window closes only at shutdown.
        if (g.events > 4 * uint64_t(g.events_per_minute)) {
            std::fprintf(stderr,
                         "sluice-gen: --order-free needs --events <= 4 x --events-per-minute "
                         "(%llu)\n",
                         (unsigned long long)(4 * uint64_t(g.events_per_minute)));
            return 2;
        }
    }

    const double special =
        g.dup_rate + g.id_dup_rate + g.late_rate + g.horizon_rate + g.malformed_rate;
    if (special > 1.0) {
        std::fprintf(stderr,
                     "sluice-gen: the dup, id-dup, late, horizon and malformed rates add "
                     "up to %.3f (> 1); lower them\n",
                     special);
        return 2;
    }
    auto done = sluice::tools::run_sluice_gen(o);
    if (!done) {
        std::fprintf(stderr, "sluice-gen: %s\n", done.err().message.c_str());
        return 1;
    }
    std::printf("%s\n", sluice::tools::describe(o, *done).c_str());
    return 0;
}
