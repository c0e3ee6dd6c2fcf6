// Randomized property test (issue 4): thousands of generated streams (duplicates by
// bytes and by event_id, disorder, late events, window-boundary times, events beyond
// the dedup horizon, future and malformed lines, several queries of every window kind
// with every aggregate) go through the real RX event parser, the real workers (1, 2 and
// 4 of them, routed by identity as the RX routes) and the real merger, with windows
// closing along the way. Every query's rows, every counter and every stored event must
// equal what a simple, separate reference model computes from the generator's own
// description of the stream: the model shares no processing/ code (it has its own
// window assignment, dedup, lateness, sessions, HyperLogLog and quantile code).
//
// SLUICE_PROPERTY_STREAMS sets the number of streams per worker count (default 700),
// SLUICE_PROPERTY_SEED the first seed. A failure prints the seed to rerun with.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "dataplane/event_parse.h"
#include "processing/identity.h"
#include "processing/window_merger.h"
#include "processing/worker.h"
#include "storage/schema.h"
#include "storage/table_reader.h"
#include "tests/processing/processing_test_util.h"

namespace sluice::processing {
namespace {

using namespace testing;

constexpr uint32_t event_bytes_max = 1024;
constexpr int64_t skew_ms = 5 * 60 * 1000;
// A multiple of every window size and slide below, so boundaries line up.
constexpr int64_t t0 = 1'740'754'800'000;

// ---------------------------------------------------------------------------------
// The stream, as the generator describes it (the model reads this, never the bytes).

enum class line_kind { event, parse_error, missing_timestamp, bad_timestamp, schema_mismatch };

struct gen_line {
    line_kind kind = line_kind::event;
    std::string bytes;
    // kind == event:
    int64_t time_ms = 0;
    std::string identity; // "i:" + event_id or "b:" + bytes
    std::string page, user_id, event_type, region; // "" when absent
    bool has_latency = false;                       // a JSON number
    double latency = 0;
};

// ---------------------------------------------------------------------------------
// Queries of a stream.

struct stream_config {
    int64_t dedup_horizon_ms = 0;
    int64_t now_ms = 0; // wall clock for future_timestamp
    std::vector<query_def> queries;
};

query_def random_query(std::mt19937_64& rng, int index) {
    query_def q;
    q.name = "q" + std::to_string(index);
    // Calloc'd: only the cells in use are touched.
    q.memory_bytes = 128 << 20;
    auto pick = [&](auto... v) {
        std::vector<int64_t> all{int64_t(v)...};
        return all[rng() % all.size()];
    };
    switch (index % 3) {
    case 0: q.window = {window_kind::tumbling, pick(1000, 7000, 60000), 0, 0}; break;
    case 1: {
        int64_t size = pick(3000, 7000, 20000);
        int64_t slide = std::min(size, pick(1000, 3000, 500));
        if (size / slide > 64) slide = size / 16;
        q.window = {window_kind::hopping, size, slide, 0};
        break;
    }
    default: q.window = {window_kind::session, 0, 0, pick(300, 2000, 10000)}; break;
    }
    static const char* fields[] = {"page", "event_type", "metadata.region"};
    for (const char* f : fields)
        if (rng() % 2) q.group_by.push_back(f);
    if (rng() % 5 == 0) std::shuffle(q.group_by.begin(), q.group_by.end(), rng);
    q.aggregates.push_back(parse_aggregate("count").value());
    static const char* aggs[] = {"sum(metadata.latency)", "min(metadata.latency)",
                                 "max(metadata.latency)", "mean(metadata.latency)",
                                 "distinct(user_id, 8)", "distinct(metadata.region, 4)",
                                 "quantile(metadata.latency, 0, 0.5, 0.9, 1)"};
    // Quantile sketches take 16 KiB per cell: one query in four has one.
    for (const char* a : aggs)
        if (rng() % (a == aggs[6] ? 4 : 2) == 0) q.aggregates.push_back(parse_aggregate(a).value());
    if (rng() % 4 == 0)
        q.filter = rng() % 2 ? parse_filter("event_type=click").value()
                             : parse_filter("metadata.region!=eu").value();
    q.watermark_delay_ms = pick(0, 500, 5000, 60000);
    return q;
}

// ---------------------------------------------------------------------------------
// Stream generator.

std::string rfc3339(int64_t ms, int offset_min, int frac_digits, uint64_t extra_digits) {
    int64_t local = ms + int64_t(offset_min) * 60'000;
    time_t secs = time_t(local / 1000);
    tm t{};
    gmtime_r(&secs, &t);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", t.tm_year + 1900, t.tm_mon + 1,
                  t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
    std::string s = buf;
    int frac = int(local % 1000);
    if (frac_digits > 0) {
        std::snprintf(buf, sizeof buf, ".%03d", frac);
        s += std::string(buf).substr(0, size_t(1 + std::min(frac_digits, 3)));
        // Digits beyond milliseconds are truncated by the parser.
        for (int i = 3; i < frac_digits; ++i) s += char('0' + (extra_digits >> (4 * i)) % 10);
    }
    if (offset_min == 0) return s + "Z";
    int a = std::abs(offset_min);
    std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset_min < 0 ? '-' : '+', a / 60, a % 60);
    return s + buf;
}

std::string render(const gen_line& e, const std::string& event_id, std::mt19937_64& rng) {
    std::string ts;
    if (rng() % 3 == 0) {
        ts = std::to_string(e.time_ms);
    } else {
        int frac = 3;
        if (e.time_ms % 1000 == 0) frac = int(rng() % 2) * 3; // "…:05Z" or "…:05.000Z"
        else if (e.time_ms % 100 == 0) frac = 1;
        if (rng() % 5 == 0) frac = 6 + int(rng() % 4);
        static const int offsets[] = {0, 0, 0, 120, -330, 545, -720};
        ts = "\"" + rfc3339(e.time_ms, offsets[rng() % 7], frac, rng()) + "\"";
    }
    std::string j = "{";
    if (!event_id.empty()) j += "\"event_id\":\"" + event_id + "\",";
    j += "\"user_id\":\"" + e.user_id + "\",\"event_type\":\"" + e.event_type + "\",\"timestamp\":" + ts;
    if (!e.page.empty()) j += ",\"page\":\"" + e.page + "\"";
    j += ",\"metadata\":{";
    bool first = true;
    auto add = [&](const std::string& kv) {
        if (!first) j += ",";
        j += kv;
        first = false;
    };
    if (!e.region.empty()) add("\"region\":\"" + e.region + "\"");
    if (e.has_latency) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", e.latency);
        add("\"latency\":" + std::string(buf));
    } else if (rng() % 4 == 0) {
        add("\"latency\":\"12\""); // a string: not a number to aggregate
    }
    add("\"referrer\":\"https://r" + std::to_string(rng() % 3) + ".example\"");
    j += "}}";
    return j;
}

