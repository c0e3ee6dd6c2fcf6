#include "storage/recovery.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "base/clock.h"

#include "storage/segment_files.h"
#include "storage/segment_reader.h"
#include "storage/segment_writer.h"
#include "storage/table_reader.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;
namespace fs = std::filesystem;

std::vector<row> write_blocks(const std::string& dir, int blocks, bool close) {
    auto schema = events_schema();
    writer_config cfg;
    cfg.data_dir = dir;
    cfg.writer_name = "w0";
    cfg.rows_per_block = 50;
    cfg.string_bytes_max = 64 << 10;
    cfg.row_string_bytes_max = 1024;
    auto w = segment_writer::open(cfg, schema);
    EXPECT_TRUE(w.ok());
    std::vector<row> model;
    for (int i = 0; i < blocks * 50; ++i) {
        model.push_back(event_row(uint64_t(i), i));
        push_row((*w)->batch(), model.back());
        (*w)->commit_row();
    }
    EXPECT_TRUE(close ? (*w)->close().ok() : (*w)->flush_and_sync().ok());
    return model; // without close the writer just goes away, as in a crash
}

std::vector<uint64_t> block_offsets(const std::string& path) {
    auto rd = segment_reader::open(path);
    EXPECT_TRUE(rd.ok());
    std::vector<uint64_t> out;
    while ((*rd)->next_block()) out.push_back((*rd)->block_offset());
    return out;
}

std::vector<row> read_all(const std::string& dir) {
    std::vector<row> rows;
    auto r = scan_table(dir, "events", INT64_MIN, INT64_MAX,
                        [&](const column_batch& b) { append_rows(b, rows); });
    EXPECT_TRUE(r.ok());
    if (r.ok()) {
        EXPECT_EQ(r->damaged_segments, 0u);
    }
    return rows;
}

void write_at(const std::string& path, uint64_t offset, const std::string& bytes) {
    int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), off_t(offset)), ssize_t(bytes.size()));
    ::close(fd);
}

TEST(Recovery, TruncatesATornTail) {
    temp_dir tmp;
    auto model = write_blocks(tmp.path(), 3, /*close=*/false);
    const std::string path = tmp.path() + "/events/w0-000001.seg";
    auto offsets = block_offsets(path);
    ASSERT_EQ(offsets.size(), 3u);
    // The crash left the third block half written.
    fs::resize_file(path, offsets[2] + 2000);

    auto rep = recover_table_dir(tmp.path() + "/events");
    ASSERT_TRUE(rep.ok()) << rep.err().message;
    EXPECT_EQ(rep->segments, 1u);
    EXPECT_EQ(rep->truncated, 1u);
    EXPECT_EQ(rep->rows, 100u);
    EXPECT_EQ(rep->max_time_ms, 99);
    ASSERT_EQ(rep->segments_detail.size(), 1u);
    EXPECT_EQ(rep->segments_detail[0].bytes_truncated, 2000u);
    EXPECT_EQ(fs::file_size(path), offsets[2]);
    EXPECT_EQ(read_all(tmp.path()), std::vector<row>(model.begin(), model.begin() + 100));

    // Idempotent: a second pass finds a whole, unclosed segment.
    auto again = recover_table_dir(tmp.path() + "/events");
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->unclosed, 1u);
    EXPECT_EQ(again->truncated, 0u);
}

TEST(Recovery, BlockMissingBeforeInFlightBlocksIsATornTail) {
    // Writes complete out of order: block 1 never reached the disk, block 2 did. Neither
    // was reported durable, so cutting at block 1 loses nothing promised.
    temp_dir tmp;
    auto model = write_blocks(tmp.path(), 3, false);
    const std::string path = tmp.path() + "/events/w0-000001.seg";
    auto offsets = block_offsets(path);
    write_at(path, offsets[1], std::string(4096, '\0'));
    auto rep = recover_table_dir(tmp.path() + "/events");
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->truncated, 1u);
    EXPECT_EQ(fs::file_size(path), offsets[1]);
    EXPECT_EQ(read_all(tmp.path()), std::vector<row>(model.begin(), model.begin() + 50));
}

