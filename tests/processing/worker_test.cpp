#include "processing/worker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/time_format.h"
#include "storage/fault_injection.h"
#include "storage/segment_files.h"
#include "storage/schema.h"
#include "storage/table_reader.h"
#include "tests/processing/processing_test_util.h"

namespace sluice::processing {
namespace {

using namespace testing;
namespace ev = storage::events_col;
namespace dl = storage::dead_letters_col;

constexpr uint32_t event_bytes_max = 4096;
constexpr int64_t minute_ms = 60'000;
constexpr int64_t delay_ms = 10 * minute_ms;
constexpr int64_t hour_ms = 60 * minute_ms;
// A minute boundary, so that T0 + k * minute_ms are window starts.
constexpr int64_t t0 = 1'740'000'000'000;
static_assert(t0 % minute_ms == 0);

struct event_spec {
    std::string event_id; // also the identity's source
    int64_t event_time_ms;
    int64_t max_time_before_ms;
    std::string page = "/home";
    std::string user_id = "u1";
    std::string event_type = "page_view";
};

std::string raw_of(const event_spec& e) {
    return R"({"event_id":")" + e.event_id + R"(","user_id":")" + e.user_id +
           R"(","event_type":")" + e.event_type + R"(","timestamp":)" +
           std::to_string(e.event_time_ms) + R"(,"page":")" + e.page + R"("})";
}

std::unique_ptr<slot_buffer> make_event(const event_spec& e, int64_t received_ms = t0,
                                        uint32_t generation = 0) {
    auto b = std::make_unique<slot_buffer>();
    event_slot& s = **b;
    s.kind = slot_kind::event;
    s.has_event_id = 1;
    s.id = id_of(e.event_id);
    s.event_time_ms = e.event_time_ms;
    s.max_time_before_ms = e.max_time_before_ms;
    s.received_ms = received_ms;
    s.generation = generation;
    b->set_raw(raw_of(e));
    s.event_id = b->add_field(e.event_id);
    s.user_id = b->add_field(e.user_id);
    s.event_type = b->add_field(e.event_type);
    s.page = b->add_field(e.page);
    return b;
}

std::unique_ptr<slot_buffer> make_dead_letter(dead_letter_reason reason, std::string_view raw,
                                              uint32_t raw_len_orig, int64_t max_time_before_ms,
                                              int64_t received_ms) {
    auto b = std::make_unique<slot_buffer>();
    event_slot& s = **b;
    s.kind = slot_kind::dead_letter;
    s.reason = reason;
    s.event_time_ms = no_time;
    s.max_time_before_ms = max_time_before_ms;
    s.received_ms = received_ms;
    b->set_raw(raw);
    s.raw_len_orig = raw_len_orig;
    return b;
}

std::unique_ptr<slot_buffer> make_watermark(int64_t max_time_ms) {
    auto b = std::make_unique<slot_buffer>();
    (*b)->kind = slot_kind::watermark;
    (*b)->max_time_before_ms = max_time_ms;
    (*b)->event_time_ms = no_time;
    return b;
}

struct cell {
    int64_t start, end;
    std::string key;
    uint64_t count;
    friend bool operator==(const cell&, const cell&) = default;
    friend bool operator<(const cell& a, const cell& b) {
        return std::tie(a.start, a.end, a.key, a.count) < std::tie(b.start, b.end, b.key, b.count);
    }
};

std::vector<cell> cells_of(const std::vector<published_batch>& batches, uint32_t uid = 1) {
    std::vector<cell> out;
    for (const auto& b : batches)
        if (b.query_uid == uid && b.kind == batch_kind::closed)
            for (const auto& c : b.cells) out.push_back(cell{c.start, c.end, c.key, first_word(c.blob)});
    std::sort(out.begin(), out.end());
    return out;
}

struct event_row {
    int64_t event_time_ms;
    uint64_t id_hi, id_lo;
    std::string event_id, user_id, event_type, page;
    uint8_t late;
    std::string raw;
    int64_t max_time_ms;
};

struct dead_letter_row {
    int64_t received_ms;
    std::string reason;
    uint64_t raw_len;
    std::string raw;
};

std::map<std::string, event_row> read_events(const std::string& dir) {
    std::map<std::string, event_row> rows; // by event_id
    auto r = storage::scan_table(dir, "events", INT64_MIN, INT64_MAX, [&](const storage::column_batch& b) {
        for (uint32_t i = 0; i < b.rows(); ++i) {
            auto id = storage::identity_of_stored_event(!b.is_null(ev::event_id, i),
                                                        b.string_at(ev::event_id, i),
                                                        b.string_at(ev::raw, i));
            event_row e{b.i64_at(ev::event_time_ms, i), id.hi, id.lo,
                        std::string(b.string_at(ev::event_id, i)),
                        std::string(b.string_at(ev::user_id, i)),
                        std::string(b.string_at(ev::event_type, i)),
                        std::string(b.string_at(ev::page, i)), b.u8_at(ev::late, i),
                        std::string(b.string_at(ev::raw, i)), b.i64_at(ev::max_time_ms, i)};
            // A row stored twice would collapse here: count too.
            EXPECT_TRUE(rows.emplace(e.event_id, e).second) << "stored twice: " << e.event_id;
        }
    });
    EXPECT_TRUE(r) << (r ? "" : r.err().message);
    if (r) {
        EXPECT_EQ(r->damaged_segments, 0u);
    }
    return rows;
}

std::vector<dead_letter_row> read_dead_letters(const std::string& dir) {
    std::vector<dead_letter_row> rows;
    auto r = storage::scan_table(dir, "dead_letters", INT64_MIN, INT64_MAX, [&](const storage::column_batch& b) {
        for (uint32_t i = 0; i < b.rows(); ++i)
            rows.push_back({b.i64_at(dl::received_ms, i), std::string(b.string_at(dl::reason, i)),
                            b.u64_at(dl::raw_len, i), std::string(b.string_at(dl::raw, i))});
    });
    EXPECT_TRUE(r) << (r ? "" : r.err().message);
    return rows;
}

