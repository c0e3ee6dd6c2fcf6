#include "processing/worker.h"

#include <algorithm>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/tsc.h"
#include "processing/event_row.h"
#include "processing/window_assigner.h"
#include "storage/schema.h"

namespace sluice::processing {

namespace ev = storage::events_col;
namespace dl = storage::dead_letters_col;

namespace {

// Keys of several fields built by a chunk's key pass: a key that might not fit in what
// is left is built at its add instead (window_key::later), as before the key pass.
constexpr uint32_t burst_key_bytes = 16 << 10;
// The cell of the slot this many ahead is prefetched (its index slot was prefetched by
// the key pass) while an event is added.
constexpr uint32_t cell_prefetch_ahead = 2;

// The group key's hash (window_state's index, the merger's): one event's, once.
inline uint64_t window_key_hash(std::string_view key) noexcept {
    return XXH3_64bits(key.data(), key.size());
}

} // namespace

worker::worker(const worker_config& config, partial_channel channel)
    : _config(config), _channel(channel),
      _dedup(config.dedup_memory_bytes, config.dedup_horizon_ms),
      _key(new char[config.event_bytes_max + 4 * 8 + 8]),
      _window_keys(new window_key[size_t(limits::queries_max) * limits::ring_burst_max]),
      _burst_keys(new char[burst_key_bytes]),
      _max_time_ms(config.restored_max_time_ms) {
    _durable_wake.fill(-1);
}

result<std::unique_ptr<worker>> worker::open(const worker_config& config, partial_channel channel) {
    SLUICE_ASSERT(channel.acquire != nullptr);
    SLUICE_ASSERT(channel.publish != nullptr);
    SLUICE_ASSERT(config.index < limits::workers_max);
    std::unique_ptr<worker> w(new worker(config, channel));
    storage::writer_config wc;
    wc.data_dir = config.data_dir;
    wc.writer_name = "w" + std::to_string(config.index);
    wc.row_string_bytes_max = config.event_bytes_max;
    wc.options = config.storage;
    wc.stop_flag = config.storage_stop;
    wc.rows_per_block = config.rows_per_block;
    wc.string_bytes_max = config.block_string_bytes_max;
    // append_event_row() hands the places of raw's references in this order.
    SLUICE_ASSERT((storage::events_schema().columns[ev::raw].refs ==
                   std::vector<int>{ev::event_id, ev::user_id, ev::event_type, ev::page,
                                    ev::event_time_ms}));
    auto events = storage::segment_writer::open(wc, storage::events_schema());
    if (!events) return std::move(events).err();
    w->_events = std::move(events.value());
    auto dead = storage::segment_writer::open(wc, storage::dead_letters_schema());
    if (!dead) return std::move(dead).err();
    w->_dead_letters = std::move(dead.value());
    w->_counters.dedup_horizon_ms.store(config.dedup_horizon_ms, std::memory_order_relaxed);
    w->_counters.max_time_ms.store(w->_max_time_ms, std::memory_order_relaxed);
    if (config.test_hold_us != 0)
        w->_test_hold_ticks = uint64_t(double(config.test_hold_us) * double(tsc_hz()) / 1e6);
    return w;
}

result<void> worker::add_query(std::shared_ptr<const compiled_query> query,
                               std::unique_ptr<window_state> state, int64_t floor_ms) {
    if (_nqueries == limits::queries_max)
        return make_error(errc::busy, "at most " + std::to_string(limits::queries_max) +
                                          " continuous queries run at once (remove one first)");
    SLUICE_ASSERT(query->values.size() <= std::size(_inputs));
    SLUICE_ASSERT(query->key_bytes_max <= _config.event_bytes_max + 4 * 8);
    active_query& aq = _queries[_nqueries++];
    aq = active_query{};
    aq.progress = &query->shared->workers[_config.index];
    aq.query = std::move(query);
    aq.state = std::move(state);
    aq.floor_ms = floor_ms;
    return ok_result();
}

namespace {

// The slots come from an RX lcore's cache (or memory): the worker's first touch of an
// event's bytes (its group key, then the row copy of its fields and raw text) would wait
// for each line in turn. The bytes of the slot this many ahead are fetched meanwhile
// (the dedup pass has already read every slot's header, data_used included).
constexpr uint32_t slot_prefetch_ahead = 4;

inline void prefetch_slot_data(const event_slot& s) noexcept {
    const char* p = s.data();
    for (uint32_t off = 0; off < s.data_used; off += 64) __builtin_prefetch(p + off);
}

} // namespace

void worker::process(event_slot* const* slots, uint32_t n) noexcept {
    if (_test_hold_ticks != 0) [[unlikely]]
        hold_for_test(slots, n);
    _burst_tsc = tsc_now();
    constexpr uint32_t chunk = limits::ring_burst_max;
    dedup_request requests[chunk];
    dedup_verdict verdicts[chunk];
    for (uint32_t start = 0; start < n; start += chunk) {
        const uint32_t end = std::min(n, start + chunk);
        // First the dedup verdicts of the chunk's events, in one burst: each event with
        // the M it would see below (dedup depends on nothing else the loop changes).
        uint32_t m = 0;
        int64_t max_time_ms = _max_time_ms;
        for (uint32_t i = start; i < end; ++i) {
            const event_slot& s = *slots[i];
            if (s.max_time_before_ms != no_time && s.max_time_before_ms > max_time_ms)
                max_time_ms = s.max_time_before_ms;
            if (s.kind == slot_kind::event)
                requests[m++] = {s.id, s.event_time_ms, max_time_ms};
        }
        _dedup.check_and_insert_burst(requests, m, verdicts);
        // Then the group keys of its accepted events, each built and hashed once, and
        // their index slots prefetched; the cells they name are prefetched a few slots
        // ahead of the adds below (rte_hash_lookup_bulk's pattern, as dedup's burst).
        prepare_windows(slots + start, end - start, verdicts);
        m = 0;
        for (uint32_t i = start; i < std::min(end, start + slot_prefetch_ahead); ++i)
            prefetch_slot_data(*slots[i]);
        for (uint32_t i = start; i < std::min(end, start + cell_prefetch_ahead); ++i)
            prefetch_cells(i - start);
        for (uint32_t i = start; i < end; ++i) {
            if (i + slot_prefetch_ahead < end) prefetch_slot_data(*slots[i + slot_prefetch_ahead]);
            if (i + cell_prefetch_ahead < end) prefetch_cells(i + cell_prefetch_ahead - start);
            const event_slot& s = *slots[i];
            // Spark's watermark: the max event time over all workers, learned from the RX
            // stamps (events and idle-time watermark slots alike).
            if (s.max_time_before_ms != no_time && s.max_time_before_ms > _max_time_ms)
                _max_time_ms = s.max_time_before_ms;
            switch (s.kind) {
            case slot_kind::watermark: break;
            case slot_kind::dead_letter:
                ++_slots_in[s.rx_index];
                bump(_counters.events_in);
                store_dead_letter(s, s.reason);
                break;
            case slot_kind::event:
                ++_slots_in[s.rx_index];
                bump(_counters.events_in);
                accept_event(s, verdicts[m++], i - start);
                break;
            }
        }
    }
    _counters.max_time_ms.store(_max_time_ms, std::memory_order_relaxed);
}

void worker::accept_event(const event_slot& s, dedup_verdict verdict, uint32_t slot) noexcept {
    switch (verdict) {
    case dedup_verdict::beyond_horizon:
        store_dead_letter(s, dead_letter_reason::beyond_dedup_horizon);
        return;
    case dedup_verdict::duplicate: bump(_counters.duplicates); return;
    case dedup_verdict::accepted: break;
    }
    bump(_counters.events_accepted);
    aggregated a = aggregate(s, slot);
    if (a.late) bump(_counters.late_events);
    if (a.visible && s.rx_tsc != 0) [[likely]]
        _latency.window_visible.record(tsc_elapsed(uint64_t(s.rx_tsc), _burst_tsc));
    store_event(s, a.late);
}

int64_t worker::watermark_of(const active_query& aq) const noexcept {
    return query_watermark(_max_time_ms, aq.query->delay_ms(), aq.floor_ms);
}

// The key pass reads each slot's bytes first (the data prefetches run ahead of it here
// too); the index slots' misses then overlap the next events' keys and hashes.
void worker::prepare_windows(event_slot* const* slots, uint32_t n,
                             const dedup_verdict* verdicts) noexcept {
    _chunk_slots = n;
    if (_nqueries == 0) return;
    for (uint32_t i = 0; i < std::min(n, slot_prefetch_ahead); ++i) prefetch_slot_data(*slots[i]);
    uint32_t used = 0; // of _burst_keys
    uint32_t m = 0;    // events so far (verdicts)
    for (uint32_t i = 0; i < n; ++i) {
        if (i + slot_prefetch_ahead < n) prefetch_slot_data(*slots[i + slot_prefetch_ahead]);
        const event_slot& s = *slots[i];
        const bool accepted = s.kind == slot_kind::event && verdicts[m++] == dedup_verdict::accepted;
        for (uint32_t qi = 0; qi < _nqueries; ++qi) {
            window_key& k = _window_keys[size_t(qi) * limits::ring_burst_max + i];
            const active_query& aq = _queries[qi];
            const compiled_query& q = *aq.query;
            // A query added at run time counts the events parsed after it was added.
            if (!accepted || s.generation < q.start_generation || !q.matches(s)) {
                k.len = window_key::skip;
                continue;
            }
            std::string_view key;
            if (q.group.size() == 1) {
                key = q.key_in_place(s);
                if (key.data() == nullptr) key = std::string_view("", 0);
            } else if (used + q.key_bytes_max <= burst_key_bytes) {
                key = std::string_view(_burst_keys.get() + used, q.build_key(s, _burst_keys.get() + used));
                used += uint32_t(key.size());
            } else {
                k.len = window_key::later;
                continue;
            }
            k.data = key.data();
            k.len = uint32_t(key.size());
            k.hash = window_key_hash(key);
            k.time_ms = s.event_time_ms;
            aq.state->prefetch_index(s.event_time_ms, k.hash);
        }
    }
}

void worker::prefetch_cells(uint32_t slot) const noexcept {
    if (slot >= _chunk_slots) return;
    for (uint32_t qi = 0; qi < _nqueries; ++qi) {
        const window_key& k = _window_keys[size_t(qi) * limits::ring_burst_max + slot];
        if (k.len >= window_key::later) continue;
        _queries[qi].state->prefetch_cell(k.time_ms, k.hash);
    }
}

worker::aggregated worker::aggregate(const event_slot& s, uint32_t slot) noexcept {
    aggregated out;
    for (uint32_t i = 0; i < _nqueries; ++i) {
        active_query& aq = _queries[i];
        const compiled_query& q = *aq.query;
        const window_key& k = _window_keys[size_t(i) * limits::ring_burst_max + slot];
        if (k.len == window_key::skip) continue;
        std::string_view key;
        uint64_t hash;
        if (k.len == window_key::later) [[unlikely]] {
            key = std::string_view(_key.get(), q.build_key(s, _key.get()));
            hash = window_key_hash(key);
        } else {
            key = std::string_view(k.data, k.len);
            hash = k.hash;
        }
        q.read_inputs(s, _inputs);
        window_state::verdict v = aq.state->add(s.event_time_ms, key, hash, watermark_of(aq), _inputs);
        bump(aq.progress->events);
        if (v.late) {
            out.late = true;
            bump(aq.progress->late_events);
        }
        if (v.overflow) [[unlikely]] {
            bump(aq.progress->overflow);
            bump(_counters.window_overflow);
        }
        // Hopping windows: an event that missed a closed window still went into the others.
        out.visible |= !v.overflow && (!v.late || q.kind() == window_kind::hopping);
    }
    return out;
}

void worker::store_event(const event_slot& s, bool late) noexcept {
    append_event_row(_events->batch(), s, late, _max_time_ms);
    _events->commit_row();
    ++_events_rows;
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
    ++_dead_rows;
}

void worker::close_cells(active_query& aq, int64_t watermark_ms) noexcept {
    const uint32_t uid = aq.query->uid;
    const uint32_t blob_bytes = aq.query->aggs.blob_bytes();
    partial_batch* batch = _channel.acquire(_channel.ctx);
    batch->reset(_config.index, uid);
    aq.state->close_until(watermark_ms, [&](int64_t start, int64_t end, std::string_view key,
                                            const uint8_t* blob) {
        if (!batch->fits(key.size(), blob_bytes)) {
            _channel.publish(_channel.ctx, batch);
            batch = _channel.acquire(_channel.ctx);
            batch->reset(_config.index, uid);
        }
        batch->append(start, end, key, blob, blob_bytes);
    });
    _channel.publish(_channel.ctx, batch);
}

void worker::send_snapshot(active_query& aq, uint64_t snapshot_id) noexcept {
    const uint32_t uid = aq.query->uid;
    const uint32_t blob_bytes = aq.query->aggs.blob_bytes();
    partial_batch* batch = _channel.acquire(_channel.ctx);
    batch->reset(_config.index, uid, batch_kind::snapshot, snapshot_id);
    aq.state->for_each_open([&](int64_t start, int64_t end, std::string_view key, const uint8_t* blob) {
        if (!batch->fits(key.size(), blob_bytes)) {
            _channel.publish(_channel.ctx, batch);
            batch = _channel.acquire(_channel.ctx);
            batch->reset(_config.index, uid, batch_kind::snapshot, snapshot_id);
        }
        batch->append(start, end, key, blob, blob_bytes);
    });
    batch->kind = batch_kind::snapshot_end;
    _channel.publish(_channel.ctx, batch);
}

void worker::advance(active_query& aq) noexcept {
    const int64_t w = watermark_of(aq);
    if (w <= aq.snapshot_w) return;
    const window_state& st = *aq.state;
    bool scan = st.earliest_end_ms() <= w;
    if (scan && aq.query->kind() == window_kind::session) {
        // Sessions end at any millisecond: scan at most once per gap/16 of watermark
        // progress. Pieces left open meanwhile stay in the holds, so none is lost.
        int64_t step = std::max<int64_t>(aq.query->def.window.gap_ms / 16, 1);
        scan = aq.scan_w == INT64_MIN || w - aq.scan_w >= step;
    }
    if (scan) {
        close_cells(aq, w);
        aq.scan_w = w;
    }
    publication p;
    p.valid = true;
    p.rows = _events_rows;
    p.closed_until_ms = w;
    p.open_min_start_ms = st.open_min_start_ms();
    std::copy(st.holds_ms(), st.holds_ms() + hold_buckets, p.holds_ms);
    if (!aq.in_flight.valid) aq.in_flight = p;
    else aq.next = p;
    aq.snapshot_w = w;
}

void worker::publish(worker_progress& p, const publication& pub) noexcept {
    for (uint32_t b = 0; b < hold_buckets; ++b)
        p.holds_ms[b].store(pub.holds_ms[b], std::memory_order_release);
    p.open_min_start_ms.store(pub.open_min_start_ms, std::memory_order_release);
    p.closed_until_ms.store(pub.closed_until_ms, std::memory_order_release);
}

bool worker::try_publish(active_query& aq) noexcept {
    const uint64_t durable = _events->rows_durable();
    bool published = false;
    while (aq.in_flight.valid && durable >= aq.in_flight.rows) {
        publish(*aq.progress, aq.in_flight);
        aq.in_flight = aq.next;
        aq.next.valid = false;
        published = true;
    }
    return published;
}

// After the progress stores: a merger blocked on its idle_wake reads them at once instead
// of at its wait's bound (up to limits::idle_wait_us later). While the merger is busy this
// is a fence and a load (idle_wake::notify), no syscall.
void worker::tell_progress() noexcept {
    if (_channel.progressed != nullptr) _channel.progressed(_channel.ctx);
}

void worker::run_command() noexcept {
    worker_command& cmd = _mailbox.cmd();
    cmd.ok = false;
    switch (cmd.what) {
    case worker_command::op::add_query:
        cmd.ok = add_query(std::move(cmd.query), std::move(cmd.state), cmd.floor_ms).ok();
        break;
    case worker_command::op::remove_query:
        for (uint32_t i = 0; i < _nqueries; ++i) {
            if (_queries[i].query->uid != cmd.uid) continue;
            // Hand the state back: the poster frees it, off this lcore.
            cmd.query = std::move(_queries[i].query);
            cmd.state = std::move(_queries[i].state);
            for (uint32_t j = i + 1; j < _nqueries; ++j) _queries[j - 1] = std::move(_queries[j]);
            _queries[--_nqueries] = active_query{};
            cmd.ok = true;
            break;
        }
        break;
    case worker_command::op::snapshot:
        for (uint32_t i = 0; i < _nqueries; ++i) {
            if (_queries[i].query->uid != cmd.uid) continue;
            send_snapshot(_queries[i], cmd.snapshot_id);
            cmd.ok = true;
            break;
        }
        break;
    }
    _mailbox.complete();
}

void worker::tick(int64_t now_ns) noexcept {
    if (_mailbox.pending()) [[unlikely]] run_command();
    for (uint32_t i = 0; i < _nqueries; ++i) advance(_queries[i]);
    _dedup.reclaim_some(_max_time_ms);
    _counters.dedup_tracked.store(_dedup.tracked(), std::memory_order_relaxed);
    _counters.dedup_horizon_ms.store(_dedup.effective_horizon_ms(_max_time_ms),
                                     std::memory_order_relaxed);
    _events->poll(now_ns);
    _dead_letters->poll(now_ns);
    note_durable();
    // Publish first, so that slots a completed sync covers are not wanted again.
    publish_durable_slots();
    if (durability_wanted()) {
        _events->commit_now();
        _dead_letters->commit_now();
    }
    mark_slots();
    bool progressed = false;
    for (uint32_t i = 0; i < _nqueries; ++i) progressed |= try_publish(_queries[i]);
    if (progressed) tell_progress();
}

int64_t worker::next_deadline_ns(int64_t now_ns) const noexcept {
    return std::min(_events->next_deadline_ns(now_ns), _dead_letters->next_deadline_ns(now_ns));
}

bool worker::wake_on_completion(int fd) noexcept {
    return _events->wake_on_completion(fd) && _dead_letters->wake_on_completion(fd);
}

bool worker::durability_wanted() const noexcept {
    for (uint32_t r = 0; r < limits::rx_lcores_max; ++r) {
        const uint64_t want = _slots_wanted[r].value.load(std::memory_order_acquire);
        if (want > _slots_durable[r].value.load(std::memory_order_relaxed) && _slots_in[r] >= want)
            return true;
    }
    return false;
}

// Publishes the slots of the newest mark whose rows both writers have made durable.
void worker::publish_durable_slots() noexcept {
    const slots_mark* done = nullptr;
    while (_marks_count > 0) {
        const slots_mark& m = _marks[_marks_head];
        if (_events->rows_durable() < m.events_rows || _dead_letters->rows_durable() < m.dead_rows)
            break;
        done = &m;
        _marks_head = (_marks_head + 1) % slots_marks_max;
        --_marks_count;
    }
    if (done == nullptr) return;
    for (uint32_t r = 0; r < limits::rx_lcores_max; ++r)
        if (_slots_durable[r].value.load(std::memory_order_relaxed) != done->slots[r]) {
            _slots_durable[r].value.store(done->slots[r], std::memory_order_release);
            // After the store: the RX that wakes sees it. A full eventfd (EAGAIN) is awake.
            if (_durable_wake[r] >= 0) {
                const uint64_t one = 1;
                (void)!::write(_durable_wake[r], &one, sizeof one);
            }
        }
}

// After a writer was asked to commit (interval, size, commit_now, flush), a mark of every
// slot processed so far. Taken in the tick that asked for an interval or commit_now
// commit, it is exactly what that commit covers, so the commit publishes all of it; after
// a size commit (asked for mid-burst) it waits for the next one. A slot thus waits for the
// first commit asked for after it: at most about two group-commit intervals, and with
// commit_now about one sync.
//
// Slots that added no row since the last mark (duplicates) need no commit: they get a
// mark at once, durable with the last one (else an answer waiting only for them would
// wait forever: no commit is ever asked for rows that do not exist).
void worker::mark_slots() noexcept {
    const uint64_t commits = _events->commits_requested() + _dead_letters->commits_requested();
    slots_mark& last = _last_mark;
    const bool same_rows = last.events_rows == _events_rows && last.dead_rows == _dead_rows;
    if (commits == _marked_commits && !same_rows) return;
    _marked_commits = commits;
    if (same_rows && last.slots == _slots_in) return;
    last.slots = _slots_in;
    last.events_rows = _events_rows;
    last.dead_rows = _dead_rows;
    if (_marks_count == slots_marks_max) {
        _marks[(_marks_head + _marks_count - 1) % slots_marks_max] = last; // move the newest
    } else {
        _marks[(_marks_head + _marks_count) % slots_marks_max] = last;
        ++_marks_count;
    }
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

result<void> worker::finish() {
    if (_mailbox.pending()) run_command();
    for (uint32_t i = 0; i < _nqueries; ++i) close_cells(_queries[i], INT64_MAX);
    auto a = _events->close();
    auto b = _dead_letters->close();
    if (_events->failed()) {
        // Events were lost: publish only what is durable (the snapshots its rows cover)
        // and no more, so no window row counts an event the store does not hold.
        for (uint32_t i = 0; i < _nqueries; ++i) {
            try_publish(_queries[i]);
            _queries[i].progress->abandoned.store(true, std::memory_order_release);
        }
        tell_progress();
        if (!a) return a;
        return _events->failure();
    }
    // Everything is closed and durable: the merger may emit all.
    publication last;
    last.valid = true;
    last.closed_until_ms = INT64_MAX;
    std::fill(std::begin(last.holds_ms), std::end(last.holds_ms), INT64_MAX);
    for (uint32_t i = 0; i < _nqueries; ++i) publish(*_queries[i].progress, last);
    tell_progress();
    if (!a) return a;
    return b;
}

result<void> worker::flush() {
    SLUICE_TRY(_events->flush_and_sync());
    auto r = _dead_letters->flush_and_sync();
    note_durable();
    publish_durable_slots();
    mark_slots(); // flush_and_sync asked for a commit: everything processed is durable now
    publish_durable_slots();
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
