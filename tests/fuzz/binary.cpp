// Binary batches (dataplane/binary_parse, docs/BINARY.md): a batch is refused whole or
// every record becomes an event or a dead letter; nothing outside the datagram is read.
#include <vector>

#include "dataplane/binary_parse.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/slot_check.h"

namespace sluice::fuzz {

void fuzz_binary(const uint8_t* data, size_t size) {
    constexpr int64_t now_ms = 1764547200000;
    std::vector<char> copy(data, data + size); // exactly size bytes, for ASan
    std::string_view payload(copy.data(), copy.size());
    const dataplane::parse_config config{4096, 5 * 60 * 1000, &query_fields()};
    owned_slot s(config.event_bytes_max);
    dataplane::binary_batch batch;
    if (!batch.open(payload)) {
        dataplane::binary_batch::fill_invalid_batch(payload, config, *s.slot);
        check_slot(*s.slot, config.event_bytes_max);
        return;
    }
    SLUICE_FUZZ_CHECK(uint64_t(batch.events()) * dataplane::binary_record_bytes <= size);
    for (uint32_t i = 0; i < batch.events(); ++i) {
        *s.slot = processing::event_slot{};
        batch.parse_event(i, config, now_ms, *s.slot);
        check_slot(*s.slot, config.event_bytes_max);
    }
}

} // namespace sluice::fuzz