class Worker : public ::testing::Test {
  protected:
    worker_config config() {
        worker_config c;
        c.index = 3;
        c.watermark_delay_ms = delay_ms;
        c.dedup_horizon_ms = hour_ms;
        c.dedup_memory_bytes = 1 << 20;
        c.event_bytes_max = event_bytes_max;
        c.data_dir = _data_dir.empty() ? _dir.path : _data_dir;
        c.storage.flush_interval_ms = _flush_interval_ms;
        c.rows_per_block = 256;
        c.block_string_bytes_max = 256 << 10;
        if (_uncompressed) c.storage.compression = {storage::format::codec::none, 0};
        return c;
    }
    query_def reference() {
        query_def q = reference_query();
        q.memory_bytes = 1 << 20;
        return q;
    }
    // Opens a worker running `queries` (uids 1, 2, ...).
    std::unique_ptr<worker> open(std::vector<query_def> queries, uint32_t partial_capacity_bytes = 1 << 20) {
        _channel = std::make_unique<test_channel>(partial_capacity_bytes);
        auto w = worker::open(config(), _channel->channel());
        EXPECT_TRUE(w) << (w ? "" : w.err().message);
        if (!w) return nullptr;
        uint32_t uid = 1;
        for (const auto& d : queries) {
            auto q = compile_or_die(d, _catalog, uid++, 0, event_bytes_max);
            if (!q) return nullptr;
            _queries.push_back(q);
            auto r = (*w)->add_query(q, std::make_unique<window_state>(*q), INT64_MIN);
            EXPECT_TRUE(r) << (r ? "" : r.err().message);
        }
        _catalog.publish();
        return std::move(w.value());
    }
    std::unique_ptr<worker> open() { return open({reference()}); }
    void process(worker& w, std::initializer_list<slot_buffer*> slots) {
        std::vector<event_slot*> v;
        for (auto* s : slots) v.push_back(s->get());
        w.process(v.data(), uint32_t(v.size()));
    }
    void finish(worker& w) {
        auto r = w.finish();
        ASSERT_TRUE(r) << r.err().message;
        EXPECT_FALSE(w.storage_failed());
    }
    const worker_progress& progress(size_t query = 0) { return _queries[query]->shared->workers[3]; }
    // Ticks until the worker publishes `closed_until` for query 0 (or 5 s pass).
    bool tick_until_closed(worker& w, int64_t closed_until, size_t query = 0) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        int64_t now = 1;
        while (std::chrono::steady_clock::now() < deadline) {
            w.tick(now++ * 1'000'000);
            if (progress(query).closed_until_ms.load() == closed_until) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return false;
    }

    temp_dir _dir{"worker-test"};
    std::string _data_dir; // empty: _dir
    uint32_t _flush_interval_ms = 1;
    bool _uncompressed = false; // segments' chunks stored without a codec
    field_catalog _catalog;
    std::vector<std::shared_ptr<compiled_query>> _queries;
    std::unique_ptr<test_channel> _channel;
};

TEST_F(Worker, AcceptsThenCountsDuplicateOfSameIdentity) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1000, no_time});
    auto dup = make_event({"a", t0 + 2000, t0 + 1000, "/other"}); // same identity, other bytes
    auto b = make_event({"b", t0 + 1500, t0 + 1000});
    process(*w, {a.get(), dup.get(), b.get()});

    const worker_counters& c = w->counters();
    EXPECT_EQ(c.events_in.load(), 3u);
    EXPECT_EQ(c.events_accepted.load(), 2u);
    EXPECT_EQ(c.duplicates.load(), 1u);
    EXPECT_EQ(c.late_events.load(), 0u);
    EXPECT_EQ(c.dead_letters.load(), 0u);
    // The worker's M is the max of the RX stamps, not of the events it processed.
    EXPECT_EQ(c.max_time_ms.load(), t0 + 1000);
    EXPECT_EQ(w->watermark_ms(), t0 + 1000 - delay_ms);

    // Resent after the first burst: still a duplicate.
    auto again = make_event({"b", t0 + 1500, t0 + 2000});
    process(*w, {again.get()});
    EXPECT_EQ(c.duplicates.load(), 2u);
    EXPECT_EQ(c.events_accepted.load(), 2u);

    finish(*w);
    auto rows = read_events(_dir.path);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows.at("a").page, "/home"); // the first sighting is the one stored
    EXPECT_EQ(rows.at("a").event_time_ms, t0 + 1000);
    EXPECT_EQ(rows.at("b").event_time_ms, t0 + 1500);
    // The duplicate is not aggregated either: one window, one count per event.
    EXPECT_EQ(cells_of(_channel->published), (std::vector<cell>{{t0, t0 + minute_ms, "/home", 2}}));
    EXPECT_EQ(progress().closed_until_ms.load(), INT64_MAX);
    EXPECT_EQ(progress().events.load(), 2u);
}

TEST_F(Worker, RejectsEventBeyondDedupHorizonToDeadLetters) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto recent = make_event({"recent", t0 + 2 * hour_ms, no_time});
    // Older than M - horizon: it could be a duplicate the table no longer remembers.
    auto old = make_event({"old", t0 + hour_ms - 1, t0 + 2 * hour_ms}, t0 + 2 * hour_ms + 5);
    // Exactly at the cutoff is still inside the horizon.
    auto edge = make_event({"edge", t0 + hour_ms, t0 + 2 * hour_ms});
    process(*w, {recent.get(), old.get(), edge.get()});

    const worker_counters& c = w->counters();
    EXPECT_EQ(c.events_in.load(), 3u);
    EXPECT_EQ(c.events_accepted.load(), 2u);
    EXPECT_EQ(c.duplicates.load(), 0u);
    EXPECT_EQ(c.dead_letters.load(), 1u);
    EXPECT_EQ(c.dead_letters_by_reason[int(dead_letter_reason::beyond_dedup_horizon)].load(), 1u);
    EXPECT_EQ(c.dead_letters_by_reason[int(dead_letter_reason::parse_error)].load(), 0u);

    finish(*w);
    auto dead = read_dead_letters(_dir.path);
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].reason, "beyond_dedup_horizon");
    EXPECT_EQ(dead[0].raw, raw_of({"old", t0 + hour_ms - 1, 0}));
    EXPECT_EQ(dead[0].raw_len, dead[0].raw.size());
    EXPECT_EQ(dead[0].received_ms, t0 + 2 * hour_ms + 5);
    auto rows = read_events(_dir.path);
    EXPECT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows.count("old"), 0u);
}

