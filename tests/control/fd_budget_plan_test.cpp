// control/fd_budget.h: how sluiced splits RLIMIT_NOFILE between the store's reserve,
// control clients and Kafka connections (the real daemon: tests/integration/fd_budget_test.cpp).
#include "control/fd_budget.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "base/limits.h"

namespace sluice::control {
namespace {

fd_budget_input one_worker(uint64_t limit) {
    fd_budget_input in;
    in.limit = in.hard = limit;
    in.open = 80;
    in.writers = 5;      // events, dead_letters, three query tables
    in.writers_max = 2 + limits::queries_max + 1;
    in.kafka = true;
    in.kafka_wanted = 1024;
    return in;
}

TEST(FdBudget, ReserveCountsRotationsWritersToComeReadersAndServers) {
    fd_budget_input in = one_worker(100000);
    const uint32_t base = 5 * limits::fd_writer_rotation + (35 - 5) * limits::fd_writer_added +
                          limits::fd_store_headroom + limits::fd_control_server;
    EXPECT_EQ(fd_reserve(in), base + limits::fd_kafka_listener);
    in.metrics = true;
    EXPECT_EQ(fd_reserve(in), base + limits::fd_kafka_listener + limits::fd_metrics_http);
    in.kafka = false;
    in.metrics = false;
    EXPECT_EQ(fd_reserve(in), base);
}

TEST(FdBudget, EveryClientItsLimitWhenItFits) {
    fd_budget_input in = one_worker(0);
    in.limit = 80 + fd_reserve(in) + limits::control_clients_max + 1024;
    auto b = plan_fd_budget(in);
    ASSERT_TRUE(b) << b.err().message;
    EXPECT_EQ(b->control_clients, limits::control_clients_max);
    EXPECT_EQ(b->kafka_connections, 1024u);
    EXPECT_FALSE(b->kafka_cut);
    EXPECT_EQ(b->needed, in.limit);
    in.limit = RLIM_INFINITY;
    b = plan_fd_budget(in);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->kafka_connections, 1024u);
}

TEST(FdBudget, WhenShortTheClientsShareWhatTheReserveLeaves) {
    for (uint64_t limit : {600ull, 800ull, 1000ull, 1500ull}) {
        fd_budget_input in = one_worker(limit);
        auto b = plan_fd_budget(in);
        ASSERT_TRUE(b) << limit << ": " << b.err().message;
        const uint64_t left = limit - 80 - b->reserve;
        EXPECT_EQ(uint64_t(b->control_clients) + b->kafka_connections, std::min<uint64_t>(left, 256 + 1024))
            << limit;
        EXPECT_GE(b->control_clients, std::min<uint64_t>(256, std::max<uint64_t>(4, left / 4))) << limit;
        EXPECT_TRUE(b->kafka_cut) << limit;
        EXPECT_LE(80 + b->reserve + b->control_clients + b->kafka_connections, limit);
    }
    // Without Kafka, control clients take what is left, up to 256.
    fd_budget_input in = one_worker(400);
    in.kafka = false;
    auto b = plan_fd_budget(in);
    ASSERT_TRUE(b) << b.err().message;
    EXPECT_EQ(b->control_clients, 400 - 80 - b->reserve);
    EXPECT_EQ(b->kafka_connections, 0u);
}

TEST(FdBudget, TooLowALimitIsAnErrorNamingTheCauseAndTheFix) {
    fd_budget_input in = one_worker(0);
    const uint32_t reserve = fd_reserve(in);
    in.limit = in.hard = 80 + reserve + 4; // 4 control clients, no Kafka connection
    auto b = plan_fd_budget(in);
    ASSERT_FALSE(b);
    const std::string& m = b.err().message;
    EXPECT_NE(m.find("RLIMIT_NOFILE is " + std::to_string(in.limit)), std::string::npos) << m;
    EXPECT_NE(m.find("80 file descriptors are open"), std::string::npos) << m;
    EXPECT_NE(m.find("one Kafka connection"), std::string::npos) << m;
    EXPECT_NE(m.find("LimitNOFILE="), std::string::npos) << m;
    EXPECT_NE(m.find("Raise the limit to " + std::to_string(80 + reserve + 256 + 1024)), std::string::npos) << m;
    in.limit = 80 + reserve + 5; // just enough
    b = plan_fd_budget(in);
    ASSERT_TRUE(b) << b.err().message;
    EXPECT_EQ(b->control_clients, 4u);
    EXPECT_EQ(b->kafka_connections, 1u);
    in.kafka = false; // without Kafka 4 suffice
    in.limit = 80 + fd_reserve(in) + 4;
    EXPECT_TRUE(plan_fd_budget(in));
    in.limit = 80 + fd_reserve(in) + 3;
    EXPECT_FALSE(plan_fd_budget(in));
}

TEST(FdBudget, OpenDescriptorsAreCounted) {
    const uint32_t before = count_open_fds();
    ASSERT_GT(before, 0u);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    EXPECT_EQ(count_open_fds(), before + 2);
    ::close(fds[0]);
    ::close(fds[1]);
    EXPECT_EQ(count_open_fds(), before);
}

} // namespace
} // namespace sluice::control