std::vector<gen_line> generate(std::mt19937_64& rng, stream_config& sc) {
    static const char* pages[] = {"/", "/a", "/b", "/products/1", "/x y", "/ünï"};
    static const char* types[] = {"page_view", "click", "click", "scroll"};
    static const char* regions[] = {"", "eu", "us", "apac"};
    const int n = 60 + int(rng() % 340);
    sc.dedup_horizon_ms = std::vector<int64_t>{30'000, 120'000, 3'600'000}[rng() % 3];
    std::vector<gen_line> out;
    std::vector<size_t> accepted_like; // lines that are events, to re-send
    int64_t cursor = t0 + int64_t(rng() % 5) * 1000;
    int64_t max_time = INT64_MIN;
    const int64_t step_max = std::vector<int64_t>{40, 300, 2500}[rng() % 3];
    sc.now_ms = t0 + int64_t(n) * step_max + 10 * 60'000; // most events are in the past
    for (int i = 0; i < n; ++i) {
        uint64_t roll = rng() % 100;
        if (roll < 6 && !accepted_like.empty()) {
            // An exact re-send of an earlier event line.
            out.push_back(out[accepted_like[rng() % accepted_like.size()]]);
            continue;
        }
        gen_line e;
        if (roll < 9) {
            static const char* bad[] = {"not json at all", "{\"page\":\"/x\"}",
                                        "{\"timestamp\":\"yesterday\",\"page\":\"/x\"}",
                                        "{\"timestamp\":1,\"page\":5}", "[1,2]"};
            static const line_kind kinds[] = {line_kind::parse_error, line_kind::missing_timestamp,
                                              line_kind::bad_timestamp, line_kind::schema_mismatch,
                                              line_kind::parse_error};
            size_t k = rng() % 5;
            e.kind = kinds[k];
            e.bytes = bad[k];
            out.push_back(e);
            continue;
        }
        cursor += int64_t(rng() % uint64_t(step_max));
        int64_t t = cursor;
        if (roll < 25) t -= int64_t(rng() % 8000);                          // disorder
        else if (roll < 30) t -= 20'000 + int64_t(rng() % 100'000);         // late, maybe beyond
        else if (roll < 31) t = sc.now_ms + skew_ms + 1 + int64_t(rng() % 5000); // future
        else if (roll < 32) t = sc.now_ms + skew_ms;                          // just not future
        if (roll >= 32 && roll < 45) {
            // Exactly on a boundary of some window.
            int64_t unit = std::vector<int64_t>{500, 1000, 3000, 7000, 60000}[rng() % 5];
            t = t - ((t - t0) % unit + unit) % unit;
        }
        e.time_ms = t;
        e.page = rng() % 10 == 0 ? "" : pages[rng() % 6];
        e.user_id = "u" + std::to_string(rng() % 40);
        e.event_type = types[rng() % 4];
        e.region = regions[rng() % 4];
        e.has_latency = rng() % 5 != 0;
        e.latency = double(int64_t(rng() % 4000) - 400) / 4.0; // dyadic: exact sums
        std::string event_id;
        bool id_dup = roll >= 45 && roll < 50 && !accepted_like.empty();
        if (id_dup) {
            // Same event_id as an earlier event, other bytes (maybe another time).
            const gen_line& prev = out[accepted_like[rng() % accepted_like.size()]];
            if (prev.identity.rfind("i:", 0) == 0) event_id = prev.identity.substr(2);
        }
        if (event_id.empty() && rng() % 2) event_id = "e-" + std::to_string(i) + "-" + std::to_string(rng() % 1000);
        e.bytes = render(e, event_id, rng);
        e.identity = event_id.empty() ? "b:" + e.bytes : "i:" + event_id;
        out.push_back(e);
        accepted_like.push_back(out.size() - 1);
        max_time = std::max(max_time, t);
    }
    int nq = 3 + int(rng() % 4);
    for (int i = 0; i < nq; ++i) sc.queries.push_back(random_query(rng, i + int(rng() % 3)));
    // Unique names.
    for (size_t i = 0; i < sc.queries.size(); ++i) sc.queries[i].name = "q" + std::to_string(i);
    return out;
}

