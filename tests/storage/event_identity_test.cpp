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

// Bytes 0, 31, 62, … (mod 251): one input per XXH3 length class.
std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = char(i * 31 % 251);
    return s;
}

struct golden {
    std::string input;
    event_identity bytes;
    event_identity event_id;
};

TEST(EventIdentity, GoldenValuesNeverChange) {
    const golden cases[] = {
        {"", {0x99aa06d3014798d8ULL, 0x6001c324468d497fULL},
         {0x5be6766792887655ULL, 0x99e86b61f71c171dULL}},
        {"e-1", {0x17087c4052212cb7ULL, 0x3d21bc8729acd985ULL},
         {0xc2eb9fe252fdf597ULL, 0xfa45ee7b6286abb5ULL}},
        {R"({"event_id":"e-1","timestamp":1})", {0x29f3940632bdffb9ULL, 0x1089655bc233b094ULL},
         {0x461275b00dea4b4aULL, 0xef83a4e030e8fca2ULL}},
        {pattern(2), {0xe3e3af28e2788151ULL, 0x50a0dc43c774eb84ULL},
         {0xadee2cd0691754d3ULL, 0xbcbb9d48f20ecbfeULL}},
        {pattern(7), {0x969f5114845f170cULL, 0x0624d295fe95cc20ULL},
         {0xd4a6b1a972b9ec09ULL, 0x3052dd76225ae0e0ULL}},
        {pattern(15), {0x4a37b08c9790d63aULL, 0xb8d5d7c08dd6ea24ULL},
         {0xaf89a2dd97cc0cd3ULL, 0x575e553b6f9480c9ULL}},
        {pattern(100), {0x2701f07d2c26abffULL, 0x94b1961520a11588ULL},
         {0xdd4d6b46a99627dbULL, 0xbb3f12df8c681d18ULL}},
        {pattern(200), {0xcab4b6c1d7f66c43ULL, 0x2a1a7281f2883dffULL},
         {0x24d0b5d59963609cULL, 0x94fd01ef33ed6b0fULL}},
        {pattern(1000), {0x17a0f7b2ab909d68ULL, 0x404e1417800eb486ULL},
         {0x91bf481ebf789d48ULL, 0x33b9800c9c3072e2ULL}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.input.size());
        EXPECT_EQ(identity_of_event_bytes(c.input), c.bytes);
        EXPECT_EQ(identity_of_event_id(c.input), c.event_id);
    }
}

TEST(EventIdentity, StoredEventUsesEventIdWhenPresent) {
    std::string raw = R"({"event_id":"e-1","timestamp":1})";
    EXPECT_EQ(identity_of_stored_event(true, "e-1", raw), identity_of_event_id("e-1"));
    EXPECT_EQ(identity_of_stored_event(false, "", raw), identity_of_event_bytes(raw));
    // Present but empty is not absent.
    EXPECT_NE(identity_of_stored_event(true, "", raw), identity_of_event_bytes(raw));
    // Bytes equal to an event_id do not collide with it.
    EXPECT_NE(identity_of_event_bytes("e-1"), identity_of_event_id("e-1"));
}

} // namespace
} // namespace sluice::storage
