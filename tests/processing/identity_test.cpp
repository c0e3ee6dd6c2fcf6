#include "processing/identity.h"

#include <gtest/gtest.h>

#include <string>

#include "storage/event_identity.h"

using namespace sluice::processing;

TEST(Identity, SameBytesSameIdentity) {
    EXPECT_EQ(identity_of_bytes("{\"a\":1}"), identity_of_bytes("{\"a\":1}"));
    EXPECT_FALSE(identity_of_bytes("{\"a\":1}") == identity_of_bytes("{\"a\":2}"));
}

TEST(Identity, EventIdDomainIsSeparateFromBytes) {
    // The same text as an event_id and as an event's bytes must not collide.
    EXPECT_FALSE(identity_of_event_id("abc") == identity_of_bytes("abc"));
    EXPECT_EQ(identity_of_event_id("e-1"), identity_of_event_id("e-1"));
}

TEST(Identity, NeverTheEmptyMarker) {
    for (int i = 0; i < 1000; ++i) {
        auto id = identity_of_bytes(std::to_string(i));
        EXPECT_FALSE(id.hi == 0 && id.lo == 0);
    }
}

TEST(Identity, OwnerWorkerIsHashModWorkers) {
    auto id = identity_of_bytes("x");
    EXPECT_EQ(owner_worker(id, 1), 0u);
    EXPECT_EQ(owner_worker(id, 3), uint32_t(id.lo % 3));
    // Spread: 3 workers each own roughly a third of 3000 identities.
    int counts[3] = {};
    for (int i = 0; i < 3000; ++i) counts[owner_worker(identity_of_bytes(std::to_string(i)), 3)]++;
    for (int c : counts) EXPECT_GT(c, 800);
}

TEST(Identity, IsTheIdentityTheStoreDerives) {
    // Restart rebuilds dedup state from identities the store derives from event_id / raw
    // (storage/event_identity.h, whose test pins the hash with golden values).
    for (const std::string& s : {std::string(), std::string("e-1"), std::string(300, 'x')}) {
        auto b = sluice::storage::identity_of_bytes(s);
        auto e = sluice::storage::identity_of_event_id(s);
        EXPECT_EQ(identity_of_bytes(s), (identity{b.hi, b.lo}));
        EXPECT_EQ(identity_of_event_id(s), (identity{e.hi, e.lo}));
    }
}
