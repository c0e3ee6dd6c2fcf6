#include "storage/segment_reader.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include "storage/segment_writer.h"
#include "storage/table_reader.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;

// Writes `blocks` blocks of 100 events each; block b holds times [b*1000, b*1000+99].
std::vector<row> write_blocks(const std::string& dir, int blocks, bool close = true) {
    auto schema = events_schema();
    writer_config cfg;
    cfg.data_dir = dir;
    cfg.writer_name = "w0";
    cfg.rows_per_block = 100;
    cfg.string_bytes_max = 64 << 10;
    cfg.row_string_bytes_max = 1024;
    auto w = segment_writer::open(cfg, schema);
    EXPECT_TRUE(w.ok());
    std::vector<row> model;
    for (int b = 0; b < blocks; ++b) {
        for (int i = 0; i < 100; ++i) {
            model.push_back(event_row(uint64_t(b * 100 + i), b * 1000 + i));
            push_row((*w)->batch(), model.back());
            (*w)->commit_row();
        }
    }
    EXPECT_TRUE(close ? (*w)->close().ok() : (*w)->flush_and_sync().ok());
    return model;
}

std::vector<uint64_t> block_offsets(const std::string& path) {
    auto rd = segment_reader::open(path);
    EXPECT_TRUE(rd.ok());
    std::vector<uint64_t> out;
    while ((*rd)->next_block()) out.push_back((*rd)->block_offset());
    return out;
}

void flip_byte(const std::string& path, uint64_t offset) {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    uint8_t b;
    ASSERT_EQ(::pread(fd, &b, 1, off_t(offset)), 1);
    b ^= 0x40;
    ASSERT_EQ(::pwrite(fd, &b, 1, off_t(offset)), 1);
    ::close(fd);
}

TEST(SegmentReader, ChecksumFailureStopsBeforeTheBadBlock) {
    temp_dir tmp;
    auto model = write_blocks(tmp.path(), 3);
    const std::string path = tmp.path() + "/events/w0-000001.seg";
    auto offsets = block_offsets(path);
    ASSERT_EQ(offsets.size(), 3u);
    flip_byte(path, offsets[1] + format::block_header_bytes + 100); // inside block 2's payload

    auto rd = segment_reader::open(path);
    ASSERT_TRUE(rd.ok());
    column_batch b((*rd)->schema(), 1, 0, 0);
    std::vector<row> got;
    ASSERT_TRUE((*rd)->next_block());
    ASSERT_TRUE((*rd)->read_block(b).ok());
    append_rows(b, got);
    ASSERT_TRUE((*rd)->next_block()); // the header is intact
    auto r = (*rd)->read_block(b);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::corrupt);
    EXPECT_NE(r.err().message.find("checksum"), std::string::npos) << r.err().message;
    EXPECT_FALSE((*rd)->next_block());
    EXPECT_EQ((*rd)->end(), segment_reader::end_state::damaged);
    EXPECT_EQ((*rd)->damage_offset(), offsets[1]);
    EXPECT_EQ(got, std::vector<row>(model.begin(), model.begin() + 100));

    // A table scan serves the first block only.
    std::vector<row> scanned;
    auto s = scan_table(tmp.path(), "events", INT64_MIN, INT64_MAX,
                        [&](const column_batch& cb) { append_rows(cb, scanned); });
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->damaged_segments, 1u);
    EXPECT_EQ(scanned, got);
}

TEST(SegmentReader, CorruptBlockHeaderIsDamage) {
    temp_dir tmp;
    write_blocks(tmp.path(), 2);
    const std::string path = tmp.path() + "/events/w0-000001.seg";
    auto offsets = block_offsets(path);
    flip_byte(path, offsets[1] + 9); // row count
    auto rd = segment_reader::open(path);
    ASSERT_TRUE(rd.ok());
    EXPECT_TRUE((*rd)->next_block());
    EXPECT_FALSE((*rd)->next_block());
    EXPECT_EQ((*rd)->end(), segment_reader::end_state::damaged);
    EXPECT_EQ((*rd)->damage_offset(), offsets[1]);
}

