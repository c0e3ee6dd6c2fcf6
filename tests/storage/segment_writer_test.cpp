#include "storage/segment_writer.h"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "base/clock.h"
#include "storage/fault_injection.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"
#include "storage/table_reader.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;

writer_config small_config(const std::string& dir, bool direct = true) {
    writer_config c;
    c.data_dir = dir;
    c.writer_name = "w0";
    c.rows_per_block = 256;
    c.string_bytes_max = 256 << 10;
    c.row_string_bytes_max = 4096;
    c.options.direct_io = direct;
    return c;
}

std::vector<row> read_table(const std::string& dir, const std::string& table,
                            scan_summary* summary = nullptr) {
    std::vector<row> rows;
    auto r = scan_table(dir, table, INT64_MIN, INT64_MAX,
                        [&](const column_batch& b) { append_rows(b, rows); });
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    if (summary && r.ok()) *summary = *r;
    return rows;
}

void append(segment_writer& w, const row& r) {
    push_row(w.batch(), r);
    w.commit_row();
}

class SegmentWriterIo : public ::testing::TestWithParam<bool> {};

TEST_P(SegmentWriterIo, WritesBlocksAndReadsThemBack) {
    const bool direct = GetParam();
    temp_dir tmp;
    auto schema = events_schema();
    auto w = segment_writer::open(small_config(tmp.path(), direct), schema);
    ASSERT_TRUE(w.ok()) << w.err().message;
    if (direct && !(*w)->direct_io()) GTEST_SKIP() << tmp.path() << " does not take O_DIRECT";
    EXPECT_EQ((*w)->direct_io(), direct);
    std::vector<row> model;
    for (uint64_t i = 0; i < 1000; ++i) {
        model.push_back(event_row(i, 1700000000000 + int64_t(i) * 10));
        append(**w, model.back());
    }
    ASSERT_TRUE((*w)->close().ok());
    EXPECT_EQ((*w)->rows_durable(), 1000u);
    EXPECT_EQ((*w)->durable_max_time_ms(), 1700000000000 + 9990);
    EXPECT_FALSE((*w)->failed());

    const std::string path = tmp.path() + "/events/w0-000001.seg";
    ASSERT_TRUE(std::filesystem::exists(path));
    EXPECT_EQ((*w)->bytes_written() + 2 * 4096, std::filesystem::file_size(path));
    auto rd = segment_reader::open(path);
    ASSERT_TRUE(rd.ok()) << rd.err().message;
    EXPECT_EQ((*rd)->meta().writer_name, "w0");
    EXPECT_EQ((*rd)->meta().seq, 1u);
    column_batch b((*rd)->schema(), 1, 0, 0);
    std::vector<row> got;
    int blocks = 0;
    while ((*rd)->next_block()) {
        ASSERT_TRUE((*rd)->read_block(b).ok());
        append_rows(b, got);
        ++blocks;
    }
    EXPECT_EQ((*rd)->end(), segment_reader::end_state::footer) << (*rd)->damage();
    EXPECT_EQ(blocks, 4); // 256 + 256 + 256 + 232
    EXPECT_EQ((*rd)->footer().rows, 1000u);
    EXPECT_EQ(got, model);
}

INSTANTIATE_TEST_SUITE_P(DirectAndBuffered, SegmentWriterIo, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "direct" : "buffered"; });

TEST(SegmentWriter, RotatesToNewSegments) {
    temp_dir tmp;
    auto schema = events_schema();
    auto cfg = small_config(tmp.path());
    cfg.rows_per_block = 64;
    cfg.options.segment_bytes_max = 64 << 10;
    cfg.write_buffers = 4;
    auto w = segment_writer::open(cfg, schema);
    ASSERT_TRUE(w.ok()) << w.err().message;
    std::vector<row> model;
    for (uint64_t i = 0; i < 5000; ++i) {
        model.push_back(event_row(i, int64_t(i)));
        append(**w, model.back());
    }
    ASSERT_TRUE((*w)->close().ok());
    EXPECT_EQ((*w)->rows_durable(), 5000u);
    auto files = list_segments(tmp.path() + "/events");
    ASSERT_TRUE(files.ok());
    EXPECT_GT(files->size(), 2u);
    EXPECT_EQ((*w)->segments_opened(), files->size());
    for (size_t i = 0; i < files->size(); ++i) {
        EXPECT_EQ((*files)[i].seq, i + 1);
        EXPECT_LE(std::filesystem::file_size((*files)[i].path), cfg.options.segment_bytes_max);
        auto rd = segment_reader::open((*files)[i].path);
        ASSERT_TRUE(rd.ok());
        while ((*rd)->next_block()) {
        }
        EXPECT_EQ((*rd)->end(), segment_reader::end_state::footer) << (*rd)->damage();
    }
    EXPECT_EQ(read_table(tmp.path(), "events"), model);
}

