// The worker's end-to-end latency histograms: RX stamp -> window-visible and -> durable.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "base/tsc.h"
#include "processing/query_runtime.h"
#include "processing/worker.h"

namespace sluice::processing {
namespace {

constexpr uint32_t event_bytes_max = 4096;
constexpr int64_t minute_ms = 60'000;
constexpr int64_t t0 = 1'740'000'000'000;

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/sluice-worker-latency-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) std::abort();
        path = tmpl;
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

struct slot_deleter {
    void operator()(event_slot* s) const {
        ::operator delete(s, std::align_val_t(alignof(event_slot)));
    }
};
using slot_ptr = std::unique_ptr<event_slot, slot_deleter>;

slot_ptr make_event(uint64_t n, int64_t time_ms, int64_t max_before_ms, uint64_t rx_tsc) {
    auto* s = static_cast<event_slot*>(
        ::operator new(slot_bytes(event_bytes_max), std::align_val_t(alignof(event_slot))));
    std::memset(static_cast<void*>(s), 0, slot_bytes(event_bytes_max));
    std::string raw = "{\"event_id\":\"e" + std::to_string(n) + "\",\"timestamp\":" +
                      std::to_string(time_ms) + ",\"page\":\"/p\"}";
    std::memcpy(s->data(), raw.data(), raw.size());
    s->raw_len = s->raw_len_orig = uint32_t(raw.size());
    s->data_used = s->raw_len + slot_parse_padding;
    std::memcpy(s->data() + s->data_used, "/p", 2);
    s->page = field_ref{s->data_used, 2};
    s->data_used += 2;
    s->kind = slot_kind::event;
    s->id = identity{n * 0x9E3779B97F4A7C15ULL + 1, n};
    s->event_time_ms = time_ms;
    s->max_time_before_ms = max_before_ms;
    s->received_ms = t0;
    s->rx_tsc = int64_t(rx_tsc);
    return slot_ptr(s);
}

// A channel whose single buffer is reused: these tests never look at window results.
class sink_channel {
  public:
    sink_channel() : _mem(new char[sizeof(partial_batch) + (1u << 16)]) {
        _batch = reinterpret_cast<partial_batch*>(_mem.get());
        _batch->capacity = 1u << 16;
    }
    partial_channel channel() { return {this, &acquire, &publish}; }

  private:
    static partial_batch* acquire(void* ctx) noexcept { return static_cast<sink_channel*>(ctx)->_batch; }
    static void publish(void*, partial_batch*) noexcept {}
    std::unique_ptr<char[]> _mem;
    partial_batch* _batch;
};

class WorkerLatency : public ::testing::Test {
  protected:
    std::unique_ptr<worker> open(uint32_t hold_us = 0) {
        worker_config c;
        c.data_dir = dir.path;
        c.dedup_memory_bytes = 1u << 20;
        c.storage.direct_io = false;
        c.storage.flush_interval_ms = 1000;
        c.test_hold_us = hold_us;
        auto w = worker::open(c, channel.channel());
        EXPECT_TRUE(w.ok()) << w.err().message;
        if (!w.ok()) return nullptr;
        // The reference query: tumbling 1 min by page, 10 min delay.
        query_def d = reference_query();
        d.memory_bytes = 1u << 20;
        auto q = compile(d, catalog, 1, 0, event_bytes_max);
        EXPECT_TRUE(q.ok());
        if (!q.ok()) return nullptr;
        EXPECT_TRUE((*w)->add_query(*q, std::make_unique<window_state>(**q), INT64_MIN).ok());
        return std::move(w.value());
    }
    void process(worker& w, std::vector<slot_ptr>& slots) {
        std::vector<event_slot*> raw;
        for (auto& s : slots)
            raw.push_back(s.get());
        w.process(raw.data(), uint32_t(raw.size()));
    }