// ---------------------------------------------------------------------------------
// The reference model.

struct model_row {
    int64_t start, end;
    std::vector<std::string> group;
    std::vector<agg_value> values;
    bool operator<(const model_row& o) const {
        return std::tie(end, start, group) < std::tie(o.end, o.start, o.group);
    }
};

struct model_result {
    uint64_t accepted = 0, duplicates = 0, late_any = 0, dead_letters = 0;
    std::map<std::string, uint64_t> dead_by_reason;
    std::vector<uint64_t> late_per_query;
    std::vector<std::vector<model_row>> rows; // per query, sorted
    std::multiset<std::pair<uint64_t, int>> stored; // (xxh3 of bytes, late)
};

std::string field_value(const gen_line& e, const std::string& path) {
    if (path == "page") return e.page;
    if (path == "event_type") return e.event_type;
    if (path == "user_id") return e.user_id;
    if (path == "metadata.region") return e.region;
    ADD_FAILURE() << "model: unknown field " << path;
    return {};
}

// The model's own HyperLogLog: registers by top bits, rank by leading zeros.
double model_hll(const std::set<std::string>& values, int p) {
    const int m = 1 << p;
    std::vector<int> reg(m, 0);
    for (const auto& v : values) {
        uint64_t h = XXH3_64bits(v.data(), v.size());
        int idx = int(h >> (64 - p));
        uint64_t rest = h << p;
        int rank = 1;
        while (rank <= 64 - p && !(rest & (1ull << 63))) {
            rest <<= 1;
            ++rank;
        }
        reg[idx] = std::max(reg[idx], rank);
    }
    double sum = 0;
    int zeros = 0;
    for (int r : reg) {
        sum += std::pow(2.0, -r);
        zeros += r == 0;
    }
    double alpha = m == 16 ? 0.673 : m == 32 ? 0.697 : m == 64 ? 0.709 : 0.7213 / (1.0 + 1.079 / m);
    double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros > 0) e = m * std::log(double(m) / zeros);
    return e;
}