TEST(Recovery, MovesACorruptSegmentAside) {
    temp_dir tmp;
    write_blocks(tmp.path(), 3, /*close=*/true);
    const std::string path = tmp.path() + "/events/w0-000001.seg";
    auto offsets = block_offsets(path);
    write_at(path, offsets[0] + format::block_header_bytes + 10, "\x7f\x7f");

    auto rep = recover_table_dir(tmp.path() + "/events");
    ASSERT_TRUE(rep.ok()) << rep.err().message;
    EXPECT_EQ(rep->moved_aside, 1u);
    EXPECT_EQ(rep->rows, 0u);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::exists(path + ".corrupt"));
    EXPECT_NE(rep->segments_detail[0].reason.find("checksum"), std::string::npos);
    EXPECT_TRUE(read_all(tmp.path()).empty());

    // A new writer never reuses the corrupt segment's number.
    auto next = next_segment_seq(tmp.path() + "/events", "w0");
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(*next, 2u);
}

TEST(Recovery, MovesASegmentWithABadFileHeaderAside) {
    temp_dir tmp;
    write_blocks(tmp.path(), 1, true);
    write_blocks(tmp.path(), 1, true);
    const std::string path = tmp.path() + "/events/w0-000001.seg";
    write_at(path, 40, "garbage");
    auto rep = recover_data_dir(tmp.path());
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->segments, 2u);
    EXPECT_EQ(rep->moved_aside, 1u);
    EXPECT_EQ(rep->clean, 1u);
    EXPECT_EQ(rep->rows, 50u);
    EXPECT_TRUE(fs::exists(path + ".corrupt"));
    EXPECT_EQ(read_all(tmp.path()).size(), 50u);
}

TEST(Recovery, RemovesASegmentItsWriterDiedCreating) {
    // A writer killed between creating a segment and its header reaching the file leaves
    // an empty file or a part of a header, never rows: removed, not reported as corrupt.
    temp_dir tmp;
    write_blocks(tmp.path(), 1, true);
    const std::string dir = tmp.path() + "/events";
    std::string header(format::file_header_bytes, '\0');
    {
        std::ifstream in(dir + "/w0-000001.seg", std::ios::binary);
        in.read(header.data(), std::streamsize(header.size()));
    }
    { std::ofstream(dir + "/w0-000002.seg", std::ios::binary); }
    {
        std::ofstream out(dir + "/w0-000003.seg", std::ios::binary);
        out.write(header.data(), 1000);
    }
    {
        // As long as a header, but damaged and with nothing after it: no rows either.
        std::string bad = header;
        bad[40] ^= 0x5a;
        std::ofstream out(dir + "/w0-000004.seg", std::ios::binary);
        out.write(bad.data(), std::streamsize(bad.size()));
    }
    auto rep = recover_table_dir(dir);
    ASSERT_TRUE(rep.ok()) << rep.err().message;
    EXPECT_EQ(rep->segments, 4u);
    EXPECT_EQ(rep->clean, 1u);
    EXPECT_EQ(rep->removed_unborn, 3u);
    EXPECT_EQ(rep->moved_aside, 0u);
    EXPECT_EQ(rep->rows, 50u);
    for (const char* name : {"w0-000002.seg", "w0-000003.seg", "w0-000004.seg"}) {
        EXPECT_FALSE(fs::exists(dir + "/" + name)) << name;
        EXPECT_FALSE(fs::exists(dir + "/" + name + ".corrupt")) << name;
    }
    EXPECT_EQ(read_all(tmp.path()).size(), 50u);
}

TEST(Recovery, CleanDirectoryIsUntouched) {
    temp_dir tmp;
    write_blocks(tmp.path(), 2, true);
    const std::string path = tmp.path() + "/events/w0-000001.seg";
    auto size = fs::file_size(path);
    auto rep = recover_data_dir(tmp.path());
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->clean, 1u);
    EXPECT_EQ(rep->rows, 100u);
    EXPECT_EQ(fs::file_size(path), size);
    auto missing = recover_table_dir(tmp.path() + "/nope");
    ASSERT_TRUE(missing.ok());
    EXPECT_EQ(missing->segments, 0u);
}

} // namespace
} // namespace sluice::storage

