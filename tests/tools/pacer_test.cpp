// pacer: the absolute send schedule of sluice-gen's --pps (UDP and memif senders).
#include "tools/gen/pacer.h"

#include <gtest/gtest.h>

#include "base/clock.h"

using sluice::tools::pacer;

TEST(Pacer, UnpacedNeverWaits) {
    pacer p(0);
    EXPECT_FALSE(p.paced());
    EXPECT_EQ(p.ahead_ns(1'000'000, 0), 0);
    EXPECT_FALSE(p.would_sleep(1'000'000));
}

// Item i is due at start + i / pps, from the first call's clock.
TEST(Pacer, ScheduleIsAbsoluteFromTheFirstCall) {
    pacer p(1000); // one item per ms
    EXPECT_EQ(p.ahead_ns(0, 5'000'000), 0);
    EXPECT_EQ(p.ahead_ns(1, 5'000'000), 1'000'000);
    EXPECT_EQ(p.ahead_ns(10, 5'500'000), 9'500'000);
    // Late (a slow moment): negative, caught up by sending without waiting.
    EXPECT_EQ(p.ahead_ns(2, 8'000'000), -1'000'000);
}

// wait() sleeps until the item is due: 20 items at 2,000/s take >= 9.5 ms.
TEST(Pacer, WaitHoldsTheRate) {
    pacer p(2000);
    const int64_t t0 = sluice::monotonic_ns();
    for (uint64_t i = 0; i < 20; ++i)
        p.wait(i);
    EXPECT_GE(sluice::monotonic_ns() - t0, 9'500'000 - pacer::min_sleep_ns);
    EXPECT_TRUE(p.would_sleep(1000)); // item 1000 is due ~0.5 s from the start
}