// The model's own quantile: the exact rank's value, reported as the sketch's bin
// representative (the sketch's contract, quantile_sketch.h).
double model_quantile(std::vector<double> v, double q) {
    if (v.empty()) return std::nan("");
    std::sort(v.begin(), v.end());
    double x = v[size_t(std::floor(q * double(v.size() - 1)))];
    if (x == 0) return 0;
    const double gamma = (1 + 0.01) / (1 - 0.01);
    int i = int(std::ceil(std::log(std::abs(x)) / std::log(gamma)));
    double rep = 2 * std::pow(gamma, double(i)) / (gamma + 1);
    return x < 0 ? -rep : rep;
}

std::vector<agg_value> model_aggregates(const query_def& q, const std::vector<const gen_line*>& events) {
    std::vector<agg_value> out;
    auto real = [&](double v) { out.push_back(agg_value{false, 0, v}); };
    std::vector<double> nums;
    for (const auto* e : events)
        if (e->has_latency) nums.push_back(e->latency);
    for (const auto& a : q.aggregates) {
        switch (a.kind) {
        case agg_kind::count: out.push_back(agg_value{true, events.size(), 0}); break;
        case agg_kind::sum: {
            double s = 0;
            for (double v : nums) s += v;
            real(s);
            break;
        }
        case agg_kind::min: real(nums.empty() ? std::nan("") : *std::min_element(nums.begin(), nums.end())); break;
        case agg_kind::max: real(nums.empty() ? std::nan("") : *std::max_element(nums.begin(), nums.end())); break;
        case agg_kind::mean: {
            double s = 0;
            for (double v : nums) s += v;
            real(nums.empty() ? std::nan("") : s / double(nums.size()));
            break;
        }
        case agg_kind::distinct: {
            std::set<std::string> vals;
            for (const auto* e : events) {
                std::string v = field_value(*e, a.field);
                // An absent field is not a value (metadata.region may be absent).
                if (!v.empty() || a.field == "user_id") vals.insert(v);
            }
            out.push_back(agg_value{true, uint64_t(std::llround(model_hll(vals, int(a.precision)))), 0});
            break;
        }
        case agg_kind::quantile:
            for (double qq : a.quantiles) real(model_quantile(nums, qq));
            break;
        }
    }
    return out;
}

model_result run_model(const std::vector<gen_line>& lines, const stream_config& sc) {
    model_result r;
    r.late_per_query.assign(sc.queries.size(), 0);
    std::optional<int64_t> max_time; // over lines that pass the RX checks
    std::unordered_map<std::string, int64_t> seen; // identity -> event time accepted
    // Per query: tumbling/hopping (start, end, group) -> events; sessions group -> events.
    std::vector<std::map<std::tuple<int64_t, int64_t, std::vector<std::string>>, std::vector<const gen_line*>>> windows(sc.queries.size());
    std::vector<std::map<std::vector<std::string>, std::vector<const gen_line*>>> sessions(sc.queries.size());
    for (const auto& e : lines) {
        auto dead = [&](const char* reason) {
            ++r.dead_letters;
            ++r.dead_by_reason[reason];
        };
        switch (e.kind) {
        case line_kind::parse_error: dead("parse_error"); continue;
        case line_kind::missing_timestamp: dead("missing_timestamp"); continue;
        case line_kind::bad_timestamp: dead("bad_timestamp"); continue;
        case line_kind::schema_mismatch: dead("schema_mismatch"); continue;
        case line_kind::event: break;
        }
        if (e.time_ms > sc.now_ms + skew_ms) {
            dead("future_timestamp");
            continue;
        }
        const std::optional<int64_t> m = max_time; // M before this event
        max_time = std::max(max_time.value_or(INT64_MIN), e.time_ms);
        int64_t cutoff = m ? *m - sc.dedup_horizon_ms : INT64_MIN;
        if (e.time_ms < cutoff) {
            dead("beyond_dedup_horizon");
            continue;
        }
        auto it = seen.find(e.identity);
        if (it != seen.end() && it->second >= cutoff) {
            ++r.duplicates;
            continue;
        }
        seen[e.identity] = e.time_ms;
        ++r.accepted;
        bool late_any = false;
        for (size_t qi = 0; qi < sc.queries.size(); ++qi) {
            const query_def& q = sc.queries[qi];
            if (q.filter && (field_value(e, q.filter->field) == q.filter->value) == q.filter->negate) continue;
            std::vector<std::string> group;
            for (const auto& f : q.group_by) group.push_back(field_value(e, f));
            int64_t w = m ? *m - q.watermark_delay_ms : INT64_MIN;
            bool late = false;
            if (q.window.kind == window_kind::session) {
                if (e.time_ms < w) late = true;
                else sessions[qi][group].push_back(&e);
            } else {
                int64_t slide = q.window.kind == window_kind::hopping ? q.window.slide_ms : q.window.size_ms;
                // Every window [k * slide, k * slide + size) that holds the event.
                for (int64_t k = (e.time_ms - q.window.size_ms) / slide - 2; k * slide <= e.time_ms; ++k) {
                    int64_t start = k * slide, end = start + q.window.size_ms;
                    if (!(start <= e.time_ms && e.time_ms < end)) continue;
                    if (end <= w) late = true;
                    else windows[qi][{start, end, group}].push_back(&e);
                }
            }
            if (late) ++r.late_per_query[qi];
            late_any |= late;
        }
        if (late_any) ++r.late_any;
        r.stored.insert({XXH3_64bits(e.bytes.data(), e.bytes.size()), late_any ? 1 : 0});
    }
    r.rows.resize(sc.queries.size());
    for (size_t qi = 0; qi < sc.queries.size(); ++qi) {
        const query_def& q = sc.queries[qi];
        for (const auto& [k, evs] : windows[qi])
            r.rows[qi].push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), model_aggregates(q, evs)});
        for (auto& [group, evs] : sessions[qi]) {
            std::vector<const gen_line*> sorted = evs;
            std::stable_sort(sorted.begin(), sorted.end(),
                             [](const gen_line* a, const gen_line* b) { return a->time_ms < b->time_ms; });
            // A new session starts where the gap to the previous event is >= gap.
            size_t begin = 0;
            for (size_t i = 1; i <= sorted.size(); ++i) {
                if (i < sorted.size() && sorted[i]->time_ms - sorted[i - 1]->time_ms < q.window.gap_ms) continue;
                std::vector<const gen_line*> part(sorted.begin() + long(begin), sorted.begin() + long(i));
                r.rows[qi].push_back({part.front()->time_ms, part.back()->time_ms + q.window.gap_ms, group,
                                      model_aggregates(q, part)});
                begin = i;
            }
        }
        std::sort(r.rows[qi].begin(), r.rows[qi].end());
    }
    return r;
}

