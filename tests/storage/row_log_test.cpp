#include "storage/row_log.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "storage/format/headers.h"
#include "storage/segment_files.h"
#include "storage/segment_writer.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;

writer_config config(const std::string& dir, uint64_t segment_bytes_max = 1ull << 30) {
    writer_config c;
    c.data_dir = dir;
    c.writer_name = "w0";
    c.rows_per_block = 16;
    c.string_bytes_max = 64 << 10;
    c.row_string_bytes_max = 1024;
    c.options.segment_bytes_max = segment_bytes_max;
    return c;
}

// Appends rows first..first+n-1 (event_row(i)) and returns the writer's durable end.
uint64_t append(segment_writer& w, uint64_t first, uint64_t n) {
    for (uint64_t i = first; i < first + n; ++i) {
        push_row(w.batch(), event_row(i, int64_t(1000 + i)));
        w.commit_row();
    }
    EXPECT_TRUE(w.flush_and_sync().ok());
    return w.row_offset_durable_end();
}

// Every row of the writer's log by offset: event_row(i)'s raw must sit at offset i.
std::vector<std::string> read_all(const std::string& dir, uint64_t& log_start) {
    auto segs = list_log_segments(dir + "/events", "w0");
    EXPECT_TRUE(segs.ok());
    std::vector<std::string> raws;
    log_start = segs->empty() ? 0 : segs->front().first_offset;
    uint64_t next = log_start;
    for (const auto& s : *segs) {
        EXPECT_EQ(s.first_offset, next) << s.path;
        EXPECT_TRUE(read_log_rows(s, 0, UINT64_MAX, [&](const column_batch& b, uint64_t first) {
                        EXPECT_EQ(first, next);
                        for (uint32_t r = 0; r < b.rows(); ++r) raws.emplace_back(b.string_at(6, r));
                        next += b.rows();
                        return true;
                    }).ok());
    }
    return raws;
}

std::string raw_of(uint64_t i) {
    return std::get<std::string>(event_row(i, int64_t(1000 + i))[6]);
}

TEST(RowLog, HeaderCarriesTheFirstRowOffsetAndOldHeadersReadWithout) {
    std::vector<uint8_t> buf(format::file_header_bytes);
    ASSERT_TRUE(format::write_file_header({events_schema(), "w0", 7, 123456789012ull}, buf.data()).ok());
    auto m = format::read_file_header(buf.data(), buf.size());
    ASSERT_TRUE(m.ok()) << m.err().message;
    EXPECT_EQ(m->first_row_offset, 123456789012ull);
    // A header written without it (as before the extension) reads without it.
    std::vector<uint8_t> old(format::file_header_bytes);
    ASSERT_TRUE(format::write_file_header({events_schema(), "w0", 7}, old.data()).ok());
    auto o = format::read_file_header(old.data(), old.size());
    ASSERT_TRUE(o.ok());
    EXPECT_FALSE(o->first_row_offset.has_value());
    // The two differ only after the header checksum: readers that predate the extension
    // (which stop at content_len + 8) read both alike.
    const uint32_t content = uint32_t(buf[12]) | uint32_t(buf[13]) << 8;
    EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + content + 8, old.begin()));
    // A damaged extension is corruption, not a silently different offset.
    buf[content + 8 + 9] ^= 1;
    auto bad = format::read_file_header(buf.data(), buf.size());
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.err().code, errc::corrupt);
}

TEST(RowLog, OffsetsAreDenseAcrossRotationsAndRestarts) {
    temp_dir tmp;
    {
        // Small segments: several rotations.
        auto w = segment_writer::open(config(tmp.path(), 16 << 10), events_schema());
        ASSERT_TRUE(w.ok());
        EXPECT_EQ((*w)->row_offset_durable_end(), 0u);
        EXPECT_EQ(append(**w, 0, 300), 300u);
        ASSERT_TRUE((*w)->close().ok());
    }
    {
        auto w = segment_writer::open(config(tmp.path()), events_schema());
        ASSERT_TRUE(w.ok());
        EXPECT_EQ((*w)->row_offset_durable_end(), 300u); // continues where the last run ended
        EXPECT_EQ(append(**w, 300, 50), 350u);
        // Killed: no footer on this one.
    }
    auto segs = list_log_segments(tmp.path() + "/events", "w0");
    ASSERT_TRUE(segs.ok());
    ASSERT_GT(segs->size(), 2u);
    EXPECT_FALSE(segs->back().closed);
    uint64_t start = 0;
    auto raws = read_all(tmp.path(), start);
    ASSERT_EQ(raws.size(), 350u);
    for (uint64_t i = 0; i < 350; ++i) EXPECT_EQ(raws[i], raw_of(i)) << i;
    EXPECT_EQ(next_row_offset(tmp.path() + "/events", "w0").value(), 350u);
    // Reading from the middle of a block starts with that block.
    uint64_t first_seen = UINT64_MAX;
    ASSERT_TRUE(read_log_rows(segs->back(), 333, 340, [&](const column_batch&, uint64_t first) {
                    first_seen = std::min(first_seen, first);
                    return true;
                }).ok());
    EXPECT_LE(first_seen, 333u);
    EXPECT_GT(first_seen + 16, 333u);
}

TEST(RowLog, RetentionMovesTheLogStartAndCorruptSegmentsKeepTheirOffsets) {
    temp_dir tmp;
    {
        auto w = segment_writer::open(config(tmp.path(), 16 << 10), events_schema());
        ASSERT_TRUE(w.ok());
        append(**w, 0, 300);
        ASSERT_TRUE((*w)->close().ok());
    }
    auto segs = list_log_segments(tmp.path() + "/events", "w0");
    ASSERT_TRUE(segs.ok());
    ASSERT_GE(segs->size(), 3u);
    // Retention deletes the oldest segment: the rest keep their offsets.
    const uint64_t second = (*segs)[1].first_offset;
    std::filesystem::remove((*segs)[0].path);
    uint64_t start = 0;
    auto raws = read_all(tmp.path(), start);
    EXPECT_EQ(start, second);
    ASSERT_EQ(raws.size(), 300 - second);
    for (uint64_t i = 0; i < raws.size(); ++i) EXPECT_EQ(raws[i], raw_of(second + i));
    // Recovery moves the newest segment aside: the next run does not reuse its offsets.
    const std::string last = segs->back().path;
    std::filesystem::rename(last, last + ".corrupt");
    auto w = segment_writer::open(config(tmp.path()), events_schema());
    ASSERT_TRUE(w.ok());
    EXPECT_EQ((*w)->row_offset_durable_end(), 300u);
}

} // namespace
} // namespace sluice::storage
