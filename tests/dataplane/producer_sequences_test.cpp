// The idempotent producer's sequence checks (dataplane/kafka/producer_sequences.h).
#include "dataplane/kafka/producer_sequences.h"

#include <gtest/gtest.h>

using namespace sluice::dataplane::kafka;

namespace {
const sequence_key k1{1000, 0, 0};

// Accepts a batch of `n` records at `first` (check says accept, then record it).
void accept(producer_sequences& s, const sequence_key& k, int16_t epoch, int32_t first, int32_t n,
            int64_t offset) {
    const int32_t last = last_sequence(first, n - 1);
    auto c = s.check(k, epoch, first, last);
    ASSERT_EQ(c.verdict, sequence_verdict::accept) << first;
    s.accepted(k, epoch, first, last, offset);
}
} // namespace

TEST(producer_sequences, accepts_in_order_and_unknown_producers_at_any_sequence) {
    producer_sequences s(16);
    accept(s, k1, 0, 57, 3, 0); // unknown producer (e.g. after a restart): any sequence
    accept(s, k1, 0, 60, 1, 3);
    accept(s, k1, 0, 61, 10, 4);
    EXPECT_EQ(s.size(), 1u);
    // Another partition, topic or producer is independent.
    accept(s, {1000, 0, 1}, 0, 0, 1, 0);
    accept(s, {1000, 1, 0}, 0, 5, 1, 0);
    accept(s, {1001, 0, 0}, 0, 9, 1, 0);
    EXPECT_EQ(s.size(), 4u);
}

TEST(producer_sequences, a_duplicate_of_each_of_the_last_five_gets_its_offset) {
    producer_sequences s(16);
    for (int b = 0; b < 7; ++b)
        accept(s, k1, 0, b * 2, 2, 100 + b * 2);
    // Batches 2..6 are kept (the last five); 0 and 1 are forgotten.
    for (int b = 2; b < 7; ++b) {
        auto c = s.check(k1, 0, b * 2, b * 2 + 1);
        EXPECT_EQ(c.verdict, sequence_verdict::duplicate) << b;
        EXPECT_EQ(c.base_offset, 100 + b * 2) << b;
    }
    EXPECT_EQ(s.check(k1, 0, 0, 1).verdict, sequence_verdict::out_of_order);
    EXPECT_EQ(s.check(k1, 0, 2, 3).verdict, sequence_verdict::out_of_order);
    // A batch overlapping a kept one with other bounds is out of order, not a duplicate.
    EXPECT_EQ(s.check(k1, 0, 12, 12).verdict, sequence_verdict::out_of_order);
    // And the next one is still accepted after the duplicates.
    accept(s, k1, 0, 14, 1, 114);
}

TEST(producer_sequences, a_gap_is_out_of_order) {
    producer_sequences s(16);
    accept(s, k1, 0, 0, 5, 0);
    EXPECT_EQ(s.check(k1, 0, 6, 6).verdict, sequence_verdict::out_of_order);
    EXPECT_EQ(s.check(k1, 0, 4, 4).verdict, sequence_verdict::out_of_order);
    accept(s, k1, 0, 5, 1, 5);
}

TEST(producer_sequences, sequences_wrap_after_int32_max) {
    EXPECT_EQ(last_sequence(INT32_MAX - 1, 2), 0);
    EXPECT_EQ(last_sequence(INT32_MAX, 0), INT32_MAX);
    producer_sequences s(16);
    accept(s, k1, 0, INT32_MAX - 1, 2, 0);
    accept(s, k1, 0, 0, 1, 2);
}

TEST(producer_sequences, epochs_newer_resets_older_is_fenced) {
    producer_sequences s(16);
    accept(s, k1, 3, 0, 10, 0);
    EXPECT_EQ(s.check(k1, 2, 10, 10).verdict, sequence_verdict::fenced);
    EXPECT_EQ(s.check(k1, 4, 10, 10).verdict, sequence_verdict::out_of_order);
    accept(s, k1, 4, 0, 1, 10);
    // The old epoch's batches are no longer duplicates.
    EXPECT_EQ(s.check(k1, 4, 0, 9).verdict, sequence_verdict::out_of_order);
    EXPECT_EQ(s.check(k1, 3, 0, 9).verdict, sequence_verdict::fenced);
    accept(s, k1, 4, 1, 1, 11);
}

TEST(producer_sequences, evicts_the_least_recently_used) {
    producer_sequences s(4);
    for (int p = 0; p < 4; ++p)
        accept(s, {p, 0, 0}, 0, 0, 1, 0);
    // Touch 0: now 1 is the least recently used.
    EXPECT_EQ(s.check({0, 0, 0}, 0, 0, 0).verdict, sequence_verdict::duplicate);
    accept(s, {4, 0, 0}, 0, 0, 1, 0);
    EXPECT_EQ(s.size(), 4u);
    EXPECT_EQ(s.evictions(), 1u);
    // 1 is forgotten: any sequence is accepted again (an unknown producer).
    EXPECT_EQ(s.check({1, 0, 0}, 0, 0, 0).verdict, sequence_verdict::accept);
    for (int p : {0, 2, 3, 4})
        EXPECT_EQ(s.check({p, 0, 0}, 0, 0, 0).verdict, sequence_verdict::duplicate) << p;
    // Many more: the table stays consistent (backward-shift deletion).
    for (int p = 100; p < 10100; ++p)
        accept(s, {p, uint32_t(p % 3), p % 7}, 0, 0, 1, p);
    EXPECT_EQ(s.size(), 4u);
    for (int p = 10096; p < 10100; ++p) {
        auto c = s.check({p, uint32_t(p % 3), p % 7}, 0, 0, 0);
        EXPECT_EQ(c.verdict, sequence_verdict::duplicate) << p;
        EXPECT_EQ(c.base_offset, p);
        EXPECT_EQ(s.check({p, uint32_t(p % 3), p % 7}, 0, 1, 1).verdict, sequence_verdict::accept);
    }
    EXPECT_EQ(s.check({10095, 10095 % 3, 10095 % 7}, 0, 5, 5).verdict, sequence_verdict::accept);
}

