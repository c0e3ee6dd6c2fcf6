// Committed offsets in the data dir (dataplane/kafka/offset_store.h): restored after a
// reopen, a torn or damaged tail dropped (what a crash mid-write leaves), the last commit
// per key kept, the log reduced at open and when it grows.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dataplane/kafka/offset_store.h"

namespace sluice::dataplane::kafka {
namespace {

namespace fs = std::filesystem;

struct temp_dir {
    std::string path;
    temp_dir() {
        path = (fs::temp_directory_path() /
                ("offset-store-" + std::to_string(getpid()) + "-" + std::to_string(counter++)))
                   .string();
        fs::create_directories(path + "/_processing");
    }
    ~temp_dir() { fs::remove_all(path); }
    static inline int counter = 0;
};

offset_commit_entry entry(const std::string& g, const std::string& t, int32_t p, int64_t off,
                          std::optional<std::string> meta = std::nullopt) {
    return {{g, t, p}, {off, 5, 1700000000000 + off, std::move(meta)}};
}

uint64_t file_size(const std::string& path) {
    return fs::file_size(path);
}

TEST(OffsetStore, CommitsSurviveAReopenExactly) {
    temp_dir d;
    {
        auto s = offset_store::open(d.path);
        ASSERT_TRUE(s.ok()) << s.err().message;
        ASSERT_TRUE(
            s.value()
                .commit({entry("g1", "events-topic", 0, 10, "meta"),
                         entry("g1", "events-topic", 1, 20), entry("g2", "other", 3, 30, "")})
                .ok());
        ASSERT_TRUE(s.value().commit({entry("g1", "events-topic", 0, 11)}).ok()); // replaces
        EXPECT_EQ(s.value().commits(), 4u);
    }
    auto s = offset_store::open(d.path);
    ASSERT_TRUE(s.ok());
    const offset_store& st = s.value();
    EXPECT_EQ(st.restored(), 4u); // every record read, the last per key kept
    EXPECT_EQ(st.torn_bytes(), 0u);
    ASSERT_EQ(st.all().size(), 3u);
    const committed_offset* a = st.find({"g1", "events-topic", 0});
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->offset, 11);
    EXPECT_EQ(a->leader_epoch, 5);
    EXPECT_EQ(a->commit_time_ms, 1700000000011);
    EXPECT_FALSE(a->metadata.has_value());
    const committed_offset* c = st.find({"g2", "other", 3});
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->metadata.has_value()); // "" and null stay apart
    EXPECT_EQ(*c->metadata, "");
    EXPECT_EQ(st.find({"g1", "events-topic", 2}), nullptr);
    // Reduced at open: one record per key.
    std::string one;
    for (const auto& [k, v] : st.all())
        encode_offset_record({k, v}, one);
    EXPECT_EQ(file_size(offset_log_path(d.path)), one.size());
}

// A crash mid-append leaves part of a record: every whole record before it is restored,
// the torn bytes are dropped, and the next commits append after the whole ones.
TEST(OffsetStore, TornTailIsDroppedAtEveryCutPoint) {
    std::string log;
    encode_offset_record(entry("g", "t", 0, 1), log);
    encode_offset_record(entry("g", "t", 1, 2, "x"), log);
    const size_t whole = log.size();
    encode_offset_record(entry("g", "t", 0, 3), log);
    for (size_t cut = whole; cut < log.size(); ++cut) {
        temp_dir d;
        { std::ofstream(offset_log_path(d.path), std::ios::binary) << log.substr(0, cut); }
        auto s = offset_store::open(d.path);
        ASSERT_TRUE(s.ok()) << cut;
        EXPECT_EQ(s.value().restored(), 2u) << cut;
        EXPECT_EQ(s.value().torn_bytes(), cut - whole) << cut;
        EXPECT_EQ(s.value().find({"g", "t", 0})->offset, 1) << cut;
        ASSERT_TRUE(s.value().commit({entry("g", "t", 1, 9)}).ok());
        auto again = offset_store::open(d.path);
        ASSERT_TRUE(again.ok());
        EXPECT_EQ(again.value().torn_bytes(), 0u) << cut;
        EXPECT_EQ(again.value().find({"g", "t", 1})->offset, 9) << cut;
        EXPECT_EQ(again.value().find({"g", "t", 0})->offset, 1) << cut;
    }
}

TEST(OffsetStore, DamagedRecordEndsTheLog) {
    std::string log;
    encode_offset_record(entry("g", "t", 0, 1), log);
    const size_t first = log.size();
    encode_offset_record(entry("g", "t", 1, 2), log);
    encode_offset_record(entry("g", "t", 2, 3), log);
    log[first + 12] ^= 0x40; // inside the second record's payload: its CRC fails
    std::vector<offset_commit_entry> out;
    EXPECT_EQ(decode_offset_log(log, out), first);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].value.offset, 1);
    // A lying size is torn, not a crash.
    std::string lying;
    encode_offset_record(entry("g", "t", 0, 1), lying);
    lying[0] = char(0xff);
    lying[3] = char(0x7f);
    out.clear();
    EXPECT_EQ(decode_offset_log(lying, out), 0u);
    EXPECT_TRUE(out.empty());
}

TEST(OffsetStore, LogIsReducedWhenItGrows) {
    temp_dir d;
    auto s = offset_store::open(d.path);
    ASSERT_TRUE(s.ok());
    const std::string meta(1000, 'm');
    // ~1 KiB per record, one key: the log would reach ~3 MiB without reduction.
    for (int i = 0; i < 3000; i += 100) {
        std::vector<offset_commit_entry> batch;
        for (int j = i; j < i + 100; ++j)
            batch.push_back(entry("g", "events-topic", 0, j, meta));
        ASSERT_TRUE(s.value().commit(batch).ok());
    }
    EXPECT_GE(s.value().compactions(), 2u); // at open, then at least once while growing
    EXPECT_LE(file_size(offset_log_path(d.path)), 2 * 1100 + offset_log_slack_bytes + 1100);
    auto again = offset_store::open(d.path);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().find({"g", "events-topic", 0})->offset, 2999);
}

TEST(OffsetStore, MemoryOnlyWithoutADataDir) {
    auto s = offset_store::open("");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s.value().commit({entry("g", "t", 0, 4)}).ok());
    EXPECT_EQ(s.value().find({"g", "t", 0})->offset, 4);
}

// The log cannot be replaced (its temporary file's name is taken by a folder, which stops
// root too): one error naming the file.
TEST(OffsetStore, UnwritableLogIsOneClearError) {
    temp_dir d;
    fs::create_directories(offset_log_path(d.path) + ".tmp");
    auto s = offset_store::open(d.path);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.err().message.find("kafka_offsets"), std::string::npos) << s.err().message;
}

} // namespace
} // namespace sluice::dataplane::kafka
