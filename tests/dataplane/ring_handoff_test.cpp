// RX lcore -> SPSC rings -> worker hand-off, on a real EAL (no hugepages, no PCI): routing
// by identity, dead letters, watermark stamps and broadcasts, counters, back-pressure.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rte_eal.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/eal_setup.h"
#include "dataplane/rx_lcore.h"
#include "processing/event.h"
#include "processing/identity.h"
#include "tests/dataplane/binary_builder.h"

namespace sluice::dataplane {
namespace {

using namespace std::chrono_literals;
using processing::dead_letter_reason;
using processing::event_slot;
using processing::no_time;
using processing::slot_kind;

constexpr uint32_t event_bytes_max = 4096;
constexpr uint16_t udp_port = 5140;
constexpr int64_t t0 = 1'740'000'000'000;
constexpr int64_t now_ms = t0 + 3'600'000; // the RX's wall clock: every t0-based event is past

std::string event_line(const std::string& event_id, int64_t time_ms, const std::string& page) {
    return R"({"event_id":")" + event_id + R"(","user_id":"u","event_type":"page_view",)" +
           R"("timestamp":)" + std::to_string(time_ms) + R"(,"page":")" + page + R"("})";
}

// Ethernet II / IPv4 (no options) / UDP, checksums zero (sluice does not verify them).
std::vector<uint8_t> udp_frame(std::string_view payload, uint16_t dst_port, uint8_t proto = 17) {
    std::vector<uint8_t> f(14 + 20 + 8 + payload.size(), 0);
    uint8_t* eth = f.data();
    std::memset(eth, 0x02, 12);
    eth[12] = 0x08; // IPv4
    eth[13] = 0x00;
    uint8_t* ip = eth + 14;
    ip[0] = 0x45;
    uint16_t total = htons(uint16_t(20 + 8 + payload.size()));
    std::memcpy(ip + 2, &total, 2);
    ip[8] = 64;
    ip[9] = proto;
    uint32_t src = htonl(0x0a000001), dst = htonl(0x0a000002);
    std::memcpy(ip + 12, &src, 4);
    std::memcpy(ip + 16, &dst, 4);
    uint8_t* udp = ip + 20;
    uint16_t sport = htons(40000), dport = htons(dst_port);
    uint16_t ulen = htons(uint16_t(8 + payload.size()));
    std::memcpy(udp, &sport, 2);
    std::memcpy(udp + 2, &dport, 2);
    std::memcpy(udp + 4, &ulen, 2);
    std::memcpy(udp + 8, payload.data(), payload.size());
    return f;
}

uint32_t owner_of_event_id(const std::string& event_id, uint32_t workers) {
    return processing::owner_worker(processing::identity_of_event_id(event_id), workers);
}
uint32_t owner_of_bytes(std::string_view raw, uint32_t workers) {
    return processing::owner_worker(processing::identity_of_bytes(raw), workers);
}

// What a worker saw of one slot; the slot itself goes back to the pool at once.
struct seen_slot {
    slot_kind kind;
    dead_letter_reason reason;
    std::string event_id;
    std::string raw;
    std::string page;
    int64_t event_time_ms;
    int64_t max_time_before_ms;
    int64_t received_ms;
    uint32_t raw_len_orig;
};

class RingHandoff : public ::testing::Test {
  protected:
    static constexpr uint32_t pool_slots = 1023;