// ---------------------------------------------------------------------------------
// The system under test: real parser, workers and merger.

// A thread-safe channel with a growing buffer pool: workers never wait for buffers,
// so the single-threaded schedule cannot deadlock.
class sim_channel {
  public:
    partial_channel channel() { return {this, &acquire, &publish}; }
    std::vector<partial_batch*> take() {
        std::lock_guard lock(_mu);
        return std::exchange(_queue, {});
    }
    void give_back(partial_batch* b) {
        std::lock_guard lock(_mu);
        _free.push_back(b);
    }

  private:
    static partial_batch* acquire(void* ctx) noexcept {
        auto* self = static_cast<sim_channel*>(ctx);
        std::lock_guard lock(self->_mu);
        if (self->_free.empty()) {
            constexpr uint32_t cap = 256 * 1024;
            self->_buffers.emplace_back(new char[sizeof(partial_batch) + cap]);
            auto* b = reinterpret_cast<partial_batch*>(self->_buffers.back().get());
            b->capacity = cap;
            self->_free.push_back(b);
        }
        partial_batch* b = self->_free.back();
        self->_free.pop_back();
        return b;
    }
    static void publish(void* ctx, partial_batch* batch) noexcept {
        auto* self = static_cast<sim_channel*>(ctx);
        std::lock_guard lock(self->_mu);
        self->_queue.push_back(batch);
    }
    std::mutex _mu;
    std::vector<std::unique_ptr<char[]>> _buffers;
    std::vector<partial_batch*> _free, _queue;
};

struct sut_result {
    uint64_t accepted = 0, duplicates = 0, late_any = 0, dead_letters = 0, overflow = 0;
    std::map<std::string, uint64_t> dead_by_reason;
    std::vector<uint64_t> late_per_query;
    std::vector<std::vector<model_row>> rows;
    std::multiset<std::pair<uint64_t, int>> stored;
};

