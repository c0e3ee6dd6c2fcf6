#include "tools/gen/gen_run.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include <pcap/pcap.h>

#include "base/clock.h"
#include "tools/gen/memif_sender.h"
#include "tools/gen/pacer.h"
#include "tools/gen/udp_sender.h"

namespace sluice::tools {

namespace {

// Capture timestamps are synthetic (10 us apart from the stream's start) so that the
// same seed gives the same pcap bytes.
constexpr int64_t capture_start_us = event_time_start_ms * 1000;
constexpr int64_t capture_step_us = 10;

class pcap_file {
  public:
    ~pcap_file() {
        if (_dumper) pcap_dump_close(_dumper);
        if (_dead) pcap_close(_dead);
    }

    result<void> open(const std::string& path) {
        _dead = pcap_open_dead(DLT_EN10MB, 65535);
        if (!_dead) return make_error(errc::internal, "pcap_open_dead failed");
        _dumper = pcap_dump_open(_dead, path.c_str());
        if (!_dumper)
            return make_error(errc::io_error, "cannot create " + path + ": " + pcap_geterr(_dead) +
                                                  " (check --pcap/--out)");
        return ok_result();
    }

    void write(std::span<const uint8_t> frame) {
        const int64_t us = capture_start_us + int64_t(_count++) * capture_step_us;
        pcap_pkthdr h{};
        h.ts.tv_sec = time_t(us / 1000000);
        h.ts.tv_usec = suseconds_t(us % 1000000);
        h.caplen = bpf_u_int32(frame.size());
        h.len = bpf_u_int32(frame.size());
        pcap_dump(reinterpret_cast<u_char*>(_dumper), &h, frame.data());
    }

    result<void> close(const std::string& path) {
        const bool flushed = pcap_dump_flush(_dumper) == 0;
        pcap_dump_close(_dumper);
        _dumper = nullptr;
        if (!flushed) return make_error(errc::io_error, "cannot write " + path + " (disk full?)");
        return ok_result();
    }

  private:
    pcap_t* _dead = nullptr;
    pcap_dumper_t* _dumper = nullptr;
    uint64_t _count = 0;
};

result<void> make_dir(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + dir + ": " + ec.message());
    return ok_result();
}

// The generator is deterministic, so sending replays it rather than holding every
// datagram of a large run in memory.
result<uint64_t> send_all(const run_options& options) {
    auto sender = udp_sender::open(options.send_target, options.pps, options.flows);
    if (!sender) return std::move(sender).err();
    std::optional<error> failed;
    traffic_generator gen(options.gen);
    gen.run([&](const gen_frame& f) {
        if (f.ignored || failed) return;
        if (auto r = sender->send(f.payload, f.flow); !r) failed = std::move(r).err();
    });
    if (failed) return std::move(*failed);
    return sender->sent();
}

std::atomic<bool> g_stop_linger{false};
void on_stop_signal(int) { g_stop_linger.store(true); }

// Calls send(frame, flow) for every frame of the capture at `path`, in order.
template <class Send>
result<uint64_t> for_each_pcap_frame(const std::string& path, Send&& send) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* in = pcap_open_offline(path.c_str(), err);
    if (!in) return make_error(errc::io_error, "cannot read " + path + ": " + err);
    uint64_t frames = 0;
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    int rc;
    while ((rc = pcap_next_ex(in, &h, &data)) == 1) {
        if (!send(std::span<const uint8_t>(data, h->caplen), 0u)) break;
        ++frames;
    }
    const std::string why = rc == PCAP_ERROR ? pcap_geterr(in) : "";
    pcap_close(in);
    if (rc == PCAP_ERROR) return make_error(errc::io_error, "reading " + path + ": " + why);
    return frames;
}

// Every frame (ignored ones too: memif carries Ethernet frames, like the pcap) over DPDK:
// the generator's, or with --replay those of an existing capture.
result<uint64_t> memif_send_all(const run_options& options) {
    struct sigaction sa{};
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    memif_options mo;
    mo.socket = options.memif_socket;
    mo.queues = options.memif_queues;
    auto sender = memif_sender::open(mo);
    if (!sender) return std::move(sender).err();
    std::fprintf(stderr, "sluice-gen: memif link up, sending over memif %s\n",
                 options.memif_socket.c_str());
    std::optional<error> failed;
    // --pps paces the frames; those queued for a burst leave before any pacing sleep.
    pacer pace(options.pps);
    uint64_t frames = 0;
    auto send = [&](std::span<const uint8_t> frame, uint32_t flow) {
        if (pace.paced() && pace.would_sleep(frames)) {
            if (auto r = (*sender)->flush(); !r) {
                failed = std::move(r).err();
                return false;
            }
            pace.wait(frames);
        }
        ++frames;
        if (auto r = (*sender)->send(frame, flow); !r) failed = std::move(r).err();
        return !failed;
    };
    if (!options.replay_pcap.empty()) {
        auto read = for_each_pcap_frame(options.replay_pcap, send);
        if (!read && !failed) failed = std::move(read).err();
    } else {
        traffic_generator gen(options.gen);
        gen.run([&](const gen_frame& f) {
            if (!failed) send(f.bytes, f.flow);
        });
    }
    if (!failed)
        if (auto r = (*sender)->flush(); !r) failed = std::move(r).err();
    if (failed) return std::move(*failed);
    // Frames still in the memif rings are lost if the link goes down: stay connected
    // until sluiced has read them (the caller knows; it signals) or the linger ends.
    std::fprintf(stderr, "sluice-gen: sent %llu frames over memif; lingering up to %u s\n",
                 (unsigned long long)(*sender)->sent(), options.linger_s);
    for (uint32_t ms = 0; ms < options.linger_s * 1000 && !g_stop_linger.load(); ms += 10)
        usleep(10000);
    return (*sender)->sent();
}

} // namespace