namespace sluice::storage {
namespace {

// The child of KilledWriterKeepsEveryRowReportedDurable: appends rows of run `run`
// forever, reporting rows_durable() through `fd` whenever it grows.
[[noreturn]] void append_until_killed(const std::string& dir, int run, int fd) {
    writer_config cfg;
    cfg.data_dir = dir;
    cfg.writer_name = "w0";
    cfg.rows_per_block = 128;
    cfg.string_bytes_max = 128 << 10;
    cfg.row_string_bytes_max = 1024;
    cfg.options.flush_interval_ms = 2;
    cfg.options.sync_bytes = 64 << 10;
    cfg.options.segment_bytes_max = 1 << 20; // rotations happen too
    auto schema = events_schema();
    auto w = segment_writer::open(cfg, schema);
    if (!w) _exit(2);
    uint64_t reported = 0;
    for (uint64_t i = 0;; ++i) {
        push_row((*w)->batch(), test::event_row(i, int64_t(run) * 1000000000 + int64_t(i)));
        (*w)->commit_row();
        (*w)->poll(monotonic_ns());
        uint64_t d = (*w)->rows_durable();
        if (d != reported) {
            reported = d;
            if (::write(fd, &d, sizeof d) != ssize_t(sizeof d)) _exit(3);
        }
        if ((*w)->failed()) _exit(4);
    }
}

// A writer killed (SIGKILL) at random moments, many times into the same directory:
// after recovery, every row it reported durable is there, in order, exactly once, and
// nothing damaged is served.
TEST(RecoveryCrash, KilledWriterKeepsEveryRowReportedDurable) {
    using namespace sluice::storage::test;
    temp_dir tmp;
    std::mt19937_64 rng(std::random_device{}());
    const int runs = 12;
    const int64_t run_span = 1000000000; // run k's rows have times k * span + i
    std::vector<uint64_t> durable(runs, 0);
    auto check_run = [&](int k) {
        std::vector<row> got;
        auto s = scan_table(tmp.path(), "events", k * run_span, (k + 1) * run_span - 1,
                            [&](const column_batch& b) { append_rows(b, got); });
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->damaged_segments, 0u);
        EXPECT_GE(got.size(), durable[size_t(k)]) << "run " << k << " lost durable rows";
        for (size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], event_row(i, k * run_span + int64_t(i)))
                << "run " << k << " row " << i << ": out of order, twice or altered";
    };
    for (int run = 0; run < runs; ++run) {
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            append_until_killed(tmp.path(), run, fds[1]);
        }
        ::close(fds[1]);
        auto read_reports = [&](int timeout_ms) {
            pollfd p{fds[0], POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return false;
            uint64_t d;
            if (::read(fds[0], &d, sizeof d) != ssize_t(sizeof d)) return false;
            durable[size_t(run)] = std::max(durable[size_t(run)], d);
            return true;
        };
        // Kill at a random moment once rows have started to become durable.
        // The first fdatasync can take seconds on a loaded machine: a deadline, not a count.
        const auto first_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (durable[size_t(run)] == 0 && std::chrono::steady_clock::now() < first_deadline)
            read_reports(50);
        ASSERT_GT(durable[size_t(run)], 0u) << "the writer made nothing durable in 120 s";
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(rng() % 250);
        while (std::chrono::steady_clock::now() < deadline) read_reports(2);
        ::kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the writer exited by itself: " << status;
        while (read_reports(0)) {
        } // what it reported before it died counts too
        ::close(fds[0]);

        auto rep = recover_table_dir(tmp.path() + "/events");
        ASSERT_TRUE(rep.ok()) << rep.err().message;
        std::string moved;
        for (const auto& d : rep->segments_detail)
            if (d.what == segment_recovery::action::moved_aside)
                moved += " " + d.path + " (" + d.reason + ")";
        EXPECT_EQ(rep->moved_aside, 0u) << "a crash only tears tails; moved aside:" << moved;
        check_run(run);
    }
    // Every run, again, after all the later crashes and recoveries.
    for (int k = 0; k < runs; ++k) check_run(k);
}

} // namespace
} // namespace sluice::storage