    temp_dir dir;
    sink_channel channel;
    field_catalog catalog;
    uint64_t ms = tsc_hz() / 1000;
};

TEST_F(WorkerLatency, WindowVisibleCountsEachEventFromItsRxStamp) {
    auto w = open();
    ASSERT_TRUE(w);
    uint64_t now = tsc_now();
    std::vector<slot_ptr> slots;
    // 10 events stamped 50 ms ago, 5 stamped 5 ms ago.
    for (uint64_t i = 0; i < 15; ++i)
        slots.push_back(make_event(i, t0 + 1000, t0, now - (i < 10 ? 50 : 5) * ms));
    process(*w, slots);
    auto s = w->latency().window_visible.snapshot();
    ASSERT_EQ(s.count(), 15u);
    EXPECT_GE(s.quantile(0.5), 49 * ms);
    EXPECT_LT(s.quantile(0.5), 500 * ms);
    EXPECT_GE(s.quantile(0.2), 4 * ms);
    EXPECT_LT(s.quantile(0.2), 49 * ms);
    // Nothing is durable before a sync.
    EXPECT_EQ(w->latency().durable.snapshot().count(), 0u);
    ASSERT_TRUE(w->finish());
}

TEST_F(WorkerLatency, LateAndUnstampedEventsAreNotWindowVisible) {
    auto w = open();
    ASSERT_TRUE(w);
    uint64_t now = tsc_now();
    std::vector<slot_ptr> slots;
    // The watermark is 10 min behind t0 + 1 h: an event at t0 is late.
    slots.push_back(make_event(1, t0 + 60 * minute_ms, t0 + 60 * minute_ms, now));
    slots.push_back(make_event(2, t0, t0 + 60 * minute_ms, now));
    slots.push_back(make_event(3, t0 + 60 * minute_ms, t0 + 60 * minute_ms, 0));
    process(*w, slots);
    EXPECT_EQ(w->counters().late_events.load(), 1u);
    EXPECT_EQ(w->latency().window_visible.snapshot().count(), 1u);
    // Durable counts every stored row that had a stamp, late ones included.
    ASSERT_TRUE(w->flush());
    EXPECT_EQ(w->latency().durable.snapshot().count(), 2u);
    ASSERT_TRUE(w->finish());
}

TEST_F(WorkerLatency, DurableIsMeasuredWhenTheRowsAreSynced) {
    auto w = open();
    ASSERT_TRUE(w);
    uint64_t stamp = tsc_now();
    std::vector<slot_ptr> slots;
    for (uint64_t i = 0; i < 100; ++i)
        slots.push_back(make_event(i, t0 + 1000, t0, stamp));
    process(*w, slots);
    struct timespec pause{0, 30'000'000};
    nanosleep(&pause, nullptr);
    ASSERT_TRUE(w->flush());
    uint64_t after = tsc_now();
    auto d = w->latency().durable.snapshot();
    ASSERT_EQ(d.count(), 100u);
    EXPECT_GE(d.quantile(0.5), 29 * ms);
    EXPECT_LE(d.max(), after - stamp);
    // Durable comes after visible, event by event.
    EXPECT_GE(d.quantile(0.5), w->latency().window_visible.snapshot().quantile(0.5));
    ASSERT_TRUE(w->finish());
}

TEST_F(WorkerLatency, TestHoldDelaysEachBurstByTheKnownAmount) {
    auto w = open(20'000); // 20 ms
    ASSERT_TRUE(w);
    std::vector<slot_ptr> slots;
    uint64_t stamp = tsc_now();
    for (uint64_t i = 0; i < 4; ++i)
        slots.push_back(make_event(i, t0 + 1000, t0, stamp));
    process(*w, slots);
    EXPECT_GE(tsc_now() - stamp, 20 * ms);
    auto s = w->latency().window_visible.snapshot();
    ASSERT_EQ(s.count(), 4u);
    EXPECT_GE(s.quantile(0.5), 19 * ms);
    ASSERT_TRUE(w->finish());
}

} // namespace
} // namespace sluice::processing