TEST_F(Worker, StoresLateEventWithLateFlagAndKeepsItOutOfWindows) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    const int64_t m = t0 + 20 * minute_ms; // W = t0 + 10 min
    auto first = make_event({"first", m, no_time, "/now"});
    // Window [t0 + 9 min, t0 + 10 min) ends at W: closed, so late.
    auto late = make_event({"late", t0 + 10 * minute_ms - 1, m, "/old"});
    // Window [t0 + 10 min, t0 + 11 min) ends after W: still open.
    auto on_time = make_event({"on_time", t0 + 10 * minute_ms, m, "/edge"});
    process(*w, {first.get(), late.get(), on_time.get()});

    const worker_counters& c = w->counters();
    EXPECT_EQ(c.events_accepted.load(), 3u);
    EXPECT_EQ(c.late_events.load(), 1u);
    EXPECT_EQ(progress().late_events.load(), 1u);
    EXPECT_EQ(c.dead_letters.load(), 0u);

    finish(*w);
    EXPECT_EQ(cells_of(_channel->published),
              (std::vector<cell>{{t0 + 10 * minute_ms, t0 + 11 * minute_ms, "/edge", 1},
                                 {m, m + minute_ms, "/now", 1}}));

    auto rows = read_events(_dir.path);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows.at("late").late, 1);
    EXPECT_EQ(rows.at("first").late, 0);
    EXPECT_EQ(rows.at("on_time").late, 0);
    // Each row keeps the M its lateness was judged by.
    EXPECT_EQ(rows.at("first").max_time_ms, no_time);
    EXPECT_EQ(rows.at("late").max_time_ms, m);
}

TEST_F(Worker, StoresRxDeadLetterWithReasonAndOriginalLength) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto bad = make_dead_letter(dead_letter_reason::parse_error, "not json", 8, no_time, t0 + 7);
    // Oversize: the slot holds the first bytes only; raw_len keeps the length received.
    std::string head(100, 'x');
    auto big = make_dead_letter(dead_letter_reason::oversize, head, 70'000, t0 + 3, t0 + 9);
    auto ts = make_dead_letter(dead_letter_reason::bad_timestamp, R"({"timestamp":"x"})", 17,
                               t0 + 3, t0 + 11);
    process(*w, {bad.get(), big.get(), ts.get()});

    const worker_counters& c = w->counters();
    EXPECT_EQ(c.events_in.load(), 3u);
    EXPECT_EQ(c.events_accepted.load(), 0u);
    EXPECT_EQ(c.dead_letters.load(), 3u);
    EXPECT_EQ(c.dead_letters_by_reason[int(dead_letter_reason::parse_error)].load(), 1u);
    EXPECT_EQ(c.dead_letters_by_reason[int(dead_letter_reason::oversize)].load(), 1u);
    EXPECT_EQ(c.dead_letters_by_reason[int(dead_letter_reason::bad_timestamp)].load(), 1u);
    EXPECT_EQ(c.dead_letters_by_reason[int(dead_letter_reason::beyond_dedup_horizon)].load(), 0u);
    // A dead letter's stamp still tells the worker how far the RX has seen.
    EXPECT_EQ(c.max_time_ms.load(), t0 + 3);

    finish(*w);
    auto dead = read_dead_letters(_dir.path);
    ASSERT_EQ(dead.size(), 3u);
    std::sort(dead.begin(), dead.end(),
              [](const auto& a, const auto& b) { return a.received_ms < b.received_ms; });
    EXPECT_EQ(dead[0].reason, "parse_error");
    EXPECT_EQ(dead[0].raw, "not json");
    EXPECT_EQ(dead[0].raw_len, 8u);
    EXPECT_EQ(dead[1].reason, "oversize");
    EXPECT_EQ(dead[1].raw, head);
    EXPECT_EQ(dead[1].raw_len, 70'000u);
    EXPECT_EQ(dead[2].reason, "bad_timestamp");
    EXPECT_TRUE(read_events(_dir.path).empty());
}

TEST_F(Worker, WatermarkSlotAdvancesWatermarkAndClosesWindows) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a1 = make_event({"a1", t0 + 1000, no_time, "/a"});
    auto a2 = make_event({"a2", t0 + 2000, t0 + 1000, "/a"});
    auto b1 = make_event({"b1", t0 + 3000, t0 + 2000, "/b"});
    auto a3 = make_event({"a3", t0 + minute_ms + 1000, t0 + 3000, "/a"});
    process(*w, {a1.get(), a2.get(), b1.get(), a3.get()});
    EXPECT_EQ(w->watermark_ms(), t0 + 3000 - delay_ms);

    // W is far below every window end: the worker closes nothing, but it publishes W
    // once the events are durable.
    ASSERT_TRUE(tick_until_closed(*w, t0 + 3000 - delay_ms));
    EXPECT_TRUE(cells_of(_channel->published).empty());

    // An idle RX's watermark slot: W = t0 + 60001 passes the end of the first window only.
    const int64_t m = t0 + minute_ms + 1 + delay_ms;
    auto wm = make_watermark(m);
    process(*w, {wm.get()});
    EXPECT_EQ(w->counters().events_in.load(), 4u); // watermark slots are not events
    EXPECT_EQ(w->counters().max_time_ms.load(), m);
    EXPECT_EQ(w->watermark_ms(), t0 + minute_ms + 1);
    ASSERT_TRUE(tick_until_closed(*w, t0 + minute_ms + 1));
    EXPECT_EQ(cells_of(_channel->published), (std::vector<cell>{{t0, t0 + minute_ms, "/a", 2},
                                                                {t0, t0 + minute_ms, "/b", 1}}));
    for (const auto& b : _channel->published) EXPECT_EQ(b.worker, 3u);

    finish(*w);
    EXPECT_EQ(progress().closed_until_ms.load(), INT64_MAX);
    EXPECT_EQ(cells_of(_channel->published),
              (std::vector<cell>{{t0, t0 + minute_ms, "/a", 2},
                                 {t0, t0 + minute_ms, "/b", 1},
                                 {t0 + minute_ms, t0 + 2 * minute_ms, "/a", 1}}));
}

