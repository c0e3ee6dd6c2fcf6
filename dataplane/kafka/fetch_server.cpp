#include "dataplane/kafka/fetch_server.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "base/clock.h"
#include "base/log.h"
#include "storage/event_identity.h"
#include "storage/export.h"
#include "storage/text_format.h"

namespace sluice::dataplane::kafka {
namespace {

void bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
}

int64_t now_ms() noexcept {
    return monotonic_ns() / 1000000;
}

bytes_view as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

} // namespace

// The columns a record is built from, found by name in each block's schema: the events
// table's, the dead_letters table's, or a query table's (its group columns are the
// string columns; `revision` is left out of the value).
struct fetch_server::row_columns {
    int time = -1, event_id = -1, late = -1, raw = -1; // events
    int reason = -1, raw_len = -1;                     // dead_letters (time, raw too)
    int revision = -1;                                 // query tables
    std::vector<int> group;
    row_columns(const storage::table_schema& s, topic_table t) {
        switch (t) {
        case topic_table::events:
            time = s.column_index("event_time_ms");
            event_id = s.column_index("event_id");
            late = s.column_index("late");
            raw = s.column_index("raw");
            break;
        case topic_table::dead_letters:
            time = s.column_index("received_ms");
            reason = s.column_index("reason");
            raw_len = s.column_index("raw_len");
            raw = s.column_index("raw");
            break;
        case topic_table::query:
            time = s.column_index("window_end_ms");
            revision = s.column_index("revision");
            for (size_t c = 0; c < s.columns.size(); ++c)
                if (s.columns[c].type == storage::column_type::string) group.push_back(int(c));
            break;
        }
    }
    bool ok(topic_table t) const noexcept {
        switch (t) {
        case topic_table::events: return time >= 0 && event_id >= 0 && late >= 0 && raw >= 0;
        case topic_table::dead_letters: return time >= 0 && reason >= 0 && raw_len >= 0 && raw >= 0;
        case topic_table::query: return time >= 0 && revision >= 0;
        }
        return false;
    }
};

struct fetch_server::partition_state {
    topic_table table = topic_table::events;
    uint32_t index = 0;
    uint64_t id = 0; // the cache's key: never reused
    std::string table_dir;
    std::string writer;
    std::vector<storage::log_segment> segments;
    uint64_t start = 0; // the log start last seen (the cache is trimmed when it moves)
};

// ---- fetch_batch_cache ----

const fetch_batch_cache::entry* fetch_batch_cache::find(uint64_t part, uint64_t from) {
    auto it = _index.find({part, from});
    if (it == _index.end()) return nullptr;
    _lru.splice(_lru.begin(), _lru, it->second);
    return &*it->second;
}

void fetch_batch_cache::insert(uint64_t part, uint64_t from, uint64_t to, uint32_t records,
                               bytes_view batches) {
    if (batches.size() > _max || _index.count({part, from})) return;
    while (_used + batches.size() > _max && !_lru.empty()) erase(std::prev(_lru.end()));
    _lru.push_front(entry{part, from, to, records, {batches.begin(), batches.end()}});
    _index.emplace(std::make_pair(part, from), _lru.begin());
    _used += batches.size();
    if (_counters) _counters->cache_bytes.store(_used, std::memory_order_relaxed);
}

void fetch_batch_cache::erase(std::list<entry>::iterator it) {
    _used -= it->bytes.size();
    _index.erase({it->part, it->from});
    _lru.erase(it);
    if (_counters) {
        bump(_counters->cache_evictions);
        _counters->cache_bytes.store(_used, std::memory_order_relaxed);
    }
}

void fetch_batch_cache::drop(uint64_t part) {
    drop_below(part, UINT64_MAX);
}

void fetch_batch_cache::drop_below(uint64_t part, uint64_t start) {
    for (auto it = _lru.begin(); it != _lru.end();) {
        auto next = std::next(it);
        if (it->part == part && it->from < start) erase(it);
        it = next;
    }
}

// ---- fetch_server ----

