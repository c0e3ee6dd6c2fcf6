#include "dataplane/rx_lcore.h"

#include <cstring>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "base/assert.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/counter.h"
#include "base/tsc.h"
#include "dataplane/eal_setup.h"
#include "dataplane/binary_parse.h"
#include "dataplane/kernel_udp_rx.h"
#include "processing/identity.h"

namespace sluice::dataplane {

using processing::event_slot;
using processing::slot_kind;

namespace {
constexpr uint32_t scratch_bytes = limits::udp_payload_max + 128;
} // namespace

rx_lcore::rx_lcore(const rx_config& config, rte_mempool* slot_pool,
                   std::vector<rte_ring*> to_workers, const std::atomic<bool>* stop)
    : _config(config), _parser(config.parse), _pool(slot_pool), _rings(std::move(to_workers)),
      _workers(uint32_t(_rings.size())), _stop(stop), _pending(_rings.size()),
      _sent(_rings.size(), 0), _scratch(new uint8_t[scratch_bytes]) {
    SLUICE_ASSERT(_workers > 0);
    SLUICE_ASSERT(_pool != nullptr);
}

event_slot* rx_lcore::take_slot() noexcept {
    if (_free_count == 0) [[unlikely]] {
        idle_backoff backoff;
        while (slot_pool_get(_pool, _free_slots, limits::ring_burst_max / 2) != 0) {
            // Every slot is in flight: hand the workers what is pending and let them
            // catch up (back-pressure). No watermark broadcast here: it would take slots
            // itself, refilling _free_slots under this loop.
            bump(_counters.backpressure_waits);
            flush_pending();
            backoff.wait();
        }
        _free_count = limits::ring_burst_max / 2;
    }
    event_slot* s = static_cast<event_slot*>(_free_slots[--_free_count]);
    // The next slot is cold (a worker returned it to the pool, perhaps long ago): fetch
    // its header and the first bytes of its data area for writing while this event is
    // parsed, instead of stalling on them in the parse that fills it.
    if (_free_count != 0) [[likely]] {
        const char* next = static_cast<const char*>(_free_slots[_free_count - 1]);
        for (uint32_t off = 0; off < sizeof(event_slot) + 320; off += 64)
            __builtin_prefetch(next + off, 1 /* for writing */, 3);
    }
    return s;
}

void rx_lcore::push(uint32_t worker, event_slot* slot) noexcept {
    pending& p = _pending[worker];
    p.slots[p.count++] = slot;
    if (p.count == limits::ring_burst_max) flush(worker);
}

void rx_lcore::flush(uint32_t worker) noexcept {
    pending& p = _pending[worker];
    uint32_t done = 0;
    idle_backoff backoff;
    while (done < p.count) {
        done += rte_ring_sp_enqueue_burst(_rings[worker], p.slots + done, p.count - done, nullptr);
        if (done < p.count) {
            // A full ring stops this RX lcore: it pulls nothing more from its port until
            // the worker makes room (the NIC's drops are then counted as rx_dropped).
            bump(_counters.backpressure_waits);
            wake_worker(worker); // it may have slept before this burst's first part
            backoff.wait();
        }
    }
    p.count = 0;
    wake_worker(worker);
}

void rx_lcore::broadcast_watermark() noexcept {
    if (_max_time_ms == _broadcast_max_ms) return;
    _broadcast_max_ms = _max_time_ms;
    for (uint32_t w = 0; w < _workers; ++w) {
        event_slot* s = take_slot();
        s->kind = slot_kind::watermark;
        s->rx_index = uint8_t(_config.index);
        s->max_time_before_ms = _max_time_ms;
        s->raw_len = s->raw_len_orig = 0;
        push(w, s);
    }
}

void rx_lcore::flush_pending() noexcept {
    for (uint32_t w = 0; w < _workers; ++w)
        if (_pending[w].count) flush(w);
}

void rx_lcore::flush_all() noexcept {
    broadcast_watermark();
    flush_pending();
    _counters.max_time_ms.store(_max_time_ms, std::memory_order_relaxed);
}

void rx_lcore::drain() noexcept {
    flush_all();
    if (_free_count) slot_pool_put(_pool, _free_slots, _free_count);
    _free_count = 0;
}

// Stamps a parsed slot and hands it to the worker that owns its identity.
void rx_lcore::route(event_slot* s) noexcept {
    s->rx_index = uint8_t(_config.index);
    s->received_ms = _now_ms;
    s->rx_tsc = int64_t(_now_tsc);
    s->max_time_before_ms = _max_time_ms;
    uint32_t worker;
    if (s->kind == slot_kind::event) [[likely]] {
        if (s->event_time_ms > _max_time_ms || _max_time_ms == processing::no_time)
            _max_time_ms = s->event_time_ms;
        worker = processing::owner_worker(s->id, _workers);
    } else {
        bump(_counters.dead_letters);
        worker = processing::owner_worker(processing::identity_of_bytes(s->raw()), _workers);
    }
    ++_sent[worker];
    push(worker, s);
}

void rx_lcore::handle_binary(std::string_view payload) noexcept {
    binary_batch batch;
    if (!batch.open(payload)) [[unlikely]] {
        bump(_counters.events_received);
        event_slot* s = take_slot();
        binary_batch::fill_invalid_batch(payload, _config.parse, *s);
        route(s);
        return;
    }
    const uint32_t n = batch.events();
    bump(_counters.events_received, n);
    bump(_counters.binary_events, n);
    for (uint32_t i = 0; i < n; ++i) {
        event_slot* s = take_slot();
        batch.parse_event(i, _config.parse, _now_ms, *s);
        route(s);
    }
}

void rx_lcore::handle_payload(std::string_view payload) noexcept {
    if (is_binary_batch(payload)) {
        handle_binary(payload);
        return;
    }
    const char* p = payload.data();
    const char* end = p + payload.size();
    while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
        const char* line_end = nl ? nl : end;
        std::string_view line(p, size_t(line_end - p));
        p = nl ? nl + 1 : end;
        if (line.empty()) continue;

        bump(_counters.events_received);
        event_slot* s = take_slot();
        _parser.parse(line, _now_ms, *s);
        route(s);
    }
}

