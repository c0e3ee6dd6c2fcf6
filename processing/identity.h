#pragma once
// Event identities (§3 Dedup): `event_id` when present, else XXH3-128 of the event's
// exact bytes. Both are 128-bit, so the table never compares strings.
//
// The hash has one home, storage/event_identity.h: the store derives the same identities
// from its rows to rebuild dedup state, and storage cannot call up into processing. These
// wrappers only retype the result; inlined, they cost what the hash call costs.
#include <cstdint>
#include <string_view>

#include "processing/event.h"
#include "storage/event_identity.h"

namespace sluice::processing {

inline identity identity_of_bytes(std::string_view raw) noexcept {
    const storage::event_identity id = storage::identity_of_event_bytes(raw);
    return identity{id.hi, id.lo};
}
// A distinct seed keeps event_id identities apart from byte identities: an event whose
// bytes happen to equal another's event_id string must not collide with it.
inline identity identity_of_event_id(std::string_view event_id) noexcept {
    const storage::event_identity id = storage::identity_of_event_id(event_id);
    return identity{id.hi, id.lo};
}

// The worker that owns an identity: hash mod workers.
inline uint32_t owner_worker(const identity& id, uint32_t workers) noexcept {
    return uint32_t(id.lo % workers);
}

} // namespace sluice::processing