fetch_server::fetch_server(fetch_server_config config)
    : _config(std::move(config)), _cache(_config.cache_bytes, &_counters) {
    auto make = [this](topic_table t, const char* table, uint32_t p) {
        auto ps = std::make_unique<partition_state>();
        ps->table = t;
        ps->index = p;
        ps->id = _next_part_id++;
        ps->table_dir = _config.data_dir + "/" + table;
        ps->writer = "w" + std::to_string(p);
        return ps;
    };
    for (uint32_t p = 0; p < _config.partitions; ++p) {
        _events.push_back(make(topic_table::events, "events", p));
        if (_config.dead_letters_watermark)
            _dead.push_back(make(topic_table::dead_letters, "dead_letters", p));
    }
    refresh_topics();
    if (!_topics.load()) refresh_topics(); // published on the first listing, queries or not
    _jobs.start([this] { return reader_step(); });
}

fetch_server::~fetch_server() {
    stop();
}

void fetch_server::stop() {
    _jobs.stop();
}

void fetch_server::refresh_topics() {
    std::map<std::string, uint64_t, std::less<>> running;
    if (_config.queries)
        _config.queries([&](const std::string& name, uint64_t hw) { running[name] = hw; });
    bool changed = !_topics.load() || running.size() != _running.size();
    for (auto it = _running.begin(); !changed && it != _running.end(); ++it)
        changed = !running.count(it->first);
    // A query that went away: its partition and cached batches go too.
    for (auto it = _query_parts.begin(); it != _query_parts.end();) {
        if (running.count(it->first)) {
            ++it;
            continue;
        }
        _cache.drop(it->second->id);
        it = _query_parts.erase(it);
    }
    _running = std::move(running);
    if (!changed) return;
    auto list = std::make_shared<consume_topic_list>();
    list->push_back({std::string(events_topic), topic_table::events, int32_t(_config.partitions)});
    if (_config.dead_letters_watermark)
        list->push_back({std::string(dead_letters_topic), topic_table::dead_letters,
                         int32_t(_config.partitions)});
    for (const auto& [name, hw] : _running) list->push_back({name, topic_table::query, 1});
    _topics.store(std::move(list));
}

uint64_t fetch_server::watermark_mark() {
    refresh_topics();
    uint64_t sum = 0;
    for (uint32_t p = 0; p < _config.partitions; ++p) {
        sum += _config.high_watermark(p);
        if (_config.dead_letters_watermark) sum += _config.dead_letters_watermark(p);
    }
    for (const auto& [name, hw] : _running) sum += hw;
    return sum;
}

int64_t fetch_server::reader_step() {
    uint32_t i = 0;
    while (_jobs.take(i)) {
        fetch_job& j = _jobs.job(i);
        int32_t wait_ms = 0;
        j.mark = watermark_mark();
        if (serve(j.request, j.answer, false, wait_ms)) {
            _jobs.finish(i);
        } else {
            bump(_counters.long_polls);
            j.deadline_ms = now_ms() + wait_ms;
            _waiting.push_back(i);
        }
    }
    if (!_waiting.empty()) {
        const int64_t now = now_ms();
        const uint64_t mark = watermark_mark();
        size_t kept = 0;
        for (uint32_t w : _waiting) {
            fetch_job& j = _jobs.job(w);
            const bool final = now >= j.deadline_ms;
            int32_t wait_ms = 0;
            if ((final || mark != j.mark) && (j.mark = mark, serve(j.request, j.answer, final, wait_ms)))
                _jobs.finish(w);
            else
                _waiting[kept++] = w;
        }
        _waiting.resize(kept);
    } else {
        refresh_topics(); // Metadata's list follows queries added and removed
    }
    return _waiting.empty() ? 100 : fetch_poll_ms;
}

bool fetch_server::serve(bytes_view frame, std::vector<uint8_t>& answer, bool final,
                         int32_t& max_wait_ms) {
    answer.clear();
    request_header h;
    if (parse_request_header(frame, h) != parse_error::none) return true; // checked by the RX
    refresh_topics();
    switch (h.api_key) {
    case api_key::list_offsets: serve_list_offsets(h, answer); return true;
    case api_key::offset_for_leader_epoch: serve_leader_epochs(h, answer); return true;
    case api_key::describe_configs: serve_describe_configs(h, answer); return true;
    default: return serve_fetch(h, answer, final, max_wait_ms);
    }
}