TEST(SegmentWriter, GroupCommitsByTimerFromPoll) {
    temp_dir tmp;
    auto schema = dead_letters_schema();
    auto cfg = small_config(tmp.path());
    cfg.options.flush_interval_ms = 50;
    auto w = segment_writer::open(cfg, schema);
    ASSERT_TRUE(w.ok()) << w.err().message;
    for (int i = 0; i < 10; ++i)
        append(**w, {int64_t(100 + i), std::string("parse_error"), uint64_t(3), std::string("x,y")});
    const int64_t t0 = 1'000'000'000;
    (*w)->poll(t0);
    (*w)->poll(t0 + 49'000'000); // younger than the interval: nothing sealed yet
    EXPECT_EQ((*w)->bytes_written(), 0u);
    EXPECT_EQ((*w)->rows_durable(), 0u);
    (*w)->poll(t0 + 50'000'000);
    // The write and the fdatasync complete asynchronously; poll reaps them.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((*w)->rows_durable() < 10 && std::chrono::steady_clock::now() < deadline) {
        (*w)->poll(t0 + 60'000'000);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ((*w)->rows_durable(), 10u);
    EXPECT_EQ((*w)->durable_max_time_ms(), 109);
    EXPECT_EQ((*w)->bytes_written(), 4096u);

    // Durable before close: a reader sees the block now, and the file has no footer yet.
    auto rd = segment_reader::open((*w)->segment_path());
    ASSERT_TRUE(rd.ok());
    ASSERT_TRUE((*rd)->next_block());
    EXPECT_EQ((*rd)->block().rows, 10u);
    EXPECT_FALSE((*rd)->next_block());
    EXPECT_EQ((*rd)->end(), segment_reader::end_state::eof);
    ASSERT_TRUE((*w)->close().ok());
}

TEST(SegmentWriter, GroupCommitsBySyncBytes) {
    temp_dir tmp;
    auto schema = events_schema();
    auto cfg = small_config(tmp.path());
    cfg.options.flush_interval_ms = 1'000'000; // the timer never fires here
    cfg.options.sync_bytes = 1;
    auto w = segment_writer::open(cfg, schema);
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 256 + 5; ++i) append(**w, event_row(i, int64_t(i)));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((*w)->rows_durable() < 256 && std::chrono::steady_clock::now() < deadline) {
        (*w)->poll(0);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ((*w)->rows_durable(), 256u); // the full block; the 5 in the batch wait
    ASSERT_TRUE((*w)->flush_and_sync().ok());
    EXPECT_EQ((*w)->rows_durable(), 261u);
    ASSERT_TRUE((*w)->close().ok());
}

// commit_now (Kafka acks=all waiting): seals the partial block and syncs it at once; with
// a sync in flight (not yet reaped by poll) it does nothing, so the rows appended meanwhile
// share the next sync instead of making a block and a sync of their own.
TEST(SegmentWriter, CommitNowSyncsAtOnceAndOneSyncAtATime) {
    temp_dir tmp;
    auto schema = events_schema();
    auto cfg = small_config(tmp.path());
    cfg.options.flush_interval_ms = 1'000'000; // the timer never fires here
    auto w = segment_writer::open(cfg, schema);
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 10; ++i) append(**w, event_row(i, int64_t(i)));
    (*w)->commit_now();
    for (uint64_t i = 10; i < 15; ++i) append(**w, event_row(i, int64_t(i)));
    (*w)->commit_now(); // the first sync is in flight (no poll reaped it): nothing sealed
    auto wait_durable = [&](uint64_t rows) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while ((*w)->rows_durable() < rows && std::chrono::steady_clock::now() < deadline) {
            (*w)->poll(0);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    };
    wait_durable(10);
    EXPECT_EQ((*w)->rows_durable(), 10u);
    EXPECT_EQ((*w)->syncs(), 1u);
    EXPECT_EQ((*w)->bytes_written(), 4096u); // one block: the 5 later rows wait in the batch
    (*w)->commit_now();
    wait_durable(15);
    EXPECT_EQ((*w)->rows_durable(), 15u);
    EXPECT_EQ((*w)->syncs(), 2u);
    (*w)->commit_now(); // nothing new: no block, no sync
    for (int i = 0; i < 5; ++i) (*w)->poll(0);
    EXPECT_EQ((*w)->syncs(), 2u);
    EXPECT_EQ((*w)->bytes_written(), 2 * 4096u);
    ASSERT_TRUE((*w)->close().ok());
    EXPECT_EQ(read_table(tmp.path(), "events").size(), 15u);
}

