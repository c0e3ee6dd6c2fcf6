#pragma once
// traffic_generator: the seed-shaped event stream of §2.1 with the disorder, late,
// beyond-horizon, duplicate and malformed lines of the sluice-gen brief, packed into
// NDJSON datagrams and Ethernet frames. Fully determined by the config and the seed:
// std::mt19937_64 with hand-written distributions (libstdc++'s differ by version).
#include <cstdint>
#include <deque>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tools/gen/binary_batch.h"

namespace sluice::tools {

struct gen_config {
    uint64_t events = 1000; // event lines, duplicates and malformed ones included
    uint64_t seed = 1;
    uint16_t dst_port = 9000;
    double dup_rate = 0.03;     // exact byte re-sends
    double id_dup_rate = 0.01;  // same event_id, other bytes
    double disorder_rate = 0.2; // jittered back by up to 5 min, never late
    double late_rate = 0.01;
    double horizon_rate = 0.002; // older than M - 1 h 5 min
    double malformed_rate = 0.01;
    double ignored_rate = 0.01; // chance of an ignored frame before each datagram frame
    double ipv6_rate = 0.1;
    double vlan_rate = 0.1;
    // Ignored frames include IPv4 fragments. net_af_packet joins a PACKET_FANOUT group with
    // the DEFRAG flag, so the kernel holds (and later drops) lone fragments before sluice
    // could count them: tests on that transport leave them out.
    bool fragments = true;
    // Datagram payloads: NDJSON, or binary batches (docs/BINARY.md) of the same kind of
    // events (malformed ones are the binary format's own: bad index/flag/UTF-8, missing,
    // out-of-range or future timestamp, oversize, and now and then a bad batch header).
    bool binary = false;
    uint32_t event_bytes_max = 4096;
    uint32_t events_per_minute = 20000;
};

// Frames stay below this (a jumbo-capable capture still reads them).
inline constexpr size_t frame_bytes_max = 16000;
// Datagrams are packed up to about this many payload bytes (one MTU's worth).
inline constexpr size_t datagram_pack_bytes = 1400;
// 2025-02-28T15:00:00Z: where event time starts.
inline constexpr int64_t event_time_start_ms = 1740754800000;

struct gen_frame {
    std::span<const uint8_t> bytes;
    bool ignored = false;     // not a UDP datagram to dst_port
    std::string_view payload; // the UDP payload when !ignored
    // The sender's flow (source host and address family, 0..15): what RSS would hash
    // on. Splitting the stream by flow keeps each flow's frames in order.
    uint32_t flow = 0;
    // For an ignored frame, why sluice must ignore it: "not_ip" (ARP), "wrong_port",
    // "not_udp" (TCP, ICMP) or "fragment" (IPv4 fragments are not reassembled).
    std::string_view ignored_reason;
};

inline constexpr uint32_t gen_flows = 16;

class traffic_generator {
  public:
    explicit traffic_generator(const gen_config& config);

    // Produces every frame, in order, to `sink`. Call once per generator.
    void run(const std::function<void(const gen_frame&)>& sink);

  private:
    struct recent_event {
        std::string line;
        std::string event_id; // its JSON fragment ("\"e-7\""); empty when none
        int64_t time_ms;
    };

    uint64_t below(uint64_t n) { return n == 0 ? 0 : _rng() % n; }
    double ratio() { return double(_rng() >> 11) * 0x1.0p-53; }
    bool chance(double p) { return ratio() < p; }

    // JSON fragments of one event's fields; an empty fragment leaves the field out.
    struct event_parts {
        std::string event_id, user_id, event_type, timestamp, page, metadata, extra;
        bool timestamp_first = false;
    };

    std::string next_line(uint64_t index);
    // Binary mode: the same stream shape as next_line, as binary events.
    bin_event next_binary(uint64_t index);
    bin_event normal_binary(int64_t t_ms);
    bin_event malformed_binary(int64_t t_ms);
    void run_binary(const std::function<void(const gen_frame&)>& sink);
    void flush_binary(const std::function<void(const gen_frame&)>& sink);
    size_t page_index();
    // A well-formed event near `t_ms`; `named_ms` is the instant its timestamp names.
    event_parts normal_parts(int64_t t_ms, int64_t& named_ms);
    std::string malformed_line(int64_t t_ms);
    std::string oversize_line(int64_t t_ms);
    std::string render(const event_parts& parts) const;
    std::string random_timestamp(int64_t t_ms, int64_t& named_ms);
    std::string random_page();
    std::string random_metadata();
    void remember(const std::string& line, const event_parts& parts, int64_t t_ms);
    void note_valid_time(int64_t t_ms);

    void flush_datagram(const std::function<void(const gen_frame&)>& sink);
    void emit_datagram(std::string_view payload, const std::function<void(const gen_frame&)>& sink);
    void emit_ignored(const std::function<void(const gen_frame&)>& sink);

    gen_config _config;
    std::mt19937_64 _rng;
    std::vector<std::string> _pages; // unescaped values; index 0 is the hottest
    uint64_t _next_event_id = 0;
    bool _have_max = false;
    int64_t _max_ms = 0; // the generator's own estimate of M, for shaping only
    std::deque<recent_event> _recent;
    std::deque<std::pair<bin_event, int64_t>> _recent_binary; // (event, its time)
    bin_batch_encoder _batch;
    std::string _datagram;
    std::vector<uint8_t> _frame;
    uint16_t _ip_id = 0;
    uint64_t _frames = 0;
};

// Appends `value` as a JSON string literal (quotes included). Non-ASCII UTF-8 becomes
// \uXXXX; '/' becomes "\/" when `escape_slash`.
void append_json_string(std::string& out, std::string_view value, bool escape_slash);

} // namespace sluice::tools
