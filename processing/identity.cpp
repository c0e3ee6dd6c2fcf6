#include "processing/identity.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice::processing {

namespace {
constexpr uint64_t event_id_seed = 0x5e1dce1d0000e1dULL;

identity from_xxh(XXH128_hash_t h) noexcept {
    identity id{h.high64, h.low64};
    // {0,0} marks an empty dedup slot; remap the (2^-128 likely) all-zero hash.
    if (id.hi == 0 && id.lo == 0) [[unlikely]] id.lo = 1;
    return id;
}
} // namespace

identity identity_of_bytes(std::string_view raw) noexcept {
    return from_xxh(XXH3_128bits(raw.data(), raw.size()));
}

identity identity_of_event_id(std::string_view event_id) noexcept {
    return from_xxh(XXH3_128bits_withSeed(event_id.data(), event_id.size(), event_id_seed));
}

} // namespace sluice::processing