TEST(SegmentReader, UnclosedSegmentEndsAtEof) {
    temp_dir tmp;
    auto model = write_blocks(tmp.path(), 2, /*close=*/false);
    // The writer is gone without close(): no footer, but every block is whole.
    auto rd = segment_reader::open(tmp.path() + "/events/w0-000001.seg");
    ASSERT_TRUE(rd.ok());
    int n = 0;
    while ((*rd)->next_block()) ++n;
    EXPECT_EQ(n, 2);
    EXPECT_EQ((*rd)->end(), segment_reader::end_state::eof);
}

TEST(TableReader, ScansATimeRangeAndPrunesBlocks) {
    temp_dir tmp;
    auto model = write_blocks(tmp.path(), 5);
    std::vector<row> got;
    // [1050, 2020]: half of block 1, the start of block 2; blocks 0, 3, 4 are pruned.
    auto s = scan_table(tmp.path(), "events", 1050, 2020,
                        [&](const column_batch& b) { append_rows(b, got); });
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->blocks_read, 2u);
    EXPECT_EQ(s->blocks_skipped, 3u);
    std::vector<row> want;
    for (const auto& r : model) {
        int64_t t = std::get<int64_t>(r[0]);
        if (t >= 1050 && t <= 2020) want.push_back(r);
    }
    EXPECT_EQ(got.size(), 50u + 21u);
    EXPECT_EQ(got, want);
    EXPECT_EQ(s->rows, want.size());

    auto missing = scan_table(tmp.path(), "nope", 0, 1, [](const column_batch&) {});
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.err().code, errc::not_found);
}

TEST(TableReader, ListsTablesWithRowCounts) {
    temp_dir tmp;
    write_blocks(tmp.path(), 3);
    write_blocks(tmp.path(), 1, /*close=*/false); // a second, unclosed segment
    auto tables = list_table_infos(tmp.path());
    ASSERT_TRUE(tables.ok());
    ASSERT_EQ(tables->size(), 1u);
    EXPECT_EQ((*tables)[0].name, "events");
    EXPECT_EQ((*tables)[0].segments, 2u);
    EXPECT_EQ((*tables)[0].rows, 400u);
    EXPECT_EQ((*tables)[0].min_time_ms, 0);
    EXPECT_EQ((*tables)[0].max_time_ms, 2099);
    EXPECT_GT((*tables)[0].bytes, 4u * 4096);
}

TEST(TableReader, PrunesClosedSegmentsByTheirFooter) {
    temp_dir tmp;
    write_blocks(tmp.path(), 2);                   // segment 1: times 0..1099
    auto later = write_blocks(tmp.path(), 3);      // segment 2: times 0..2099 again
    write_blocks(tmp.path(), 1, /*close=*/false);  // segment 3: unclosed, walked
    std::vector<row> got;
    auto s = scan_table(tmp.path(), "events", 2000, 2050,
                        [&](const column_batch& b) { append_rows(b, got); });
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->segments, 3u);
    EXPECT_EQ(s->segments_skipped, 1u); // segment 1 ends at 1099: pruned without a walk
    EXPECT_EQ(s->blocks_read, 1u);
    EXPECT_EQ(s->blocks_skipped, 2u + 1u);
    EXPECT_EQ(got, std::vector<row>(later.begin() + 200, later.begin() + 251));
}