sut_result run_system(const std::vector<gen_line>& lines, const stream_config& sc, uint32_t nworkers,
                      std::mt19937_64& rng, bool threaded, const std::string& dir) {
    sut_result out;
    field_catalog catalog;
    std::vector<std::shared_ptr<compiled_query>> queries;
    for (size_t i = 0; i < sc.queries.size(); ++i) {
        auto q = compile(sc.queries[i], catalog, uint32_t(i + 1), 0, event_bytes_max);
        if (!q) {
            ADD_FAILURE() << q.err().message;
            return out;
        }
        queries.push_back(q.value());
    }
    catalog.publish();

    // RX: parse, stamp the max event time before each line, route by identity, and
    // after each burst tell every worker the max (the idle-time watermark slot).
    dataplane::event_parser parser(dataplane::parse_config{event_bytes_max, skew_ms, &catalog});
    std::vector<std::unique_ptr<slot_buffer>> slots;
    std::vector<std::vector<event_slot*>> queues(nworkers);
    int64_t rx_max = no_time;
    size_t burst_left = 1 + rng() % 40;
    for (const auto& line : lines) {
        auto s = std::make_unique<slot_buffer>(event_bytes_max);
        parser.parse(line.bytes, sc.now_ms, **s);
        (*s)->max_time_before_ms = rx_max;
        (*s)->received_ms = sc.now_ms;
        uint32_t w;
        if ((*s)->kind == slot_kind::event) {
            rx_max = rx_max == no_time ? (*s)->event_time_ms : std::max(rx_max, (*s)->event_time_ms);
            w = owner_worker((*s)->id, nworkers);
        } else {
            w = owner_worker(identity_of_bytes((*s)->raw()), nworkers);
        }
        queues[w].push_back(s->get());
        slots.push_back(std::move(s));
        if (--burst_left == 0) {
            burst_left = 1 + rng() % 40;
            for (uint32_t k = 0; k < nworkers; ++k) {
                auto wm = std::make_unique<slot_buffer>(event_bytes_max);
                (*wm)->kind = slot_kind::watermark;
                (*wm)->max_time_before_ms = rx_max;
                queues[k].push_back(wm->get());
                slots.push_back(std::move(wm));
            }
        }
    }

    sim_channel channel;
    std::vector<std::unique_ptr<worker>> workers;
    for (uint32_t k = 0; k < nworkers; ++k) {
        worker_config wc;
        wc.index = k;
        wc.dedup_horizon_ms = sc.dedup_horizon_ms;
        wc.dedup_memory_bytes = 1 << 20;
        wc.event_bytes_max = event_bytes_max;
        wc.data_dir = dir;
        wc.storage.flush_interval_ms = 1;
        wc.storage.direct_io = false;
        wc.rows_per_block = 64;
        wc.block_string_bytes_max = 64 << 10;
        auto w = worker::open(wc, channel.channel());
        if (!w) {
            ADD_FAILURE() << w.err().message;
            return out;
        }
        for (auto& q : queries) {
            auto r = (*w)->add_query(q, std::make_unique<window_state>(*q), INT64_MIN);
            EXPECT_TRUE(r);
        }
        workers.push_back(std::move(w.value()));
    }
    std::vector<std::unique_ptr<window_merger>> mergers;
    for (auto& q : queries) mergers.push_back(std::make_unique<window_merger>(q, nworkers));
    out.rows.resize(queries.size());
    auto merger_round = [&]() {
        for (auto& m : mergers) m->read_progress(); // before draining, as the daemon does
        for (partial_batch* b : channel.take()) {
            mergers[b->query_uid - 1]->merge(*b);
            channel.give_back(b);
        }
        for (size_t qi = 0; qi < mergers.size(); ++qi)
            mergers[qi]->finalize([&](const result_row& r) {
                model_row row{r.start_ms, r.end_ms, {}, r.values};
                for (auto part : split_key(*queries[qi], r.key)) row.group.emplace_back(part);
                out.rows[qi].push_back(std::move(row));
            });
    };
    auto all_done = [&]() {
        for (auto& m : mergers)
            if (!m->done()) return false;
        return true;
    };

    int64_t now_ns = 1;
    if (!threaded) {
        // One thread, a random schedule: chunks of some worker, ticks, merger rounds.
        std::vector<size_t> next(nworkers, 0);
        for (;;) {
            std::vector<uint32_t> busy;
            for (uint32_t k = 0; k < nworkers; ++k)
                if (next[k] < queues[k].size()) busy.push_back(k);
            if (busy.empty()) break;
            uint32_t k = busy[rng() % busy.size()];
            size_t n = std::min<size_t>(1 + rng() % 64, queues[k].size() - next[k]);
            workers[k]->process(queues[k].data() + next[k], uint32_t(n));
            next[k] += n;
            if (rng() % 3 == 0) workers[k]->tick(now_ns += 1'000'000);
            if (rng() % 4 == 0) merger_round();
        }
        std::vector<uint32_t> order(nworkers);
        for (uint32_t k = 0; k < nworkers; ++k) order[k] = k;
        std::shuffle(order.begin(), order.end(), rng);
        for (uint32_t k : order) {
            workers[k]->tick(now_ns += 1'000'000);
            merger_round();
            EXPECT_TRUE(workers[k]->finish());
        }
        merger_round();
    } else {
        // Real threads: each worker runs its queue in bursts and ticks; the merger runs
        // rounds until every query is done.
        std::vector<std::thread> threads;
        for (uint32_t k = 0; k < nworkers; ++k) {
            uint64_t seed = rng();
            threads.emplace_back([&, k, seed] {
                std::mt19937_64 r(seed);
                auto& q = queues[k];
                int64_t ns = 1;
                for (size_t i = 0; i < q.size();) {
                    size_t n = std::min<size_t>(1 + r() % 64, q.size() - i);
                    workers[k]->process(q.data() + i, uint32_t(n));
                    i += n;
                    workers[k]->tick(ns += 1'000'000);
                }
                EXPECT_TRUE(workers[k]->finish());
            });
        }
        std::thread merger([&] {
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (!all_done() && std::chrono::steady_clock::now() < deadline) {
                merger_round();
                std::this_thread::yield();
            }
        });
        for (auto& t : threads) t.join();
        merger.join();
    }
    EXPECT_TRUE(all_done()) << "the merger did not finish every query";

    out.late_per_query.assign(queries.size(), 0);
    for (auto& w : workers) {
        const auto& c = w->counters();
        out.accepted += c.events_accepted.load();
        out.duplicates += c.duplicates.load();
        out.late_any += c.late_events.load();
        out.dead_letters += c.dead_letters.load();
        out.overflow += c.window_overflow.load();
        for (int r = 0; r < dead_letter_reason_count; ++r)
            if (uint64_t n = c.dead_letters_by_reason[r].load())
                out.dead_by_reason[std::string(reason_name(dead_letter_reason(r)))] += n;
    }
    for (size_t qi = 0; qi < queries.size(); ++qi) {
        for (uint32_t k = 0; k < nworkers; ++k) out.late_per_query[qi] += queries[qi]->shared->workers[k].late_events.load();
        std::sort(out.rows[qi].begin(), out.rows[qi].end());
    }
    auto scanned = storage::scan_table(dir, "events", INT64_MIN, INT64_MAX, [&](const storage::column_batch& b) {
        namespace ev = storage::events_col;
        for (uint32_t i = 0; i < b.rows(); ++i) {
            auto raw = b.string_at(ev::raw, i);
            out.stored.insert({XXH3_64bits(raw.data(), raw.size()), b.u8_at(ev::late, i)});
        }
    });
    if (!scanned && scanned.err().code != errc::not_found) ADD_FAILURE() << scanned.err().message;
    return out;
}

