// I/O faults injected at every call of a small ingest run (issue 15, item 2; SQLite's
// approach): a dry run counts the segment writer's I/O calls (open, unlink, io_uring
// submissions and completions of writes and fdatasyncs); then, for each fault kind, the
// run is repeated with call N failing, for every N. Each run must either finish
// correctly (the writer retried) or stop with a clear error (failed() and a message
// naming the file). After a "restart" (recover_table_dir, then a new writer) every row
// the writer reported durable is served exactly once, in order, nothing damaged is
// served, and the new writer appends after it.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "storage/atomic_file.h"
#include "storage/fault_injection.h"
#include "storage/recovery.h"
#include "storage/segment_writer.h"
#include "storage/table_reader.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;
namespace fs = std::filesystem;

constexpr uint64_t rows_per_run = 300;
constexpr int64_t run_span = 1000000000; // run k's rows have times k * span + i

std::string trial_base() { return fs::is_directory("/dev/shm") ? "/dev/shm" : "/var/tmp"; }

writer_config small_config(const std::string& dir) {
    writer_config cfg;
    cfg.data_dir = dir;
    cfg.writer_name = "w0";
    cfg.rows_per_block = 16;  // ~19 blocks a run
    cfg.string_bytes_max = 16 << 10;
    cfg.row_string_bytes_max = 1024;
    cfg.options.flush_interval_ms = 1;
    cfg.options.sync_bytes = 12 << 10;
    cfg.options.segment_bytes_max = 40 << 10; // rotations: open, header, footer, dir sync
    cfg.write_buffers = 3;
    cfg.disk_full_retry_ms = 1;
    cfg.disk_full_stop_wait_ms = 200;
    return cfg;
}

struct run_outcome {
    bool opened = false;
    bool failed = false;
    std::string error;
    uint64_t durable = 0; // the most rows_durable() reported
    uint64_t calls = 0;
    uint64_t injected = 0;
};

// One ingest run of `rows` rows of run `run`, with `plan` armed throughout.
run_outcome ingest(const std::string& dir, int run, uint64_t rows, const fault::plan& plan) {
    run_outcome out;
    fault::arm(plan);
    {
        auto w = segment_writer::open(small_config(dir), events_schema());
        if (!w) {
            out.failed = true;
            out.error = w.err().message;
        } else {
            out.opened = true;
            auto& wr = **w;
            // A synthetic clock: 0.2 ms a row, so group commits fall at the same rows in
            // every run and N walks the same sequence of calls.
            int64_t now = 1;
            for (uint64_t i = 0; i < rows && !wr.failed(); ++i) {
                push_row(wr.batch(), event_row(i, run * run_span + int64_t(i)));
                wr.commit_row();
                now += 200000;
                wr.poll(now);
                out.durable = std::max(out.durable, wr.rows_durable());
            }
            if (!wr.failed()) {
                auto r = wr.close();
                if (!r) out.error = r.err().message;
            }
            out.durable = std::max(out.durable, wr.rows_durable());
            if (wr.failed()) {
                out.failed = true;
                out.error = wr.failure().message;
            }
        }
    } // the writer's destructor waits for its in-flight I/O: still under the plan
    out.calls = fault::calls();
    out.injected = fault::injected();
    fault::disarm();
    return out;
}

// The rows of run `run` in the table, as served after recovery.
std::vector<row> run_rows(const std::string& dir, int run, uint64_t* damaged) {
    std::vector<row> got;
    auto s = scan_table(dir, "events", run * run_span, (run + 1) * run_span - 1,
                        [&](const column_batch& b) { append_rows(b, got); });
    EXPECT_TRUE(s.ok());
    if (s.ok()) *damaged = s->damaged_segments;
    return got;
}

struct walk_stats {
    uint64_t runs = 0, injected = 0, failed = 0, recovered_clean = 0;
};

