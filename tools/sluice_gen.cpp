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
    app.add_option("--events", g.events, "event lines in total (duplicates, malformed included)")
        ->required();
    app.add_option("--seed", g.seed, "seed; the same seed gives the same bytes")->required();
    app.add_option("--out", o.out_dir, "output directory (pcap and expected/)")->required();
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
    app.add_option("--max-event-bytes", g.event_bytes_max, "sluice's event size limit")
        ->check(CLI::Range(1u, 65536u))
        ->capture_default_str();
    app.add_option("--events-per-minute", g.events_per_minute, "event-time density")
        ->check(CLI::Range(1u, 60000000u))
        ->capture_default_str();
    app.add_option("--send", o.send_target, "also send the datagrams to HOST:PORT over UDP");
    app.add_option("--pps", o.pps, "datagrams per second for --send (0: unpaced)")
        ->capture_default_str();
    app.add_option("--now-ms", o.now_ms, "wall clock for future_timestamp (default: now)");
    CLI11_PARSE(app, argc, argv);

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