fetch_server::partition_state* fetch_server::partition(std::string_view topic, int32_t p,
                                                       uint64_t& hw) {
    if (p < 0) return nullptr;
    if (topic == events_topic) {
        if (uint32_t(p) >= _events.size()) return nullptr;
        hw = _config.high_watermark(uint32_t(p));
        return _events[size_t(p)].get();
    }
    if (topic == dead_letters_topic) {
        if (uint32_t(p) >= _dead.size()) return nullptr;
        hw = _config.dead_letters_watermark(uint32_t(p));
        return _dead[size_t(p)].get();
    }
    auto q = _running.find(topic);
    if (q == _running.end() || p != 0) return nullptr;
    hw = q->second;
    auto& ps = _query_parts[q->first];
    if (!ps) {
        ps = std::make_unique<partition_state>();
        ps->table = topic_table::query;
        ps->id = _next_part_id++;
        ps->table_dir = _config.data_dir + "/" + q->first;
        ps->writer = "merger";
    }
    return ps.get();
}

bool fetch_server::topic_exists(std::string_view name) {
    uint64_t hw;
    return partition(name, 0, hw) != nullptr ||
           (_config.producer_topic && _config.producer_topic(name));
}

template <typename Req, typename Res, typename Fn>
void fetch_server::walk(const std::vector<topic_of<Req>>& in, std::vector<topic_of<Res>>& out,
                        Fn&& fn) {
    out.reserve(in.size());
    for (const auto& t : in) {
        auto& rt = out.emplace_back();
        rt.name = t.name;
        rt.partitions.reserve(t.partitions.size());
        for (const auto& p : t.partitions) {
            auto& rp = rt.partitions.emplace_back();
            rp.partition = p.partition;
            uint64_t hw = 0;
            partition_state* ps = partition(t.name, p.partition, hw);
            if (!ps) {
                rp.error = error_code::unknown_topic_or_partition;
            } else if (p.current_leader_epoch > 0) {
                // Newer than any epoch this one-node log has (always 0), as a broker answers.
                rp.error = error_code::unknown_leader_epoch;
            } else {
                fn(p, rp, *ps, hw);
            }
        }
    }
}

void fetch_server::refresh(partition_state& ps) {
    auto listed = storage::list_log_segments(ps.table_dir, ps.writer, &ps.segments);
    if (listed) {
        ps.segments = std::move(*listed);
    } else {
        ps.segments.clear(); // no such table yet
    }
}

// The first offset still stored: the oldest segment's first row; retention moves it (and
// the cache lets go of the batches below it).
uint64_t fetch_server::log_start(partition_state& ps, uint64_t hw) {
    // Listed again only when the oldest segment known is gone (retention) or none is known.
    std::error_code ec;
    if (ps.segments.empty() || !std::filesystem::exists(ps.segments.front().path, ec))
        refresh(ps);
    const uint64_t start = ps.segments.empty() ? hw : std::min(ps.segments.front().first_offset, hw);
    if (start > ps.start) {
        _cache.drop_below(ps.id, start);
        ps.start = start;
    }
    return start;
}