// Runs the ingest with call n failing as `base` says, then restarts and checks.
void run_once(const fault::plan& plan, const std::string& what, walk_stats& st) {
    temp_dir tmp(trial_base());
    run_outcome o = ingest(tmp.path(), 0, rows_per_run, plan);
    ++st.runs;
    st.injected += o.injected;
    if (o.failed) {
        ++st.failed;
        // A clear error: says what failed, on which file, and why.
        EXPECT_FALSE(o.error.empty()) << what;
        EXPECT_NE(o.error.find(tmp.path()), std::string::npos) << what << ": " << o.error;
    } else {
        EXPECT_TRUE(o.error.empty()) << what << ": " << o.error;
        EXPECT_EQ(o.durable, rows_per_run) << what << ": a run that did not fail made all durable";
    }

    // Restart: recovery, then every durable row exactly once and in order.
    auto rep = recover_table_dir(tmp.path() + "/events");
    ASSERT_TRUE(rep.ok()) << what << ": recovery failed: " << rep.err().message;
    if (rep->truncated + rep->moved_aside + rep->removed_unborn == 0) ++st.recovered_clean;
    EXPECT_EQ(rep->moved_aside, 0u) << what << ": an I/O fault is not corruption in the middle";
    uint64_t damaged = 0;
    auto got = run_rows(tmp.path(), 0, &damaged);
    EXPECT_EQ(damaged, 0u) << what;
    ASSERT_GE(got.size(), o.durable) << what << ": rows reported durable were lost";
    ASSERT_LE(got.size(), rows_per_run) << what;
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], event_row(i, int64_t(i))) << what << ": row " << i
                                                    << " out of order, twice or altered";
    if (!o.failed) {
        EXPECT_EQ(got.size(), rows_per_run) << what;
    }

    // The next run (a restarted daemon's writer) opens and appends after it.
    run_outcome next = ingest(tmp.path(), 1, 40, {});
    ASSERT_FALSE(next.failed) << what << ": the writer after the restart failed: " << next.error;
    auto got1 = run_rows(tmp.path(), 1, &damaged);
    ASSERT_EQ(got1.size(), 40u) << what;
    EXPECT_EQ(run_rows(tmp.path(), 0, &damaged), got) << what << ": the restart changed run 0";
}

uint64_t count_calls(std::map<std::string, uint64_t>* by_op = nullptr) {
    temp_dir tmp(trial_base());
    run_outcome o = ingest(tmp.path(), 0, rows_per_run, {}); // at = 0: count only
    EXPECT_FALSE(o.failed) << o.error;
    EXPECT_EQ(o.durable, rows_per_run);
    fault::arm({});
    fault::disarm();
    if (by_op) {
        // Counted again, by op, from a second dry run.
        fault::arm({});
        {
            temp_dir t2(trial_base());
            auto w = segment_writer::open(small_config(t2.path()), events_schema());
            EXPECT_TRUE(w.ok());
            int64_t now = 1;
            for (uint64_t i = 0; i < rows_per_run; ++i) {
                push_row((*w)->batch(), event_row(i, int64_t(i)));
                (*w)->commit_row();
                now += 200000;
                (*w)->poll(now);
            }
            EXPECT_TRUE((*w)->close().ok());
        }
        for (auto op : {fault::op::open, fault::op::unlink, fault::op::submit, fault::op::write,
                        fault::op::fsync})
            (*by_op)[fault::op_name(op)] = fault::calls(op);
        fault::disarm();
    }
    return o.calls;
}

void walk(const fault::plan& base, const std::string& name) {
    const uint64_t calls = count_calls();
    ASSERT_GT(calls, 50u) << "the dry run made too few I/O calls to be a useful walk";
    walk_stats st;
    // A little past the dry run's count: completions may batch differently run to run.
    for (uint64_t n = 1; n <= calls + 8; ++n) {
        fault::plan p = base;
        p.at = n;
        run_once(p, name + " at call " + std::to_string(n), st);
        if (::testing::Test::HasFatalFailure()) return;
    }
    std::printf("[ faults ] %s: %llu runs over %llu I/O calls, %llu faults injected, %llu runs "
                "stopped with an error, %llu recoveries found nothing to repair\n",
                name.c_str(), (unsigned long long)st.runs, (unsigned long long)calls,
                (unsigned long long)st.injected, (unsigned long long)st.failed,
                (unsigned long long)st.recovered_clean);
    EXPECT_GT(st.injected, 0u);
}

TEST(FaultInjection, DryRunCountsEveryKindOfCall) {
    std::map<std::string, uint64_t> by_op;
    const uint64_t calls = count_calls(&by_op);
    std::printf("[ faults ] a %llu-row run makes %llu I/O calls:", (unsigned long long)rows_per_run,
                (unsigned long long)calls);
    for (const auto& [op, n] : by_op) std::printf(" %s %llu", op.c_str(), (unsigned long long)n);
    std::printf("\n");
    EXPECT_GT(by_op["open"], 2u) << "rotations should open several segments";
    EXPECT_GT(by_op["io_uring_submit"], 10u);
    EXPECT_GT(by_op["write"], 10u);
    EXPECT_GT(by_op["fdatasync"], 5u);
}

TEST(FaultInjection, EioAtEveryCall) { walk({0, fault::kind::error, EIO}, "EIO"); }