TEST(SegmentWriter, NewWriterStartsANewSegmentAndLeavesNoEmptyFiles) {
    temp_dir tmp;
    auto schema = events_schema();
    for (int run = 0; run < 2; ++run) {
        auto w = segment_writer::open(small_config(tmp.path()), schema);
        ASSERT_TRUE(w.ok());
        append(**w, event_row(run, run));
        ASSERT_TRUE((*w)->close().ok());
    }
    {
        auto empty = segment_writer::open(small_config(tmp.path()), schema);
        ASSERT_TRUE(empty.ok());
        ASSERT_TRUE((*empty)->close().ok());
    }
    auto files = list_segments(tmp.path() + "/events");
    ASSERT_TRUE(files.ok());
    ASSERT_EQ(files->size(), 2u);
    EXPECT_EQ((*files)[0].seq, 1u);
    EXPECT_EQ((*files)[1].seq, 2u);
    EXPECT_EQ(read_table(tmp.path(), "events").size(), 2u);
}

TEST(SegmentWriter, CountersAreReadableFromAnotherThread) {
    temp_dir tmp;
    auto schema = events_schema();
    auto cfg = small_config(tmp.path());
    cfg.options.flush_interval_ms = 1;
    auto w = segment_writer::open(cfg, schema);
    ASSERT_TRUE(w.ok());
    std::atomic<bool> stop{false};
    uint64_t last = 0;
    bool monotonic = true;
    std::thread reader([&] {
        while (!stop.load()) {
            uint64_t v = (*w)->rows_durable();
            monotonic &= v >= last;
            last = v;
        }
    });
    for (uint64_t i = 0; i < 3000; ++i) {
        append(**w, event_row(i, int64_t(i)));
        (*w)->poll(monotonic_ns());
    }
    ASSERT_TRUE((*w)->close().ok());
    stop = true;
    reader.join();
    EXPECT_TRUE(monotonic);
    EXPECT_EQ((*w)->rows_durable(), 3000u);
}

TEST(SegmentWriter, IoErrorPutsWriterInFailedStateWithoutAborting) {
    temp_dir tmp;
    auto schema = events_schema();
    // Files may not grow past 64 KiB: writes beyond fail with EFBIG (SIGXFSZ ignored).
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit old_limit;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    auto w = segment_writer::open(small_config(tmp.path()), schema);
    ASSERT_TRUE(w.ok());
    rlimit small = old_limit;
    small.rlim_cur = 64 << 10;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    for (uint64_t i = 0; i < 20000; ++i) {
        append(**w, event_row(i, int64_t(i)));
        (*w)->poll(0);
    }
    auto r = (*w)->close();
    setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE((*w)->failed());
    EXPECT_EQ((*w)->failure().code, errc::io_error);
    EXPECT_NE((*w)->failure().message.find("File too large"), std::string::npos)
        << (*w)->failure().message;
    EXPECT_GT((*w)->rows_dropped(), 0u);
    EXPECT_LT((*w)->rows_durable(), 20000u);
}

