#include "processing/worker.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <tuple>
#include <vector>

#include "storage/schema.h"
#include "storage/table_reader.h"

namespace sluice::processing {
namespace {

namespace ev = storage::events_col;
namespace dl = storage::dead_letters_col;

constexpr uint32_t event_bytes_max = 4096;
constexpr int64_t minute_ms = 60'000;
constexpr int64_t delay_ms = 10 * minute_ms;
constexpr int64_t hour_ms = 60 * minute_ms;
// A minute boundary, so that T0 + k * minute_ms are window starts.
constexpr int64_t t0 = 1'740'000'000'000;
static_assert(t0 % minute_ms == 0);

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/sluice-worker-test-XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        if (p == nullptr) std::abort();
        path = p;
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

// One event_slot with its data area, laid out as the RX parser lays it out: raw bytes,
// parse padding, then the unescaped fields.
class slot_buffer {
  public:
    slot_buffer() {
        _mem = static_cast<event_slot*>(
            ::operator new(slot_bytes(event_bytes_max), std::align_val_t(alignof(event_slot))));
        std::memset(static_cast<void*>(_mem), 0, slot_bytes(event_bytes_max));
    }
    ~slot_buffer() { ::operator delete(_mem, std::align_val_t(alignof(event_slot))); }
    slot_buffer(const slot_buffer&) = delete;
    slot_buffer& operator=(const slot_buffer&) = delete;

    event_slot* get() { return _mem; }
    event_slot& operator*() { return *_mem; }
    event_slot* operator->() { return _mem; }

    void set_raw(std::string_view raw) {
        _mem->raw_len = _mem->raw_len_orig = uint32_t(raw.size());
        std::memcpy(_mem->data(), raw.data(), raw.size());
        _mem->data_used = _mem->raw_len + slot_parse_padding;
    }
    field_ref add_field(std::string_view s) {
        field_ref f{_mem->data_used, uint32_t(s.size())};
        std::memcpy(_mem->data() + f.off, s.data(), s.size());
        _mem->data_used += f.len;
        return f;
    }

  private:
    event_slot* _mem;
};

struct event_spec {
    std::string event_id; // also the identity's source
    int64_t event_time_ms;
    int64_t max_time_before_ms;
    std::string page = "/home";
    std::string user_id = "u1";
    std::string event_type = "page_view";
};

identity id_of(std::string_view s) {
    // Any fixed, distinct 128-bit value per string does; the worker never rehashes.
    identity id{std::hash<std::string_view>{}(s) | 1, 0};
    id.lo = id.hi * 0x9E3779B97F4A7C15ULL + s.size();
    return id;
}

std::string raw_of(const event_spec& e) {
    return R"({"event_id":")" + e.event_id + R"(","user_id":")" + e.user_id +
           R"(","event_type":")" + e.event_type + R"(","timestamp":)" +
           std::to_string(e.event_time_ms) + R"(,"page":")" + e.page + R"("})";
}