result<run_summary> run_sluice_gen(const run_options& options) {
    const int64_t started = monotonic_ns();
    if (options.out_dir.empty())
        return make_error(errc::invalid_argument, "no output directory (pass --out DIR)");
    run_summary summary;
    summary.pcap_path =
        options.pcap_path.empty() ? options.out_dir + "/events.pcap" : options.pcap_path;
    summary.expected_dir = options.out_dir + "/expected";
    SLUICE_TRY(make_dir(summary.expected_dir));

    model_config mc;
    mc.event_bytes_max = options.gen.event_bytes_max;
    mc.now_ms = options.now_ms != 0 ? options.now_ms : wall_clock_ms();
    reference_model model(mc);

    pcap_file pcap;
    SLUICE_TRY(pcap.open(summary.pcap_path));
    if (options.pcap_queues == 0 || options.pcap_queues > gen_flows)
        return make_error(errc::invalid_argument, "--pcap-queues must be within 1.." +
                                                      std::to_string(gen_flows));
    std::vector<std::unique_ptr<pcap_file>> queue_pcaps;
    if (options.pcap_queues > 1) {
        std::string stem = summary.pcap_path;
        if (stem.size() > 5 && stem.substr(stem.size() - 5) == ".pcap")
            stem.resize(stem.size() - 5);
        for (uint32_t q = 0; q < options.pcap_queues; ++q) {
            summary.queue_pcap_paths.push_back(stem + "-q" + std::to_string(q) + ".pcap");
            queue_pcaps.push_back(std::make_unique<pcap_file>());
            SLUICE_TRY(queue_pcaps.back()->open(summary.queue_pcap_paths.back()));
        }
    }
    traffic_generator gen(options.gen);
    gen.run([&](const gen_frame& f) {
        pcap.write(f.bytes);
        if (!queue_pcaps.empty()) queue_pcaps[f.flow % queue_pcaps.size()]->write(f.bytes);
        if (f.ignored)
            model.feed_ignored_frame(f.ignored_reason);
        else
            model.feed_datagram(f.payload);
    });
    SLUICE_TRY(pcap.close(summary.pcap_path));
    for (size_t q = 0; q < queue_pcaps.size(); ++q)
        SLUICE_TRY(queue_pcaps[q]->close(summary.queue_pcap_paths[q]));
    SLUICE_TRY(model.write_expected(summary.expected_dir));
    summary.counters = model.counters();
    summary.window_rows = model.windows().size();

    if (!options.send_target.empty()) {
        auto sent = send_all(options);
        if (!sent) return std::move(sent).err();
        summary.datagrams_sent = *sent;
    }
    if (!options.memif_socket.empty()) {
        auto sent = memif_send_all(options);
        if (!sent) return std::move(sent).err();
        summary.memif_frames_sent = *sent;
    }
    summary.seconds = double(monotonic_ns() - started) * 1e-9;
    return summary;
}

result<uint64_t> replay_over_memif(const run_options& options) {
    if (options.memif_socket.empty())
        return make_error(errc::invalid_argument, "--replay needs --memif NAME");
    if (options.memif_queues != 1)
        return make_error(errc::invalid_argument,
                          "--replay sends on one memif ring (--memif-queues 1): a capture "
                          "does not say which flow a frame belongs to");
    return memif_send_all(options);
}

std::string describe(const run_options& options, const run_summary& s) {
    const model_counters& c = s.counters;
    std::string by_reason;
    for (int r = 0; r < reason_count; r++) {
        by_reason += (r ? ", " : "") + std::string(reason_text(reason(r))) + " " +
                     std::to_string(c.dead_letters_by_reason[size_t(r)]);
    }
    char buf[2048];
    std::snprintf(
        buf, sizeof buf,
        "sluice-gen seed %llu: %llu event lines in %llu datagrams to UDP port %u, %llu frames "
        "(%llu ignored) written to %s; expected outcome in %s: %llu accepted (%llu late), "
        "%llu duplicates, %llu dead letters (%s), %llu window rows%s%s%s; took %.2f s.",
        (unsigned long long)options.gen.seed, (unsigned long long)c.events_received,
        (unsigned long long)c.datagrams, unsigned(options.gen.dst_port),
        (unsigned long long)c.rx_packets, (unsigned long long)c.ignored_packets,
        s.pcap_path.c_str(), s.expected_dir.c_str(), (unsigned long long)c.events_accepted,
        (unsigned long long)c.late_events, (unsigned long long)c.duplicates,
        (unsigned long long)c.dead_letters, by_reason.c_str(), (unsigned long long)s.window_rows,
        options.send_target.empty() ? "" : "; sent the datagrams to ",
        options.send_target.empty()
            ? ""
            : (options.send_target + " (" + std::to_string(s.datagrams_sent) + " sent)").c_str(),
        options.memif_socket.empty()
            ? ""
            : ("; sent " + std::to_string(s.memif_frames_sent) + " frames over memif " +
               options.memif_socket)
                  .c_str(),
        s.seconds);
    return buf;
}

} // namespace sluice::tools