    void SetUp() override {
        auto pool = slot_pool_create(pool_slots, processing::slot_bytes(event_bytes_max));
        ASSERT_TRUE(pool) << pool.err().message;
        _pool = pool.value();
        _config.ports.add(udp_port);
        _config.parse.event_bytes_max = event_bytes_max;
    }
    void TearDown() override {
        for (rte_ring* r : _rings) rte_ring_free(r);
        // The pool's name is fixed: the next test creates it again.
        if (_pool) rte_mempool_free(_pool);
    }
    void make_rings(uint32_t workers, uint32_t size) {
        for (uint32_t w = 0; w < workers; ++w) {
            auto r = spsc_ring_create("ho_" + std::to_string(_ring_seq++), size);
            ASSERT_TRUE(r) << r.err().message;
            _rings.push_back(r.value());
        }
    }
    // Dequeues everything queued on ring w, in order; returns the slots to the pool.
    std::vector<seen_slot> drain(uint32_t w) {
        std::vector<seen_slot> out;
        void* objs[64];
        for (;;) {
            unsigned n = rte_ring_sc_dequeue_burst(_rings[w], objs, 64, nullptr);
            if (n == 0) break;
            for (unsigned i = 0; i < n; ++i) out.push_back(copy(*static_cast<event_slot*>(objs[i])));
            slot_pool_put(_pool, objs, n);
        }
        return out;
    }
    static seen_slot copy(const event_slot& s) {
        seen_slot o{s.kind, s.reason, {}, {}, {}, s.event_time_ms, s.max_time_before_ms,
                    s.received_ms, s.raw_len_orig};
        if (s.kind != slot_kind::watermark) o.raw = std::string(s.raw());
        if (s.kind == slot_kind::event) {
            o.event_id = std::string(s.field(s.event_id));
            o.page = std::string(s.field(s.page));
        }
        return o;
    }
    // Slots neither in the pool nor handed out: at most what an RX keeps for its next
    // events (it takes them from the pool in half bursts).
    uint32_t slots_missing() const { return pool_slots_missing(pool_slots); }
    uint32_t pool_slots_missing(uint32_t size) const {
        return size - rte_mempool_avail_count(_pool);
    }