TEST_F(Worker, PublishesProgressOnlyOnceItsEventsAreDurable) {
    _flush_interval_ms = 60'000; // no group commit during the test: only flush() syncs
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time, "/a"});
    auto wm = make_watermark(t0 + minute_ms + delay_ms);
    process(*w, {a.get(), wm.get()});
    for (int i = 0; i < 20; ++i) w->tick(i);
    // The cell is sent, but its event is not durable: the merger may not emit it yet.
    EXPECT_EQ(cells_of(_channel->published), (std::vector<cell>{{t0, t0 + minute_ms, "/a", 1}}));
    EXPECT_EQ(progress().closed_until_ms.load(), INT64_MIN);
    ASSERT_TRUE(w->flush());
    w->tick(100);
    EXPECT_EQ(progress().closed_until_ms.load(), t0 + minute_ms);
    finish(*w);
}

// Found by the daemon-level fault walk (tests/integration/fault_walk.cpp, 53:eio): when
// the events writer had failed, finish() still published everything, so the merger
// emitted windows over events that were never stored; after a restart and a re-send the
// tables held those windows twice and re-sent events were judged late. Now a worker whose
// events writer failed publishes only what is durable and marks its progress abandoned.
TEST_F(Worker, FinishWithItsEventsWriterFailedPublishesOnlyWhatIsDurable) {
    _flush_interval_ms = 60'000; // only flush() syncs
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time, "/a"});
    auto wm = make_watermark(t0 + minute_ms + delay_ms);
    process(*w, {a.get(), wm.get()});
    ASSERT_TRUE(w->flush());
    w->tick(1);
    ASSERT_EQ(progress().closed_until_ms.load(), t0 + minute_ms);
    // The next minute's event is taken, then every write fails.
    auto b = make_event({"b", t0 + minute_ms + 1, t0 + 1, "/b"});
    process(*w, {b.get()});
    storage::fault::arm({1, storage::fault::kind::error, EIO, 5, true});
    auto r = w->finish();
    storage::fault::disarm();
    ASSERT_FALSE(r);
    EXPECT_NE(r.err().message.find("Input/output error"), std::string::npos) << r.err().message;
    EXPECT_TRUE(w->storage_failed());
    // Not INT64_MAX: the merger must not emit b's window, which counts an event not stored.
    EXPECT_EQ(progress().closed_until_ms.load(), t0 + minute_ms);
    EXPECT_TRUE(progress().abandoned.load());
    EXPECT_EQ(read_events(_dir.path).size(), 1u);
}

TEST_F(Worker, SplitsClosedCellsOverBatches) {
    // Room for two records: three closed cells need two batches.
    auto w = open({reference()}, 2 * partial_batch::record_bytes(2, 8));
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time, "/a"});
    auto b = make_event({"b", t0 + 2, t0 + 1, "/b"});
    auto c = make_event({"c", t0 + 3, t0 + 2, "/c"});
    auto wm = make_watermark(t0 + minute_ms + delay_ms);
    process(*w, {a.get(), b.get(), c.get(), wm.get()});
    ASSERT_TRUE(tick_until_closed(*w, t0 + minute_ms));
    size_t closed_batches = 0;
    for (const auto& p : _channel->published) closed_batches += !p.cells.empty();
    EXPECT_EQ(closed_batches, 2u);
    EXPECT_EQ(cells_of(_channel->published),
              (std::vector<cell>{{t0, t0 + minute_ms, "/a", 1},
                                 {t0, t0 + minute_ms, "/b", 1},
                                 {t0, t0 + minute_ms, "/c", 1}}));
    finish(*w);
}

TEST_F(Worker, FlushMakesRowsDurable) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time});
    auto d = make_dead_letter(dead_letter_reason::missing_timestamp, "{}", 2, t0 + 1, t0);
    process(*w, {a.get(), d.get()});
    auto r = w->flush();
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(w->rows_durable(), 2u);
    EXPECT_GT(w->bytes_written(), 0u);
    EXPECT_EQ(read_events(_dir.path).size(), 1u);
    finish(*w);
}

TEST_F(Worker, RunsSeveralQueriesEachWithItsFilterWindowAndDelay) {
    query_def clicks = reference();
    clicks.name = "clicks_by_user";
    clicks.group_by = {"user_id", "page"};
    clicks.filter = filter_def{"event_type", "click", false};
    clicks.window = window_def{window_kind::hopping, 2 * minute_ms, minute_ms, 0};
    clicks.watermark_delay_ms = 0;
    auto w = open({reference(), clicks});
    ASSERT_NE(w, nullptr);
    auto v1 = make_event({"v1", t0 + 10, no_time, "/a", "alice", "page_view"});
    auto c1 = make_event({"c1", t0 + 20, t0 + 10, "/a", "alice", "click"});
    auto c2 = make_event({"c2", t0 + minute_ms + 5, t0 + 20, "/a", "alice", "click"});
    // W of clicks (delay 0) = t0 + 60005: window [t0 - 1 min, t0 + 1 min) has closed, so
    // c3 misses it (late for clicks) but still counts in [t0, t0 + 2 min); the reference
    // query (delay 10 min) takes it normally.
    auto c3 = make_event({"c3", t0 + 30, t0 + minute_ms + 5, "/a", "alice", "click"});
    process(*w, {v1.get(), c1.get(), c2.get(), c3.get()});
    EXPECT_EQ(w->counters().late_events.load(), 1u);
    EXPECT_EQ(progress(0).late_events.load(), 0u);
    EXPECT_EQ(progress(1).late_events.load(), 1u);
    EXPECT_EQ(progress(0).events.load(), 4u);
    EXPECT_EQ(progress(1).events.load(), 3u);
    finish(*w);
    EXPECT_EQ(cells_of(_channel->published, 1),
              (std::vector<cell>{{t0, t0 + minute_ms, "/a", 3},
                                 {t0 + minute_ms, t0 + 2 * minute_ms, "/a", 1}}));
    std::string key;
    for (std::string_view part : {std::string_view("alice"), std::string_view("/a")}) {
        uint32_t len = uint32_t(part.size());
        key.append(reinterpret_cast<const char*>(&len), 4);
        key.append(part);
    }
    EXPECT_EQ(cells_of(_channel->published, 2),
              (std::vector<cell>{{t0 - minute_ms, t0 + minute_ms, key, 1},
                                 {t0, t0 + 2 * minute_ms, key, 3},
                                 {t0 + minute_ms, t0 + 3 * minute_ms, key, 1}}));
    auto rows = read_events(_dir.path);
    EXPECT_EQ(rows.at("c3").late, 1);
    EXPECT_EQ(rows.at("c2").late, 0);
}