bool same_value(const agg_value& a, const agg_value& b) {
    if (a.is_integer != b.is_integer) return false;
    if (a.is_integer) return a.integer == b.integer;
    if (std::isnan(a.real) || std::isnan(b.real)) return std::isnan(a.real) && std::isnan(b.real);
    return a.real == b.real;
}

std::string describe(const model_row& r) {
    std::string s = "[" + std::to_string(r.start - t0) + "," + std::to_string(r.end - t0) + ") {";
    for (const auto& g : r.group) s += "'" + g + "' ";
    s += "} =";
    for (const auto& v : r.values) s += " " + (v.is_integer ? std::to_string(v.integer) : std::to_string(v.real));
    return s;
}

std::string describe(const query_def& q) {
    std::string s = q.name + ": " + std::string(window_kind_name(q.window.kind)) + " size " +
                    std::to_string(q.window.size_ms) + " slide " + std::to_string(q.window.slide_ms) +
                    " gap " + std::to_string(q.window.gap_ms) + " delay " + std::to_string(q.watermark_delay_ms) + " by";
    for (const auto& g : q.group_by) s += " " + g;
    for (const auto& a : q.aggregates) s += ", " + format_aggregate(a);
    if (q.filter) s += " where " + format_filter(*q.filter);
    return s;
}