TEST(FaultInjection, EnospcAtEveryCall) {
    // A full disk is not fatal: the writer stalls and retries, and every run completes.
    walk({0, fault::kind::error, ENOSPC}, "ENOSPC");
}

TEST(FaultInjection, ShortWriteAtEveryCall) {
    walk({0, fault::kind::short_write}, "short write");
}

TEST(FaultInjection, DelayedCompletionAtEveryCall) {
    walk({0, fault::kind::delay, 0, 3}, "delayed completion (3 ms)");
}

TEST(FaultInjection, PersistentEioFromEveryCall) {
    // Every call from N on fails (a disk that died): stops with an error, durable rows kept.
    walk({0, fault::kind::error, EIO, 0, true}, "EIO from call N on");
}

TEST(FaultInjection, AtomicFileReplaceFailsCleanly) {
    // open, rename and the directory's open of a checkpoint-style replace: each failure
    // is reported, and the old file stays whole.
    temp_dir tmp(trial_base());
    const std::string path = tmp.path() + "/state.json";
    ASSERT_TRUE(write_file_atomically(path, "old").ok());
    fault::arm({});
    ASSERT_TRUE(write_file_atomically(path, "new").ok());
    const uint64_t calls = fault::calls();
    fault::disarm();
    ASSERT_EQ(calls, 3u); // open tmp, rename, open dir
    for (uint64_t n = 1; n <= calls; ++n) {
        ASSERT_TRUE(write_file_atomically(path, "old").ok());
        fault::arm({n, fault::kind::error, EIO});
        auto r = write_file_atomically(path, "new");
        fault::disarm();
        ASSERT_FALSE(r.ok()) << "call " << n;
        EXPECT_NE(r.err().message.find(tmp.path()), std::string::npos) << r.err().message;
        std::FILE* f = std::fopen(path.c_str(), "r");
        ASSERT_NE(f, nullptr);
        char buf[8] = {};
        size_t len = std::fread(buf, 1, sizeof buf, f);
        std::fclose(f);
        const std::string got(buf, len);
        EXPECT_TRUE(got == "old" || got == "new") << "call " << n << ": " << got;
    }
}

TEST(FaultInjection, PlansReadFromText) {
    // SLUICE_TEST_FAULT's format (sluiced arms the hook from it).
    auto p = fault::parse_plan("37");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->at, 37u);
    EXPECT_EQ(p->what, fault::kind::error);
    EXPECT_EQ(p->err, EIO);
    EXPECT_FALSE(p->persistent);
    p = fault::parse_plan("12:enospc:persistent");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->at, 12u);
    EXPECT_EQ(p->err, ENOSPC);
    EXPECT_TRUE(p->persistent);
    p = fault::parse_plan("5:short");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->what, fault::kind::short_write);
    p = fault::parse_plan("80:delay=3");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->what, fault::kind::delay);
    EXPECT_EQ(p->delay_ms, 3u);
    p = fault::parse_plan("0");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->at, 0u); // count only
    for (const char* bad : {"", "x", "3:eiox", "3:delay=x", "-1", "3::eio"}) {
        auto r = fault::parse_plan(bad);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_NE(r.err().message.find("expected AT"), std::string::npos) << r.err().message;
    }
    // An op-scoped plan: AT counts (and fails) only that op's calls.
    p = fault::parse_plan("2:eio:persistent:fsync");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->only, fault::op::fsync);
    EXPECT_TRUE(p->persistent);
    EXPECT_EQ(fault::parse_plan("3")->only, fault::op::count_); // every op
    EXPECT_FALSE(fault::parse_plan("3:fsyncx").ok());
    fault::arm(p.value());
    EXPECT_EQ(fault::check(fault::op::fsync).what, fault::kind::none); // fsync 1
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(fault::check(fault::op::write).what, fault::kind::none); // never a write
        EXPECT_FALSE(fault::fails(fault::op::open));
    }
    EXPECT_EQ(fault::check(fault::op::fsync).what, fault::kind::error); // fsync 2
    EXPECT_EQ(fault::check(fault::op::fsync).err, EIO);                 // and on
    EXPECT_EQ(fault::check(fault::op::write).what, fault::kind::none);
    fault::disarm();
    // The summary names every op's count.
    fault::arm({});
    (void)fault::fails(fault::op::open);
    (void)fault::fails(fault::op::rename);
    fault::disarm();
    EXPECT_EQ(fault::summary(),
              "2 calls (open 1, rename 1, unlink 0, io_uring_submit 0, write 0, fdatasync 0), 0 injected");
}

} // namespace
} // namespace sluice::storage