// A batch whose records were never made durable (the store failed; the producer was answered
// KAFKA_STORAGE_ERROR) is taken back: the producer's retry of it, same sequences, is accepted
// and stored, not answered as a duplicate (that would lose its records).
TEST(producer_sequences, a_forgotten_batch_is_accepted_again_not_a_duplicate) {
    producer_sequences s(16);
    accept(s, k1, 0, 0, 5, 0);  // durable
    accept(s, k1, 0, 5, 5, 5);  // these two fail
    accept(s, k1, 0, 10, 5, 10);
    EXPECT_EQ(s.check(k1, 0, 5, 9).verdict, sequence_verdict::duplicate); // without forget
    s.forget(k1, 0, 10, 14); // newest first
    s.forget(k1, 0, 5, 9);
    EXPECT_EQ(s.size(), 1u);
    // The retries follow the durable batch; the durable one is still a duplicate.
    EXPECT_EQ(s.check(k1, 0, 0, 4).verdict, sequence_verdict::duplicate);
    EXPECT_EQ(s.check(k1, 0, 10, 14).verdict, sequence_verdict::out_of_order);
    accept(s, k1, 0, 5, 5, 20);
    accept(s, k1, 0, 10, 5, 25);
    EXPECT_EQ(s.check(k1, 0, 5, 9).base_offset, 20);
}

TEST(producer_sequences, forgetting_from_a_full_ring_keeps_the_older_batches_in_order) {
    producer_sequences s(16);
    for (int b = 0; b < 7; ++b) accept(s, k1, 0, b, 1, 100 + b); // ring full: 2..6 kept
    s.forget(k1, 0, 6, 6);
    s.forget(k1, 0, 5, 5);
    for (int b = 2; b < 5; ++b) {
        auto c = s.check(k1, 0, b, b);
        EXPECT_EQ(c.verdict, sequence_verdict::duplicate) << b;
        EXPECT_EQ(c.base_offset, 100 + b) << b;
    }
    EXPECT_EQ(s.check(k1, 0, 5, 5).verdict, sequence_verdict::accept);
    // Refilled past full again: the ring keeps the last five, in order.
    for (int b = 5; b < 9; ++b) accept(s, k1, 0, b, 1, 200 + b);
    EXPECT_EQ(s.check(k1, 0, 3, 3).verdict, sequence_verdict::out_of_order); // dropped
    for (int b = 4; b < 9; ++b) EXPECT_EQ(s.check(k1, 0, b, b).verdict, sequence_verdict::duplicate) << b;
    EXPECT_EQ(s.check(k1, 0, 8, 8).base_offset, 208);
    int n = 0;
    s.for_each_batch([&](const sequence_key&, int16_t, int32_t first, int32_t, int64_t) {
        EXPECT_EQ(first, 4 + n);
        ++n;
    });
    EXPECT_EQ(n, 5);
}

// A state left with no batch (or whose newest batch or epoch is another) is erased: the
// producer is unknown again (any sequence), and the other states are intact (the entries
// stay dense and the table consistent).
TEST(producer_sequences, forgetting_the_last_batch_erases_the_state) {
    producer_sequences s(8);
    for (int p = 0; p < 6; ++p) accept(s, {p, 0, 0}, 0, 0, 2, p * 10);
    s.forget({1, 0, 0}, 0, 0, 1);
    s.forget({4, 0, 0}, 1, 0, 1); // another epoch: erased too
    s.forget({9, 0, 0}, 0, 0, 1); // unknown: nothing
    EXPECT_EQ(s.size(), 4u);
    EXPECT_EQ(s.check({1, 0, 0}, 0, 7, 7).verdict, sequence_verdict::accept);
    EXPECT_EQ(s.check({4, 0, 0}, 0, 7, 7).verdict, sequence_verdict::accept);
    for (int p : {0, 2, 3, 5}) {
        auto c = s.check({p, 0, 0}, 0, 0, 1);
        EXPECT_EQ(c.verdict, sequence_verdict::duplicate) << p;
        EXPECT_EQ(c.base_offset, p * 10) << p;
    }
    // The LRU list still works: fill past capacity, evicting in order.
    for (int p = 10; p < 20; ++p) accept(s, {p, 0, 0}, 0, 0, 1, p);
    EXPECT_EQ(s.size(), 8u);
    for (int p = 12; p < 20; ++p) EXPECT_EQ(s.check({p, 0, 0}, 0, 0, 0).verdict, sequence_verdict::duplicate) << p;
}
