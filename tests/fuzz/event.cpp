// NDJSON datagrams and their events (dataplane/event_parse): the input is one datagram,
// split into lines as rx_lcore does; every line comes out as an event or a dead letter
// with its reason, at the normal size limit with query fields extracted and at a small
// one (the oversize path). Slots are reused without clearing, as the rings reuse them;
// nothing is read or written outside the slot. The RX timestamp reader (its fast path
// and remembered minute) agrees with the general parser (base/time_format.h) on every
// line, on the text of each line's first `"timestamp":"…"` string and on every length
// of that text.
#include <cstring>

#include "base/time_format.h"

#include "dataplane/event_parse.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/slot_check.h"

namespace sluice::fuzz {

namespace {

void same_time(std::string_view text) {
    static rfc3339_reader reader;
    int64_t fast = 0, general = 0;
    const bool f = reader.parse(text, &fast);
    const bool g = parse_rfc3339_ms(text, &general);
    SLUICE_FUZZ_CHECK(f == g);
    SLUICE_FUZZ_CHECK(!f || fast == general);
}

void check_timestamps(std::string_view line) {
    same_time(line);
    constexpr std::string_view key = "\"timestamp\":\"";
    const size_t at = line.find(key);
    if (at == std::string_view::npos) return;
    std::string_view text = line.substr(at + key.size());
    text = text.substr(0, std::min(text.find('"'), size_t(40)));
    for (size_t n = 0; n <= text.size(); ++n)
        same_time(text.substr(0, n));
}

} // namespace

void fuzz_event(const uint8_t* data, size_t size) {
    constexpr int64_t now_ms = 1764547200000; // 2025-12-01
    static dataplane::event_parser big({4096, 5 * 60 * 1000, &query_fields()});
    static dataplane::event_parser small({64, 5 * 60 * 1000, nullptr});
    static owned_slot big_slot(4096), small_slot(64);
    const char* p = reinterpret_cast<const char*>(data);
    const char* end = p + size;
    while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
        const char* line_end = nl ? nl : end;
        std::string_view line(p, size_t(line_end - p));
        p = nl ? nl + 1 : end;
        if (line.empty()) continue;
        check_timestamps(line);
        big.parse(line, now_ms, *big_slot.slot);
        check_slot(*big_slot.slot, 4096);
        small.parse(line, now_ms, *small_slot.slot);
        check_slot(*small_slot.slot, 64);
    }
}

} // namespace sluice::fuzz
