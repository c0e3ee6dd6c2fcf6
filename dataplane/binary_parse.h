#pragma once
// binary_parse: docs/BINARY.md's batch format -> event_slots. Reads the batch where it
// lies (the frame in its mbuf, the kernel buffer): the only copy of an event is its
// canonical form written into its slot. Same outcome rules as event_parse (§3): the slot
// comes out as an event with its identity, or a dead letter with its reason.
#include <cstdint>
#include <string_view>

#include "dataplane/event_parse.h"
#include "processing/event.h"

namespace sluice::dataplane {

inline constexpr uint8_t binary_batch_magic[4] = {0xB1, 'S', 'L', 'B'};
inline constexpr uint8_t binary_version = 1;
inline constexpr uint32_t binary_header_bytes = 16;
inline constexpr uint32_t binary_record_bytes = 32;
inline constexpr uint32_t binary_canonical_header_bytes = 22;
inline constexpr uint32_t binary_canonical_time_offset = 4; // its 8-byte timestamp_ms
inline constexpr uint32_t binary_absent = 0xFFFFFFFF;
inline constexpr uint16_t binary_flag_timestamp = 1;
// Years 0001 ... 9999: what an RFC 3339 timestamp can name.
inline constexpr int64_t binary_time_min_ms = -62135596800000;
inline constexpr int64_t binary_time_max_ms = 253402300799999;

// A payload starting with 0xB1 is a binary batch: JSON text never starts with that byte.
inline bool is_binary_batch(std::string_view payload) noexcept {
    return !payload.empty() && uint8_t(payload[0]) == binary_batch_magic[0];
}

class binary_batch {
  public:
    /// Checks the header and the string table of `payload` (which must outlive the
    /// batch). False: the datagram is one parse_error dead letter (fill_invalid_batch).
    bool open(std::string_view payload) noexcept;
    uint32_t events() const noexcept { return _events; }

    /// Fills `slot` from record `i` < events(): kind event (identity set) or dead_letter
    /// with its reason. The slot's data area holds slot_data_bytes(event_bytes_max).
    void parse_event(uint32_t i, const parse_config& config, int64_t now_ms,
                     processing::event_slot& slot) const noexcept;

    /// The whole datagram as one parse_error dead letter (its first event_bytes_max bytes).
    static void fill_invalid_batch(std::string_view payload, const parse_config& config,
                                   processing::event_slot& slot) noexcept;

  private:
    bool string_ok(uint32_t begin, uint32_t end) const noexcept;

    const uint8_t* _string_end = nullptr; // u32[S], unaligned
    const char* _data = nullptr;          // string bytes
    const uint8_t* _records = nullptr;
    uint32_t _strings = 0;
    uint32_t _string_bytes = 0;
    uint32_t _events = 0;
    bool _data_utf8 = false; // the whole string area is valid UTF-8
};

} // namespace sluice::dataplane