TEST_F(Worker, QueryAddedAtRunTimeCountsOnlyEventsOfItsGeneration) {
    auto w = open({});
    ASSERT_NE(w, nullptr);
    auto q = compile_or_die(reference(), _catalog, 7, /*start_generation=*/5, event_bytes_max);
    ASSERT_NE(q, nullptr);
    _queries.push_back(q);
    worker_command& cmd = w->mailbox().cmd();
    cmd.what = worker_command::op::add_query;
    cmd.query = q;
    cmd.state = std::make_unique<window_state>(*q);
    uint64_t seq = w->mailbox().post();
    w->tick(1);
    ASSERT_TRUE(w->mailbox().done(seq));
    EXPECT_TRUE(w->mailbox().cmd().ok);
    EXPECT_EQ(w->queries(), 1u);

    auto before = make_event({"before", t0 + 1, no_time, "/a"}, t0, 4);
    auto after = make_event({"after", t0 + 2, t0 + 1, "/a"}, t0, 5);
    process(*w, {before.get(), after.get()});
    EXPECT_EQ(w->counters().events_accepted.load(), 2u);
    EXPECT_EQ(progress().events.load(), 1u);

    // A live snapshot copies the open cell without closing it.
    cmd.what = worker_command::op::snapshot;
    cmd.uid = 7;
    cmd.snapshot_id = 11;
    seq = w->mailbox().post();
    w->tick(2);
    ASSERT_TRUE(w->mailbox().done(seq));
    ASSERT_EQ(_channel->published.size(), 1u);
    EXPECT_EQ(_channel->published[0].kind, batch_kind::snapshot_end);
    EXPECT_EQ(_channel->published[0].snapshot_id, 11u);
    ASSERT_EQ(_channel->published[0].cells.size(), 1u);
    EXPECT_EQ(first_word(_channel->published[0].cells[0].blob), 1u);

    // Removal hands the state back to the poster.
    cmd.what = worker_command::op::remove_query;
    cmd.uid = 7;
    seq = w->mailbox().post();
    w->tick(3);
    ASSERT_TRUE(w->mailbox().done(seq));
    EXPECT_TRUE(cmd.ok);
    EXPECT_NE(cmd.state, nullptr);
    EXPECT_EQ(cmd.query, q);
    EXPECT_EQ(w->queries(), 0u);
    cmd.state.reset();
    cmd.query.reset();
    finish(*w);
    EXPECT_TRUE(cells_of(_channel->published, 7).empty());
}

TEST_F(Worker, FinishPublishesEverythingAndReadsBack) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    std::vector<std::unique_ptr<slot_buffer>> slots;
    slots.push_back(make_event({"e1", t0 + 5, no_time, "/p1", "alice", "click"}));
    slots.push_back(make_event({"e2", t0 + 6, t0 + 5, "/p2", "bob", "page_view"}));
    slots.push_back(make_event({"e1", t0 + 7, t0 + 6, "/p1", "alice", "click"})); // duplicate
    slots.push_back(make_event({"e3", t0 + minute_ms, t0 + 6, "/p1", "carol", "view"}));
    slots.push_back(make_dead_letter(dead_letter_reason::future_timestamp, R"({"timestamp":1})",
                                     15, t0 + minute_ms, t0 + 100));
    std::vector<event_slot*> v;
    for (auto& s : slots) v.push_back(s->get());
    w->process(v.data(), uint32_t(v.size()));
    w->tick(1);

    finish(*w);
    EXPECT_EQ(w->rows_durable(), 4u); // three events and one dead letter
    EXPECT_EQ(cells_of(_channel->published),
              (std::vector<cell>{{t0, t0 + minute_ms, "/p1", 1},
                                 {t0, t0 + minute_ms, "/p2", 1},
                                 {t0 + minute_ms, t0 + 2 * minute_ms, "/p1", 1}}));
    EXPECT_EQ(_channel->acquired, _channel->published.size());

    auto rows = read_events(_dir.path);
    ASSERT_EQ(rows.size(), 3u);
    const event_row& e1 = rows.at("e1");
    EXPECT_EQ(e1.event_time_ms, t0 + 5);
    // The store derives identities from event_id (storage/event_identity.h).
    EXPECT_EQ(e1.id_hi, storage::identity_of_event_id("e1").hi);
    EXPECT_EQ(e1.id_lo, storage::identity_of_event_id("e1").lo);
    EXPECT_EQ(e1.user_id, "alice");
    EXPECT_EQ(e1.event_type, "click");
    EXPECT_EQ(e1.page, "/p1");
    EXPECT_EQ(e1.late, 0);
    EXPECT_EQ(e1.raw, raw_of({"e1", t0 + 5, 0, "/p1", "alice", "click"}));
    auto dead = read_dead_letters(_dir.path);
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].reason, "future_timestamp");

    // Time-range scans see only the rows in range.
    uint64_t in_range = 0;
    auto r = storage::scan_table(_dir.path, "events", t0 + minute_ms, INT64_MAX,
                                 [&](const storage::column_batch& b) { in_range += b.rows(); });
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(in_range, 1u);
}

