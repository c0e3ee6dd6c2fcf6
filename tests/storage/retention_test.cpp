#include "storage/retention.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "storage/segment_files.h"
#include "storage/segment_writer.h"
#include "storage/table_reader.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;

writer_config config(const std::string& dir, const std::string& writer = "w0") {
    writer_config c;
    c.data_dir = dir;
    c.writer_name = writer;
    c.rows_per_block = 64;
    c.string_bytes_max = 64 << 10;
    c.row_string_bytes_max = 1024;
    return c;
}

// Writes one segment of `rows` events with times first_ms, first_ms + 1, ...; closes it
// unless the writer is returned (still open: its segment is being written).
std::unique_ptr<segment_writer> write_segment(const std::string& dir, int64_t first_ms, int rows,
                                              bool close = true, const std::string& writer = "w0") {
    auto w = segment_writer::open(config(dir, writer), events_schema());
    EXPECT_TRUE(w.ok());
    for (int i = 0; i < rows; ++i) {
        push_row((*w)->batch(), event_row(uint64_t(i), first_ms + i));
        (*w)->commit_row();
    }
    if (close) {
        EXPECT_TRUE((*w)->close().ok());
        return nullptr;
    }
    EXPECT_TRUE((*w)->flush_and_sync().ok());
    return std::move(w.value());
}

std::vector<uint64_t> seqs(const std::string& dir, const std::string& writer = "w0") {
    auto files = list_segments(dir + "/events");
    std::vector<uint64_t> out;
    if (!files) return out;
    for (const auto& f : *files)
        if (f.writer == writer) out.push_back(f.seq);
    return out;
}

const table_retention* find(const retention_status& s, const std::string& table) {
    for (const auto& t : s.tables)
        if (t.table == table) return &t;
    return nullptr;
}

TEST(Retention, DeletesSegmentsOlderThanMaxAgeButNeverTheLiveOne) {
    temp_dir tmp;
    write_segment(tmp.path(), 1000, 100);  // newest row 1099
    write_segment(tmp.path(), 5000, 100);  // 5099
    write_segment(tmp.path(), 9000, 100);  // 9099
    auto live = write_segment(tmp.path(), 0, 100, /*close=*/false); // old, but being written
    int64_t now = 10000;
    retention_manager rm(tmp.path(), {4000, 0}, {}, [&] { return now; });
    ASSERT_TRUE(rm.run_once().ok());
    EXPECT_EQ(seqs(tmp.path()), (std::vector<uint64_t>{3, 4}));
    auto st = rm.status();
    const auto* t = find(st, "events");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->segments_deleted, 2u);
    EXPECT_EQ(t->rows_deleted, 200u);
    EXPECT_EQ(t->segments, 2u);
    EXPECT_EQ(t->rows, 200u);
    EXPECT_EQ(t->oldest_time_ms, 99); // the live segment's newest row
    EXPECT_GT(t->bytes_deleted, 0u);
    EXPECT_EQ(st.passes, 1u);
    EXPECT_TRUE(st.last_error.empty());

    // Once closed, the old segment goes too; the table then holds rows from 9000 on.
    ASSERT_TRUE(live->close().ok());
    ASSERT_TRUE(rm.run_once().ok());
    EXPECT_EQ(seqs(tmp.path()), (std::vector<uint64_t>{3}));
    std::vector<row> rows;
    auto s = scan_table(tmp.path(), "events", INT64_MIN, INT64_MAX,
                        [&](const column_batch& b) { append_rows(b, rows); });
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(rows.size(), 100u);
    EXPECT_EQ(std::get<int64_t>(rows[0][0]), 9000);
}

TEST(Retention, DeletesOldestSegmentsUntilUnderMaxBytes) {
    temp_dir tmp;
    write_segment(tmp.path(), 3000, 200, true, "w1");
    write_segment(tmp.path(), 1000, 200, true, "w0");
    write_segment(tmp.path(), 2000, 200, true, "w0");
    write_segment(tmp.path(), 4000, 200, true, "w0");
    auto files = list_segments(tmp.path() + "/events");
    ASSERT_TRUE(files.ok());
    uint64_t each = std::filesystem::file_size((*files)[0].path);
    retention_manager rm(tmp.path(), {}, {{"events", {0, 2 * each + each / 2}}},
                         [] { return int64_t(0); });
    ASSERT_TRUE(rm.run_once().ok());
    // Oldest newest-rows first, across writers: w0-1 (1199), then w0-2 (2199).
    EXPECT_EQ(seqs(tmp.path(), "w0"), (std::vector<uint64_t>{3}));
    EXPECT_EQ(seqs(tmp.path(), "w1"), (std::vector<uint64_t>{1}));
    auto st = rm.status();
    EXPECT_EQ(find(st, "events")->segments_deleted, 2u);
    EXPECT_LE(find(st, "events")->bytes, 2 * each + each / 2);
    EXPECT_FALSE(find(st, "events")->policy_is_default);
}

TEST(Retention, PoliciesChangeAtRunTimeAndTheThreadAppliesThemAtOnce) {
    temp_dir tmp;
    write_segment(tmp.path(), 1000, 50);
    write_segment(tmp.path(), 2000, 50);
    int64_t now = 1'000'000;
    retention_manager rm(tmp.path(), {}, {}, [&] { return now; });
    rm.start(60'000); // a long interval: only a policy change wakes it
    ASSERT_TRUE(rm.run_once().ok());
    EXPECT_EQ(seqs(tmp.path()).size(), 2u);
    ASSERT_TRUE(rm.set_policy("events", {now - 1500, 0}).ok());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seqs(tmp.path()).size() != 1 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(seqs(tmp.path()), (std::vector<uint64_t>{2}));
    // The default applies to tables without their own policy.
    rm.clear_policy("events");
    ASSERT_TRUE(rm.set_policy("*", {1, 0}).ok());
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!seqs(tmp.path()).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_TRUE(seqs(tmp.path()).empty());
    rm.stop();
    auto st = rm.status();
    EXPECT_EQ(st.default_policy.max_age_ms, 1);
    EXPECT_TRUE(find(st, "events")->policy_is_default);
    EXPECT_EQ(find(st, "events")->segments_deleted, 2u);
}

TEST(Retention, RejectsBadPolicies) {
    temp_dir tmp;
    retention_manager rm(tmp.path(), {}, {}, [] { return int64_t(0); });
    EXPECT_EQ(rm.set_policy("../x", {1, 0}).err().code, errc::invalid_argument);
    EXPECT_EQ(rm.set_policy("", {1, 0}).err().code, errc::invalid_argument);
    EXPECT_EQ(rm.set_policy("events", {-1, 0}).err().code, errc::invalid_argument);
    EXPECT_TRUE(rm.set_policy("events", {0, 0}).ok());
    // A data dir that does not exist yet is empty, not an error.
    retention_manager none(tmp.path() + "/nope", {1, 1}, {}, [] { return int64_t(0); });
    EXPECT_TRUE(none.run_once().ok());
}

TEST(Retention, NoPolicyKeepsEverything) {
    temp_dir tmp;
    write_segment(tmp.path(), 1, 10);
    write_segment(tmp.path(), 2, 10);
    retention_manager rm(tmp.path(), {}, {}, [] { return INT64_MAX / 2; });
    ASSERT_TRUE(rm.run_once().ok());
    EXPECT_EQ(seqs(tmp.path()).size(), 2u);
    EXPECT_EQ(find(rm.status(), "events")->rows, 20u);
}

} // namespace
} // namespace sluice::storage