TEST(SegmentReader, PeeksTheFooterWithColumnStatistics) {
    temp_dir tmp;
    auto model = write_blocks(tmp.path(), 3);
    auto rd = segment_reader::open(tmp.path() + "/events/w0-000001.seg");
    ASSERT_TRUE(rd.ok());
    format::footer f;
    ASSERT_TRUE((*rd)->peek_footer(f));
    EXPECT_EQ(f.rows, 300u);
    EXPECT_EQ(f.data_blocks, 3u);
    EXPECT_EQ(f.min_time_ms, 0);
    EXPECT_EQ(f.max_time_ms, 2099);
    ASSERT_EQ(f.columns.size(), size_t(events_col::count_));
    uint64_t nulls = 0, raw_bytes = 0;
    for (const auto& r : model) {
        nulls += std::holds_alternative<std::monostate>(r[events_col::event_id]);
        raw_bytes += std::get<std::string>(r[events_col::raw]).size();
    }
    EXPECT_EQ(f.columns[events_col::event_id].null_count, nulls);
    EXPECT_EQ(f.columns[events_col::raw].value_bytes, raw_bytes);
    EXPECT_EQ(int64_t(f.columns[events_col::event_time_ms].max), 2099);
    EXPECT_EQ(f.columns[events_col::late].max, 1u);
    // The walk finds the same footer.
    while ((*rd)->next_block()) {
    }
    EXPECT_EQ((*rd)->end(), segment_reader::end_state::footer);
    EXPECT_EQ((*rd)->footer().rows, 300u);

    // An unclosed segment has none to peek at.
    write_blocks(tmp.path(), 1, /*close=*/false);
    auto open2 = segment_reader::open(tmp.path() + "/events/w0-000002.seg");
    ASSERT_TRUE(open2.ok());
    EXPECT_FALSE((*open2)->peek_footer(f));
}

TEST(TableReader, ScansEventIdentities) {
    temp_dir tmp;
    auto model = write_blocks(tmp.path(), 4);
    std::vector<identity_row> got;
    auto s = scan_event_identities(tmp.path(), 1000, 2999, [&](std::span<const identity_row> rows) {
        got.insert(got.end(), rows.begin(), rows.end());
    });
    ASSERT_TRUE(s.ok()) << s.err().message;
    ASSERT_EQ(got.size(), 200u);
    for (size_t i = 0; i < got.size(); ++i) {
        const row& r = model[100 + i];
        bool has_id = !std::holds_alternative<std::monostate>(r[events_col::event_id]);
        auto want = has_id ? identity_of_event_id(std::get<std::string>(r[events_col::event_id]))
                           : identity_of_bytes(std::get<std::string>(r[events_col::raw]));
        EXPECT_EQ(got[i].id, want) << i;
        EXPECT_EQ(got[i].event_time_ms, std::get<int64_t>(r[events_col::event_time_ms]));
    }
    // Both kinds of identity occur.
    EXPECT_NE(got[0].id, got[1].id);
}

TEST(TableReader, FilterRowsByTimeKeepsNullsAligned) {
    auto schema = events_schema();
    column_batch b(schema, 9, 4096, 256);
    for (int i = 0; i < 9; ++i) push_row(b, event_row(uint64_t(i), i));
    filter_rows_by_time(b, events_col::event_time_ms, 2, 6);
    ASSERT_EQ(b.rows(), 5u);
    for (uint32_t r = 0; r < 5; ++r) EXPECT_EQ(row_at(b, r), event_row(r + 2, r + 2));
}

TEST(TableReader, FilterRowsByTimeKeepsStringsAligned) {
    auto schema = dead_letters_schema();
    column_batch b(schema, 8, 1024, 64);
    for (int i = 0; i < 8; ++i)
        push_row(b, {int64_t(i), std::string(size_t(i), char('a' + i)), uint64_t(i),
                     std::string("raw") + std::to_string(i)});
    filter_rows_by_time(b, 0, 3, 5);
    ASSERT_EQ(b.rows(), 3u);
    for (uint32_t r = 0; r < 3; ++r) {
        EXPECT_EQ(b.i64_at(0, r), int64_t(r + 3));
        EXPECT_EQ(b.string_at(1, r), std::string(r + 3, char('a' + r + 3)));
        EXPECT_EQ(b.string_at(3, r), "raw" + std::to_string(r + 3));
    }
}

TEST(TableSchema, ColumnIndexFindsByNameElseMinusOne) {
    const table_schema s = events_schema();
    EXPECT_EQ(s.column_index("event_time_ms"), events_col::event_time_ms);
    EXPECT_EQ(s.column_index("raw"), events_col::raw);
    EXPECT_EQ(s.column_index("max_time_ms"), events_col::max_time_ms);
    EXPECT_EQ(s.column_index("no_such_column"), -1);
    EXPECT_EQ(s.column_index(""), -1);
    EXPECT_EQ(table_schema{}.column_index("raw"), -1);
}

} // namespace
} // namespace sluice::storage
