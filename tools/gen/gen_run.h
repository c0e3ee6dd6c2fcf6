#pragma once
// One sluice-gen run: generate the frames, write the pcap, feed the reference model,
// write DIR/expected/, and optionally send the datagrams to a live sluice.
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "tools/gen/generator.h"
#include "tools/gen/model.h"

namespace sluice::tools {

struct run_options {
    gen_config gen;
    std::string out_dir;
    std::string pcap_path;   // empty: out_dir/events.pcap
    std::string send_target; // empty: no sending
    uint64_t pps = 0;        // --send: datagrams/s, --memif: frames/s; 0: unpaced
    uint32_t flows = 1;      // --send: UDP sockets (source ports) the flows are spread over
    int64_t now_ms = 0;      // the wall clock for future_timestamp; 0: the real one
    // Also write the frames split by flow into N capture files, one per RX queue of a
    // multi-queue net_pcap port (rx_pcap=...-q0.pcap,rx_pcap=...-q1.pcap, ...).
    uint32_t pcap_queues = 1;
    // --memif: send every frame over DPDK net_memif to sluiced (see memif_sender.h), then
    // keep the link up for linger_s seconds or until SIGTERM/SIGINT.
    std::string memif_socket;
    uint16_t memif_queues = 1;
    uint32_t linger_s = 5;
    // --replay: with --memif, send the frames of this capture (one ring, in order, paced
    // by pps) instead of generating; nothing is generated or written.
    std::string replay_pcap;
};

struct run_summary {
    model_counters counters;
    uint64_t window_rows = 0;
    uint64_t datagrams_sent = 0;
    uint64_t memif_frames_sent = 0;
    std::string pcap_path;
    std::vector<std::string> queue_pcap_paths;
    std::string expected_dir;
    double seconds = 0;
};

result<run_summary> run_sluice_gen(const run_options& options);
// --replay: the capture's frames over memif; the frames sent.
result<uint64_t> replay_over_memif(const run_options& options);

// The one-paragraph summary sluice-gen prints.
std::string describe(const run_options& options, const run_summary& summary);

} // namespace sluice::tools
