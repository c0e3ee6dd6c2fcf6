#include "dataplane/kafka/fetch_server.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "base/clock.h"
#include "base/log.h"
#include "storage/event_identity.h"

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

// The events table's columns a record is built from, found by name in each block's schema.
struct event_columns {
    int time, event_id, late, raw;
    explicit event_columns(const storage::table_schema& s)
        : time(s.column_index("event_time_ms")), event_id(s.column_index("event_id")),
          late(s.column_index("late")), raw(s.column_index("raw")) {}
    bool ok() const noexcept { return time >= 0 && event_id >= 0 && late >= 0 && raw >= 0; }
};

} // namespace

struct fetch_server::partition_state {
    uint32_t index = 0;
    std::string table_dir;
    std::string writer;
    std::vector<storage::log_segment> segments;
};

fetch_server::fetch_server(fetch_server_config config)
    : _config(std::move(config)), _jobs(new fetch_job[kafka_fetch_jobs]) {
    _free.reserve(kafka_fetch_jobs);
    for (uint32_t i = kafka_fetch_jobs; i > 0; --i) _free.push_back(i - 1);
    for (uint32_t p = 0; p < _config.partitions; ++p) {
        auto ps = std::make_unique<partition_state>();
        ps->index = p;
        ps->table_dir = _config.data_dir + "/events";
        ps->writer = "w" + std::to_string(p);
        _parts.push_back(std::move(ps));
    }
    _reader = std::thread([this] { reader_main(); });
}

fetch_server::~fetch_server() {
    stop();
}

void fetch_server::stop() {
    _stop.store(true);
    _wake.release();
    if (_reader.joinable()) _reader.join();
}

void fetch_server::submit(conn_ref conn, int32_t slot, bytes_view frame) noexcept {
    const uint32_t i = _free.back();
    _free.pop_back();
    fetch_job& j = _jobs[i];
    j.conn = conn;
    j.slot = slot;
    j.request.assign(frame.begin(), frame.end()); // capacity is kept between requests
    _inbox.push(i);
    _wake.release();
}

uint64_t fetch_server::watermark_mark() const {
    uint64_t sum = 0;
    for (uint32_t p = 0; p < _config.partitions; ++p) sum += _config.high_watermark(p);
    return sum;
}

void fetch_server::reader_main() {
    std::vector<uint32_t> waiting;
    while (!_stop.load(std::memory_order_relaxed)) {
        uint32_t i;
        while (_inbox.try_pop(i)) {
            fetch_job& j = _jobs[i];
            int32_t wait_ms = 0;
            j.mark = watermark_mark();
            if (serve(j.request, j.answer, false, wait_ms)) {
                _done.push(i);
            } else {
                bump(_counters.long_polls);
                j.deadline_ms = now_ms() + wait_ms;
                waiting.push_back(i);
            }
        }
        if (!waiting.empty()) {
            const int64_t now = now_ms();
            const uint64_t mark = watermark_mark();
            size_t kept = 0;
            for (uint32_t w : waiting) {
                fetch_job& j = _jobs[w];
                const bool final = now >= j.deadline_ms;
                int32_t wait_ms = 0;
                if ((final || mark != j.mark) && (j.mark = mark, serve(j.request, j.answer, final, wait_ms)))
                    _done.push(w);
                else
                    waiting[kept++] = w;
            }
            waiting.resize(kept);
        }
        (void)_wake.try_acquire_for(std::chrono::milliseconds(waiting.empty() ? 100 : fetch_poll_ms));
    }
}

bool fetch_server::serve(bytes_view frame, std::vector<uint8_t>& answer, bool final,
                         int32_t& max_wait_ms) {
    answer.clear();
    request_header h;
    if (parse_request_header(frame, h) != parse_error::none) return true; // checked by the RX
    if (h.api_key == api_key::list_offsets) {
        serve_list_offsets(h, answer);
        return true;
    }
    return serve_fetch(h, answer, final, max_wait_ms);
}

fetch_server::partition_state* fetch_server::partition(std::string_view topic, int32_t p) {
    if (topic != _config.topic || p < 0 || uint32_t(p) >= _parts.size()) return nullptr;
    return _parts[size_t(p)].get();
}

void fetch_server::refresh(partition_state& ps) {
    auto listed = storage::list_log_segments(ps.table_dir, ps.writer, &ps.segments);
    if (listed) {
        ps.segments = std::move(*listed);
    } else {
        ps.segments.clear(); // no events table yet
    }
}

// The first offset still stored: the oldest segment's first row; retention moves it.
uint64_t fetch_server::log_start(partition_state& ps) {
    // Listed again only when the oldest segment known is gone (retention) or none is known.
    std::error_code ec;
    if (ps.segments.empty() || !std::filesystem::exists(ps.segments.front().path, ec))
        refresh(ps);
    const uint64_t hw = _config.high_watermark(ps.index);
    return ps.segments.empty() ? hw : std::min(ps.segments.front().first_offset, hw);
}

