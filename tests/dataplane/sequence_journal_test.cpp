// The sequence journal: only what was made writable (its batch durable) reaches the file,
// a restart restores exactly the checks a broker would make, a torn or damaged tail ends
// the log, and the file is reduced to the last batches per producer-partition.
#include "dataplane/kafka/sequence_journal.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace sluice::dataplane::kafka {
namespace {

class JournalDir : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/var/tmp/sluice-seqj-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    std::string path() const { return sequence_journal_path(dir); }
    uint64_t file_records() const {
        std::error_code ec;
        const auto n = std::filesystem::file_size(path(), ec);
        return ec ? 0 : n / sizeof(sequence_record);
    }
    std::string dir;
};

// Polls until the journal says `end` is durable, with a deadline.
bool wait_durable(sequence_journal& j, uint64_t end) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (j.durable() < end) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        if (j.poll() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

const sequence_key key{4242, topic_hash("events-topic"), 1};

TEST_F(JournalDir, OnlyWritableRecordsReachTheFileAndARestartRestoresTheirVerdicts) {
    {
        producer_sequences live;
        sequence_journal j;
        ASSERT_TRUE(j.open(dir, live).ok());
        EXPECT_TRUE(j.persisted());
        EXPECT_EQ(j.restored(), 0u);
        j.stage(key, 0, 0, 1, 100);  // position 0
        j.stage(key, 0, 2, 2, 102);  // 1
        j.stage(key, 0, 3, 9, 103);  // 2: its batch never becomes durable
        EXPECT_EQ(j.staged(), 3u);
        j.writable_until(2);
        ASSERT_TRUE(wait_durable(j, 2));
        EXPECT_EQ(j.durable(), 2u);
        EXPECT_EQ(j.written(), 2u);
        EXPECT_EQ(file_records(), 2u);
    } // a "crash": the third was never writable
    producer_sequences restored;
    sequence_journal j;
    ASSERT_TRUE(j.open(dir, restored).ok());
    EXPECT_EQ(j.restored(), 2u);
    auto c = restored.check(key, 0, 0, 1);
    EXPECT_EQ(c.verdict, sequence_verdict::duplicate);
    EXPECT_EQ(c.base_offset, 100);
    EXPECT_EQ(restored.check(key, 0, 2, 2).base_offset, 102);
    // The batch that was not durable is what the producer re-sends: the next in order.
    EXPECT_EQ(restored.check(key, 0, 3, 9).verdict, sequence_verdict::accept);
    EXPECT_EQ(restored.check(key, 0, 5, 9).verdict, sequence_verdict::out_of_order);
    EXPECT_EQ(restored.check(sequence_key{4242, topic_hash("other"), 1}, 0, 7, 7).verdict,
              sequence_verdict::accept); // unknown: another topic
}

// The store failed: the records staged but not writable are dropped (never written, even
// when later ones are made writable) and their batches taken back from the live state, so
// the producer's retries are new batches, here and after a restart.
TEST_F(JournalDir, DiscardedRecordsAreNeverWrittenAndTheirBatchesAreForgotten) {
    {
        producer_sequences live;
        sequence_journal j;
        ASSERT_TRUE(j.open(dir, live).ok());
        auto stage = [&](int32_t first, int32_t last, int64_t offset) {
            live.accepted(key, 0, first, last, offset);
            return j.stage(key, 0, first, last, offset);
        };
        stage(0, 1, 100);
        stage(2, 2, 102);  // 1: its batch is durable
        stage(3, 9, 103);  // 2, 3: never durable
        stage(10, 10, 110);
        j.writable_until(2);
        EXPECT_EQ(live.check(key, 0, 3, 9).verdict, sequence_verdict::duplicate);
        EXPECT_EQ(j.discard_unwritable(live), 2u);
        EXPECT_EQ(j.staged(), 2u);
        EXPECT_EQ(j.discard_unwritable(live), 0u);
        EXPECT_EQ(live.check(key, 0, 3, 9).verdict, sequence_verdict::accept);
        EXPECT_EQ(live.check(key, 0, 2, 2).verdict, sequence_verdict::duplicate);
        j.writable_until(4); // past the dropped ones: nothing more to write
        ASSERT_TRUE(wait_durable(j, 2));
        for (int i = 0; i < 20 && j.poll() != 0; ++i) {
        }
        EXPECT_EQ(j.written(), 2u);
        EXPECT_EQ(file_records(), 2u);
    }
    producer_sequences restored;
    sequence_journal j;
    ASSERT_TRUE(j.open(dir, restored).ok());
    EXPECT_EQ(j.restored(), 2u);
    EXPECT_EQ(restored.check(key, 0, 2, 2).verdict, sequence_verdict::duplicate);
    EXPECT_EQ(restored.check(key, 0, 3, 9).verdict, sequence_verdict::accept);
}

TEST_F(JournalDir, ReducedToTheLastBatchesPerProducerPartitionAtStart) {
    {
        producer_sequences live;
        sequence_journal j;
        ASSERT_TRUE(j.open(dir, live).ok());
        for (int32_t s = 0; s < 20; ++s) j.stage(key, 0, s, s, 1000 + s);
        const sequence_key other{7, topic_hash("t2"), 0};
        j.stage(other, 3, 0, 4, 5);
        j.writable_until(j.staged());
        ASSERT_TRUE(wait_durable(j, 21));
        EXPECT_EQ(file_records(), 21u);
    }
    producer_sequences restored;
    sequence_journal j;
    ASSERT_TRUE(j.open(dir, restored).ok());
    EXPECT_EQ(j.restored(), 21u);
    EXPECT_EQ(file_records(), limits::kafka_producer_batches_kept + 1);
    EXPECT_EQ(restored.size(), 2u);
    EXPECT_EQ(restored.check(key, 0, 19, 19).base_offset, 1019);
    EXPECT_EQ(restored.check(key, 0, 15, 15).base_offset, 1015);
    EXPECT_EQ(restored.check(key, 0, 14, 14).verdict, sequence_verdict::out_of_order);
    EXPECT_EQ(restored.check(key, 0, 20, 20).verdict, sequence_verdict::accept);
    EXPECT_EQ(restored.check(sequence_key{7, topic_hash("t2"), 0}, 3, 0, 4).base_offset, 5);
    EXPECT_EQ(restored.check(sequence_key{7, topic_hash("t2"), 0}, 2, 5, 5).verdict,
              sequence_verdict::fenced);
}

TEST_F(JournalDir, ATornOrDamagedRecordEndsTheLog) {
    {
        producer_sequences live;
        sequence_journal j;
        ASSERT_TRUE(j.open(dir, live).ok());
        for (int32_t s = 0; s < 4; ++s) j.stage(key, 0, s, s, s);
        j.writable_until(4);
        ASSERT_TRUE(wait_durable(j, 4));
    }
    // Cut the last record in half, and flip a bit in the third.
    std::filesystem::resize_file(path(), 3 * sizeof(sequence_record) + 20);
    {
        std::fstream f(path(), std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(2 * sizeof(sequence_record) + 9);
        char c = 0;
        f.read(&c, 1);
        c ^= 0x10;
        f.seekp(2 * sizeof(sequence_record) + 9);
        f.write(&c, 1);
    }
    producer_sequences restored;
    sequence_journal j;
    ASSERT_TRUE(j.open(dir, restored).ok());
    EXPECT_EQ(j.restored(), 2u);
    EXPECT_EQ(file_records(), 2u); // rewritten without the damage
    EXPECT_EQ(restored.check(key, 0, 1, 1).verdict, sequence_verdict::duplicate);
    EXPECT_EQ(restored.check(key, 0, 2, 2).verdict, sequence_verdict::accept);
}

TEST(SequenceJournal, WithoutADataDirEverythingWritableIsDurableAtOnce) {
    producer_sequences live;
    sequence_journal j;
    ASSERT_TRUE(j.open("", live).ok());
    EXPECT_FALSE(j.persisted());
    j.stage(key, 0, 0, 0, 0);
    j.stage(key, 0, 1, 1, 1);
    EXPECT_EQ(j.durable(), 0u);
    j.writable_until(1);
    EXPECT_EQ(j.durable(), 1u);
    EXPECT_EQ(j.poll(), 0u);
    EXPECT_TRUE(j.has_room());
}

TEST_F(JournalDir, AnUnreadableJournalIsAStartUpErrorNamingIt) {
    std::filesystem::create_directories(dir + "/_processing");
    std::filesystem::create_directories(path()); // a directory where the file should be
    producer_sequences live;
    sequence_journal j;
    auto r = j.open(dir, live);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find(path()), std::string::npos) << r.err().message;
}

} // namespace
} // namespace sluice::dataplane::kafka