    rx_config _config;
    rte_mempool* _pool = nullptr;
    std::vector<rte_ring*> _rings;
    std::atomic<bool> _stop{false};
    static inline uint32_t _ring_seq = 0;
};

TEST_F(RingHandoff, RoutesEventsByIdentityAndStampsMaxTimeBefore) {
    make_rings(2, 1024);
    rx_lcore rx(_config, _pool, _rings, &_stop);
    rx.set_clock_ms(now_ms);

    // Ids, some sent twice; times out of order so max_time_before is not just "previous".
    struct sent {
        std::string id;
        int64_t time_ms;
    };
    std::vector<sent> events;
    for (int i = 0; i < 40; ++i) events.push_back({"id-" + std::to_string(i % 25), t0 + (i * 7919) % 5000});
    // Two datagrams of NDJSON (with an empty line, which is no event), one as a raw payload,
    // one inside a frame.
    std::string first, second;
    for (size_t i = 0; i < events.size(); ++i)
        (i < 20 ? first : second) += event_line(events[i].id, events[i].time_ms, "/p") + "\n";
    first += "\n";
    rx.handle_payload(first);
    auto frame = udp_frame(second, udp_port);
    rx.handle_frame(frame.data(), uint32_t(frame.size()));
    rx.flush_all();

    int64_t max = no_time;
    std::vector<int64_t> before(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
        before[i] = max;
        if (max == no_time || events[i].time_ms > max) max = events[i].time_ms;
    }

    std::multiset<std::pair<std::string, int64_t>> got;
    size_t per_ring[2] = {0, 0};
    for (uint32_t w = 0; w < 2; ++w) {
        std::vector<seen_slot> slots = drain(w);
        ASSERT_FALSE(slots.empty());
        // The watermark (the max after every event) comes last on every ring.
        EXPECT_EQ(slots.back().kind, slot_kind::watermark);
        EXPECT_EQ(slots.back().max_time_before_ms, max);
        for (size_t k = 0; k + 1 < slots.size(); ++k) {
            const seen_slot& s = slots[k];
            ASSERT_EQ(s.kind, slot_kind::event) << s.raw;
            EXPECT_EQ(owner_of_event_id(s.event_id, 2), w) << s.event_id;
            EXPECT_EQ(s.received_ms, now_ms);
            EXPECT_EQ(s.page, "/p");
            got.insert({s.event_id, s.event_time_ms});
            // Find its arrival index from its bytes to know the stamp it must carry.
            size_t idx = events.size();
            for (size_t i = 0; i < events.size(); ++i)
                if (event_line(events[i].id, events[i].time_ms, "/p") == s.raw &&
                    s.max_time_before_ms == before[i])
                    idx = i;
            EXPECT_LT(idx, events.size()) << "no event sent with stamp " << s.max_time_before_ms
                                          << ": " << s.raw;
            ++per_ring[w];
        }
    }
    // With 25 ids both workers own some.
    EXPECT_GT(per_ring[0], 0u);
    EXPECT_GT(per_ring[1], 0u);
    std::multiset<std::pair<std::string, int64_t>> want;
    for (const auto& e : events) want.insert({e.id, e.time_ms});
    EXPECT_EQ(got, want); // every event once, duplicates included (dedup is the worker's)

    const rx_counters& c = rx.counters();
    EXPECT_EQ(c.rx_packets.load(), 1u); // handle_payload alone is no packet
    EXPECT_EQ(c.ignored_packets.load(), 0u);
    EXPECT_EQ(c.events_received.load(), events.size());
    EXPECT_EQ(c.dead_letters.load(), 0u);
    EXPECT_EQ(c.max_time_ms.load(), max);
    EXPECT_LT(slots_missing(), limits::ring_burst_max / 2);
}

// A binary batch goes through the same routing as NDJSON: by identity (an event_id routes
// as it would in JSON), stamped, counted; a batch with a bad header is one dead letter.
TEST_F(RingHandoff, RoutesBinaryBatchesLikeJson) {
    make_rings(2, 1024);
    rx_lcore rx(_config, _pool, _rings, &_stop);
    rx.set_clock_ms(now_ms);
    test::batch_builder b;
    std::set<std::string> ids;
    for (int i = 0; i < 30; ++i) {
        test::test_event e;
        e.event_id = "bin-" + std::to_string(i);
        e.ts = t0 + i;
        e.page = "/p" + std::to_string(i % 3);
        b.add(e);
        ids.insert(*e.event_id);
    }
    const std::string batch = b.build();
    auto frame = udp_frame(batch, udp_port);
    rx.handle_frame(frame.data(), uint32_t(frame.size()));
    std::string bad = batch;
    bad[4] = 9; // version
    rx.handle_payload(bad);
    rx.flush_all();

    std::set<std::string> got;
    size_t dead = 0;
    for (uint32_t w = 0; w < 2; ++w) {
        for (const seen_slot& s : drain(w)) {
            if (s.kind == slot_kind::watermark) continue;
            if (s.kind == slot_kind::dead_letter) {
                ++dead;
                EXPECT_EQ(s.reason, dead_letter_reason::parse_error);
                EXPECT_EQ(s.raw, bad);
                EXPECT_EQ(owner_of_bytes(bad, 2), w);
                continue;
            }
            ASSERT_EQ(s.kind, slot_kind::event);
            EXPECT_EQ(owner_of_event_id(s.event_id, 2), w) << s.event_id;
            EXPECT_EQ(uint8_t(s.raw[0]), 0xB1);
            EXPECT_EQ(s.received_ms, now_ms);
            got.insert(s.event_id);
        }
    }
    EXPECT_EQ(got, ids);
    EXPECT_EQ(dead, 1u);
    EXPECT_EQ(rx.counters().events_received.load(), 31u);
    EXPECT_EQ(rx.counters().binary_events.load(), 30u);
    EXPECT_EQ(rx.counters().dead_letters.load(), 1u);
}

TEST_F(RingHandoff, RoutesDeadLettersWithReasonsAndStamps) {
    make_rings(2, 1024);
    _config.parse.event_bytes_max = 256; // small, to make an oversize event cheaply
    rx_lcore rx(_config, _pool, _rings, &_stop);
    rx.set_clock_ms(now_ms);

    const std::string good = event_line("g", t0 + 500, "/g");
    const std::string not_json = "this is not json";
    const std::string no_ts = R"({"event_id":"x","page":"/x"})";
    const std::string bad_ts = R"({"event_id":"y","timestamp":"yesterday"})";
    const std::string future = event_line("f", now_ms + 3'600'000, "/f");
    const std::string oversize = event_line("o", t0, std::string(400, 'z'));
    rx.handle_payload(not_json + "\n" + good + "\n" + no_ts + "\n" + bad_ts + "\n" + future +
                      "\n" + oversize);
    rx.flush_all();

    struct want {
        dead_letter_reason reason;
        std::string raw;
        uint32_t raw_len_orig;
        int64_t before;
    };
    std::map<std::string, want> wants = {
        {"not_json", {dead_letter_reason::parse_error, not_json, uint32_t(not_json.size()), no_time}},
        {"no_ts", {dead_letter_reason::missing_timestamp, no_ts, uint32_t(no_ts.size()), t0 + 500}},
        {"bad_ts", {dead_letter_reason::bad_timestamp, bad_ts, uint32_t(bad_ts.size()), t0 + 500}},
        {"future", {dead_letter_reason::future_timestamp, future, uint32_t(future.size()), t0 + 500}},
        {"oversize",
         {dead_letter_reason::oversize, oversize.substr(0, 256), uint32_t(oversize.size()), t0 + 500}},
    };

    std::map<std::string, seen_slot> dead; // by want key
    int events = 0, watermarks = 0;
    for (uint32_t w = 0; w < 2; ++w) {
        for (const seen_slot& s : drain(w)) {
            if (s.kind == slot_kind::watermark) {
                ++watermarks;
                EXPECT_EQ(s.max_time_before_ms, t0 + 500); // dead letters never raise the max
                continue;
            }
            if (s.kind == slot_kind::event) {
                ++events;
                EXPECT_EQ(s.raw, good);
                EXPECT_EQ(s.max_time_before_ms, no_time);
                EXPECT_EQ(owner_of_event_id("g", 2), w);
                continue;
            }
            // A dead letter goes to the owner of its bytes' hash, as it is stored.
            EXPECT_EQ(owner_of_bytes(s.raw, 2), w) << s.raw;
            for (const auto& [key, wt] : wants)
                if (wt.raw == s.raw) dead.emplace(key, s);
        }
    }
    EXPECT_EQ(events, 1);
    EXPECT_EQ(watermarks, 2); // one per worker: the max advanced
    ASSERT_EQ(dead.size(), wants.size());
    for (const auto& [key, wt] : wants) {
        const seen_slot& s = dead.at(key);
        EXPECT_EQ(s.reason, wt.reason) << key << ": " << processing::reason_name(s.reason);
        EXPECT_EQ(s.raw_len_orig, wt.raw_len_orig) << key;
        EXPECT_EQ(s.max_time_before_ms, wt.before) << key;
        EXPECT_EQ(s.received_ms, now_ms) << key;
    }

    const rx_counters& c = rx.counters();
    EXPECT_EQ(c.events_received.load(), 6u);
    EXPECT_EQ(c.dead_letters.load(), 5u);
    EXPECT_LT(slots_missing(), limits::ring_burst_max / 2);
}

TEST_F(RingHandoff, BroadcastsWatermarkOnlyWhenMaxAdvances) {
    make_rings(3, 1024);
    rx_lcore rx(_config, _pool, _rings, &_stop);
    rx.set_clock_ms(now_ms);
    auto count_watermarks = [&](int64_t* max_seen) {
        int n = 0;
        for (uint32_t w = 0; w < 3; ++w)
            for (const seen_slot& s : drain(w))
                if (s.kind == slot_kind::watermark) {
                    ++n;
                    *max_seen = s.max_time_before_ms;
                }
        return n;
    };
    int64_t m = 0;
    rx.flush_all(); // nothing seen yet: nothing to tell
    EXPECT_EQ(count_watermarks(&m), 0);

    rx.handle_payload(event_line("a", t0 + 100, "/a"));
    rx.flush_all();
    EXPECT_EQ(count_watermarks(&m), 3); // every worker, including those that got no event
    EXPECT_EQ(m, t0 + 100);

    rx.flush_all(); // idle: no change, no slots
    EXPECT_EQ(count_watermarks(&m), 0);

    rx.handle_payload(event_line("b", t0 + 50, "/b")); // older: the max stays
    rx.handle_payload("garbage");
    rx.flush_all();
    EXPECT_EQ(count_watermarks(&m), 0);

    rx.handle_payload(event_line("c", t0 + 200, "/c"));
    rx.flush_all();
    EXPECT_EQ(count_watermarks(&m), 3);
    EXPECT_EQ(m, t0 + 200);
    EXPECT_EQ(rx.counters().max_time_ms.load(), t0 + 200);
}

TEST_F(RingHandoff, CountsPacketsAndIgnoresWhatIsNotUdpToPort) {
    make_rings(2, 1024);
    rx_lcore rx(_config, _pool, _rings, &_stop);
    rx.set_clock_ms(now_ms);
    std::string payload = event_line("a", t0, "/a") + "\n" + event_line("b", t0 + 1, "/b");
    auto good = udp_frame(payload, udp_port);
    auto tcp = udp_frame(payload, udp_port, 6);
    auto other_port = udp_frame(payload, udp_port + 1);
    std::vector<uint8_t> arp(60, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    rx.handle_frame(good.data(), uint32_t(good.size()));
    rx.handle_frame(tcp.data(), uint32_t(tcp.size()));
    rx.handle_frame(other_port.data(), uint32_t(other_port.size()));
    rx.handle_frame(arp.data(), uint32_t(arp.size()));
    rx.handle_frame(good.data(), 20); // cut inside the IP header
    rx.flush_all();

    const rx_counters& c = rx.counters();
    EXPECT_EQ(c.rx_packets.load(), 5u);
    EXPECT_EQ(c.ignored_packets.load(), 4u);
    EXPECT_EQ(c.ignored_by_verdict[size_t(frame_verdict::not_udp)].load(), 1u);
    EXPECT_EQ(c.ignored_by_verdict[size_t(frame_verdict::wrong_port)].load(), 1u);
    EXPECT_EQ(c.ignored_by_verdict[size_t(frame_verdict::not_ip)].load(), 1u);
    EXPECT_EQ(c.ignored_by_verdict[size_t(frame_verdict::truncated)].load(), 1u);
    EXPECT_EQ(c.events_received.load(), 2u);

    int events = 0;
    for (uint32_t w = 0; w < 2; ++w)
        for (const seen_slot& s : drain(w)) events += s.kind == slot_kind::event;
    EXPECT_EQ(events, 2); // only the good frame's events
}

TEST_F(RingHandoff, FullRingBlocksRxWithoutLosingEvents) {
    constexpr uint32_t ring_size = 64; // holds 63
    constexpr int total = 600;
    make_rings(2, ring_size);
    rx_lcore rx(_config, _pool, _rings, &_stop);
    rx.set_clock_ms(now_ms);

    std::atomic<bool> done{false};
    std::thread feeder([&] {
        // Twenty events per datagram, flushed per datagram as the run loops do per burst.
        for (int i = 0; i < total; i += 20) {
            std::string payload;
            for (int k = i; k < i + 20; ++k)
                payload += event_line("e" + std::to_string(k), t0 + k, "/p") + "\n";
            rx.handle_payload(payload);
            rx.flush_all();
        }
        done.store(true, std::memory_order_release);
    });

    // Nobody dequeues: the RX must stall on a full ring, not drop.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (rx.counters().backpressure_waits.load() < 100 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    EXPECT_GE(rx.counters().backpressure_waits.load(), 100u);
    EXPECT_FALSE(done.load(std::memory_order_acquire));
    EXPECT_TRUE(ring_free_count(_rings[0]) == 0 || ring_free_count(_rings[1]) == 0);
    uint64_t stalled_at = rx.counters().events_received.load();
    EXPECT_LT(stalled_at, uint64_t(total));

    // Drain as a worker would, until the feeder is done and the rings are empty.
    std::map<std::string, int> seen;
    int watermarks[2] = {0, 0};
    int64_t last_stamp[2] = {no_time, no_time};
    for (;;) {
        bool finished = done.load(std::memory_order_acquire);
        size_t got = 0;
        for (uint32_t w = 0; w < 2; ++w) {
            for (const seen_slot& s : drain(w)) {
                ++got;
                // Stamps only grow along a ring: a worker's W never goes back.
                EXPECT_TRUE(last_stamp[w] == no_time || s.max_time_before_ms >= last_stamp[w]);
                last_stamp[w] = s.max_time_before_ms;
                if (s.kind == slot_kind::watermark) {
                    ++watermarks[w];
                    continue;
                }
                ASSERT_EQ(s.kind, slot_kind::event) << s.raw;
                EXPECT_EQ(owner_of_event_id(s.event_id, 2), w);
                ++seen[s.event_id];
            }
        }
        if (finished && got == 0) break;
        if (got == 0) std::this_thread::sleep_for(100us);
    }
    feeder.join();

    ASSERT_EQ(seen.size(), size_t(total));
    for (int k = 0; k < total; ++k)
        EXPECT_EQ(seen["e" + std::to_string(k)], 1) << "e" << k;
    EXPECT_GT(watermarks[0], 0);
    EXPECT_GT(watermarks[1], 0);
    // The last watermark told both workers the final max.
    EXPECT_EQ(last_stamp[0], t0 + total - 1);
    EXPECT_EQ(last_stamp[1], t0 + total - 1);
    EXPECT_EQ(rx.counters().events_received.load(), uint64_t(total));
    EXPECT_LT(slots_missing(), limits::ring_burst_max / 2);
}

// An empty slot pool is back-pressure too: the RX waits for the workers to return slots,
// and no slot may go missing on the way. Each round makes the RX run the pool dry
// exactly while its max event time has advanced (so the wait broadcasts a watermark).
// (A watermark broadcast inside take_slot()'s wait loop once refilled _free_slots under
// the loop, whose next rte_mempool_get_bulk() overwrote them: slots leaked per stall
// until the RX waited forever.)
TEST_F(RingHandoff, EmptySlotPoolBlocksRxWithoutLosingSlots) {
    // A pool smaller than one round of events.
    constexpr uint32_t small_pool = 400;
    rte_mempool_free(_pool);
    _pool = nullptr;
    auto pool = slot_pool_create(small_pool, processing::slot_bytes(event_bytes_max));
    ASSERT_TRUE(pool) << pool.err().message;
    _pool = pool.value();
    make_rings(2, 1024); // the rings hold more than the pool: the pool is the limit
    rx_lcore rx(_config, _pool, _rings, &_stop);
    rx.set_clock_ms(now_ms);

    constexpr int rounds = 3;
    constexpr int per_round = 450; // more than the pool holds
    std::atomic<int> rounds_done{0};
    std::thread feeder([&] {
        for (int r = 0; r < rounds; ++r) {
            std::string payload;
            for (int k = r * per_round; k < (r + 1) * per_round; ++k)
                payload += event_line("s" + std::to_string(k), t0 + k, "/p") + "\n";
            rx.handle_payload(payload);
            rx.flush_all();
            rounds_done.store(r + 1, std::memory_order_release);
        }
    });
    // The worker side runs on a non-EAL thread, so returned slots go straight back to the
    // pool rather than into this lcore's cache, where the RX thread could not reach them.
    std::map<std::string, int> seen;
    uint64_t drained = 0;
    bool stuck = false;
    std::thread worker_side([&] {
        auto deadline = std::chrono::steady_clock::now() + 20s;
        for (int r = 0; r < rounds && !stuck; ++r) {
            // Let the RX run the pool dry before giving anything back.
            uint64_t waits = rx.counters().backpressure_waits.load();
            while (rx.counters().backpressure_waits.load() == waits &&
                   rounds_done.load(std::memory_order_acquire) == r)
                std::this_thread::sleep_for(100us);
            for (;;) {
                bool round_over = rounds_done.load(std::memory_order_acquire) > r;
                size_t got = 0;
                for (uint32_t w = 0; w < 2; ++w) {
                    for (const seen_slot& s : drain(w)) {
                        ++got;
                        ++drained;
                        if (s.kind == slot_kind::event) ++seen[s.event_id];
                    }
                }
                if (round_over && got == 0) break;
                if (std::chrono::steady_clock::now() > deadline) {
                    // The RX waits for slots that can no longer come back.
                    stuck = true;
                    break;
                }
                if (got == 0) std::this_thread::sleep_for(100us);
            }
        }
    });
    worker_side.join();
    if (stuck) {
        ADD_FAILURE() << "RX stalled for good: " << slots_missing()
                      << " slots neither in the pool nor in a ring";
        // Leave the process rather than join a thread that can never finish.
        std::_Exit(1);
    }
    feeder.join();

    EXPECT_GT(rx.counters().backpressure_waits.load(), 0u);
    ASSERT_EQ(seen.size(), size_t(rounds * per_round));
    for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
    // The RX keeps fewer than half a burst for its next events; every other slot is back.
    EXPECT_LT(pool_slots_missing(small_pool), limits::ring_burst_max / 2)
        << "slots drained: " << drained;
}

// The slot pool is LIFO: the slot a worker returned last is the next one an RX lcore
// takes (still in cache and TLB), not the one returned longest ago. Exercised without the
// lcore caches (which are LIFO anyway): what a worker's cache flushes is what an RX
// lcore's cache refills from. (On DPDK's default FIFO ring the oldest came back.)
TEST_F(RingHandoff, SlotPoolReturnsTheLastFreedSlotFirst) {
    constexpr uint32_t slots = 256;
    auto made = slot_pool_create(slots, processing::slot_bytes(event_bytes_max), "lifo_slots");
    ASSERT_TRUE(made) << made.err().message;
    rte_mempool* pool = made.value();
    EXPECT_STREQ(rte_mempool_get_ops(pool->ops_index)->name, slot_pool_ops);
    std::vector<void*> all(slots);
    ASSERT_EQ(rte_mempool_generic_get(pool, all.data(), slots, nullptr), 0);
    EXPECT_EQ(rte_mempool_avail_count(pool), 0u);
    // Returned one burst at a time, oldest first.
    for (uint32_t i = 0; i < slots; i += 32)
        rte_mempool_generic_put(pool, all.data() + i, 32, nullptr);
    EXPECT_EQ(rte_mempool_avail_count(pool), slots);
    void* got[32];
    ASSERT_EQ(rte_mempool_generic_get(pool, got, 32, nullptr), 0);
    std::set<void*> newest(all.end() - 32, all.end());
    for (void* g : got) EXPECT_TRUE(newest.count(g)) << "a slot returned long ago came back first";
    rte_mempool_generic_put(pool, got, 32, nullptr);
    rte_mempool_free(pool);
}

// The stats reader counts a ring's slots from the control thread while RX and a worker
// move its tails, and RX checks a ring's room while the worker moves the consumer tail.
// ring_count reads both tails atomically (DPDK's rte_ring_count reads them with plain
// loads: scripts/tsan reported each such read as a race) and never counts more than
// the ring holds.
TEST(RingCount, ReadFromAThirdThreadWhileBothSidesMove) {
    auto made = spsc_ring_create("count_ring", 256);
    ASSERT_TRUE(made) << made.err().message;
    rte_ring* r = made.value();
    const uint32_t capacity = rte_ring_get_capacity(r);
    constexpr uint64_t total = 200'000;
    std::atomic<bool> done{false};
    std::thread producer([&] {
        uint64_t sent = 0;
        while (sent < total) {
            void* objs[32];
            for (auto& o : objs) o = reinterpret_cast<void*>(uintptr_t(++sent));
            unsigned n = rte_ring_sp_enqueue_burst(r, objs, 32, nullptr);
            sent -= 32 - n;
            if (n == 0) std::this_thread::yield();
        }
    });
    std::thread consumer([&] {
        uint64_t got = 0, expect = 1;
        void* objs[32];
        while (got < total) {
            unsigned n = rte_ring_sc_dequeue_burst(r, objs, 32, nullptr);
            for (unsigned i = 0; i < n; ++i)
                if (reinterpret_cast<uintptr_t>(objs[i]) != expect++) ADD_FAILURE() << "out of order";
            got += n;
            if (n == 0) std::this_thread::yield();
        }
        done.store(true, std::memory_order_release);
    });
    uint64_t reads = 0, over = 0;
    while (!done.load(std::memory_order_acquire)) {
        uint32_t c = ring_count(r);
        over += c > capacity || ring_free_count(r) > capacity;
        ++reads;
    }
    producer.join();
    consumer.join();
    EXPECT_EQ(over, 0u) << "of " << reads << " reads";
    EXPECT_GT(reads, 0u);
    EXPECT_EQ(ring_count(r), 0u);
    EXPECT_EQ(ring_free_count(r), capacity);
    rte_ring_free(r);
}

} // namespace
} // namespace sluice::dataplane