bool fetch_server::serve_fetch(const request_header& h, std::vector<uint8_t>& answer, bool final,
                               int32_t& max_wait_ms) {
    fetch_request req;
    if (parse_fetch_request(h, req) != parse_error::none) return true; // checked by the RX
    max_wait_ms = req.max_wait_ms;
    std::vector<fetch_response_topic> topics;
    topics.reserve(req.topics.size());
    size_t total = 0, used = 0;
    bool error = false;
    const size_t max_bytes = size_t(std::max(req.max_bytes, 0));
    for (const auto& t : req.topics) {
        auto& rt = topics.emplace_back();
        rt.name = t.name;
        for (const auto& p : t.partitions) {
            auto& rp = rt.partitions.emplace_back();
            rp.partition = p.partition;
            partition_state* ps = partition(t.name, p.partition);
            if (!ps) {
                rp.error = error_code::unknown_topic_or_partition;
                error = true;
                continue;
            }
            const uint64_t hw = _config.high_watermark(ps->index);
            const uint64_t start = log_start(*ps);
            rp.high_watermark = rp.last_stable_offset = int64_t(hw);
            rp.log_start_offset = int64_t(start);
            if (p.fetch_offset < int64_t(start) || p.fetch_offset > int64_t(hw)) {
                rp.error = error_code::offset_out_of_range;
                bump(_counters.out_of_range);
                error = true;
                continue;
            }
            if (used >= _records.size()) _records.emplace_back();
            std::vector<uint8_t>& recs = _records[used++];
            recs.clear();
            const size_t budget =
                std::min(size_t(std::max(p.partition_max_bytes, 0)), max_bytes - std::min(max_bytes, total));
            // KIP-74: the first partition with data gets at least one record whatever the limits.
            const size_t n = read_records(*ps, uint64_t(p.fetch_offset), hw, budget, total == 0, recs);
            total += n;
            rp.records = bytes_view(recs.data(), recs.size());
        }
    }
    const bool done = final || error || req.max_wait_ms <= 0 ||
                      total >= size_t(std::max(req.min_bytes, 0));
    if (!done) return false;
    response_writer w(answer);
    write_fetch_response(w, h, topics);
    bump(_counters.fetches);
    bump(_counters.bytes_sent, total);
    return true;
}

// Appends RecordBatches for rows [from, to) to `out`, at most `budget` bytes (the first
// record always: a record larger than the budget must still reach the consumer, KIP-74).
size_t fetch_server::read_records(partition_state& ps, uint64_t from, uint64_t to, size_t budget,
                                  bool first_free, std::vector<uint8_t>& out) {
    const size_t start = out.size();
    if (from >= to) return 0;
    if (ps.segments.empty() || ps.segments.back().first_offset + ps.segments.back().rows < to)
        refresh(ps);
    bool full = false;
    uint64_t records = 0;
    char hex[33];
    for (const auto& seg : ps.segments) {
        if (full || seg.first_offset >= to) break;
        if (seg.first_offset + seg.rows <= from && seg.closed) continue;
        auto read = storage::read_log_rows(
            seg, from, to, [&](const storage::column_batch& b, uint64_t first) {
                const event_columns c(b.schema());
                if (!c.ok()) return false;
                const uint32_t row0 = from > first ? uint32_t(from - first) : 0;
                uint32_t row = row0;
                _builder.begin(out, int64_t(first + row0));
                for (; row < b.rows() && first + row < to; ++row) {
                    const std::string_view raw = b.string_at(c.raw, row);
                    const bool has_id = !b.is_null(c.event_id, row);
                    std::string_view key = b.string_at(c.event_id, row);
                    if (!has_id) {
                        const auto id = storage::identity_of_bytes(raw);
                        std::snprintf(hex, sizeof hex, "%016llx%016llx",
                                      (unsigned long long)id.hi, (unsigned long long)id.lo);
                        key = std::string_view(hex, 32);
                    }
                    const size_t need = raw.size() + key.size() + 40;
                    const bool nothing_yet =
                        first_free && out.size() == start && _builder.records() == 0;
                    if (!nothing_yet && out.size() - start + _builder.bytes() + need > budget) {
                        full = true;
                        break;
                    }
                    if (_builder.records() == int32_t(fetch_batch_records_max)) {
                        _builder.finish();
                        _builder.begin(out, int64_t(first + row));
                    }
                    static constexpr std::string_view yes = "true";
                    const record_header_out late[1] = {{"late", as_bytes(yes)}};
                    _builder.add(b.i64_at(c.time, row), as_bytes(key), as_bytes(raw),
                                 b.u8_at(c.late, row) ? std::span<const record_header_out>(late)
                                                      : std::span<const record_header_out>());
                    ++records;
                }
                _builder.finish();
                from = first + row;
                return !full && from < to;
            });
        if (!read) {
            bump(_counters.read_errors);
            SLUICE_LOG_WARN("kafka fetch: %s", read.err().message.c_str());
            break;
        }
    }
    bump(_counters.records_sent, records);
    return out.size() - start;
}

int64_t fetch_server::offset_for_time(partition_state& ps, int64_t ts, int64_t& found_ts) {
    const uint64_t start = log_start(ps);
    const uint64_t hw = _config.high_watermark(ps.index);
    int64_t found = -1;
    found_ts = -1;
    for (const auto& seg : ps.segments) {
        if (found >= 0 || seg.first_offset >= hw) break;
        if (seg.closed && seg.max_time_ms < ts) continue;
        auto read = storage::read_log_rows(
            seg, start, hw, [&](const storage::column_batch& b, uint64_t first) {
                const int tc = b.schema().column_index("event_time_ms");
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
    for (const auto& t : req.topics) {
        auto& rt = topics.emplace_back();
        rt.name = t.name;
        for (const auto& p : t.partitions) {
            auto& rp = rt.partitions.emplace_back();
            rp.partition = p.partition;
            partition_state* ps = partition(t.name, p.partition);
            if (!ps) {
                rp.error = error_code::unknown_topic_or_partition;
                continue;
            }
            if (p.timestamp == list_offsets_latest) {
                rp.offset = int64_t(_config.high_watermark(ps->index));
            } else if (p.timestamp == list_offsets_earliest) {
                rp.offset = int64_t(log_start(*ps));
            } else {
                rp.offset = offset_for_time(*ps, p.timestamp, rp.timestamp);
            }
        }
    }
    response_writer w(answer);
    write_list_offsets_response(w, h, topics);
    bump(_counters.list_offsets);
}

} // namespace sluice::dataplane::kafka