TEST_F(Worker, CutsRawWhereTheRxFoundTheFields) {
    // The page's text is also the user_id's and a key. A search of the text would cut
    // the first quoted "page" still free for each reference (the key for `page`); the
    // worker hands the places where the RX found each field and the timestamp.
    _uncompressed = true;
    auto w = open();
    ASSERT_NE(w, nullptr);
    const std::string time = format_rfc3339_ms(t0 + 5);
    const std::string raw = R"({"event_id":"e1","user_id":"page","timestamp":")" + time +
                            R"(","event_type":"click","page":"page"})";
    auto b = std::make_unique<slot_buffer>();
    event_slot& s = **b;
    s.kind = slot_kind::event;
    s.has_event_id = 1;
    s.id = id_of("e1");
    s.event_time_ms = t0 + 5;
    s.max_time_before_ms = no_time;
    s.received_ms = t0;
    s.generation = 0;
    b->set_raw(raw);
    // In place, as the RX leaves strings without escapes.
    s.event_id = field_ref{uint32_t(raw.find("e1")), 2};
    s.user_id = field_ref{uint32_t(raw.find("\"page\"") + 1), 4};
    s.event_type = field_ref{uint32_t(raw.find("click")), 5};
    s.page = field_ref{uint32_t(raw.rfind("page")), 4};
    s.time_off = uint32_t(raw.find(time));
    process(*w, {b.get()});
    finish(*w);

    auto rows = read_events(_dir.path);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows.at("e1").raw, raw);
    // The skeleton in the segment: markers 1..4 are event_id, user_id, event_type, page;
    // 7 the time's millisecond rendering (storage/format/encoding_ref_packed_string.cpp).
    auto segs = storage::list_segments(_dir.path + "/events");
    ASSERT_TRUE(segs) << segs.err().message;
    ASSERT_EQ(segs->size(), 1u);
    std::ifstream in((*segs)[0].path, std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(file.find("{\"event_id\":\"\x01\",\"user_id\":\"\x02\",\"timestamp\":\"\x07Z\","
                        "\"event_type\":\"\x03\",\"page\":\"\x04\"}"),
              std::string::npos);
}

TEST_F(Worker, WatermarkNeverMovesBackwardsAndEmptyWindowsHaveNoRow) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1000, no_time, "/a"});
    auto wm = make_watermark(t0 + 20 * minute_ms);
    // A stamp from an RX that has seen less (another queue): W stays where it was.
    auto b = make_event({"b", t0 + 10 * minute_ms - 1, t0 + 5 * minute_ms, "/b"});
    auto c = make_event({"c", t0 + 15 * minute_ms, t0 + 5 * minute_ms, "/c"});
    process(*w, {a.get(), wm.get(), b.get(), c.get()});
    EXPECT_EQ(w->watermark_ms(), t0 + 10 * minute_ms);
    EXPECT_EQ(w->counters().max_time_ms.load(), t0 + 20 * minute_ms);
    EXPECT_EQ(w->counters().late_events.load(), 1u); // b's window ends at W
    finish(*w);
    // Windows between the events had none: no cell, no row.
    EXPECT_EQ(cells_of(_channel->published), (std::vector<cell>{{t0, t0 + minute_ms, "/a", 1},
                                                                {t0 + 15 * minute_ms, t0 + 16 * minute_ms, "/c", 1}}));
}

TEST_F(Worker, RestoredMaxTimeJudgesLatenessAfterRestart) {
    worker_config c = config();
    c.restored_max_time_ms = t0 + 20 * minute_ms;
    _channel = std::make_unique<test_channel>();
    auto w = worker::open(c, _channel->channel());
    ASSERT_TRUE(w) << w.err().message;
    auto q = compile_or_die(reference(), _catalog);
    _queries.push_back(q);
    ASSERT_TRUE((*w)->add_query(q, std::make_unique<window_state>(*q), INT64_MIN));
    // The RX restarted with no max: the stamp is lower than what the store had seen.
    auto old = make_event({"old", t0 + 9 * minute_ms, no_time});
    process(**w, {old.get()});
    EXPECT_EQ((*w)->counters().late_events.load(), 1u);
    EXPECT_EQ((*w)->watermark_ms(), t0 + 10 * minute_ms); // did not move backwards
    finish(**w);
}

// Kafka acks=all waits on slots_durable: per RX lcore, the event and dead-letter slots
// processed whose rows (or, for a duplicate, its original's row) an fdatasync covers.
TEST_F(Worker, SlotsDurableCountsPerRxOnlyOnceTheirRowsAreSynced) {
    _flush_interval_ms = 60'000; // no group commit during the test: only flush() syncs
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time});
    auto dup = make_event({"a", t0 + 1, t0 + 1});
    auto b = make_event({"b", t0 + 2, t0 + 1});
    auto d = make_dead_letter(dead_letter_reason::parse_error, "x", 1, t0 + 2, t0);
    auto wm = make_watermark(t0 + 2);
    a->get()->rx_index = dup->get()->rx_index = b->get()->rx_index = 2;
    d->get()->rx_index = 5;
    wm->get()->rx_index = 2;
    process(*w, {a.get(), dup.get(), d.get(), wm.get(), b.get()});
    for (int i = 0; i < 20; ++i) w->tick(i);
    EXPECT_EQ(w->slots_durable(2).load(), 0u);
    EXPECT_EQ(w->slots_durable(5).load(), 0u);
    ASSERT_TRUE(w->flush());
    EXPECT_EQ(w->slots_durable(2).load(), 3u); // a, its duplicate and b; not the watermark
    EXPECT_EQ(w->slots_durable(5).load(), 1u);
    EXPECT_EQ(w->slots_durable(0).load(), 0u);
    auto c = make_event({"c", t0 + 3, t0 + 2});
    c->get()->rx_index = 2;
    process(*w, {c.get()});
    for (int i = 20; i < 40; ++i) w->tick(i);
    EXPECT_EQ(w->slots_durable(2).load(), 3u);
    ASSERT_TRUE(w->flush());
    EXPECT_EQ(w->slots_durable(2).load(), 4u);
    finish(*w);
}