bool fetch_server::serve_fetch(const request_header& h, std::vector<uint8_t>& answer, bool final,
                               int32_t& max_wait_ms) {
    fetch_request req;
    if (parse_fetch_request(h, req) != parse_error::none) return true; // checked by the RX
    max_wait_ms = req.max_wait_ms;
    std::vector<fetch_response_topic> topics;
    size_t total = 0, used = 0;
    const size_t max_bytes = size_t(std::max(req.max_bytes, 0));
    walk(req.topics, topics,
         [&](const fetch_request_partition& p, fetch_response_partition& rp, partition_state& ps,
             uint64_t hw) {
             const uint64_t start = log_start(ps, hw);
             rp.high_watermark = rp.last_stable_offset = int64_t(hw);
             rp.log_start_offset = int64_t(start);
             if (p.fetch_offset < int64_t(start) || p.fetch_offset > int64_t(hw)) {
                 rp.error = error_code::offset_out_of_range;
                 bump(_counters.out_of_range);
                 return;
             }
             if (used >= _records.size()) _records.emplace_back();
             std::vector<uint8_t>& recs = _records[used++];
             recs.clear();
             const size_t budget = std::min(size_t(std::max(p.partition_max_bytes, 0)),
                                            max_bytes - std::min(max_bytes, total));
             // KIP-74: the first partition with data gets at least one record whatever the limits.
             total += read_records(ps, uint64_t(p.fetch_offset), hw, budget, total == 0, recs);
             rp.records = bytes_view(recs.data(), recs.size());
         });
    bool error = false;
    for (const auto& t : topics)
        for (const auto& p : t.partitions) error |= p.error != error_code::none;
    const bool done = final || error || req.max_wait_ms <= 0 ||
                      total >= size_t(std::max(req.min_bytes, 0));
    if (!done) return false;
    response_writer w(answer);
    write_fetch_response(w, h, topics);
    bump(_counters.fetches);
    bump(_counters.bytes_sent, total);
    return true;
}

// One stored row as a record of its topic (docs/KAFKA.md "Consuming" has the mapping):
// views into the block or into this server's scratch, valid until the next call.
void fetch_server::row_record(const row_columns& c, topic_table t, const storage::column_batch& b,
                              uint32_t row, built_record& r) {
    r.ts = b.i64_at(c.time, row);
    r.headers = 0;
    switch (t) {
    case topic_table::events: {
        r.value = as_bytes(b.string_at(c.raw, row));
        std::string_view key = b.string_at(c.event_id, row);
        if (b.is_null(c.event_id, row)) {
            const auto id = storage::identity_of_bytes(b.string_at(c.raw, row));
            std::snprintf(_hex, sizeof _hex, "%016llx%016llx", (unsigned long long)id.hi,
                          (unsigned long long)id.lo);
            key = std::string_view(_hex, 32);
        }
        r.key = as_bytes(key);
        static constexpr std::string_view yes = "true";
        if (b.u8_at(c.late, row)) r.header[r.headers++] = {"late", as_bytes(yes)};
        return;
    }
    case topic_table::dead_letters: {
        const auto n = std::to_chars(_len, _len + sizeof _len, b.u64_at(c.raw_len, row)).ptr - _len;
        r.key = std::nullopt;
        r.value = as_bytes(b.string_at(c.raw, row));
        r.header[r.headers++] = {"reason", as_bytes(b.string_at(c.reason, row))};
        r.header[r.headers++] = {"raw_len", as_bytes(std::string_view(_len, size_t(n)))};
        return;
    }
    case topic_table::query: {
        _value.clear();
        (void)storage::append_json_row(_value, b, row, c.revision);
        r.value = as_bytes(_value);
        r.key = std::nullopt;
        if (c.group.empty()) return;
        _key.assign(1, '[');
        for (size_t g = 0; g < c.group.size(); ++g) {
            if (g) _key += ',';
            storage::text::append_json_string(_key, b.string_at(c.group[g], row));
        }
        _key += ']';
        r.key = as_bytes(_key);
        return;
    }
    }
}

