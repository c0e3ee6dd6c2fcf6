// The store derives identities instead of keeping them; they must be the very ones the
// pipeline deduplicates by (processing/identity.cpp), or a dedup state rebuilt from the
// store would let duplicates through after a restart.
#include "storage/event_identity.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "processing/identity.h"

namespace sluice::storage {
namespace {

TEST(EventIdentity, MatchesTheIdentitiesOfIngest) {
    std::mt19937_64 rng(11);
    for (int i = 0; i < 2000; ++i) {
        std::string s(size_t(rng() % 300), '\0');
        for (auto& ch : s) ch = char(rng());
        auto a = processing::identity_of_bytes(s);
        auto b = identity_of_event_bytes(s);
        ASSERT_EQ(a.hi, b.hi);
        ASSERT_EQ(a.lo, b.lo);
        auto c = processing::identity_of_event_id(s);
        auto d = identity_of_event_id(s);
        ASSERT_EQ(c.hi, d.hi);
        ASSERT_EQ(c.lo, d.lo);
    }
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
