#pragma once
// Event identities (§3 Dedup): `event_id` when present, else XXH3-128 of the event's
// exact bytes. Both are 128-bit, so the table never compares strings.
//
// The hash has one home, storage/event_identity.h: the store derives the same identities
// from its rows to rebuild dedup state, and storage cannot call up into processing.
#include <cstdint>
#include <string_view>

#include "processing/event.h"
#include "storage/event_identity.h"

namespace sluice::processing {

// The pipeline calls the hash itself (using-declarations, not wrappers): a wrapper made
// GCC copy the 16-byte result through the stack, 50% slower per event_id in
// bench/processing/identity_bench.
using storage::identity_of_bytes;
// A distinct seed keeps event_id identities apart from byte identities: an event whose
// bytes happen to equal another's event_id string must not collide with it.
using storage::identity_of_event_id;

// The worker that owns an identity: hash mod workers.
inline uint32_t owner_worker(const identity& id, uint32_t workers) noexcept {
    return uint32_t(id.lo % workers);
}

} // namespace sluice::processing
