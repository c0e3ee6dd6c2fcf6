#pragma once
// Event identities (SPEC §3 Dedup), the one implementation: XXH3-128 of `event_id` with
// a fixed seed when the event had one, else XXH3-128 of its exact bytes (`raw`).
//
// It lives here, not in processing/, because both sides need it and storage is the lower
// layer: the pipeline deduplicates by these identities at ingest (processing/identity.h
// calls these functions), and the store derives the same identities from its rows when a
// restart rebuilds dedup state (table_reader's identity scan). The store does not keep
// identities: they are derivable, and 16 random bytes per row would be most of the table.
// tests/storage/event_identity_test.cpp pins the values: a change would let stored
// duplicates through after an upgrade.
#include <cstdint>
#include <string_view>

namespace sluice::storage {

struct event_identity {
    uint64_t hi = 0;
    uint64_t lo = 0;
    friend bool operator==(const event_identity&, const event_identity&) = default;
};

// The seed of event_id identities: an event whose bytes equal another's event_id must
// not collide with it.
inline constexpr uint64_t event_id_identity_seed = 0x5e1dce1d0000e1dULL;

// Never {0, 0}: that marks an empty dedup slot. Per event on the RX hot path.
event_identity identity_of_bytes(std::string_view raw) noexcept;
event_identity identity_of_event_id(std::string_view event_id) noexcept;
inline event_identity identity_of_stored_event(bool has_event_id, std::string_view event_id,
                                               std::string_view raw) noexcept {
    return has_event_id ? identity_of_event_id(event_id) : identity_of_bytes(raw);
}

} // namespace sluice::storage
