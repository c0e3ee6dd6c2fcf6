// processing::merger's own files and typed calls: the checkpoints in _processing/
// (state_dir.h), start-up, the first checkpoint of a query the store has not run, the
// query list, and the errors replay's arguments give. The merger thread with real
// workers (add, remove, live views, rebuild) is driven end to end by
// tests/integration/queries_test and restart_test.
#include "processing/merger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "base/clock.h"
#include "processing/restore.h"
#include "processing/result_table.h"
#include "processing/state_dir.h"
#include "tests/processing/processing_test_util.h"

namespace sluice::processing {
namespace {

using namespace testing;

query_def views_query() {
    query_def q;
    q.name = "views";
    q.window = window_def{window_kind::tumbling, 60'000, 0, 0};
    q.group_by = {"event_type"};
    q.aggregates = {aggregate_def{}}; // count
    q.watermark_delay_ms = 1000;
    q.memory_bytes = 1u << 20;
    return q;
}

merger_config config_for(const std::string& dir) {
    merger_config c;
    c.data_dir = dir;
    c.workers = 2;
    c.table_writer.data_dir = dir;
    c.table_writer.options.direct_io = false;
    c.make_parser = [](const field_catalog*) { return parser_factory(); };
    return c;
}

TEST(StateDir, CheckpointRoundTripsWithItsFloorHistory) {
    temp_dir dir("merger");
    ASSERT_TRUE(create_state_dir(dir.path));
    EXPECT_FALSE(read_checkpoint(dir.path, "q").has_value()); // none yet
    floor_history f;
    f.base_floor_ms = 7;
    ASSERT_TRUE(f.add(floor_epoch{{{"w0", 3}, {"w1", 4}}, 1000}));
    ASSERT_TRUE(write_checkpoint(dir.path, "q", 100, 200, f));
    auto ck = read_checkpoint(dir.path, "q");
    ASSERT_TRUE(ck.has_value());
    EXPECT_EQ(ck->rebuild_from_ms, 100);
    EXPECT_EQ(ck->closed_until_ms, 200);
    ASSERT_TRUE(ck->floors.has_value());
    EXPECT_EQ(ck->floors->base_floor_ms, 7);
    ASSERT_EQ(ck->floors->epochs.size(), 1u);
    EXPECT_EQ(ck->floors->epochs[0].floor_ms, 1000);
    EXPECT_EQ(ck->floors->floor_for("w1", 4), 1000);
    EXPECT_EQ(ck->floors->floor_for("w1", 3), 7);
    remove_checkpoint(dir.path, "q");
    EXPECT_FALSE(read_checkpoint(dir.path, "q").has_value());
}

TEST(StateDir, AFolderThatCannotBeCreatedIsAnErrorNamingIt) {
    temp_dir dir("merger");
    const std::string file = dir.path + "/not-a-dir";
    std::ofstream(file) << "x";
    auto r = create_state_dir(file);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::io_error);
    EXPECT_NE(r.err().message.find(file + "/_processing"), std::string::npos) << r.err().message;
    EXPECT_NE(r.err().message.find("permissions"), std::string::npos) << r.err().message;
}

TEST(StateDir, OldAndUnreadableCheckpointsRebuildConservatively) {
    temp_dir dir("merger");
    ASSERT_TRUE(create_state_dir(dir.path));
    // Written before floor histories: read as such (the rebuild keeps the old rule).
    std::ofstream(checkpoint_path(dir.path, "old"))
        << R"({"query":"old","rebuild_from_ms":5,"closed_until_ms":9})";
    auto old = read_checkpoint(dir.path, "old");
    ASSERT_TRUE(old.has_value());
    EXPECT_EQ(old->rebuild_from_ms, 5);
    EXPECT_FALSE(old->floors.has_value());
    // Not JSON: rebuild from everything stored.
    std::ofstream(checkpoint_path(dir.path, "bad")) << "{torn";
    auto bad = read_checkpoint(dir.path, "bad");
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(bad->rebuild_from_ms, INT64_MIN);
    EXPECT_EQ(bad->closed_until_ms, INT64_MIN);
}

TEST(StateDir, RunRecordRoundTripsAndABadOneIsAnErrorNotACrash) {
    temp_dir dir("merger");
    ASSERT_TRUE(create_state_dir(dir.path));
    auto none = read_run_record(dir.path);
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
    run_record run;
    run.start_max_time_ms = 1'740'000'000'123;
    run.first_segment = {{"w0", 3}, {"w1", 7}};
    ASSERT_TRUE(write_run_record(dir.path, run));
    auto back = read_run_record(dir.path);
    ASSERT_TRUE(back) << back.err().message;
    ASSERT_TRUE(back->has_value());
    EXPECT_EQ((*back)->start_max_time_ms, run.start_max_time_ms);
    EXPECT_EQ((*back)->first_segment, run.first_segment);
    run.start_max_time_ms = no_time;
    ASSERT_TRUE(write_run_record(dir.path, run));
    auto none_yet = read_run_record(dir.path);
    ASSERT_TRUE(none_yet && none_yet->has_value());
    EXPECT_EQ((*none_yet)->start_max_time_ms, no_time);
    // A torn or edited file names itself and the fix (std::stoll used to throw here).
    for (const char* text : {"start_max_time_ms 12x\n", "start_max_time_ms\n", "writer w0\n"}) {
        std::ofstream(run_path(dir.path)) << text;
        auto bad = read_run_record(dir.path);
        ASSERT_FALSE(bad) << text;
        EXPECT_EQ(bad.err().code, errc::corrupt);
        EXPECT_NE(bad.err().message.find("remove the file"), std::string::npos);
    }
}

// A writer of q's result table in dir (buffered I/O), for the tests that write rows
// and read them back with read_stored_windows.
auto open_result_writer(const std::string& dir, const compiled_query& q) {
    storage::writer_config wc;
    wc.data_dir = dir;
    wc.options.direct_io = false;
    wc.writer_name = "merger";
    return storage::segment_writer::open(wc, result_table_schema(q));
}

TEST(ResultTable, StoredWindowsKeepTheNewestRevisionNewestFirst) {
    temp_dir dir("merger");
    field_catalog catalog;
    auto q = compile(views_query(), catalog, 1, 0, 4096);
    ASSERT_TRUE(q) << q.err().message;
    const storage::table_schema schema = result_table_schema(**q);
    auto w = open_result_writer(dir.path, **q);
    ASSERT_TRUE(w) << w.err().message;
    auto row = [&](int64_t start, uint64_t count) {
        result_row r{start, start + 60'000, encode_key(**q, {"view"}), {}};
        r.values.push_back(agg_value{true, count, 0});
        return r;
    };
    write_result_row(**w, **q, row(0, 1), 0, 4096);
    write_result_row(**w, **q, row(60'000, 2), 0, 4096);
    write_result_row(**w, **q, row(0, 7), 5, 4096); // a replay's revision replaces it
    ASSERT_TRUE((*w)->close());

    auto all = read_stored_windows(dir.path, "views", INT64_MIN, INT64_MAX, 10);
    ASSERT_TRUE(all) << all.err().message;
    EXPECT_EQ(all->columns.size(), schema.columns.size() - 1); // without revision
    EXPECT_FALSE(all->truncated);
    ASSERT_EQ(all->rows.size(), 2u);
    EXPECT_EQ(std::get<int64_t>(all->rows[0][0]), 60'000); // newest window first
    EXPECT_EQ(std::get<uint64_t>(all->rows[0].back()), 2u);
    EXPECT_EQ(std::get<int64_t>(all->rows[1][0]), 0);
    EXPECT_EQ(std::get<std::string>(all->rows[1][2]), "view");
    EXPECT_EQ(std::get<uint64_t>(all->rows[1].back()), 7u); // revision 5 over the live 1

    auto one = read_stored_windows(dir.path, "views", INT64_MIN, INT64_MAX, 1);
    ASSERT_TRUE(one);
    EXPECT_TRUE(one->truncated);
    ASSERT_EQ(one->rows.size(), 1u);
    EXPECT_EQ(std::get<int64_t>(one->rows[0][0]), 60'000);

    auto none = read_stored_windows(dir.path, "nope", INT64_MIN, INT64_MAX, 10);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.err().code, errc::not_found);
}

// The scan keeps only the `limit` newest windows while it reads (memory of the reply, not
// of the table): the reply must be what keeping every window gives — the newest revision
// of each, newest first — whatever order the windows and their revisions come in,
// including a newer revision of a window the scan had already dropped as too old.
TEST(ResultTable, StoredWindowsUnderALimitEqualTheNewestOfAllRevisions) {
    temp_dir dir("merger");
    field_catalog catalog;
    auto q = compile(views_query(), catalog, 1, 0, 4096);
    ASSERT_TRUE(q) << q.err().message;
    auto w = open_result_writer(dir.path, **q);
    ASSERT_TRUE(w) << w.err().message;
    // (end, start, group) -> (revision, count): the model, every window kept.
    std::map<std::tuple<int64_t, int64_t, std::string>, std::pair<uint64_t, uint64_t>> model;
    uint64_t x = 88172645463325252ull; // xorshift: a fixed, shuffled order
    auto next = [&] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
    for (int i = 0; i < 3000; ++i) {
        int64_t start = int64_t(next() % 40) * 60'000;
        std::string page = "p" + std::to_string(next() % 7);
        uint64_t revision = next() % 4;
        uint64_t count = uint64_t(i) + 1;
        result_row r{start, start + 60'000, encode_key(**q, {page}), {}};
        r.values.push_back(agg_value{true, count, 0});
        write_result_row(**w, **q, r, revision, 4096);
        auto& m = model[{start + 60'000, start, page + '\0'}];
        if (m.second == 0 || m.first <= revision) m = {revision, count};
    }
    ASSERT_TRUE((*w)->close());
    for (size_t limit : {size_t(0), size_t(1), size_t(5), size_t(100), model.size(), model.size() + 3}) {
        auto got = read_stored_windows(dir.path, "views", INT64_MIN, INT64_MAX, limit);
        ASSERT_TRUE(got) << got.err().message;
        EXPECT_EQ(got->truncated, limit < model.size()) << limit;
        ASSERT_EQ(got->rows.size(), std::min(limit, model.size())) << limit;
        auto it = model.rbegin();
        for (size_t i = 0; i < got->rows.size(); ++i, ++it) {
            const auto& row = got->rows[i];
            EXPECT_EQ(std::get<int64_t>(row[0]), std::get<1>(it->first)) << limit << " row " << i;
            EXPECT_EQ(std::get<int64_t>(row[1]), std::get<0>(it->first)) << limit << " row " << i;
            EXPECT_EQ(std::get<std::string>(row[2]) + '\0', std::get<2>(it->first)) << limit << " row " << i;
            EXPECT_EQ(std::get<uint64_t>(row.back()), it->second.second) << limit << " row " << i;
        }
    }
}

TEST(Merger, OpensItsQueriesAndStartsANewOneFromAfterTheStore) {
    temp_dir dir("merger");
    auto m = merger::open(config_for(dir.path), {views_query()});
    ASSERT_TRUE(m) << m.err().message;
    auto list = (*m)->list();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].def, views_query());
    EXPECT_EQ(list[0].stats.name, "views");
    EXPECT_EQ(list[0].stats.closed_until_ms, INT64_MIN);
    ASSERT_FALSE(list[0].columns.empty());
    EXPECT_EQ(list[0].columns.front(), "window_start_ms");
    EXPECT_EQ(list[0].columns.back(), "revision");
    auto cols = (*m)->columns("views");
    ASSERT_TRUE(cols.has_value());
    EXPECT_EQ(cols->size(), list[0].columns.size() - 1); // without revision
    EXPECT_FALSE((*m)->columns("nope").has_value());

    // No checkpoint: a query this store has not run starts after its newest event.
    auto r = (*m)->restore(5000, 4000);
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(r->queries_rebuilt, 0u);
    auto ck = read_checkpoint(dir.path, "views");
    ASSERT_TRUE(ck.has_value());
    EXPECT_EQ(ck->rebuild_from_ms, 4001);
    EXPECT_EQ(ck->closed_until_ms, INT64_MIN);
}

TEST(Merger, RefusesTooManyQueriesAndBadReplays) {
    temp_dir dir("merger");
    std::vector<query_def> many;
    for (uint32_t i = 0; i <= limits::queries_max; ++i) {
        many.push_back(views_query());
        many.back().name = "q" + std::to_string(i);
    }
    auto too_many = merger::open(config_for(dir.path), many);
    ASSERT_FALSE(too_many);
    EXPECT_EQ(too_many.err().code, errc::bad_config);

    auto m = merger::open(config_for(dir.path), {views_query()});
    ASSERT_TRUE(m) << m.err().message;
    auto backwards = (*m)->start_replay("views", 10, 10);
    ASSERT_FALSE(backwards);
    EXPECT_EQ(backwards.err().message, "replay: from must be before to");
    auto unknown = (*m)->start_replay("nope", 0, 10);
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.err().code, errc::not_found);
    EXPECT_TRUE((*m)->replays().empty());
    EXPECT_FALSE((*m)->replay(1).has_value());
}

// One worker serviced on its own thread (as an lcore would: tick between bursts) and a
// partial ring made of a locked queue: the operations run through the merger thread and
// the worker's mailbox, and answer with typed results.
class worker_ring {
  public:
    explicit worker_ring(uint32_t buffers = 8, uint32_t bytes = 256 * 1024) {
        for (uint32_t i = 0; i < buffers; ++i) {
            _buffers.emplace_back(new char[sizeof(partial_batch) + bytes]);
            auto* b = reinterpret_cast<partial_batch*>(_buffers.back().get());
            b->capacity = bytes;
            b->reset(0, 0);
            _free.push_back(b);
        }
    }
    partial_channel channel() { return {this, &acquire, &publish, &progressed}; }
    partial_inbox inbox() { return {this, &receive, &give_back}; }
    // A merger that blocks on `wake` is told of batches and progress, as query_service's
    // link tells the daemon's.
    void set_wake(idle_wake* wake) { _wake = wake; }
    size_t unread() {
        std::lock_guard lock(_mutex);
        return _sent.size();
    }

  private:
    static partial_batch* acquire(void* ctx) noexcept {
        auto* r = static_cast<worker_ring*>(ctx);
        for (;;) {
            {
                std::lock_guard lock(r->_mutex);
                if (!r->_free.empty()) {
                    partial_batch* b = r->_free.front();
                    r->_free.pop_front();
                    return b;
                }
            }
            std::this_thread::yield();
        }
    }
    static void publish(void* ctx, partial_batch* b) noexcept {
        auto* r = static_cast<worker_ring*>(ctx);
        {
            std::lock_guard lock(r->_mutex);
            r->_sent.push_back(b);
        }
        if (r->_wake != nullptr) r->_wake->notify();
    }
    static void progressed(void* ctx) noexcept {
        auto* r = static_cast<worker_ring*>(ctx);
        if (r->_wake != nullptr) r->_wake->notify();
    }
    static partial_batch* receive(void* ctx) noexcept {
        auto* r = static_cast<worker_ring*>(ctx);
        std::lock_guard lock(r->_mutex);
        if (r->_sent.empty()) return nullptr;
        partial_batch* b = r->_sent.front();
        r->_sent.pop_front();
        return b;
    }
    static void give_back(void* ctx, partial_batch* b) noexcept {
        auto* r = static_cast<worker_ring*>(ctx);
        std::lock_guard lock(r->_mutex);
        r->_free.push_back(b);
    }

    std::mutex _mutex;
    std::deque<partial_batch*> _free, _sent;
    std::vector<std::unique_ptr<char[]>> _buffers;
    idle_wake* _wake = nullptr;
};

bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds within = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return cond();
}

std::unique_ptr<slot_buffer> views_event(const std::string& id, int64_t time_ms) {
    auto b = std::make_unique<slot_buffer>();
    event_slot& s = **b;
    s.kind = slot_kind::event;
    s.has_event_id = 1;
    s.id = id_of(id);
    s.event_time_ms = time_ms;
    s.max_time_before_ms = time_ms;
    s.received_ms = time_ms;
    const std::string raw = R"({"event_id":")" + id + R"(","user_id":"u","event_type":"v",)" +
                            R"("timestamp":)" + std::to_string(time_ms) + "}";
    b->set_raw(raw);
    s.event_id = b->add_field(id);
    s.user_id = b->add_field("u");
    s.event_type = b->add_field("v");
    return b;
}

// [lcores] idle = "wait": a merger blocked on its idle_wake is woken when a worker stores
// window progress, not only when it publishes a batch. The window's cells reach the
// merger first (a batch: it wakes, merges them, sleeps again); the row may be written only
// once the worker publishes that the events in it are durable, which is the progress
// store. The merger's wait is bounded by 30 s here, so the 10 s deadline can only be met
// by that wake-up (its table writer has nothing to commit, so no deadline ends it).
TEST(MergerThread, AWaitingMergerIsWokenByWindowProgress) {
    constexpr int64_t t0 = 1'740'000'000'000; // a minute boundary
    temp_dir dir("merger");
    merger_config c = config_for(dir.path);
    c.workers = 1;
    auto m = merger::open(c, {views_query()});
    ASSERT_TRUE(m) << m.err().message;
    ASSERT_TRUE((*m)->restore(no_time, no_time));
    idle_wake wake;
    ASSERT_TRUE(wake.ok());
    worker_ring ring;
    ring.set_wake(&wake);
    worker_config wc;
    wc.data_dir = dir.path;
    wc.storage.direct_io = false;
    wc.storage.flush_interval_ms = 600'000; // rows become durable only by flush() below
    wc.dedup_memory_bytes = 1 << 20;
    auto w = worker::open(wc, ring.channel());
    ASSERT_TRUE(w) << w.err().message;
    ASSERT_TRUE((*m)->attach({w->get()}, {ring.inbox()}));
    (*m)->set_idle_wake(&wake, 30'000'000'000);
    std::atomic<bool> finished{false};
    std::atomic<uint64_t> flushes{0};
    (*m)->start(&flushes, [&] { return finished.load(); });
    struct ender { // the merger's wait is long: end it on every way out
        std::unique_ptr<merger>& m;
        std::unique_ptr<worker>& w;
        std::atomic<bool>& finished;
        idle_wake& wake;
        ~ender() {
            (void)w->finish();
            finished.store(true);
            wake.notify();
            m->join();
        }
    } end{*m, *w, finished, wake};

    // [t0, t0 + 1 min) holds "a"; "b" moves the watermark (delay 1 s) past its end.
    auto a = views_event("a", t0 + 1000);
    auto b = views_event("b", t0 + 60'000 + 1000 + 1);
    event_slot* slots[] = {a->get(), b->get()};
    ASSERT_TRUE(eventually([&] { return wake.sleeping(); }));
    (*w)->process(slots, 2);
    (*w)->tick(monotonic_ns()); // closes the window: its cells go out, its progress waits
    ASSERT_TRUE(eventually([&] { return ring.unread() == 0 && wake.sleeping(); }))
        << "the batch of cells did not wake the merger";
    EXPECT_EQ((*m)->window_rows(), 0u); // not before the events are durable

    ASSERT_TRUE((*w)->flush());
    (*w)->tick(monotonic_ns()); // stores the progress: [t0, t0 + 1 min) may be written
    ASSERT_TRUE(eventually([&] { return (*m)->window_rows() == 1; }))
        << "the merger slept through the progress store";
    auto list = (*m)->stats();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].closed_until_ms, t0 + 60'000 + 1);
}

TEST(MergerThread, OperationsGoThroughTheWorkersAndAnswerTyped) {
    temp_dir dir("merger");
    merger_config c = config_for(dir.path);
    c.workers = 1;
    std::vector<std::string> told; // the registry's view, in order
    c.on_added = [&](const query_def& q) {
        told.push_back("+" + q.name);
        return ok_result();
    };
    c.on_removed = [&](const std::string& name) {
        told.push_back("-" + name);
        return ok_result();
    };
    auto m = merger::open(c, {views_query()});
    ASSERT_TRUE(m) << m.err().message;
    ASSERT_TRUE((*m)->restore(no_time, no_time));

    worker_ring ring;
    worker_config wc;
    wc.data_dir = dir.path;
    wc.storage.direct_io = false;
    wc.dedup_memory_bytes = 1 << 20;
    auto w = worker::open(wc, ring.channel());
    ASSERT_TRUE(w) << w.err().message;
    ASSERT_TRUE((*m)->attach({w->get()}, {ring.inbox()}));
    std::atomic<bool> stop{false}, finished{false};
    std::thread lcore([&] {
        while (!stop.load()) {
            (*w)->tick(monotonic_ns());
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        (void)(*w)->finish();
        (*w)->tick(monotonic_ns());
        finished.store(true);
    });
    std::atomic<uint64_t> flushes{0};
    (*m)->start(&flushes, [&] { return finished.load(); });

    auto again = (*m)->add_query(views_query());
    ASSERT_FALSE(again);
    EXPECT_EQ(again.err().code, errc::invalid_argument);
    query_def clicks = views_query();
    clicks.name = "clicks";
    auto added = (*m)->add_query(clicks);
    ASSERT_TRUE(added) << added.err().message;
    EXPECT_EQ(*added, clicks);
    EXPECT_EQ((*m)->list().size(), 2u);
    EXPECT_EQ((*w)->queries(), 2u);

    auto open = (*m)->open_windows("clicks");
    ASSERT_TRUE(open) << open.err().message;
    EXPECT_TRUE(open->empty()); // no events yet
    auto unknown = (*m)->open_windows("nope");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.err().code, errc::not_found);

    ASSERT_TRUE(write_checkpoint(dir.path, "clicks", 1, 2, floor_history{}));
    auto gone = (*m)->remove_query("clicks");
    ASSERT_TRUE(gone) << gone.err().message;
    EXPECT_EQ(gone->name, "clicks");
    EXPECT_EQ(gone->rows_emitted, 0u);
    EXPECT_FALSE(gone->warning.has_value());
    EXPECT_FALSE(read_checkpoint(dir.path, "clicks").has_value()); // its table stays
    EXPECT_EQ((*w)->queries(), 1u);
    auto twice = (*m)->remove_query("clicks");
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.err().code, errc::not_found);
    EXPECT_EQ(told, (std::vector<std::string>{"+clicks", "-clicks"}));

    stop.store(true);
    lcore.join();
    (*m)->join();
    EXPECT_TRUE((*m)->done());
    auto late = (*m)->add_query(clicks);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.err().message, "sluiced is shutting down");
}

} // namespace
} // namespace sluice::processing