// Compares; returns false (after reporting) at the first difference.
bool compare(const model_result& want, const sut_result& got, const stream_config& sc, uint64_t seed,
             uint32_t nworkers, bool threaded) {
    std::string where = "seed " + std::to_string(seed) + ", " + std::to_string(nworkers) + " worker(s)" +
                        (threaded ? ", threaded" : "") + ": ";
    bool ok = true;
    auto check = [&](bool cond, const std::string& what) {
        if (!cond && ok) ADD_FAILURE() << where << what;
        ok = ok && cond;
    };
    check(got.overflow == 0, "window state overflowed (the test must size it larger)");
    check(got.accepted == want.accepted, "accepted " + std::to_string(got.accepted) + " != " + std::to_string(want.accepted));
    check(got.duplicates == want.duplicates, "duplicates " + std::to_string(got.duplicates) + " != " + std::to_string(want.duplicates));
    check(got.dead_letters == want.dead_letters, "dead letters " + std::to_string(got.dead_letters) + " != " + std::to_string(want.dead_letters));
    check(got.dead_by_reason == want.dead_by_reason, "dead letters by reason differ");
    check(got.late_any == want.late_any, "late events " + std::to_string(got.late_any) + " != " + std::to_string(want.late_any));
    check(got.stored == want.stored, "stored events (bytes, late) differ");
    for (size_t qi = 0; qi < want.rows.size() && ok; ++qi) {
        const auto& q = sc.queries[qi];
        check(got.late_per_query[qi] == want.late_per_query[qi],
              describe(q) + ": late " + std::to_string(got.late_per_query[qi]) + " != " +
                  std::to_string(want.late_per_query[qi]));
        const auto& a = want.rows[qi];
        const auto& b = got.rows[qi];
        size_t n = std::max(a.size(), b.size());
        for (size_t i = 0; i < n && ok; ++i) {
            if (i >= a.size() || i >= b.size()) {
                check(false, describe(q) + ": row count " + std::to_string(b.size()) + " != model " +
                                 std::to_string(a.size()) + "; first extra: " +
                                 describe(i < a.size() ? a[i] : b[i]));
                break;
            }
            bool same = a[i].start == b[i].start && a[i].end == b[i].end && a[i].group == b[i].group &&
                        a[i].values.size() == b[i].values.size();
            for (size_t v = 0; same && v < a[i].values.size(); ++v) same = same_value(a[i].values[v], b[i].values[v]);
            check(same, describe(q) + ": row " + std::to_string(i) + "\n  model " + describe(a[i]) +
                            "\n  got   " + describe(b[i]));
        }
    }
    return ok;
}

uint64_t env_or(const char* name, uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

void run_streams(uint32_t nworkers) {
    const uint64_t streams = env_or("SLUICE_PROPERTY_STREAMS", 700);
    const uint64_t first = env_or("SLUICE_PROPERTY_SEED", 1);
    const char* base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : nullptr;
    uint64_t rows = 0, late = 0, sessions = 0;
    for (uint64_t seed = first; seed < first + streams; ++seed) {
        std::mt19937_64 rng(seed * 7919 + nworkers);
        stream_config sc;
        auto lines = generate(rng, sc);
        model_result want = run_model(lines, sc);
        temp_dir dir("property", base);
        bool threaded = seed % 8 == 0;
        sut_result got = run_system(lines, sc, nworkers, rng, threaded, dir.path);
        if (!compare(want, got, sc, seed, nworkers, threaded)) {
            for (const auto& q : sc.queries) std::fprintf(stderr, "  %s\n", describe(q).c_str());
            return;
        }
        for (size_t qi = 0; qi < want.rows.size(); ++qi) {
            rows += want.rows[qi].size();
            if (sc.queries[qi].window.kind == window_kind::session) sessions += want.rows[qi].size();
        }
        late += want.late_any;
    }
    // The streams must exercise what they claim to.
    EXPECT_GT(rows, streams * 10);
    EXPECT_GT(late, streams / 4);
    EXPECT_GT(sessions, streams);
    std::printf("%llu streams, %llu window rows (%llu sessions), %llu late events: all equal the model\n",
                (unsigned long long)streams, (unsigned long long)rows, (unsigned long long)sessions,
                (unsigned long long)late);
}

TEST(PropertyVsModel, OneWorker) { run_streams(1); }
TEST(PropertyVsModel, TwoWorkers) { run_streams(2); }
TEST(PropertyVsModel, FourWorkers) { run_streams(4); }

} // namespace
} // namespace sluice::processing
