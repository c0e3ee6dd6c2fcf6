#include "tools/gen/generator.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/tools/frame_decode.h"
#include "tools/gen/gen_run.h"
#include "tools/gen/model.h"

namespace sluice::tools {
namespace {

namespace fs = std::filesystem;

constexpr int64_t fixed_now_ms = 1767225600000; // 2026-01-01, fixed for repeatability

struct temp_dir {
    fs::path path;
    explicit temp_dir(const std::string& name)
        : path(fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
        fs::remove_all(path);
    }
    ~temp_dir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

run_options options_for(const fs::path& dir, uint64_t events, uint64_t seed) {
    run_options o;
    o.gen.events = events;
    o.gen.seed = seed;
    o.out_dir = dir.string();
    o.now_ms = fixed_now_ms;
    return o;
}

std::vector<std::string> generated_payloads(const gen_config& config) {
    std::vector<std::string> payloads;
    traffic_generator gen(config);
    gen.run([&](const gen_frame& f) {
        if (!f.ignored) payloads.emplace_back(f.payload);
    });
    return payloads;
}

struct pcap_contents {
    size_t frames = 0;
    size_t largest = 0;
    std::vector<std::string> payloads; // UDP datagrams to the port, in order
    bool all_checksums_ok = true;
    bool all_lengths_ok = true;
};

pcap_contents read_pcap(const fs::path& p, uint16_t port) {
    char err[PCAP_ERRBUF_SIZE];
    pcap_t* handle = pcap_open_offline(p.c_str(), err);
    EXPECT_NE(handle, nullptr) << err;
    pcap_contents c;
    if (!handle) return c;
    EXPECT_EQ(pcap_datalink(handle), DLT_EN10MB);
    pcap_pkthdr* h;
    const u_char* data;
    while (pcap_next_ex(handle, &h, &data) == 1) {
        c.frames++;
        c.largest = std::max<size_t>(c.largest, h->caplen);
        EXPECT_EQ(h->caplen, h->len);
        const auto d = test::decode_frame({data, h->caplen});
        c.all_checksums_ok = c.all_checksums_ok && d.checksums_ok;
        c.all_lengths_ok = c.all_lengths_ok && d.lengths_ok;
        if (d.udp_dst_port == port) c.payloads.push_back(d.udp_payload);
    }
    pcap_close(handle);
    return c;
}

TEST(Generator, SameSeedGivesIdenticalBytesOtherSeedDiffers) {
    temp_dir a("gen_a"), b("gen_b"), c("gen_c");
    ASSERT_TRUE(run_sluice_gen(options_for(a.path, 3000, 11)).ok());
    ASSERT_TRUE(run_sluice_gen(options_for(b.path, 3000, 11)).ok());
    ASSERT_TRUE(run_sluice_gen(options_for(c.path, 3000, 12)).ok());
    for (const char* f : {"events.pcap", "expected/counters.json", "expected/windows.csv",
                          "expected/events.txt", "expected/dead_letters.txt"}) {
        const std::string bytes = slurp(a.path / f);
        EXPECT_FALSE(bytes.empty()) << f;
        EXPECT_EQ(bytes, slurp(b.path / f)) << f;
    }
    EXPECT_NE(slurp(a.path / "events.pcap"), slurp(c.path / "events.pcap"));
    EXPECT_NE(slurp(a.path / "expected/events.txt"), slurp(c.path / "expected/events.txt"));
}

TEST(Generator, PcapParsesBackIntoTheExpectedFramesAndPayloads) {
    temp_dir dir("gen_pcap");
    run_options o = options_for(dir.path, 5000, 3);
    o.gen.ignored_rate = 0.2;
    o.gen.malformed_rate = 0.05;
    const auto done = run_sluice_gen(o);
    ASSERT_TRUE(done.ok()) << done.err().message;
    const model_counters& counters = done.value().counters;

    const pcap_contents pcap = read_pcap(dir.path / "events.pcap", o.gen.dst_port);
    EXPECT_EQ(pcap.frames, counters.rx_packets);
    EXPECT_EQ(pcap.payloads.size(), counters.datagrams);
    EXPECT_EQ(pcap.frames - pcap.payloads.size(), counters.ignored_packets);
    EXPECT_GT(counters.ignored_packets, 0u);
    EXPECT_TRUE(pcap.all_checksums_ok);
    EXPECT_TRUE(pcap.all_lengths_ok);
    EXPECT_LE(pcap.largest, frame_bytes_max);
    EXPECT_GT(pcap.largest, 4096u); // oversize events travel in jumbo frames

    // The datagrams round-trip byte for byte, in order.
    EXPECT_EQ(pcap.payloads, generated_payloads(o.gen));

    // Re-judging the payloads read back reproduces the expected counters.
    model_config mc;
    mc.now_ms = fixed_now_ms;
    reference_model again(mc);
    for (const auto& p : pcap.payloads)
        again.feed_datagram(p);
    EXPECT_EQ(again.counters().events_received, counters.events_received);
    EXPECT_EQ(again.counters().events_accepted, counters.events_accepted);
    EXPECT_EQ(again.counters().dead_letters, counters.dead_letters);
    EXPECT_EQ(slurp(dir.path / "expected/events.txt"), [&] {
        std::string s;
        for (const auto& l : again.event_lines())
            s += l + "\n";
        return s;
    }());
}

TEST(Generator, CountersIdentityAndEveryCaseAppears) {
    for (uint64_t seed : {1, 2, 3}) {
        temp_dir dir("gen_ident");
        run_options o = options_for(dir.path, 20000, seed);
        o.gen.malformed_rate = 0.05;
        o.gen.events_per_minute = 200; // 100 min of event time: horizons matter
        const auto done = run_sluice_gen(o);
        ASSERT_TRUE(done.ok());
        const model_counters& c = done.value().counters;
        EXPECT_EQ(c.events_received, 20000u);
        EXPECT_EQ(c.events_received, c.events_accepted + c.duplicates + c.dead_letters);
        EXPECT_GT(c.duplicates, 0u);
        EXPECT_GT(c.late_events, 0u);
        for (int r = 0; r < reason_count; r++)
            EXPECT_GT(c.dead_letters_by_reason[size_t(r)], 0u) << reason_text(reason(r));

        const auto json = nlohmann::json::parse(slurp(dir.path / "expected/counters.json"));
        EXPECT_EQ(json["events_accepted"], c.events_accepted);
        EXPECT_EQ(json["rx_packets"], c.rx_packets);
        uint64_t window_total = 0;
        std::ifstream csv(dir.path / "expected/windows.csv");
        std::string line;
        std::getline(csv, line);
        EXPECT_EQ(line, "window_start_ms,window_end_ms,page,count");
        while (std::getline(csv, line))
            window_total += std::stoull(line.substr(line.rfind(',') + 1));
        EXPECT_EQ(window_total, c.events_accepted - c.late_events);
    }
}

TEST(Generator, DisorderAloneIsNeverLateOrBeyondTheHorizon) {
    temp_dir dir("gen_disorder");
    run_options o = options_for(dir.path, 20000, 5);
    o.gen.disorder_rate = 0.5;
    o.gen.late_rate = 0;
    o.gen.horizon_rate = 0;
    o.gen.dup_rate = 0;
    o.gen.id_dup_rate = 0;
    o.gen.malformed_rate = 0;
    o.gen.events_per_minute = 500;
    const auto done = run_sluice_gen(o);
    ASSERT_TRUE(done.ok());
    const model_counters& c = done.value().counters;
    EXPECT_EQ(c.late_events, 0u);
    EXPECT_EQ(c.dead_letters, 0u);
    EXPECT_EQ(c.duplicates, 0u);
    EXPECT_EQ(c.events_accepted, 20000u);
}

TEST(Generator, LateAndHorizonRatesProduceThoseOutcomes) {
    temp_dir dir("gen_late");
    run_options o = options_for(dir.path, 20000, 9);
    o.gen.late_rate = 0.1;
    o.gen.horizon_rate = 0.05;
    o.gen.events_per_minute = 1000;
    const auto done = run_sluice_gen(o);
    ASSERT_TRUE(done.ok());
    const model_counters& c = done.value().counters;
    // Roughly the rates asked for (the first few events have no M to be late against).
    EXPECT_GT(c.late_events, 1500u);
    EXPECT_LT(c.late_events, 2500u);
    const uint64_t beyond = c.dead_letters_by_reason[size_t(reason::beyond_dedup_horizon)];
    EXPECT_GT(beyond, 700u);
    EXPECT_LT(beyond, 1300u);
}

TEST(Generator, SendDeliversTheSameDatagrams) {
    const int rx = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(rx, 0);
    int rcvbuf = 8 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(getsockname(rx, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const timeval timeout{2, 0};
    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

    temp_dir dir("gen_send");
    run_options o = options_for(dir.path, 400, 21);
    o.send_target = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    o.pps = 20000;
    const auto done = run_sluice_gen(o);
    ASSERT_TRUE(done.ok()) << done.err().message;
    EXPECT_EQ(done.value().datagrams_sent, done.value().counters.datagrams);

    std::vector<std::string> received;
    std::vector<char> buf(65536);
    while (received.size() < done.value().datagrams_sent) {
        const ssize_t n = recv(rx, buf.data(), buf.size(), 0);
        if (n < 0) break;
        received.emplace_back(buf.data(), size_t(n));
    }
    close(rx);
    EXPECT_EQ(received, generated_payloads(o.gen));
}

// The reason the generator gives an ignored frame is what an independent decoder says of
// it; --no-fragments leaves fragments out; the flow is stable per source.
TEST(Generator, IgnoredFramesCarryTheirReason) {
    for (bool fragments : {true, false}) {
        gen_config g;
        g.events = 3000;
        g.seed = 5;
        g.ignored_rate = 0.3;
        g.fragments = fragments;
        std::map<std::string, uint64_t> reasons;
        traffic_generator gen(g);
        gen.run([&](const gen_frame& f) {
            EXPECT_LT(f.flow, gen_flows);
            if (!f.ignored) {
                EXPECT_TRUE(f.ignored_reason.empty());
                return;
            }
            const auto d = test::decode_frame(f.bytes);
            std::string want = d.ethertype != 0x0800 && d.ethertype != 0x86dd ? "not_ip"
                               : d.fragment                                     ? "fragment"
                               : d.l4_proto != 17                                ? "not_udp"
                                                                                 : "wrong_port";
            EXPECT_EQ(f.ignored_reason, want);
            reasons[want]++;
        });
        EXPECT_GT(reasons["not_ip"], 0u);
        EXPECT_GT(reasons["not_udp"], 0u);
        EXPECT_GT(reasons["wrong_port"], 0u);
        if (fragments) EXPECT_GT(reasons["fragment"], 0u);
        else EXPECT_EQ(reasons["fragment"], 0u);
    }
}

// --pcap-queues: every frame lands in exactly one per-queue file, chosen by flow, in the
// stream's order within each flow; counters.json has the ignored frames by reason.
TEST(Generator, QueueCapturesSplitByFlow) {
    temp_dir dir("gen_queues");
    run_options o = options_for(dir.path, 3000, 8);
    o.gen.ignored_rate = 0.1;
    o.pcap_queues = 3;
    const auto done = run_sluice_gen(o);
    ASSERT_TRUE(done.ok()) << done.err().message;
    ASSERT_EQ(done.value().queue_pcap_paths.size(), 3u);
    std::vector<std::vector<std::string>> want(3);
    traffic_generator gen(o.gen);
    gen.run([&](const gen_frame& f) {
        want[f.flow % 3].emplace_back(reinterpret_cast<const char*>(f.bytes.data()),
                                      f.bytes.size());
    });
    size_t total = 0;
    for (size_t q = 0; q < 3; ++q) {
        char err[PCAP_ERRBUF_SIZE];
        pcap_t* h = pcap_open_offline(done.value().queue_pcap_paths[q].c_str(), err);
        ASSERT_NE(h, nullptr) << err;
        std::vector<std::string> got;
        pcap_pkthdr* hdr;
        const u_char* data;
        while (pcap_next_ex(h, &hdr, &data) == 1)
            got.emplace_back(reinterpret_cast<const char*>(data), hdr->caplen);
        pcap_close(h);
        EXPECT_FALSE(got.empty()) << q;
        EXPECT_TRUE(got == want[q]) << "queue " << q;
        total += got.size();
    }
    EXPECT_EQ(total, done.value().counters.rx_packets);
    const auto counters =
        nlohmann::json::parse(slurp(dir.path / "expected/counters.json"));
    uint64_t ignored = 0;
    for (auto& [why, n] : counters["ignored_by_reason"].items()) ignored += n.get<uint64_t>();
    EXPECT_EQ(ignored, counters["ignored_packets"].get<uint64_t>());
}

TEST(Generator, JsonStringEscapes) {
    std::string out;
    append_json_string(out, "/caf\xc3\xa9 \"q\"\\", true);
    EXPECT_EQ(out, "\"\\/caf\\u00e9 \\\"q\\\"\\\\\"");
    EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), "/caf\xc3\xa9 \"q\"\\");
}

} // namespace
} // namespace sluice::tools
