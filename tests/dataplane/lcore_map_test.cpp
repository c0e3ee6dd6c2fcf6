// lcore_map: defaults from the lcore list and the port's queues, explicit lists, queue
// dealing, RSS, and the errors that name what to change.
#include <gtest/gtest.h>

#include "dataplane/eal_setup.h"
#include "dataplane/lcore_map.h"

namespace sluice::dataplane {
namespace {

std::vector<lcore_info> lcores(unsigned first, unsigned n) {
    std::vector<lcore_info> v;
    for (unsigned i = 0; i < n; ++i)
        v.push_back({first + i, std::to_string(i % 2)});
    return v;
}

rx_source_caps port(uint16_t queues, bool rss) {
    return {"port 0 (test)", queues, rss};
}

std::vector<unsigned> rx_lcores(const lcore_map& m) {
    std::vector<unsigned> v;
    for (const auto& r : m.rx)
        v.push_back(r.lcore);
    return v;
}
std::vector<unsigned> worker_lcores(const lcore_map& m) {
    std::vector<unsigned> v;
    for (const auto& w : m.workers)
        v.push_back(w.lcore);
    return v;
}

TEST(LcoreMap, SingleQueuePortGetsOneRxAndEveryOtherLcoreWorks) {
    auto m = plan_lcore_map(lcores(1, 3), port(1, false), {}, 16, 64);
    ASSERT_TRUE(m) << m.err().message;
    EXPECT_EQ(rx_lcores(*m), (std::vector<unsigned>{1}));
    EXPECT_EQ(worker_lcores(*m), (std::vector<unsigned>{2, 3}));
    EXPECT_EQ(m->rx_queues, 1);
    EXPECT_FALSE(m->rss);
    EXPECT_EQ(m->rx[0].queues, (std::vector<uint16_t>{0}));
}

TEST(LcoreMap, DefaultIsOneRxPerFourWorkersCappedByQueues) {
    auto m = plan_lcore_map(lcores(1, 10), port(8, true), {}, 16, 64);
    ASSERT_TRUE(m) << m.err().message;
    EXPECT_EQ(m->rx.size(), 2u); // ceil(10 / 5)
    EXPECT_EQ(m->workers.size(), 8u);
    EXPECT_EQ(m->rx_queues, 2);
    EXPECT_TRUE(m->rss);
    EXPECT_EQ(m->rx[1].queues, (std::vector<uint16_t>{1}));

    auto one_queue = plan_lcore_map(lcores(1, 10), port(1, false), {}, 16, 64);
    ASSERT_TRUE(one_queue);
    EXPECT_EQ(one_queue->rx.size(), 1u);
    EXPECT_EQ(one_queue->workers.size(), 9u);
}

TEST(LcoreMap, WorkerCountLeavesTheRestToRx) {
    lcore_request req;
    req.worker_count = 2;
    auto m = plan_lcore_map(lcores(1, 4), port(4, true), req, 16, 64);
    ASSERT_TRUE(m) << m.err().message;
    EXPECT_EQ(rx_lcores(*m), (std::vector<unsigned>{1, 2}));
    EXPECT_EQ(worker_lcores(*m), (std::vector<unsigned>{3, 4}));
    // A single-queue port: one RX, the spare lcore is reported unused.
    auto single = plan_lcore_map(lcores(1, 4), port(1, false), req, 16, 64);
    ASSERT_TRUE(single) << single.err().message;
    EXPECT_EQ(single->rx.size(), 1u);
    EXPECT_EQ(single->unused, (std::vector<unsigned>{4}));
}

TEST(LcoreMap, ExplicitListsAreKeptAsGiven) {
    lcore_request req;
    req.rx_lcores = {4, 2};
    req.worker_lcores = {1};
    auto m = plan_lcore_map(lcores(1, 4), port(2, true), req, 16, 64);
    ASSERT_TRUE(m) << m.err().message;
    EXPECT_EQ(rx_lcores(*m), (std::vector<unsigned>{4, 2}));
    EXPECT_EQ(worker_lcores(*m), (std::vector<unsigned>{1}));
    EXPECT_EQ(m->unused, (std::vector<unsigned>{3}));
    EXPECT_EQ(m->rx[0].cpus, "1"); // lcore 4 is the fourth: cpu 3 % 2
}

TEST(LcoreMap, MoreQueuesThanRxLcoresAreDealtRoundRobin) {
    lcore_request req;
    req.rx_count = 2;
    req.rx_queues = 5;
    auto m = plan_lcore_map(lcores(1, 4), port(8, true), req, 16, 64);
    ASSERT_TRUE(m) << m.err().message;
    EXPECT_EQ(m->rx_queues, 5);
    EXPECT_EQ(m->rx[0].queues, (std::vector<uint16_t>{0, 2, 4}));
    EXPECT_EQ(m->rx[1].queues, (std::vector<uint16_t>{1, 3}));
    EXPECT_TRUE(m->rss);
}

TEST(LcoreMap, KernelSocketsHaveNoQueueLimit) {
    lcore_request req;
    req.rx_count = 3;
    auto m = plan_lcore_map(lcores(1, 5), rx_source_caps{"kernel UDP", 0, true}, req, 16, 64);
    ASSERT_TRUE(m) << m.err().message;
    EXPECT_EQ(m->rx.size(), 3u);
    EXPECT_EQ(m->rx_queues, 3);
}

TEST(LcoreMap, ErrorsNameWhatToChange) {
    lcore_request too_many_rx;
    too_many_rx.rx_count = 2;
    auto a = plan_lcore_map(lcores(1, 4), port(1, false), too_many_rx, 16, 64);
    ASSERT_FALSE(a);
    EXPECT_NE(a.err().message.find("has 1 RX queue"), std::string::npos) << a.err().message;

    lcore_request few_queues;
    few_queues.rx_count = 3;
    few_queues.rx_queues = 2;
    auto b = plan_lcore_map(lcores(1, 5), port(8, true), few_queues, 16, 64);
    ASSERT_FALSE(b);
    EXPECT_NE(b.err().message.find("--rx-queues"), std::string::npos) << b.err().message;

    lcore_request unknown;
    unknown.rx_lcores = {9};
    auto c = plan_lcore_map(lcores(1, 3), port(1, false), unknown, 16, 64);
    ASSERT_FALSE(c);
    EXPECT_NE(c.err().message.find("lcore 9"), std::string::npos) << c.err().message;

    lcore_request twice;
    twice.rx_lcores = {1};
    twice.worker_lcores = {1, 2};
    EXPECT_FALSE(plan_lcore_map(lcores(1, 3), port(1, false), twice, 16, 64));

    lcore_request no_workers;
    no_workers.rx_count = 1;
    auto d = plan_lcore_map(lcores(1, 1), port(1, false), no_workers, 16, 64);
    ASSERT_FALSE(d);
    EXPECT_NE(d.err().message.find("--lcores"), std::string::npos) << d.err().message;

    lcore_request many_workers;
    many_workers.worker_count = 3;
    EXPECT_FALSE(plan_lcore_map(lcores(1, 4), port(1, false), many_workers, 16, 2));
}

TEST(LcoreMap, DescribeListsEveryLcore) {
    lcore_request req;
    req.rx_count = 2;
    req.worker_count = 2;
    auto m = plan_lcore_map(lcores(1, 5), port(2, true), req, 16, 64);
    ASSERT_TRUE(m);
    auto lines = m->describe();
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_NE(lines[0].find("2 RX queue(s), RSS"), std::string::npos) << lines[0];
    EXPECT_EQ(lines[1], "  lcore 1: rx 0 (queue 0) -> workers 0..1, cpu 0");
    EXPECT_EQ(lines[4], "  lcore 4: worker 1 <- rings from 2 RX lcore(s), cpu 1");
    EXPECT_EQ(lines[5], "  lcore 5: unused");
}

TEST(LcoreList, ParsesIdsAndRanges) {
    auto l = parse_lcore_list("1,3-5,9");
    ASSERT_TRUE(l);
    EXPECT_EQ(*l, (std::vector<unsigned>{1, 3, 4, 5, 9}));
    for (const char* bad : {"", "1,", "a", "5-3", "1-x", ",2", "1--2"})
        EXPECT_FALSE(parse_lcore_list(bad)) << bad;
}

} // namespace
} // namespace sluice::dataplane

namespace sluice::dataplane {
namespace {

// What the lcores' mempool caches may hold back, what RX holds and what workers process.
TEST(SlotPool, MinimumCoversEveryCacheAndBurst) {
    // 1 RX + 2 workers: 3 caches of 96, RX stash 64 + 2 pending bursts of 64, 2 x 64.
    EXPECT_EQ(slots_min(1, 2), 3u * 96 + 64 + 2 * 64 + 2 * 64);
    EXPECT_GT(slots_min(4, 16), slots_min(1, 2));
    EXPECT_EQ(slots_default(1, 2), 4096u);
    EXPECT_GE(slots_default(16, 64), 2 * slots_min(16, 64));
}

} // namespace
} // namespace sluice::dataplane
