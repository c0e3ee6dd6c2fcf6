#pragma once
// reference_model: a deliberately simple, separate implementation of §3 (RX checks,
// dedup horizon, duplicates, late events, 1-minute page-count windows). It is what
// sluice is checked against, so it favours std::map and plain code over speed. It
// shares no code with processing/ or dataplane/.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"

namespace sluice::tools {

// The dead-letter reasons, in the order sluice reports them.
enum class reason : uint8_t {
    parse_error,
    missing_timestamp,
    bad_timestamp,
    future_timestamp,
    oversize,
    beyond_dedup_horizon,
    schema_mismatch,
};
inline constexpr int reason_count = 7;
std::string_view reason_text(reason r) noexcept;

enum class verdict : uint8_t { accepted, accepted_late, duplicate, dead_letter };

struct line_outcome {
    verdict kind = verdict::dead_letter;
    reason why = reason::parse_error; // kind == dead_letter
    int64_t event_time_ms = 0;        // when the RX checks passed
};

struct model_config {
    uint32_t event_bytes_max = 4096;
    int64_t now_ms = 0; // the wall clock that future_timestamp is judged against
    int64_t watermark_delay_ms = 10 * 60 * 1000;
    int64_t dedup_horizon_ms = 60 * 60 * 1000;
    int64_t max_future_skew_ms = 5 * 60 * 1000;
    int64_t window_size_ms = 60 * 1000;
};

struct model_counters {
    uint64_t rx_packets = 0;
    uint64_t ignored_packets = 0;
    std::map<std::string, uint64_t> ignored_by_reason; // sluice's frame verdict names
    uint64_t datagrams = 0;
    uint64_t events_received = 0;
    uint64_t events_accepted = 0; // late ones included
    uint64_t duplicates = 0;
    uint64_t late_events = 0;
    uint64_t dead_letters = 0;
    std::array<uint64_t, reason_count> dead_letters_by_reason{};
};

struct window_row {
    int64_t window_start_ms = 0;
    int64_t window_end_ms = 0;
    std::string page;
    uint64_t count = 0;
};

class reference_model {
  public:
    explicit reference_model(model_config config) : _config(config) {}

    // A frame that is not a UDP datagram to the port (ARP, TCP, fragments, ...).
    // `why` is the frame verdict sluice must give it (ignored_by_reason in its stats).
    void feed_ignored_frame(std::string_view why = {});
    // A frame carrying a UDP datagram to the port: every non-empty `\n`-separated line
    // of `payload` is an event line, judged in order.
    void feed_datagram(std::string_view payload);
    // One event line, without the frame and datagram counters (for tests).
    line_outcome feed_line(std::string_view line);

    const model_counters& counters() const noexcept { return _counters; }
    // The final window rows once every window has closed, sorted by (start, page bytes).
    std::vector<window_row> windows() const;
    // "<xxh3-64 hex16> <late 0|1>" per accepted event, sorted.
    std::vector<std::string> event_lines() const;
    // "<reason> <xxh3-64 hex16 of the first min(len, event_bytes_max) bytes>", sorted.
    std::vector<std::string> dead_letter_lines() const;

    // Writes counters.json, windows.csv, events.txt and dead_letters.txt into `dir`.
    result<void> write_expected(const std::string& dir) const;

  private:
    // An identity: 'i' + the event_id, or 'b' + the exact line bytes (the tag keeps an
    // event_id from ever equalling another event's bytes).
    using identity = std::string;

    std::optional<reason> rx_check(std::string_view line, int64_t& time_ms, identity& id,
                                   std::string& page) const;
    void dead_letter(std::string_view line, reason why);
    void feed_binary(std::string_view payload);
    line_outcome judge(std::string_view raw, int64_t t, const identity& id,
                       const std::string& page);

    model_config _config;
    model_counters _counters;
    std::optional<int64_t> _max_time_ms;                // M over lines that passed the RX checks
    std::unordered_map<identity, int64_t> _accepted_at; // identity -> event time accepted
    std::map<std::pair<int64_t, std::string>, uint64_t> _window_counts;
    std::vector<std::pair<uint64_t, bool>> _accepted;       // (xxh3 of line, late)
    std::vector<std::pair<reason, uint64_t>> _dead_letters; // (reason, xxh3 of prefix)
    size_t _prune_at_size = 1 << 16;
};

// RFC 4180: quoted (with doubled quotes) when the field holds , " CR or LF.
std::string csv_field(std::string_view field);
std::string hex16(uint64_t v);

} // namespace sluice::tools
