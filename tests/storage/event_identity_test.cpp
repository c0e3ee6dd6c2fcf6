// The store derives identities instead of keeping them; they must be the very ones the
// pipeline deduplicates by (processing/identity.h calls these functions), or a dedup
// state rebuilt from the store would let duplicates through after a restart. Identities
// of rows written by an older build must also stay what they were: the golden values
// below catch any change to the hash, its seed or the zero remap.
#include "storage/event_identity.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::storage {
namespace {

// Deterministic bytes 0, 31, 62, … (mod 251), so the golden values can be rederived.
std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = char(i * 31 % 251);
    return s;
}

TEST(EventIdentity, GoldenValuesNeverChange) {
    EXPECT_EQ(identity_of_event_id("e-1"),
              (event_identity{0xc2eb9fe252fdf597ULL, 0xfa45ee7b6286abb5ULL}));
    EXPECT_EQ(identity_of_bytes(R"({"event_id":"e-1","timestamp":1})"),
              (event_identity{0x29f3940632bdffb9ULL, 0x1089655bc233b094ULL}));
    EXPECT_EQ(identity_of_bytes(pattern(1000)),
              (event_identity{0x17a0f7b2ab909d68ULL, 0x404e1417800eb486ULL}));
}

TEST(EventIdentity, GoldenFoldOverEveryLengthUpTo1100) {
    // Every length through XXH3's size classes (0, 1-3, 4-8, 9-16, 17-128, 129-240, longer),
    // both seeds: no code path of the hash can change unseen.
    uint64_t acc = 0;
    for (size_t n = 0; n <= 1100; ++n) {
        const std::string s = pattern(n);
        const event_identity b = identity_of_bytes(s), e = identity_of_event_id(s);
        for (uint64_t v : {b.hi, b.lo, e.hi, e.lo}) acc = (acc ^ v) * 0x9e3779b97f4a7c15ULL;
    }
    EXPECT_EQ(acc, 0x2f317504dff993a7ULL);
}

TEST(EventIdentity, StoredEventUsesEventIdWhenPresent) {
    std::string raw = R"({"event_id":"e-1","timestamp":1})";
    EXPECT_EQ(identity_of_stored_event(true, "e-1", raw), identity_of_event_id("e-1"));
    EXPECT_EQ(identity_of_stored_event(false, "", raw), identity_of_bytes(raw));
    // Present but empty is not absent.
    EXPECT_NE(identity_of_stored_event(true, "", raw), identity_of_bytes(raw));
    // Bytes equal to an event_id do not collide with it.
    EXPECT_NE(identity_of_bytes("e-1"), identity_of_event_id("e-1"));
}

} // namespace
} // namespace sluice::storage