TEST(SegmentWriterDiskFull, StallsWithoutLossAndResumesWhenSpaceReturns) {
    // Room, once the filler is gone, for the worst case of the timing: every 5 ms group
    // commit seals a block, one 4 KiB page at least (O_DIRECT), so a slow appender (a
    // ThreadSanitizer build on a loaded machine) writes up to one block per row: 3,000
    // pages, 11.7 MiB. In 1 MiB such a run filled the disk with its own 255 blocks and
    // stalled until the test's timeout.
    tmpfs_mount disk("16m");
    if (!disk.ok()) GTEST_SKIP() << "cannot mount a tmpfs (" << disk.error() << "; needs root)";
    auto schema = events_schema();
    auto cfg = small_config(disk.path());
    cfg.options.flush_interval_ms = 5;
    auto w = segment_writer::open(cfg, schema);
    ASSERT_TRUE(w.ok()) << w.err().message;
    fill_disk(disk.path(), "filler", 16 << 10);

    // Another thread gives the space back once the writer has stalled for a while; the
    // appending thread meanwhile blocks in commit_row/poll (back-pressure).
    std::atomic<bool> freed{false};
    std::thread janitor([&] {
        while (!(*w)->stalled()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        EXPECT_EQ((*w)->rows_dropped(), 0u);
        EXPECT_FALSE((*w)->failed());
        std::filesystem::remove(disk.path() + "/filler");
        freed = true;
    });
    std::vector<row> model;
    for (uint64_t i = 0; i < 3000; ++i) {
        model.push_back(event_row(i, int64_t(i)));
        append(**w, model.back());
        (*w)->poll(monotonic_ns());
    }
    janitor.join();
    EXPECT_TRUE(freed);
    ASSERT_TRUE((*w)->close().ok()) << (*w)->failure().message;
    EXPECT_FALSE((*w)->stalled());
    EXPECT_GE((*w)->disk_full_stalls(), 1u);
    EXPECT_EQ((*w)->rows_dropped(), 0u);
    EXPECT_EQ((*w)->rows_durable(), model.size());
    scan_summary sum;
    EXPECT_EQ(read_table(disk.path(), "events", &sum), model);
    EXPECT_EQ(sum.damaged_segments, 0u);
}

TEST(SegmentWriterDiskFull, StoppingWriterGivesUpWithAClearError) {
    tmpfs_mount disk("1m");
    if (!disk.ok()) GTEST_SKIP() << "cannot mount a tmpfs (" << disk.error() << "; needs root)";
    auto schema = events_schema();
    auto cfg = small_config(disk.path());
    std::atomic<bool> stop{true};
    cfg.stop_flag = &stop;
    cfg.disk_full_stop_wait_ms = 200;
    auto w = segment_writer::open(cfg, schema);
    ASSERT_TRUE(w.ok()) << w.err().message;
    fill_disk(disk.path(), "filler", 0);
    for (uint64_t i = 0; i < 600; ++i) append(**w, event_row(i, int64_t(i)));
    auto r = (*w)->close();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::no_space);
    EXPECT_NE(r.err().message.find("disk full"), std::string::npos) << r.err().message;
    EXPECT_GT((*w)->rows_dropped(), 0u);
}

TEST(SegmentWriter, RejectsBadConfig) {
    temp_dir tmp;
    auto schema = events_schema();
    auto cfg = small_config(tmp.path());
    cfg.write_buffers = 1;
    EXPECT_EQ(segment_writer::open(cfg, schema).err().code, errc::bad_config);
    cfg = small_config(tmp.path());
    cfg.writer_name = "a/b";
    EXPECT_EQ(segment_writer::open(cfg, schema).err().code, errc::bad_config);
    cfg = small_config("/proc/no-such-dir");
    EXPECT_FALSE(segment_writer::open(cfg, schema).ok());
}

// ---- rotation off the owner's path (issue 14) ----

