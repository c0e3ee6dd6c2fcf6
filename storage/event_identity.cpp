#include "storage/event_identity.h"

// Inlined XXH3: these run once per ingested event (processing/identity.h).
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice::storage {
namespace {

event_identity from_xxh(XXH128_hash_t h) noexcept {
    event_identity id{h.high64, h.low64};
    // {0,0} marks an empty dedup slot; the (2^-128 likely) all-zero hash maps to lo = 1.
    if (id.hi == 0 && id.lo == 0) [[unlikely]] id.lo = 1;
    return id;
}

} // namespace

event_identity identity_of_bytes(std::string_view raw) noexcept {
    return from_xxh(XXH3_128bits(raw.data(), raw.size()));
}

event_identity identity_of_event_id(std::string_view event_id) noexcept {
    return from_xxh(
        XXH3_128bits_withSeed(event_id.data(), event_id.size(), event_id_identity_seed));
}

} // namespace sluice::storage