void rx_lcore::handle_event(std::string_view event) noexcept {
    bump(_counters.events_received);
    event_slot* s = take_slot();
    _parser.parse(event, _now_ms, *s);
    route(s);
}

void rx_lcore::begin_burst() noexcept {
    _now_ms = wall_clock_ms();
    _now_tsc = tsc_now();
}

bool rx_lcore::has_room(uint32_t slots) const noexcept {
    if (_free_count + rte_mempool_avail_count(_pool) < slots) return false;
    for (rte_ring* r : _rings)
        if (ring_free_count(r) < limits::ring_burst_max * 2) return false;
    return true;
}

void rx_lcore::handle_frame(const uint8_t* frame, uint32_t len) noexcept {
    bump(_counters.rx_packets);
    bump(_counters.rx_bytes, len);
    std::string_view payload;
    frame_verdict v = parse_frame(frame, len, _config.ports, &payload);
    if (v != frame_verdict::udp_to_port) [[unlikely]] {
        bump(_counters.ignored_packets);
        bump(_counters.ignored_by_verdict[size_t(v)]);
        return;
    }
    handle_payload(payload);
}

void rx_lcore::handle_burst(rte_mbuf** mbufs, uint16_t n) noexcept {
    _now_ms = wall_clock_ms();
    _now_tsc = tsc_now();
    for (uint16_t i = 0; i < n; ++i) {
        // The next frame's headers arrive in cache while this one is parsed.
        if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(mbufs[i + 1], void*));
        rte_mbuf* m = mbufs[i];
        const uint8_t* frame;
        if (m->nb_segs == 1) [[likely]] {
            frame = rte_pktmbuf_mtod(m, const uint8_t*);
        } else {
            uint32_t len = std::min<uint32_t>(m->pkt_len, scratch_bytes);
            frame = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, _scratch.get()));
        }
        handle_frame(frame, std::min<uint32_t>(m->pkt_len, scratch_bytes));
    }
    rte_pktmbuf_free_bulk(mbufs, n);
}

void rx_lcore::run_port(uint16_t port_id, const std::vector<uint16_t>& queues) noexcept {
    SLUICE_ASSERT(!queues.empty());
    rte_mbuf* mbufs[limits::rx_burst_max];
    idle_backoff backoff;
    const uint16_t* q = queues.data();
    const size_t nq = queues.size();
    while (!_stop->load(std::memory_order_relaxed)) {
        uint32_t got = 0;
        for (size_t i = 0; i < nq; ++i) {
            uint16_t n = rte_eth_rx_burst(port_id, q[i], mbufs, limits::rx_burst_max);
            if (n == 0) continue;
            handle_burst(mbufs, n);
            got += n;
        }
        if (got == 0) {
            flush_all();
            backoff.wait();
            continue;
        }
        backoff.reset();
        flush_all();
    }
    drain();
}

void rx_lcore::run_kernel(kernel_udp_rx& source) noexcept {
    datagram grams[limits::rx_burst_max];
    idle_backoff backoff;
    while (!_stop->load(std::memory_order_relaxed)) {
        uint32_t n = source.receive_burst(grams, limits::rx_burst_max);
        if (n == 0) {
            flush_all();
            backoff.wait();
            continue;
        }
        backoff.reset();
        _now_ms = wall_clock_ms();
        _now_tsc = tsc_now();
        for (uint32_t i = 0; i < n; ++i) {
            bump(_counters.rx_packets);
            bump(_counters.rx_bytes, grams[i].len);
            handle_payload(std::string_view(grams[i].data, grams[i].len));
        }
        source.release(grams, n);
        flush_all();
    }
    drain();
}

} // namespace sluice::dataplane