// Appends RecordBatches for rows [from, to) to `out`, at most `budget` bytes (the first
// record always: a record larger than the budget must still reach the consumer, KIP-74).
// Batches built before for the same rows come from the cache when they fit the budget; a
// block is decoded only when its rows are not there.
size_t fetch_server::read_records(partition_state& ps, uint64_t from, uint64_t to, size_t budget,
                                  bool first_free, std::vector<uint8_t>& out) {
    const size_t start = out.size();
    if (from >= to) return 0;
    if (ps.segments.empty() || ps.segments.back().first_offset + ps.segments.back().rows < to)
        refresh(ps);
    bool full = false;
    uint64_t records = 0;
    auto nothing_yet = [&] { return first_free && out.size() == start && _builder.records() == 0; };
    auto take_cached = [&] {
        while (!full && from < to) {
            const fetch_batch_cache::entry* c = _cache.find(ps.id, from);
            // A run that does not fit what is left of the budget is built again and cut
            // where the budget ends, as without the cache: the next fetch then starts
            // where the first reader's did, and finds its runs.
            if (c == nullptr || c->to > to) return;
            if (!nothing_yet() && out.size() - start + c->bytes.size() > budget) return;
            out.insert(out.end(), c->bytes.begin(), c->bytes.end());
            records += c->records;
            from = c->to;
            bump(_counters.cache_hits);
        }
    };
    auto before = [&](uint64_t first, uint64_t rows) {
        take_cached();
        if (full || from >= to) return storage::block_step::stop;
        return from >= first + rows ? storage::block_step::skip : storage::block_step::read;
    };
    built_record rec;
    // Each finished batch is cached on its own (keyed by its first offset), except one the
    // budget cut short: a later reader's fetches start at the same batch boundaries.
    auto keep = [&](uint64_t batch_from, uint64_t batch_to, size_t at) {
        if (batch_to > batch_from)
            _cache.insert(ps.id, batch_from, batch_to, uint32_t(batch_to - batch_from),
                          bytes_view(out.data() + at, out.size() - at));
    };
    auto block = [&](const storage::column_batch& b, uint64_t first) {
        const row_columns cols(b.schema(), ps.table);
        if (!cols.ok(ps.table)) return false;
        uint32_t row = uint32_t(from - first);
        uint64_t batch_from = from;
        size_t batch_at = out.size();
        _builder.begin(out, int64_t(batch_from));
        for (; row < b.rows() && first + row < to; ++row) {
            row_record(cols, ps.table, b, row, rec);
            size_t need = 40 + rec.value.size() + (rec.key ? rec.key->size() : 0);
            for (uint8_t i = 0; i < rec.headers; ++i)
                need += rec.header[i].key.size() + rec.header[i].value->size();
            if (!nothing_yet() && out.size() - start + _builder.bytes() + need > budget) {
                full = true;
                break;
            }
            if (_builder.records() == int32_t(fetch_batch_records_max) ||
                (_builder.records() > 0 && _builder.bytes() + need > fetch_batch_bytes_max)) {
                _builder.finish();
                keep(batch_from, first + row, batch_at);
                batch_from = first + row;
                batch_at = out.size();
                _builder.begin(out, int64_t(batch_from));
            }
            _builder.add(rec.ts, rec.key, rec.value,
                         std::span<const record_header_out>(rec.header, rec.headers));
            ++records;
        }
        _builder.finish();
        from = first + row;
        bump(_counters.cache_misses);
        if (!full) keep(batch_from, from, batch_at);
        return !full && from < to;
    };
    take_cached();
    for (const auto& seg : ps.segments) {
        if (full || from >= to || seg.first_offset >= to) break;
        if (seg.first_offset + seg.rows <= from && seg.closed) continue;
        auto read = storage::read_log_rows(seg, from, to, block, before);
        if (!read) {
            bump(_counters.read_errors);
            SLUICE_LOG_WARN("kafka fetch: %s", read.err().message.c_str());
            break;
        }
    }
    bump(_counters.records_sent, records);
    return out.size() - start;
}

int64_t fetch_server::offset_for_time(partition_state& ps, uint64_t hw, int64_t ts,
                                      int64_t& found_ts) {
    const uint64_t start = log_start(ps, hw);
    int64_t found = -1;
    found_ts = -1;
    for (const auto& seg : ps.segments) {
        if (found >= 0 || seg.first_offset >= hw) break;
        if (seg.closed && seg.max_time_ms < ts) continue;
        auto read = storage::read_log_rows(
            seg, start, hw, [&](const storage::column_batch& b, uint64_t first) {
                const int tc = row_columns(b.schema(), ps.table).time;
                if (tc < 0) return false;
                for (uint32_t row = 0; row < b.rows() && first + row < hw; ++row) {
                    if (first + row < start || b.i64_at(tc, row) < ts) continue;
                    found = int64_t(first + row);
                    found_ts = b.i64_at(tc, row);
                    return false;
                }
                return true;
            });
        if (!read) bump(_counters.read_errors);
    }
    return found;
}