std::unique_ptr<slot_buffer> make_event(const event_spec& e, int64_t received_ms = t0) {
    auto b = std::make_unique<slot_buffer>();
    event_slot& s = **b;
    s.kind = slot_kind::event;
    s.has_event_id = 1;
    s.id = id_of(e.event_id);
    s.event_time_ms = e.event_time_ms;
    s.max_time_before_ms = e.max_time_before_ms;
    s.received_ms = received_ms;
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

// The merger side of the worker's partial_channel: a few heap buffers on a free list; a
// published batch is copied out and its buffer goes back to the free list, as the merger
// hands buffers back once merged.
struct cell {
    int64_t window_start_ms;
    std::string key;
    uint64_t count;
    friend bool operator==(const cell&, const cell&) = default;
    friend bool operator<(const cell& a, const cell& b) {
        return std::tie(a.window_start_ms, a.key, a.count) <
               std::tie(b.window_start_ms, b.key, b.count);
    }
};

struct published_batch {
    uint32_t worker;
    int64_t closed_until_ms;
    bool final;
    std::vector<cell> cells; // sorted
};

class test_channel {
  public:
    explicit test_channel(uint32_t capacity_bytes, uint32_t buffers = 3) {
        for (uint32_t i = 0; i < buffers; ++i) {
            _buffers.emplace_back(new char[sizeof(partial_batch) + capacity_bytes]);
            auto* b = reinterpret_cast<partial_batch*>(_buffers.back().get());
            b->capacity = capacity_bytes;
            b->reset(UINT32_MAX);
            _free.push_back(b);
        }
    }
    partial_channel channel() { return {this, &acquire, &publish}; }

    std::vector<published_batch> published;
    uint32_t acquired = 0;

  private:
    static partial_batch* acquire(void* ctx) noexcept {
        auto* self = static_cast<test_channel*>(ctx);
        // The worker holds at most one buffer at a time: the free list never runs dry.
        SLUICE_ASSERT(!self->_free.empty());
        partial_batch* b = self->_free.back();
        self->_free.pop_back();
        ++self->acquired;
        return b;
    }
    static void publish(void* ctx, partial_batch* batch) noexcept {
        auto* self = static_cast<test_channel*>(ctx);
        published_batch p{batch->worker, batch->closed_until_ms, batch->final, {}};
        batch->for_each([&](int64_t start, std::string_view key, uint64_t count) {
            p.cells.push_back(cell{start, std::string(key), count});
        });
        std::sort(p.cells.begin(), p.cells.end());
        self->published.push_back(std::move(p));
        self->_free.push_back(batch);
    }

    std::vector<std::unique_ptr<char[]>> _buffers;
    std::vector<partial_batch*> _free;
};

struct event_row {
    int64_t event_time_ms;
    uint64_t id_hi, id_lo;
    std::string event_id, user_id, event_type, page;
    uint8_t late;
    std::string raw;
};

struct dead_letter_row {
    int64_t received_ms;
    std::string reason;
    uint64_t raw_len;
    std::string raw;
};

std::map<std::string, event_row> read_events(const std::string& dir) {
    std::map<std::string, event_row> rows; // by event_id
    auto r = storage::scan_table(dir, "events", INT64_MIN, INT64_MAX,
                                 [&](const storage::column_batch& b) {
                                     for (uint32_t i = 0; i < b.rows(); ++i) {
                                         auto id = storage::identity_of_stored_event(
                                             !b.is_null(ev::event_id, i),
                                             b.string_at(ev::event_id, i),
                                             b.string_at(ev::raw, i));
                                         event_row e{b.i64_at(ev::event_time_ms, i), id.hi, id.lo,
                                                     std::string(b.string_at(ev::event_id, i)),
                                                     std::string(b.string_at(ev::user_id, i)),
                                                     std::string(b.string_at(ev::event_type, i)),
                                                     std::string(b.string_at(ev::page, i)),
                                                     b.u8_at(ev::late, i),
                                                     std::string(b.string_at(ev::raw, i))};
                                         // A row stored twice would collapse here: count too.
                                         EXPECT_TRUE(rows.emplace(e.event_id, e).second)
                                             << "stored twice: " << e.event_id;
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
    auto r = storage::scan_table(dir, "dead_letters", INT64_MIN, INT64_MAX,
                                 [&](const storage::column_batch& b) {
                                     for (uint32_t i = 0; i < b.rows(); ++i)
                                         rows.push_back({b.i64_at(dl::received_ms, i),
                                                         std::string(b.string_at(dl::reason, i)),
                                                         b.u64_at(dl::raw_len, i),
                                                         std::string(b.string_at(dl::raw, i))});
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
        c.window.size_ms = minute_ms;
        c.window_cells_max = 1024;
        c.window_keys_max = 1024;
        c.window_key_bytes_max = 64 << 10;
        c.event_bytes_max = event_bytes_max;
        c.data_dir = _dir.path;
        c.flush_interval_ms = 1;
        return c;
    }
    std::unique_ptr<worker> open(uint32_t partial_capacity_bytes = 64 << 10) {
        _channel = std::make_unique<test_channel>(partial_capacity_bytes);
        auto w = worker::open(config(), _channel->channel());
        EXPECT_TRUE(w) << (w ? "" : w.err().message);
        return w ? std::move(w.value()) : nullptr;
    }
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

    temp_dir _dir;
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
    ASSERT_FALSE(_channel->published.empty());
    const published_batch& last = _channel->published.back();
    EXPECT_TRUE(last.final);
    EXPECT_EQ(last.cells, (std::vector<cell>{{t0, "/home", 2}}));
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
    EXPECT_EQ(c.dead_letters.load(), 0u);

    finish(*w);
    std::vector<cell> all;
    for (const auto& b : _channel->published) all.insert(all.end(), b.cells.begin(), b.cells.end());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, (std::vector<cell>{{t0 + 10 * minute_ms, "/edge", 1}, {m, "/now", 1}}));

    auto rows = read_events(_dir.path);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows.at("late").late, 1);
    EXPECT_EQ(rows.at("first").late, 0);
    EXPECT_EQ(rows.at("on_time").late, 0);
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
    EXPECT_EQ(dead[0].received_ms, t0 + 7);
    EXPECT_EQ(dead[1].reason, "oversize");
    EXPECT_EQ(dead[1].raw, head);
    EXPECT_EQ(dead[1].raw_len, 70'000u);
    EXPECT_EQ(dead[2].reason, "bad_timestamp");
    EXPECT_EQ(dead[2].raw, R"({"timestamp":"x"})");
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

    // W is far below every window end: the tick reports it but closes nothing.
    w->tick(1);
    ASSERT_EQ(_channel->published.size(), 1u);
    EXPECT_EQ(_channel->published[0].worker, 3u);
    EXPECT_TRUE(_channel->published[0].cells.empty());
    EXPECT_EQ(_channel->published[0].closed_until_ms, t0 + 3000 - delay_ms);
    EXPECT_FALSE(_channel->published[0].final);

    // An idle RX's watermark slot: W = t0 + 60001 passes the end of the first window only.
    const int64_t m = t0 + minute_ms + 1 + delay_ms;
    auto wm = make_watermark(m);
    process(*w, {wm.get()});
    EXPECT_EQ(w->counters().events_in.load(), 4u); // watermark slots are not events
    EXPECT_EQ(w->counters().max_time_ms.load(), m);
    EXPECT_EQ(w->watermark_ms(), t0 + minute_ms + 1);
    w->tick(2);
    ASSERT_EQ(_channel->published.size(), 2u);
    const published_batch& closed = _channel->published[1];
    EXPECT_EQ(closed.worker, 3u);
    EXPECT_EQ(closed.closed_until_ms, t0 + minute_ms + 1);
    EXPECT_FALSE(closed.final);
    EXPECT_EQ(closed.cells, (std::vector<cell>{{t0, "/a", 2}, {t0, "/b", 1}}));

    // W has not entered a new window since: nothing more to report.
    w->tick(3);
    EXPECT_EQ(_channel->published.size(), 2u);

    finish(*w);
    ASSERT_EQ(_channel->published.size(), 3u);
    const published_batch& last = _channel->published[2];
    EXPECT_TRUE(last.final);
    EXPECT_EQ(last.closed_until_ms, INT64_MAX);
    EXPECT_EQ(last.cells, (std::vector<cell>{{t0 + minute_ms, "/a", 1}}));
}

TEST_F(Worker, SplitsClosedWindowsOverBatchesAndMarksOnlyTheLastAsClosed) {
    // Room for two records with short keys: three closed cells need two batches.
    auto w = open(2 * partial_batch::record_bytes(2));
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time, "/a"});
    auto b = make_event({"b", t0 + 2, t0 + 1, "/b"});
    auto c = make_event({"c", t0 + 3, t0 + 2, "/c"});
    auto wm = make_watermark(t0 + minute_ms + delay_ms);
    process(*w, {a.get(), b.get(), c.get(), wm.get()});
    w->tick(1);
    ASSERT_EQ(_channel->published.size(), 2u);
    // The first batch must not let the merger finalize: its worker has more to send.
    EXPECT_EQ(_channel->published[0].closed_until_ms, INT64_MIN);
    EXPECT_EQ(_channel->published[0].cells.size(), 2u);
    EXPECT_EQ(_channel->published[1].closed_until_ms, t0 + minute_ms);
    EXPECT_EQ(_channel->published[1].cells.size(), 1u);
    std::vector<cell> all = _channel->published[0].cells;
    all.push_back(_channel->published[1].cells[0]);
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, (std::vector<cell>{{t0, "/a", 1}, {t0, "/b", 1}, {t0, "/c", 1}}));
    finish(*w);
}

TEST_F(Worker, FlushMakesRowsDurable) {
    auto w = open();
    ASSERT_NE(w, nullptr);
    auto a = make_event({"a", t0 + 1, no_time});
    auto d = make_dead_letter(dead_letter_reason::missing_timestamp, "{}", 2, t0 + 1, t0);
    process(*w, {a.get(), d.get()});
    EXPECT_EQ(w->rows_durable(), 0u);
    auto r = w->flush();
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(w->rows_durable(), 2u);
    EXPECT_GT(w->bytes_written(), 0u);
    EXPECT_EQ(read_events(_dir.path).size(), 1u);
    finish(*w);
}

TEST_F(Worker, FinishPublishesFinalBatchAndEverythingReadsBack) {
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
    EXPECT_FALSE(w->storage_failed());
    EXPECT_EQ(w->rows_durable(), 4u); // three events and one dead letter
    EXPECT_GT(w->bytes_written(), 0u);
    ASSERT_FALSE(_channel->published.empty());
    const published_batch& last = _channel->published.back();
    EXPECT_TRUE(last.final);
    EXPECT_EQ(last.closed_until_ms, INT64_MAX);
    EXPECT_EQ(last.worker, 3u);
    // Every window was open until finish(): all of them are in the final batch.
    EXPECT_EQ(last.cells, (std::vector<cell>{
                              {t0, "/p1", 1}, {t0, "/p2", 1}, {t0 + minute_ms, "/p1", 1}}));
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
    EXPECT_EQ(rows.at("e2").user_id, "bob");
    EXPECT_EQ(rows.at("e2").page, "/p2");
    EXPECT_EQ(rows.at("e3").event_time_ms, t0 + minute_ms);
    EXPECT_EQ(rows.at("e3").event_type, "view");

    auto dead = read_dead_letters(_dir.path);
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].reason, "future_timestamp");
    EXPECT_EQ(dead[0].raw, R"({"timestamp":1})");
    EXPECT_EQ(dead[0].raw_len, 15u);
    EXPECT_EQ(dead[0].received_ms, t0 + 100);

    // Time-range scans see only the rows in range.
    uint64_t in_range = 0;
    auto r = storage::scan_table(_dir.path, "events", t0 + minute_ms, INT64_MAX,
                                 [&](const storage::column_batch& b) { in_range += b.rows(); });
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(in_range, 1u);
}

} // namespace
} // namespace sluice::processing