namespace rot {

// Small blocks and segments of a few blocks; group commit only when asked (no poll-driven
// syncs unless the test polls past the interval), so that the fdatasyncs a test counts
// are the rotation's.
writer_config config(const std::string& dir) {
    auto c = small_config(dir);
    c.rows_per_block = 64;
    c.options.segment_bytes_max = 64 << 10;
    c.options.sync_bytes = uint64_t(1) << 40;
    c.options.flush_interval_ms = 60 * 1000;
    c.write_buffers = 4;
    c.disk_full_retry_ms = 1;
    return c;
}

// Appends rows (time = index) until a rotation starts; returns how many were appended.
uint64_t append_until_rotation(segment_writer& w, std::vector<row>& model) {
    for (uint64_t i = model.size(); i < 100000; ++i) {
        model.push_back(event_row(i, int64_t(i)));
        append(w, model.back());
        if (w.rotation_in_progress()) return model.size();
    }
    return model.size();
}

// Polls with the real clock until `done` or the deadline; true when done.
template <typename Fn>
bool poll_until(segment_writer& w, Fn done, int64_t timeout_ms = 20000) {
    const int64_t deadline = monotonic_ns() + timeout_ms * 1000000;
    while (!done()) {
        if (monotonic_ns() > deadline) return false;
        w.poll(monotonic_ns());
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
}

// Every segment of the table ends with a footer and reads back whole; returns the
// footers' row total.
uint64_t check_segments(const std::string& dir, uint64_t* count = nullptr) {
    auto files = list_segments(dir + "/events");
    EXPECT_TRUE(files.ok());
    if (!files.ok()) return 0;
    uint64_t rows = 0;
    for (size_t i = 0; i < files->size(); ++i) {
        EXPECT_EQ((*files)[i].seq, i + 1);
        auto rd = segment_reader::open((*files)[i].path);
        EXPECT_TRUE(rd.ok()) << (*files)[i].path;
        if (!rd.ok()) continue;
        while ((*rd)->next_block()) {
        }
        EXPECT_EQ((*rd)->end(), segment_reader::end_state::footer)
            << (*files)[i].path << ": " << (*rd)->damage();
        rows += (*rd)->footer().rows;
    }
    if (count) *count = files->size();
    return rows;
}

} // namespace rot

TEST(SegmentWriterRotation, SlowSyncsDoNotBlockAppendsAndDurabilityWaitsForTheOldSync) {
    temp_dir tmp;
    auto cfg = rot::config(tmp.path());
    auto w = segment_writer::open(cfg, events_schema());
    ASSERT_TRUE(w.ok()) << w.err().message;
    // From here every fdatasync's completion is held back 1 s: the rotation's footer sync
    // first (no group commit is due), then the new segment's and the directory's.
    fault::plan p;
    p.at = 1;
    p.what = fault::kind::delay;
    p.delay_ms = 1000;
    p.persistent = true;
    p.only = fault::op::fsync;
    fault::arm(p);
    std::vector<row> model;
    const uint64_t at_rotation = rot::append_until_rotation(**w, model);
    ASSERT_TRUE((*w)->rotation_in_progress());
    // The commit_row that started the rotation returned before the old segment's sync
    // completed (inline, it returned only after it: rows_durable() was the old rows).
    EXPECT_EQ((*w)->rows_durable(), 0u);
    EXPECT_EQ((*w)->segments_opened(), 1u);
    // Rows keep being accepted while the rotation is in flight: two more blocks, into
    // the free slots, and polls return.
    for (int i = 0; i < 2 * 64; ++i) {
        model.push_back(event_row(model.size(), int64_t(model.size())));
        append(**w, model.back());
        (*w)->poll(monotonic_ns());
    }
    EXPECT_TRUE((*w)->rotation_in_progress());
    EXPECT_EQ((*w)->rows_durable(), 0u) << "durable before the old segment's sync completed";
    EXPECT_FALSE((*w)->failed());
    // Once the footer's sync completes, exactly the old segment's rows are durable (the
    // new segment's wait for its own sync).
    ASSERT_TRUE(rot::poll_until(**w, [&] { return (*w)->rows_durable() > 0; }));
    const uint64_t first_segment_rows = (*w)->rows_durable();
    EXPECT_EQ(first_segment_rows, at_rotation - 64); // all but the block that rotated
    EXPECT_EQ((*w)->durable_max_time_ms(), int64_t(first_segment_rows) - 1);
    EXPECT_EQ((*w)->row_offset_durable_end(), first_segment_rows);
    // close() waits for the rotation still in flight, then makes everything durable.
    ASSERT_TRUE((*w)->close().ok()) << (*w)->failure().message;
    fault::disarm();
    EXPECT_FALSE((*w)->rotation_in_progress());
    EXPECT_EQ((*w)->rows_durable(), model.size());
    EXPECT_EQ((*w)->rows_dropped(), 0u);
    EXPECT_EQ((*w)->segments_opened(), 2u);
    uint64_t segments = 0;
    EXPECT_EQ(rot::check_segments(tmp.path(), &segments), model.size());
    EXPECT_EQ(segments, 2u);
    EXPECT_EQ(read_table(tmp.path(), "events"), model);
}

TEST(SegmentWriterRotation, DurabilityExactAcrossManyRotations) {
    temp_dir tmp;
    auto cfg = rot::config(tmp.path());
    cfg.options.segment_bytes_max = 24 << 10; // a few blocks a segment
    cfg.options.flush_interval_ms = 1;
    auto w = segment_writer::open(cfg, events_schema());
    ASSERT_TRUE(w.ok()) << w.err().message;
    std::vector<row> model;
    uint64_t last_durable = 0;
    bool seen_rotation = false;
    for (uint64_t i = 0; i < 20000; ++i) {
        model.push_back(event_row(i, int64_t(i)));
        append(**w, model.back());
        if (i % 7 == 0) (*w)->poll(monotonic_ns());
        if (i % 1000 == 999) (*w)->commit_now();
        seen_rotation |= (*w)->rotation_in_progress();
        // Durable is always a whole prefix of what was appended: the rows, the offset
        // and the newest time agree (time = index).
        const uint64_t d = (*w)->rows_durable();
        ASSERT_GE(d, last_durable);
        ASSERT_LE(d, model.size());
        ASSERT_EQ((*w)->row_offset_durable_end(), d);
        if (d > 0) {
            ASSERT_EQ((*w)->durable_max_time_ms(), int64_t(d) - 1);
        }
        last_durable = d;
    }
    EXPECT_TRUE(seen_rotation);
    ASSERT_TRUE((*w)->close().ok()) << (*w)->failure().message;
    EXPECT_EQ((*w)->rows_durable(), model.size());
    EXPECT_EQ((*w)->durable_max_time_ms(), int64_t(model.size()) - 1);
    EXPECT_EQ((*w)->rows_dropped(), 0u);
    uint64_t segments = 0;
    EXPECT_EQ(rot::check_segments(tmp.path(), &segments), model.size());
    EXPECT_GT(segments, 50u);
    EXPECT_EQ((*w)->segments_opened(), segments);
    EXPECT_EQ(read_table(tmp.path(), "events"), model);
}

// ENOSPC at the rotation's open (creating the next file) or at its fdatasync (the old
// footer's): the rotation parks, is retried every disk_full_retry_ms and resumes.
class SegmentWriterRotationFull : public ::testing::TestWithParam<fault::op> {};

TEST_P(SegmentWriterRotationFull, ParksAndResumes) {
    temp_dir tmp;
    auto cfg = rot::config(tmp.path());
    auto w = segment_writer::open(cfg, events_schema());
    ASSERT_TRUE(w.ok()) << w.err().message;
    // The first call of the op after arming fails: the old footer's sync, or the new
    // file's open (no group commit is due, and the directory was opened at start).
    fault::arm({1, fault::kind::error, ENOSPC, 5, false, GetParam()});
    std::vector<row> model;
    rot::append_until_rotation(**w, model);
    ASSERT_TRUE((*w)->rotation_in_progress());
    EXPECT_TRUE(rot::poll_until(**w, [&] { return (*w)->stalled(); }));
    EXPECT_EQ((*w)->disk_full_stalls(), 1u);
    EXPECT_NE((*w)->next_deadline_ns(monotonic_ns()), INT64_MAX) << "a parked retry is timed";
    EXPECT_TRUE(rot::poll_until(**w, [&] { return !(*w)->rotation_in_progress(); }));
    EXPECT_FALSE((*w)->stalled());
    EXPECT_FALSE((*w)->failed());
    EXPECT_EQ(fault::injected(), 1u);
    fault::disarm();
    for (int i = 0; i < 100; ++i) {
        model.push_back(event_row(model.size(), int64_t(model.size())));
        append(**w, model.back());
    }
    ASSERT_TRUE((*w)->close().ok()) << (*w)->failure().message;
    EXPECT_EQ((*w)->rows_durable(), model.size());
    EXPECT_EQ((*w)->rows_dropped(), 0u);
    EXPECT_EQ(rot::check_segments(tmp.path()), model.size());
    EXPECT_EQ(read_table(tmp.path(), "events"), model);
}

INSTANTIATE_TEST_SUITE_P(OpenAndSync, SegmentWriterRotationFull,
                         ::testing::Values(fault::op::open, fault::op::fsync),
                         [](const auto& info) { return fault::op_name(info.param); });

TEST(SegmentWriterRotation, IoErrorCreatingTheNextSegmentFailsCleanly) {
    temp_dir tmp;
    auto cfg = rot::config(tmp.path());
    auto w = segment_writer::open(cfg, events_schema());
    ASSERT_TRUE(w.ok()) << w.err().message;
    fault::arm({1, fault::kind::error, EIO, 5, false, fault::op::open});
    std::vector<row> model;
    rot::append_until_rotation(**w, model);
    ASSERT_TRUE(rot::poll_until(**w, [&] { return (*w)->failed(); }));
    fault::disarm();
    EXPECT_EQ((*w)->failure().code, errc::io_error);
    EXPECT_NE((*w)->failure().message.find("cannot create"), std::string::npos)
        << (*w)->failure().message;
    EXPECT_NE((*w)->failure().message.find("w0-000002.seg"), std::string::npos);
    // The old segment was finished (footer synced) before the open: its rows are durable;
    // the block waiting for the new segment is dropped and counted, and so are later rows.
    const uint64_t durable = (*w)->rows_durable();
    EXPECT_GT(durable, 0u);
    EXPECT_EQ(durable + (*w)->rows_dropped(), model.size());
    for (int i = 0; i < 10; ++i) append(**w, event_row(model.size() + i, 0));
    EXPECT_FALSE((*w)->close().ok());
    EXPECT_EQ(durable + (*w)->rows_dropped(), model.size() + 10);
    uint64_t segments = 0;
    EXPECT_EQ(rot::check_segments(tmp.path(), &segments), durable);
    EXPECT_EQ(segments, 1u) << "no header-less file left behind";
}

TEST(SegmentWriterRotation, EveryStepWakesAnIdleOwner) {
    // An owner that blocks while idle (worker_lcore::wait_idle) sleeps on the
    // wake_on_completion eventfd until next_deadline_ns(): a rotation must always leave it
    // something that wakes it — an operation in flight (its completion writes the eventfd)
    // or a deadline — and each step's completion must write the eventfd.
    temp_dir tmp;
    auto cfg = rot::config(tmp.path());
    auto w = segment_writer::open(cfg, events_schema());
    ASSERT_TRUE(w.ok()) << w.err().message;
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(efd, 0);
    if (!(*w)->wake_on_completion(efd)) {
        ::close(efd);
        GTEST_SKIP() << "io_uring_register_eventfd refused";
    }
    std::vector<row> model;
    rot::append_until_rotation(**w, model);
    ASSERT_TRUE((*w)->rotation_in_progress());
    int wakes = 0;
    while ((*w)->rotation_in_progress()) {
        ASSERT_FALSE((*w)->failed()) << (*w)->failure().message;
        const int64_t now = monotonic_ns();
        const int64_t deadline = (*w)->next_deadline_ns(now);
        ASSERT_TRUE((*w)->io_in_flight() || deadline != INT64_MAX)
            << "a rotation in flight with nothing to wake the owner";
        if ((*w)->io_in_flight()) {
            pollfd p{efd, POLLIN, 0};
            const int64_t wait_ms =
                deadline == INT64_MAX ? 20000 : std::max<int64_t>(0, (deadline - now) / 1000000 + 1);
            const int rc = ::poll(&p, 1, int(std::min<int64_t>(wait_ms, 20000)));
            ASSERT_TRUE(rc > 0 || deadline != INT64_MAX) << "no wake within 20 s";
            uint64_t n;
            if (rc > 0 && ::read(efd, &n, sizeof n) == sizeof n) ++wakes;
        }
        (*w)->poll(monotonic_ns());
    }
    EXPECT_GE(wakes, 2); // footer's sync, the open, the header's syncs: at least two waits
    ::close(efd);
    ASSERT_TRUE((*w)->close().ok()) << (*w)->failure().message;
    EXPECT_EQ((*w)->rows_durable(), model.size());
}

} // namespace
} // namespace sluice::storage