void fetch_server::serve_list_offsets(const request_header& h, std::vector<uint8_t>& answer) {
    list_offsets_request req;
    if (parse_list_offsets_request(h, req) != parse_error::none) return; // checked by the RX
    std::vector<list_offsets_topic_result> topics;
    walk(req.topics, topics,
         [&](const list_offsets_partition& p, list_offsets_result& rp, partition_state& ps,
             uint64_t hw) {
             if (p.timestamp == list_offsets_latest)
                 rp.offset = int64_t(hw);
             else if (p.timestamp == list_offsets_earliest)
                 rp.offset = int64_t(log_start(ps, hw));
             else
                 rp.offset = offset_for_time(ps, hw, p.timestamp, rp.timestamp);
         });
    response_writer w(answer);
    write_list_offsets_response(w, h, topics);
    bump(_counters.list_offsets);
}

// One leader epoch, 0, for the whole log: epoch 0 (or any later one asked) ends at the high
// watermark; an epoch below 0 is undefined (-1, -1), as a broker answers it.
void fetch_server::serve_leader_epochs(const request_header& h, std::vector<uint8_t>& answer) {
    offset_for_leader_epoch_request req;
    if (parse_offset_for_leader_epoch_request(h, req) != parse_error::none) return;
    std::vector<leader_epoch_topic_result> topics;
    walk(req.topics, topics,
         [&](const leader_epoch_partition& p, leader_epoch_result& rp, partition_state&,
             uint64_t hw) {
             if (p.leader_epoch < 0) return;
             rp.leader_epoch = 0;
             rp.end_offset = int64_t(hw);
         });
    response_writer w(answer);
    write_offset_for_leader_epoch_response(w, h, topics);
    bump(_counters.leader_epochs);
}

// A topic's and the broker's fixed values, read-only: what a one-node broker with sluice's
// behaviour would list (docs/KAFKA.md "Consuming").
void fetch_server::serve_describe_configs(const request_header& h, std::vector<uint8_t>& answer) {
    describe_configs_request req;
    if (parse_describe_configs_request(h, req) != parse_error::none) return;
    const std::string partitions = std::to_string(_config.partitions);
    const std::string max_bytes = std::to_string(decompressed_bytes_max_default);
    namespace ct = config_type;
    const config_entry topic_configs[] = {
        {"cleanup.policy", "delete", config_source::default_config, ct::list},
        {"compression.type", "producer", config_source::default_config, ct::string},
        {"max.message.bytes", max_bytes, config_source::default_config, ct::int_},
        {"message.timestamp.type", "CreateTime", config_source::default_config, ct::string},
        {"min.insync.replicas", "1", config_source::default_config, ct::int_},
        {"unclean.leader.election.enable", "false", config_source::default_config, ct::boolean},
    };
    const config_entry broker_configs[] = {
        {"auto.create.topics.enable", "true", config_source::static_broker, ct::boolean},
        {"broker.id", "0", config_source::static_broker, ct::int_},
        {"default.replication.factor", "1", config_source::static_broker, ct::int_},
        {"min.insync.replicas", "1", config_source::static_broker, ct::int_},
        {"num.partitions", partitions, config_source::static_broker, ct::int_},
    };
    std::vector<describe_configs_result> results;
    for (const auto& res : req.resources) {
        auto& r = results.emplace_back();
        r.type = res.type;
        r.name = res.name;
        std::span<const config_entry> all;
        if (res.type == config_resource::topic) {
            if (!topic_exists(res.name)) {
                r.error = error_code::unknown_topic_or_partition;
                r.message = "no such topic";
                continue;
            }
            all = topic_configs;
        } else if (res.type == config_resource::broker && (res.name.empty() || res.name == "0")) {
            all = broker_configs;
        } else {
            r.error = error_code::invalid_request;
            r.message = "sluiced describes topics and broker 0 only";
            continue;
        }
        for (const auto& c : all)
            if (!res.keys || std::find(res.keys->begin(), res.keys->end(), c.name) != res.keys->end())
                r.configs.push_back(c);
    }
    response_writer w(answer);
    write_describe_configs_response(w, h, req, results);
    bump(_counters.describe_configs);
}

} // namespace sluice::dataplane::kafka
