#pragma once
// Event identities (§3 Dedup): `event_id` when present, else XXH3-128 of the event's
// exact bytes. Both are 128-bit, so the table never compares strings.
#include <cstdint>
#include <string_view>

#include "processing/event.h"

namespace sluice::processing {

identity identity_of_bytes(std::string_view raw) noexcept;
// A distinct seed keeps event_id identities apart from byte identities: an event whose
// bytes happen to equal another's event_id string must not collide with it.
identity identity_of_event_id(std::string_view event_id) noexcept;

// The worker that owns an identity: hash mod workers.
inline uint32_t owner_worker(const identity& id, uint32_t workers) noexcept {
    return uint32_t(id.lo % workers);
}

} // namespace sluice::processing
