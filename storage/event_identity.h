#pragma once
// The identity of a stored event (SPEC §3 Dedup), derived from its row of the events
// table: XXH3-128 of `event_id` with a fixed seed when the event had one (the column is
// not null), else XXH3-128 of `raw`, the event's exact bytes. The store does not keep
// identities: they are derivable, and 16 random bytes per row would be most of the
// table. processing/identity.cpp computes the same at ingest;
// tests/storage/event_identity_test.cpp holds the two equal.
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

event_identity identity_of_event_bytes(std::string_view raw) noexcept;
event_identity identity_of_event_id(std::string_view event_id) noexcept;
inline event_identity identity_of_stored_event(bool has_event_id, std::string_view event_id,
                                               std::string_view raw) noexcept {
    return has_event_id ? identity_of_event_id(event_id) : identity_of_event_bytes(raw);
}

} // namespace sluice::storage
