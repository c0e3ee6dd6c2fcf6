// NDJSON datagrams and their events (dataplane/event_parse): the input is one datagram,
// split into lines as rx_lcore does; every line comes out as an event or a dead letter
// with its reason, at the normal size limit with query fields extracted and at a small
// one (the oversize path). Slots are reused without clearing, as the rings reuse them;
// nothing is read or written outside the slot.
#include <cstring>

#include "dataplane/event_parse.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/slot_check.h"

namespace sluice::fuzz {

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
        big.parse(line, now_ms, *big_slot.slot);
        check_slot(*big_slot.slot, 4096);
        small.parse(line, now_ms, *small_slot.slot);
        check_slot(*small_slot.slot, 64);
    }
}

} // namespace sluice::fuzz