// Kafka acks=all stores slots_wanted: once the worker has processed that many of that RX's
// slots it commits at once (one fdatasync), not at the group-commit interval; before it has
// processed them it does not commit for them.
TEST_F(Worker, SlotsWantedCommitsOnceTheWorkerHasProcessedThem) {
    _flush_interval_ms = 60'000; // the interval never fires: only slots_wanted commits
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time});
    auto b = make_event({"b", t0 + 2, t0 + 1});
    auto c = make_event({"c", t0 + 3, t0 + 2});
    a->get()->rx_index = b->get()->rx_index = c->get()->rx_index = 3;
    process(*w, {a.get(), b.get()});
    w->slots_wanted(3).store(3); // c is not processed yet: no commit for it
    for (int i = 0; i < 20; ++i) w->tick(i);
    EXPECT_EQ(w->events_writer().syncs(), 0u);
    EXPECT_EQ(w->slots_durable(3).load(), 0u);
    process(*w, {c.get()});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (int i = 20; w->slots_durable(3).load() < 3 && std::chrono::steady_clock::now() < deadline;
         ++i) {
        w->tick(i);
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    EXPECT_EQ(w->slots_durable(3).load(), 3u);
    EXPECT_EQ(w->events_writer().rows_durable(), 3u);
    EXPECT_EQ(w->events_writer().syncs(), 1u); // one commit covered all three
    // Nothing more is wanted: no further commit, however often it ticks.
    auto d = make_event({"d", t0 + 4, t0 + 3});
    d->get()->rx_index = 3;
    process(*w, {d.get()});
    for (int i = 0; i < 20; ++i) w->tick(1000 + i);
    EXPECT_EQ(w->events_writer().syncs(), 1u);
    EXPECT_EQ(w->slots_durable(3).load(), 3u);
    finish(*w);
}

// The RX waiting for those slots may block (kafka_listener::wait): the worker writes its
// wake eventfd when slots_durable advances, and only then.
TEST_F(Worker, DurableSlotsWakeTheRxThatWaits) {
    _flush_interval_ms = 60'000;
    auto w = open();
    ASSERT_NE(w, nullptr);
    const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(efd, 0);
    w->set_durable_wake(2, efd);
    uint64_t count = 0;
    auto e = make_event({"a", t0 + 1, no_time});
    e->get()->rx_index = 2;
    process(*w, {e.get()});
    for (int i = 0; i < 5; ++i) w->tick(i);
    EXPECT_EQ(read(efd, &count, sizeof count), -1); // nothing wanted, nothing durable: no wake
    w->slots_wanted(2).store(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (int i = 5; w->slots_durable(2).load() < 1 && std::chrono::steady_clock::now() < deadline;
         ++i) {
        w->tick(i);
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ASSERT_EQ(w->slots_durable(2).load(), 1u);
    ASSERT_EQ(read(efd, &count, sizeof count), ssize_t(sizeof count));
    EXPECT_GE(count, 1u);
    for (int i = 0; i < 5; ++i) w->tick(1000 + i);
    EXPECT_EQ(read(efd, &count, sizeof count), -1); // no further advance: no further wake
    finish(*w);
    close(efd);
}

// A commit publishes every slot processed before it was asked for, even with many ticks
// before it and more slots arriving during its sync: one sync, not one per older mark
// (with a single mark taken at the first tick, the 30 would need a second commit).
TEST_F(Worker, SlotsDurablePublishesTheLastMarkACommitCovers) {
    _flush_interval_ms = 60'000;
    auto w = open();
    ASSERT_NE(w, nullptr);
    std::vector<std::unique_ptr<slot_buffer>> events;
    auto one_more = [&](int k) {
        events.push_back(make_event({"e" + std::to_string(k), t0 + 1 + k, t0 + k}));
        events.back()->get()->rx_index = 1;
        process(*w, {events.back().get()});
    };
    for (int k = 0; k < 30; ++k) {
        one_more(k);
        w->tick(k); // ticks without a commit
    }
    EXPECT_EQ(w->slots_durable(1).load(), 0u);
    w->slots_wanted(1).store(30);
    w->tick(100); // commits the 30 rows; the sync completes in a later tick's poll
    for (int k = 30; k < 40; ++k) one_more(k); // arrive during the sync
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (int i = 101; w->slots_durable(1).load() < 30 && std::chrono::steady_clock::now() < deadline;
         ++i) {
        w->tick(i);
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    for (int i = 0; i < 20; ++i) w->tick(10'000 + i); // nothing more is wanted
    EXPECT_EQ(w->slots_durable(1).load(), 30u);
    EXPECT_EQ(w->events_writer().syncs(), 1u);
    EXPECT_EQ(w->events_writer().rows_durable(), 30u);
    finish(*w);
}

// A slot that adds no row (a duplicate) after the last commit is durable with its original:
// it is published without a commit (kafkajs sends the duplicate in a request of its own,
// and its acks=all answer must not wait for a commit that is never asked for).
TEST_F(Worker, SlotsWantedForADuplicateNeedNoCommit) {
    _flush_interval_ms = 60'000;
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time});
    auto dup = make_event({"a", t0 + 1, t0 + 1});
    a->get()->rx_index = dup->get()->rx_index = 2;
    process(*w, {a.get()});
    w->slots_wanted(2).store(1);
    int64_t now = 1'000'000'000;
    auto wait_durable = [&](uint64_t n) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (w->slots_durable(2).load() < n && std::chrono::steady_clock::now() < deadline) {
            w->tick(now += 1000);
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
    };
    wait_durable(1);
    ASSERT_EQ(w->slots_durable(2).load(), 1u);
    process(*w, {dup.get()});
    w->slots_wanted(2).store(2);
    wait_durable(2);
    EXPECT_EQ(w->slots_durable(2).load(), 2u);
    EXPECT_EQ(w->counters().duplicates.load(), 1u);
    EXPECT_EQ(w->events_writer().syncs(), 1u);
    finish(*w);
}

} // namespace
} // namespace sluice::processing

