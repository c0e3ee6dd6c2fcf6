#include "processing/worker.h"

#include <time.h>

#include <algorithm>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/tsc.h"
#include "storage/schema.h"

namespace sluice::processing {

namespace ev = storage::events_col;
namespace dl = storage::dead_letters_col;

worker::worker(const worker_config& config, partial_channel channel)
    : _config(config), _channel(channel),
      _dedup(config.dedup_memory_bytes, config.dedup_horizon_ms),
      _windows(config.window, config.window_cells_max, config.window_keys_max,
               config.window_key_bytes_max) {}

result<std::unique_ptr<worker>> worker::open(const worker_config& config, partial_channel channel) {
    SLUICE_ASSERT(channel.acquire != nullptr);
    SLUICE_ASSERT(channel.publish != nullptr);
    std::unique_ptr<worker> w(new worker(config, channel));
    storage::writer_config wc;
    wc.data_dir = config.data_dir;
    wc.writer_name = "w" + std::to_string(config.index);
    wc.row_string_bytes_max = config.event_bytes_max;
    wc.flush_interval_ms = config.flush_interval_ms;
    wc.direct_io = config.direct_io;
    wc.sync_bytes = config.sync_bytes;
    wc.segment_bytes_max = config.segment_bytes_max;
    wc.compression = config.compression;
    wc.stop_flag = config.storage_stop;
    auto events = storage::segment_writer::open(wc, storage::events_schema());
    if (!events) return std::move(events).err();
    w->_events = std::move(events.value());
    auto dead = storage::segment_writer::open(wc, storage::dead_letters_schema());
    if (!dead) return std::move(dead).err();
    w->_dead_letters = std::move(dead.value());
    w->_counters.dedup_horizon_ms.store(config.dedup_horizon_ms, std::memory_order_relaxed);
    if (config.test_hold_us != 0)
        w->_test_hold_ticks = uint64_t(double(config.test_hold_us) * double(tsc_hz()) / 1e6);
    return w;
}

void worker::process(event_slot* const* slots, uint32_t n) noexcept {
    if (_test_hold_ticks != 0) [[unlikely]]
        hold_for_test(slots, n);
    _burst_tsc = tsc_now();
    for (uint32_t i = 0; i < n; ++i) {
        const event_slot& s = *slots[i];
        // Spark's watermark: the max event time over all workers, learned from the RX
        // stamps (events and idle-time watermark slots alike).
        if (s.max_time_before_ms != no_time && s.max_time_before_ms > _max_time_ms)
            _max_time_ms = s.max_time_before_ms;
        switch (s.kind) {
        case slot_kind::watermark: break;
        case slot_kind::dead_letter:
            bump(_counters.events_in);
            store_dead_letter(s, s.reason);
            break;
        case slot_kind::event:
            bump(_counters.events_in);
            accept_event(s);
            break;
        }
    }
    _counters.max_time_ms.store(_max_time_ms, std::memory_order_relaxed);
}

void worker::accept_event(const event_slot& s) noexcept {
    switch (_dedup.check_and_insert(s.id, s.event_time_ms, _max_time_ms)) {
    case dedup_verdict::beyond_horizon:
        store_dead_letter(s, dead_letter_reason::beyond_dedup_horizon);
        return;
    case dedup_verdict::duplicate: bump(_counters.duplicates); return;
    case dedup_verdict::accepted: break;
    }
    bump(_counters.events_accepted);
    int64_t end = window_start_of(s.event_time_ms, _config.window.size_ms) + _config.window.size_ms;
    bool late = _max_time_ms != no_time && end <= _max_time_ms - _config.watermark_delay_ms;
    if (late) {
        bump(_counters.late_events);
    } else if (!_windows.add(s.event_time_ms, s.field(s.page))) [[unlikely]] {
        bump(_counters.window_overflow);
    } else if (s.rx_tsc != 0) [[likely]] {
        _latency.window_visible.record(tsc_elapsed(uint64_t(s.rx_tsc), _burst_tsc));
    }
    store_event(s, late);
}

void worker::store_event(const event_slot& s, bool late) noexcept {
    auto& b = _events->batch();
    b.push_i64(ev::event_time_ms, s.event_time_ms);
    // The identity is not stored: the store derives it from event_id (null when the
    // event had none) or raw (storage/event_identity.h).
    if (s.has_event_id) {
        b.push_string(ev::event_id, s.field(s.event_id));
    } else {
        b.push_null(ev::event_id);
    }
    b.push_string(ev::user_id, s.field(s.user_id));
    b.push_string(ev::event_type, s.field(s.event_type));
    b.push_string(ev::page, s.field(s.page));
    b.push_u8(ev::late, late ? 1 : 0);
    b.push_string(ev::raw, s.raw());
    b.end_row();
    _events->commit_row();
    _pending_durable.add_row(uint64_t(s.rx_tsc));
}

void worker::store_dead_letter(const event_slot& s, dead_letter_reason reason) noexcept {
    bump(_counters.dead_letters);
    bump(_counters.dead_letters_by_reason[int(reason)]);
    auto& b = _dead_letters->batch();
    b.push_i64(dl::received_ms, s.received_ms);
    b.push_string(dl::reason, reason_name(reason));
    b.push_u64(dl::raw_len, s.raw_len_orig);
    b.push_string(dl::raw, s.raw());
    b.end_row();
    _dead_letters->commit_row();
}

void worker::tick(int64_t now_ns) noexcept {
    if (_max_time_ms != no_time) {
        int64_t w = _max_time_ms - _config.watermark_delay_ms;
        // Report only when W enters a new window: that is when windows can close.
        int64_t ws = window_start_of(w, _config.window.size_ms);
        if (ws > _reported_window_start) {
            _reported_window_start = ws;
            close_windows(w, false);
        }
    }
    _counters.dedup_tracked.store(_dedup.tracked(), std::memory_order_relaxed);
    _counters.dedup_horizon_ms.store(_dedup.effective_horizon_ms(_max_time_ms),
                                     std::memory_order_relaxed);
    _events->poll(now_ns);
    _dead_letters->poll(now_ns);
    note_durable();
}

// Rows become durable in order, a prefix at a time: the events writer's rows_durable().
void worker::note_durable() noexcept {
    uint64_t durable = _events->rows_durable();
    if (durable != _pending_durable.rows_completed())
        _pending_durable.complete(durable, tsc_now(), _latency.durable);
}

void worker::hold_for_test(event_slot* const* slots, uint32_t n) const noexcept {
    uint64_t newest = 0;
    for (uint32_t i = 0; i < n; ++i)
        if (slots[i]->kind != slot_kind::watermark) newest = std::max(newest, uint64_t(slots[i]->rx_tsc));
    if (newest == 0) return;
    while (tsc_now() < newest + _test_hold_ticks) {
        timespec ts{0, 20'000};
        nanosleep(&ts, nullptr);
    }
}

void worker::close_windows(int64_t watermark_ms, bool final) noexcept {
    partial_batch* batch = _channel.acquire(_channel.ctx);
    batch->reset(_config.index);
    _windows.close_until(watermark_ms, [&](int64_t start, std::string_view key, uint64_t count) {
        if (!batch->fits(key.size())) {
            // Not the last batch: the merger must not finalize on its watermark yet.
            batch->closed_until_ms = INT64_MIN;
            _channel.publish(_channel.ctx, batch);
            batch = _channel.acquire(_channel.ctx);
            batch->reset(_config.index);
        }
        batch->append(start, key, count);
    });
    batch->closed_until_ms = watermark_ms;
    batch->final = final;
    _channel.publish(_channel.ctx, batch);
}

result<void> worker::finish() {
    close_windows(INT64_MAX, true);
    auto a = _events->close();
    auto b = _dead_letters->close();
    if (!a) return a;
    return b;
}

result<void> worker::flush() {
    SLUICE_TRY(_events->flush_and_sync());
    auto r = _dead_letters->flush_and_sync();
    note_durable();
    return r;
}

uint64_t worker::bytes_written() const noexcept {
    return _events->bytes_written() + _dead_letters->bytes_written();
}
uint64_t worker::rows_durable() const noexcept {
    return _events->rows_durable() + _dead_letters->rows_durable();
}
bool worker::storage_failed() const noexcept {
    return _events->failed() || _dead_letters->failed();
}
int64_t worker::watermark_ms() const noexcept {
    return _max_time_ms == no_time ? no_time : _max_time_ms - _config.watermark_delay_ms;
}

} // namespace sluice::processing