namespace sluice::processing {
namespace {

// What one run of a worker left: every query's closed cells and counters, the worker's
// counters and the stored rows.
struct run_outcome {
    std::vector<std::vector<cell>> cells;
    std::vector<uint64_t> query_events, query_late, query_overflow;
    uint64_t accepted = 0, duplicates = 0, late = 0, dead = 0, overflow = 0;
    std::map<std::string, event_row> rows;
};

class WorkerBursts : public Worker {
  protected:
    run_outcome run(const std::vector<query_def>& queries,
                    const std::vector<std::unique_ptr<slot_buffer>>& slots, uint32_t burst,
                    const std::string& subdir) {
        _data_dir = _dir.path + "/" + subdir;
        std::filesystem::create_directories(_data_dir);
        _queries.clear();
        auto w = open(queries);
        run_outcome out;
        if (w == nullptr) return out;
        std::vector<event_slot*> v;
        for (const auto& s : slots) v.push_back(s->get());
        for (size_t i = 0; i < v.size(); i += burst)
            w->process(v.data() + i, uint32_t(std::min<size_t>(burst, v.size() - i)));
        auto r = w->finish();
        EXPECT_TRUE(r) << (r ? "" : r.err().message);
        for (uint32_t q = 0; q < queries.size(); ++q) {
            out.cells.push_back(cells_of(_channel->published, q + 1));
            out.query_events.push_back(progress(q).events.load());
            out.query_late.push_back(progress(q).late_events.load());
            out.query_overflow.push_back(progress(q).overflow.load());
        }
        const worker_counters& c = w->counters();
        out.accepted = c.events_accepted.load();
        out.duplicates = c.duplicates.load();
        out.late = c.late_events.load();
        out.dead = c.dead_letters.load();
        out.overflow = c.window_overflow.load();
        out.rows = read_events(_data_dir);
        return out;
    }
};

// The worker's key pass (prepare_windows: each accepted event's group key built and
// hashed once per query, index slots and cells prefetched before the adds) must leave
// exactly what one event per process() call leaves: queries of one key field (a view of
// the slot) and of several (built into the burst's key buffer, and built at the add when
// long keys fill it), a filter, hopping and session windows, duplicates inside a burst,
// late events, dead letters and watermark slots between events, a query whose cells run
// out (overflow).
TEST_F(WorkerBursts, KeyPassGivesWhatOneEventAtATimeGives) {
    query_def pages = reference();
    query_def clicks = reference();
    clicks.name = "clicks_by_user_page";
    clicks.group_by = {"user_id", "page"};
    clicks.filter = filter_def{"event_type", "click", false};
    clicks.window = window_def{window_kind::hopping, 2 * minute_ms, minute_ms, 0};
    clicks.watermark_delay_ms = 0;
    query_def sessions = reference();
    sessions.name = "sessions_by_user";
    sessions.group_by = {"user_id"};
    sessions.window = window_def{window_kind::session, 0, 0, 30'000};
    sessions.watermark_delay_ms = minute_ms;
    query_def small = reference();
    small.name = "types_small";
    small.group_by = {"event_type", "user_id"};
    small.memory_bytes = 1 << 20; // a 256 KiB key arena: the long keys below overflow it
    const std::vector<query_def> queries{pages, clicks, sessions, small};

    std::mt19937_64 rng(14);
    std::vector<std::unique_ptr<slot_buffer>> slots;
    int64_t max_time = no_time;
    std::vector<std::string> ids;
    for (uint32_t i = 0; i < 700; ++i) {
        const uint32_t pick = uint32_t(rng() % 100);
        if (pick < 3) {
            slots.push_back(make_dead_letter(dead_letter_reason::parse_error, "{bad", 4, max_time, t0));
            continue;
        }
        if (pick < 5 && max_time != no_time) {
            slots.push_back(make_watermark(max_time));
            continue;
        }
        event_spec e;
        if (pick < 15 && !ids.empty()) {
            e.event_id = ids[rng() % ids.size()]; // a duplicate, often of the same burst
        } else {
            e.event_id = "e" + std::to_string(i);
            ids.push_back(e.event_id);
        }
        // Mostly moving forward, some behind the watermark (late).
        e.event_time_ms = t0 + int64_t(i) * 900 - int64_t(rng() % (pick < 25 ? 20 * minute_ms : 5'000));
        e.max_time_before_ms = max_time;
        e.page = "/p" + std::to_string(rng() % 17);
        // Long user ids fill the key buffer of the several-field queries.
        e.user_id = rng() % 4 == 0 ? std::string(1500 + rng() % 2000, char('a' + rng() % 5))
                                   : "u" + std::to_string(rng() % 9);
        e.event_type = rng() % 3 == 0 ? "click" : "page_view";
        if (max_time == no_time || e.event_time_ms > max_time) max_time = e.event_time_ms;
        slots.push_back(make_event(e));
    }

    const run_outcome burst = run(queries, slots, 200, "burst");
    const run_outcome single = run(queries, slots, 1, "single");
    ASSERT_EQ(burst.cells.size(), queries.size());
    ASSERT_EQ(single.cells.size(), queries.size());
    for (size_t q = 0; q < queries.size(); ++q) {
        EXPECT_EQ(burst.cells[q], single.cells[q]) << queries[q].name;
        EXPECT_EQ(burst.query_events[q], single.query_events[q]) << queries[q].name;
        EXPECT_EQ(burst.query_late[q], single.query_late[q]) << queries[q].name;
        EXPECT_EQ(burst.query_overflow[q], single.query_overflow[q]) << queries[q].name;
        EXPECT_FALSE(burst.cells[q].empty()) << queries[q].name;
    }
    EXPECT_EQ(burst.accepted, single.accepted);
    EXPECT_EQ(burst.duplicates, single.duplicates);
    EXPECT_EQ(burst.late, single.late);
    EXPECT_EQ(burst.dead, single.dead);
    EXPECT_EQ(burst.overflow, single.overflow);
    // The streams hold every case named above.
    EXPECT_GT(burst.duplicates, 0u);
    EXPECT_GT(burst.late, 0u);
    EXPECT_GT(burst.dead, 0u);
    EXPECT_GT(burst.query_overflow[3], 0u);
    EXPECT_GT(burst.query_late[2], 0u);
    ASSERT_EQ(burst.rows.size(), single.rows.size());
    for (const auto& [id, row] : burst.rows) {
        const auto it = single.rows.find(id);
        ASSERT_NE(it, single.rows.end()) << id;
        EXPECT_EQ(row.late, it->second.late) << id;
        EXPECT_EQ(row.raw, it->second.raw) << id;
        EXPECT_EQ(row.max_time_ms, it->second.max_time_ms) << id;
    }
}

} // namespace
} // namespace sluice::processing
