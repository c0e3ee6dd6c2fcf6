// The consume side (docs/KAFKA.md "Consuming"): consumers no one here wrote — kcat
// (librdkafka 2.0.2), kafka-python 2.0.2's KafkaConsumer without a group and
// confluent-kafka 1.7.0's Consumer (assigned partitions) — read events-topic back from
// sluiced's store: every event exactly as it was sent, byte for byte, one partition per
// worker, offsets dense from 0 and the same after a clean restart and after a kill -9. The
// reference query's table and dead_letters read as topics equal sluice-gen's model; a
// consumer behind a retention cut is answered OFFSET_OUT_OF_RANGE and resets per its policy.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <xxhash.h>

#include "storage/event_identity.h"
#include "storage/row_log.h"
#include "tests/integration/daemon_harness.h"
#include "tests/integration/kafka_harness.h"

namespace sluice::testing::kafka {
namespace {

constexpr uint32_t workers = 2;

struct consumed {
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    std::string key, value, headers;
};
using log_map = std::map<std::pair<int32_t, int64_t>, consumed>;

// 200 distinct events, some without event_id, with spacing and key order as varied as
// producers write them, and 20 at 15:40 that move every worker's watermark past 15:30 (each
// worker gets some, but for a chance of 2 in a million): then late_event() is late
// whichever worker takes it. Which of the first 200 are late depends on how the workers
// interleave; the test reads that from the store.
std::vector<std::string> make_values() {
    std::vector<std::string> v;
    for (int i = 0; i < 200; ++i) {
        char ts[32];
        std::snprintf(ts, sizeof ts, "2025-02-28T15:%02d:%02dZ", i / 60, i % 60);
        std::string e = i % 7 == 3
            ? std::string(R"({"user_id":"u)") + std::to_string(i) + R"(","event_type":"view","timestamp":")" + ts + R"(","page":"/p)" + std::to_string(i % 5) + "\"}"
            : std::string(R"({"event_id": "c)") + std::to_string(i) + R"(",  "user_id": ")" + std::to_string(i * 31) + R"(", "event_type": "page_view", "timestamp": ")" + ts + R"(", "page": "/q/)" + std::to_string(i) + "\"}";
        v.push_back(e);
    }
    for (int i = 0; i < 20; ++i)
        v.push_back(R"({"event_id": "m)" + std::to_string(i) + R"(", "user_id": "1", "event_type": "page_view", "timestamp": "2025-02-28T15:40:00Z", "page": "/x"})");
    return v;
}

const std::string late_event =
    R"({"event_id": "c-late", "user_id": "2", "event_type": "click", "timestamp": "2025-02-28T15:10:00Z", "page": "/y"})";

std::string config(const std::string& dir) {
    return write_file(dir + "/sluiced.toml",
                      "[input]\nslots = 8192\n[processing]\ndedup_memory_mb = 32\n"
                      "[storage]\nflush_interval_ms = 100\n[kafka]\n"
                      "[[kafka.topic]]\nname = \"events-topic\"\npartitions = 0\n");
}

void launch(kafka_daemon& k, const std::string& log) {
    kafka::launch(k, k.dir + "/sluiced.toml", workers, log);
}

// Waits until `rows` events are durable (kcat's acks=all answers came after that anyway).
void wait_durable(const kafka_daemon& k, uint64_t rows) {
    json s = k.proc->wait_stats([&](const json& s) { return durable_rows(s, "events") >= rows; }, 60);
    ASSERT_EQ(durable_rows(s, "events"), rows) << s["storage"].dump();
}

// kcat, one partition from the beginning to the end (-e). %K/%S: the key's and value's
// sizes, so each is read whole even if it held the separator.
log_map read_kcat(const kafka_daemon& k, int32_t partition, const std::string& tag) {
    const std::string out = k.dir + "/" + tag + ".kcat.out";
    EXPECT_TRUE(run_client(60,
                           "kcat -C -b " + broker(k) + " -t events-topic -p " +
                               std::to_string(partition) +
                               " -o beginning -e -q -f '%p %o %T %K %k H%h %S %s\\n'",
                           out));
    log_map m;
    std::istringstream in(read_text(out));
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        consumed c;
        size_t key_len = 0, value_len = 0;
        f >> c.partition >> c.offset >> c.timestamp >> key_len;
        f.get();
        c.key.resize(key_len);
        f.read(c.key.data(), std::streamsize(key_len));
        f >> c.headers >> value_len;
        f.get();
        c.value.resize(value_len);
        f.read(c.value.data(), std::streamsize(value_len));
        EXPECT_TRUE(f) << line;
        c.headers.erase(0, 1); // the H that keeps an empty %h a field
        m[{c.partition, c.offset}] = c;
    }
    return m;
}

// kafka-python: assign() every partition, seek to the beginning, read up to the end
// offsets; also prints what ListOffsets answers (earliest, latest, by time).
const char* const consumer_py = R"(import sys, json, base64
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=[sys.argv[1]], group_id=None, enable_auto_commit=False,
                  consumer_timeout_ms=5000)
parts = sorted(c.partitions_for_topic('events-topic'))
tps = [TopicPartition('events-topic', p) for p in parts]
c.assign(tps)
c.seek_to_beginning(*tps)
end = c.end_offsets(tps)
begin = c.beginning_offsets(tps)
at = c.offsets_for_times({tp: int(sys.argv[2]) for tp in tps})
out = []
left = sum(end[tp] - begin[tp] for tp in tps)
for m in c:
    out.append({'p': m.partition, 'o': m.offset, 't': m.timestamp,
                'k': base64.b64encode(m.key).decode(), 'v': base64.b64encode(m.value).decode(),
                'h': [[hk, hv.decode()] for hk, hv in m.headers]})
    left -= 1
    if left == 0:
        break
print(json.dumps({'partitions': parts, 'records': out,
                  'end': {str(tp.partition): end[tp] for tp in tps},
                  'begin': {str(tp.partition): begin[tp] for tp in tps},
                  'at': {str(tp.partition): (None if at[tp] is None else [at[tp].offset, at[tp].timestamp]) for tp in tps}}))
)";

// confluent-kafka (librdkafka): assign() every partition from the beginning, read up to the
// high watermarks (get_watermark_offsets). librdkafka's consumer wants a group.id even with
// assign(); nothing is committed (sluiced answers its coordinator lookups 15).
const char* const confluent_py = R"(import sys, json, base64
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
topic = sys.argv[2]
c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'sluice-assign',
              'enable.auto.commit': False, 'enable.partition.eof': True})
md = c.list_topics(topic, timeout=30)
parts = sorted(md.topics[topic].partitions.keys())
left = {}
for p in parts:
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
    if hi > lo:
        left[p] = hi
c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
out = []
while left:
    m = c.poll(30)
    if m is None:
        break
    if m.error():
        continue
    out.append({'p': m.partition(), 'o': m.offset(), 't': m.timestamp()[1],
                'k': base64.b64encode(m.key() or b'').decode(),
                'v': base64.b64encode(m.value()).decode(),
                'h': [[hk, hv.decode()] for hk, hv in (m.headers() or [])]})
    if m.offset() + 1 >= left.get(m.partition(), 0):
        left.pop(m.partition(), None)
c.close()
print(json.dumps({'partitions': parts, 'records': out}))
)";

std::string b64decode(const std::string& in) {
    static const std::string abc =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char ch : in) {
        const size_t v = abc.find(ch);
        if (v == std::string::npos) break;
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(char((acc >> bits) & 0xff));
        }
    }
    return out;
}

// Runs one of the Python consumers above (script text, its arguments after the broker) and
// adds the records it printed to `m`; returns its whole JSON output.
json run_consumer(const kafka_daemon& k, const char* script_text, const std::string& name,
                  const std::string& args, const std::string& tag, log_map& m) {
    const std::string script = write_file(k.dir + "/" + name, script_text);
    const std::string out = k.dir + "/" + tag + ".out";
    EXPECT_TRUE(run_client(120, std::string(python) + " " + script + " " + broker(k) + " " + args, out));
    json j = json::parse(read_text(out), nullptr, false);
    EXPECT_TRUE(j.is_object()) << read_text(out);
    if (!j.is_object()) return json::object();
    for (const auto& r : j["records"]) {
        consumed c{r["p"].get<int32_t>(), r["o"].get<int64_t>(), r["t"].get<int64_t>(),
                   b64decode(r["k"].get<std::string>()), b64decode(r["v"].get<std::string>()), ""};
        for (const auto& h : r["h"])
            c.headers += h[0].get<std::string>() + "=" + h[1].get<std::string>();
        m[{c.partition, c.offset}] = c;
    }
    return j;
}

json read_python(const kafka_daemon& k, int64_t at_ms, const std::string& tag, log_map& m) {
    return run_consumer(k, consumer_py, "consume.py", std::to_string(at_ms), tag + ".py", m);
}

log_map read_confluent(const kafka_daemon& k, const std::string& topic, const std::string& tag) {
    log_map m;
    (void)run_consumer(k, confluent_py, "confluent.py", topic, tag + ".ck", m);
    return m;
}

int64_t event_time_ms(const std::string& v) {
    const auto at = v.find("2025-02-28T15:");
    if (at == std::string::npos) return -1;
    const int mm = std::stoi(v.substr(at + 14, 2)), ss = std::stoi(v.substr(at + 17, 2));
    return 1740754800000 + (mm * 60 + ss) * 1000; // 2025-02-28T15:00:00Z
}

std::string expected_key(const std::string& v) {
    const auto at = v.find("\"event_id\": \"");
    if (at != std::string::npos) {
        const auto from = at + 13;
        return v.substr(from, v.find('"', from) - from);
    }
    const auto id = storage::identity_of_bytes(v);
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)id.hi,
                  (unsigned long long)id.lo);
    return hex;
}

// Every value sent is read exactly once, byte for byte; per partition the offsets are
// 0..n-1; key, timestamp and the late header follow docs/KAFKA.md.
void expect_exact(const log_map& got, const std::vector<std::string>& sent, const char* who) {
    std::multiset<std::string> want(sent.begin(), sent.end()), have;
    std::map<int32_t, int64_t> next;
    for (const auto& [at, c] : got) {
        have.insert(c.value);
        EXPECT_EQ(c.offset, next[c.partition]++) << who << " partition " << c.partition;
        EXPECT_LT(c.partition, int32_t(workers)) << who;
        EXPECT_EQ(c.key, expected_key(c.value)) << who << " " << c.value;
        EXPECT_EQ(c.timestamp, event_time_ms(c.value)) << who << " " << c.value;
        // Which events are late depends on how the two workers interleave (the store says,
        // expect_store); the one sent after the watermark moved 30 minutes on always is.
        EXPECT_TRUE(c.headers.empty() || c.headers == "late=true") << who << " " << c.headers;
        if (c.value.find("c-late\"") != std::string::npos) {
            EXPECT_EQ(c.headers, "late=true") << who;
        }
    }
    EXPECT_EQ(have, want) << who;
    EXPECT_EQ(got.size(), sent.size()) << who;
}

// The store itself, read by row position (storage/row_log.h): partition p offset o is row o
// of worker p's events log, its raw bytes the value, its late flag the header.
void expect_store(const std::string& data_dir, const log_map& got) {
    size_t rows = 0;
    for (uint32_t p = 0; p < workers; ++p) {
        auto segs = storage::list_log_segments(data_dir + "/events", "w" + std::to_string(p));
        ASSERT_TRUE(segs.ok()) << segs.err().message;
        for (const auto& seg : *segs) {
            auto r = storage::read_log_rows(seg, 0, UINT64_MAX, [&](const storage::column_batch& b,
                                                                     uint64_t first) {
                const int raw = b.schema().column_index("raw"), late = b.schema().column_index("late");
                for (uint32_t i = 0; i < b.rows(); ++i, ++rows) {
                    auto it = got.find({int32_t(p), int64_t(first + i)});
                    EXPECT_NE(it, got.end()) << p << "/" << first + i;
                    if (it == got.end()) continue;
                    EXPECT_EQ(it->second.value, b.string_at(raw, i));
                    EXPECT_EQ(it->second.headers, b.u8_at(late, i) ? "late=true" : "");
                }
                return true;
            });
            EXPECT_TRUE(r.ok());
        }
    }
    EXPECT_EQ(rows, got.size());
}

log_map read_all_kcat(const kafka_daemon& k, const std::string& tag) {
    log_map all;
    for (uint32_t p = 0; p < workers; ++p) {
        log_map m = read_kcat(k, int32_t(p), tag + "-p" + std::to_string(p));
        all.insert(m.begin(), m.end());
    }
    return all;
}

std::map<std::pair<int32_t, int64_t>, std::string> values_of(const log_map& m) {
    std::map<std::pair<int32_t, int64_t>, std::string> out;
    for (const auto& [at, c] : m) out[at] = c.value;
    return out;
}

TEST(KafkaConsume, KcatAndKafkaPythonReadEveryEventBackWithStableOffsets) {
    ASSERT_EQ(run_command("command -v kcat > /dev/null"), 0)
        << "kcat is missing: apt-get install kcat (scripts/bootstrap)";
    ASSERT_EQ(run_command(std::string(python) + " -c 'import kafka' 2> /dev/null"), 0)
        << "kafka-python is missing: apt-get install python3-kafka (scripts/bootstrap)";
    kafka_daemon k;
    k.dir = make_temp_dir("kafka-consume");
    k.prefix = "sluice-kafka-consume-" + std::to_string(getpid());
    config(k.dir);
    launch(k, "sluiced.log");
    ASSERT_FALSE(::testing::Test::HasFailure());

    std::vector<std::string> sent = make_values();
    kcat_produce(k, sent, "first");
    ASSERT_FALSE(::testing::Test::HasFailure());
    kcat_produce(k, {late_event}, "late"); // after the first run's rows are durable (acks=all)
    ASSERT_FALSE(::testing::Test::HasFailure());
    sent.push_back(late_event);
    wait_durable(k, sent.size());
    ASSERT_FALSE(::testing::Test::HasFailure());
    json s = k.proc->request({{"cmd", "stats"}});
    const uint64_t late_events = total(s, "late_events");
    EXPECT_GE(late_events, 1u) << s["totals"].dump();

    const log_map by_kcat = read_all_kcat(k, "first");
    expect_exact(by_kcat, sent, "kcat");
    expect_store(k.dir + "/data", by_kcat);
    uint64_t late_headers = 0;
    for (const auto& [at, c] : by_kcat) late_headers += !c.headers.empty();
    EXPECT_EQ(late_headers, late_events);
    // One partition per worker, each holding some of the events.
    std::map<int32_t, int64_t> per;
    for (const auto& [at, c] : by_kcat) per[at.first]++;
    EXPECT_EQ(per.size(), size_t(workers));

    log_map by_python;
    const int64_t at_ms = event_time_ms(sent[150]);
    json py = read_python(k, at_ms, "first", by_python);
    expect_exact(by_python, sent, "kafka-python");
    EXPECT_EQ(values_of(by_python), values_of(by_kcat));
    for (const auto& [at, c] : by_python) EXPECT_EQ(c.headers, by_kcat.at(at).headers);
    EXPECT_EQ(py["partitions"], json::array({0, 1})) << py.dump();
    for (uint32_t p = 0; p < workers; ++p) {
        const std::string ps = std::to_string(p);
        EXPECT_EQ(py["begin"][ps], 0) << py.dump();
        EXPECT_EQ(py["end"][ps], per[int32_t(p)]) << py.dump();
        // By time: the first offset whose timestamp is at or after it.
        int64_t want = -1, want_ts = -1;
        for (const auto& [at, c] : by_kcat)
            if (at.first == int32_t(p) && c.timestamp >= at_ms) {
                want = at.second;
                want_ts = c.timestamp;
                break;
            }
        ASSERT_TRUE(py["at"][ps].is_array()) << py.dump();
        EXPECT_EQ(py["at"][ps][0], want) << py.dump();
        EXPECT_EQ(py["at"][ps][1], want_ts) << py.dump();
    }

    // confluent-kafka's Consumer with assign(): the same records, byte for byte.
    ASSERT_EQ(run_command(std::string(python) + " -c 'import confluent_kafka' 2> /dev/null"), 0)
        << "confluent-kafka is missing: apt-get install python3-confluent-kafka (scripts/bootstrap)";
    const log_map by_confluent = read_confluent(k, "events-topic", "first");
    expect_exact(by_confluent, sent, "confluent-kafka");
    EXPECT_EQ(values_of(by_confluent), values_of(by_kcat));
    for (const auto& [at, c] : by_confluent) {
        EXPECT_EQ(c.headers, by_kcat.at(at).headers);
        EXPECT_EQ(c.key, by_kcat.at(at).key);
    }

    // Beyond the log: OFFSET_OUT_OF_RANGE (kcat then resets to the end, its default).
    EXPECT_TRUE(run_client(60,
                           "kcat -C -b " + broker(k) + " -t events-topic -p 0 -o " +
                               std::to_string(per[0] + 5) + " -e -q",
                           k.dir + "/beyond.out"));
    s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s["kafka"]["consume"].is_object()) << s["kafka"].dump();
    const json& cs = s["kafka"]["consume"];
    EXPECT_GE(cs["out_of_range"].get<uint64_t>(), 1u) << cs.dump();
    EXPECT_GE(cs["list_offsets"].get<uint64_t>(), 1u) << cs.dump();
    // kcat -e asks once more at the end and waits there (fetch.wait.max.ms): a long poll.
    EXPECT_GE(cs["long_polls"].get<uint64_t>(), 1u) << cs.dump();
    EXPECT_EQ(cs["read_errors"], 0) << cs.dump();
    // kcat, kafka-python and confluent-kafka each read every record once; the second and
    // third reader found batches the first had built in the cache.
    EXPECT_EQ(cs["records_sent"].get<uint64_t>(), 3 * sent.size()) << cs.dump();
    EXPECT_GT(cs["cache_hits"].get<uint64_t>(), 0u) << cs.dump();

    // A clean restart, then more events: the old offsets hold the same events, the new
    // ones follow densely.
    ASSERT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    launch(k, "sluiced2.log");
    ASSERT_FALSE(::testing::Test::HasFailure());
    std::vector<std::string> more;
    for (int i = 0; i < 20; ++i)
        more.push_back(R"({"event_id": "d)" + std::to_string(i) +
                       R"(", "user_id": "5", "event_type": "page_view", "timestamp": "2025-02-28T15:41:)" +
                       (i < 10 ? "0" : "") + std::to_string(i) + R"(Z", "page": "/z"})");
    kcat_produce(k, more, "second");
    ASSERT_FALSE(::testing::Test::HasFailure());
    wait_durable(k, more.size()); // this run's rows
    const log_map after_restart = read_all_kcat(k, "second");
    std::vector<std::string> all = sent;
    all.insert(all.end(), more.begin(), more.end());
    {
        // The late event's header is as stored; the new events are not late.
        std::multiset<std::string> want(all.begin(), all.end()), have;
        for (const auto& [at, c] : after_restart) have.insert(c.value);
        EXPECT_EQ(have, want);
    }
    for (const auto& [at, v] : values_of(by_kcat)) {
        auto it = after_restart.find(at);
        ASSERT_NE(it, after_restart.end()) << at.first << "/" << at.second;
        EXPECT_EQ(it->second.value, v) << at.first << "/" << at.second;
    }
    std::map<int32_t, int64_t> next;
    for (const auto& [at, c] : after_restart) EXPECT_EQ(at.second, next[at.first]++);

    // kill -9 and a restart: still the same offsets.
    k.proc->kill9();
    launch(k, "sluiced3.log");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const log_map after_kill = read_all_kcat(k, "third");
    EXPECT_EQ(values_of(after_kill), values_of(after_restart));

    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced3.log";
    expect_store(k.dir + "/data", after_kill);
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

// ---- the reference query's table and dead_letters as topics; retention ----

const char* const query_topic = "page_views_per_minute";

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// A query topic's records as windows.csv lines (start,end,page,count), in window order;
// each record's key is its group values as a JSON array, its timestamp the window's end.
std::vector<std::string> windows_of(const log_map& m) {
    std::vector<std::tuple<int64_t, std::string, std::string>> rows;
    int64_t next = 0;
    for (const auto& [at, c] : m) {
        EXPECT_EQ(at.first, 0);
        EXPECT_EQ(at.second, next++); // dense from 0
        json v = json::parse(c.value, nullptr, false);
        EXPECT_TRUE(v.is_object()) << c.value;
        if (!v.is_object()) continue;
        const std::string page = v["page"].get<std::string>();
        EXPECT_EQ(c.key, json::array({page}).dump()) << c.value;
        EXPECT_EQ(c.timestamp, v["window_end_ms"].get<int64_t>()) << c.value;
        EXPECT_FALSE(v.contains("revision")) << c.value;
        rows.emplace_back(v["window_start_ms"].get<int64_t>(), page,
                          std::to_string(v["window_start_ms"].get<int64_t>()) + "," +
                              std::to_string(v["window_end_ms"].get<int64_t>()) + "," +
                              csv_field(page) + "," + std::to_string(v["count"].get<uint64_t>()));
    }
    std::sort(rows.begin(), rows.end());
    std::vector<std::string> out;
    for (auto& r : rows) out.push_back(std::get<2>(r));
    return out;
}

// kcat -C on one partition of any topic with an -o of its own; values only.
std::vector<std::pair<int64_t, std::string>> kcat_values(const kafka_daemon& k, const std::string& topic,
                                                         const std::string& from, const std::string& tag) {
    const std::string out = k.dir + "/" + tag + ".kcat.out";
    EXPECT_TRUE(run_client(60,
                           "kcat -C -b " + broker(k) + " -t " + topic + " -p 0 -o " + from +
                               " -e -q -f '%o %S %s\\n'",
                           out));
    std::vector<std::pair<int64_t, std::string>> got;
    std::istringstream in(read_text(out));
    int64_t offset;
    size_t len;
    while (in >> offset >> len) {
        in.get();
        std::string v(len, '\0');
        in.read(v.data(), std::streamsize(len));
        got.emplace_back(offset, v);
    }
    return got;
}

// kafka-python behind a retention cut: assign partition 0 of events-topic, seek to 0 (no
// longer stored), poll. auto_offset_reset decides where it goes on.
const char* const laggard_py = R"(import sys, json
from kafka import KafkaConsumer, TopicPartition
tp = TopicPartition('events-topic', 0)
c = KafkaConsumer(bootstrap_servers=[sys.argv[1]], group_id=None, enable_auto_commit=False,
                  auto_offset_reset=sys.argv[2])
c.assign([tp])
begin = c.beginning_offsets([tp])[tp]
end = c.end_offsets([tp])[tp]
c.seek(tp, 0)
first = None
for _ in range(20):
    got = c.poll(timeout_ms=500)
    if got:
        first = got[tp][0].offset
        break
print(json.dumps({'begin': begin, 'end': end, 'first': first, 'position': c.position(tp)}))
)";

TEST(KafkaConsume, QueryTopicAndDeadLettersEqualTheModelAndLaggardsResetAfterRetention) {
    ASSERT_EQ(run_command("command -v kcat > /dev/null"), 0)
        << "kcat is missing: apt-get install kcat (scripts/bootstrap)";
    kafka_daemon k;
    k.dir = make_temp_dir("kafka-tables");
    k.prefix = "sluice-kafka-tables-" + std::to_string(getpid());
    const std::string gen = std::string(std::getenv("SLUICE_GEN")) +
                            " --events 60000 --events-per-minute 3000 --seed 61 --out " + k.dir + " > " + k.dir +
                            "/gen.log 2>&1";
    ASSERT_EQ(run_command(gen), 0) << gen;
    const expected_outcome want = read_expected(k.dir);
    ASSERT_FALSE(want.windows_csv.empty());
    ASSERT_FALSE(want.dead_letters.empty());
    // 1 MiB segments: events-topic's partitions span several, for retention to cut.
    // The pcap (DPDK input) beside the Kafka listener; later the listener alone.
    const std::string rest = "[processing]\ndedup_memory_mb = 32\n"
                             "[storage]\nflush_interval_ms = 50\nsegment_bytes_max = 1048576\n"
                             "compression = \"none\"\n[retention]\ninterval_ms = 100\n[kafka]\n";
    write_file(k.dir + "/pcap.toml", "[input]\nslots = 8192\nmode = \"dpdk\"\n" + rest);
    write_file(k.dir + "/sluiced.toml", "[input]\nslots = 8192\n" + rest);
    auto start = [&](bool pcap, const std::string& log) {
        if (pcap)
            kafka::launch(k, k.dir + "/pcap.toml", workers, log, 5, {},
                          {"--vdev", "net_pcap0,rx_pcap=" + k.dir + "/events.pcap"});
        else
            kafka::launch(k, k.dir + "/sluiced.toml", workers, log);
    };
    start(true, "sluiced.log");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const uint64_t received = want.counters["events_received"];
    json s = k.proc->wait_stats(
        [&](const json& st) {
            const json& t = st["totals"];
            return t["events_accepted"].get<uint64_t>() + t["duplicates"].get<uint64_t>() +
                       t["dead_letters"].get<uint64_t>() ==
                   received;
        },
        300);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    ASSERT_TRUE(k.proc->request({{"cmd", "flush"}}).value("ok", false));

    // Metadata lists the query's topic (one partition) and dead_letters (one per worker).
    ASSERT_TRUE(run_client(60, "kcat -L -b " + broker(k), k.dir + "/meta.txt"));
    const std::string listed = read_text(k.dir + "/meta.txt");
    EXPECT_NE(listed.find("topic \"page_views_per_minute\" with 1 partitions"), std::string::npos) << listed;
    EXPECT_NE(listed.find("topic \"dead_letters\" with 2 partitions"), std::string::npos) << listed;

    // While it runs: every window the topic holds is one of the model's (closed windows
    // only); kcat from the beginning, from the end and from an offset agree.
    const auto live = kcat_values(k, query_topic, "beginning", "q-live");
    ASSERT_GT(live.size(), 3u);
    {
        log_map m;
        for (const auto& [o, v] : live) {
            json j = json::parse(v, nullptr, false);
            m[{0, o}] = consumed{0, o, j.is_object() ? j["window_end_ms"].get<int64_t>() : -1,
                                 j.is_object() ? json::array({j["page"]}).dump() : "", v, ""};
        }
        const std::set<std::string> model(want.windows_csv.begin(), want.windows_csv.end());
        for (const auto& w : windows_of(m)) EXPECT_TRUE(model.count(w)) << w;
    }
    EXPECT_TRUE(kcat_values(k, query_topic, "end", "q-end").empty());
    const auto from3 = kcat_values(k, query_topic, "3", "q-3");
    ASSERT_GE(from3.size(), live.size() - 3);
    for (size_t i = 0; i < live.size() - 3; ++i) EXPECT_EQ(from3[i], live[i + 3]);

    // AdminClients: confluent-kafka's (librdkafka, DescribeConfigs v1) and kafkajs's
    // (describeConfigs, then fetchTopicOffsets: ListOffsets) see the tables' topics.
    {
        const std::string admin_py = write_file(k.dir + "/admin.py", R"(import sys, json
from confluent_kafka.admin import AdminClient, ConfigResource
a = AdminClient({'bootstrap.servers': sys.argv[1]})
fs = a.describe_configs([ConfigResource('topic', 'page_views_per_minute'), ConfigResource('broker', '0')])
print(json.dumps({str(r.name): {k: v.value for k, v in f.result(timeout=30).items()} for r, f in fs.items()}))
)");
        const std::string out = k.dir + "/admin.out";
        ASSERT_TRUE(run_client(60, std::string(python) + " " + admin_py + " " + broker(k), out));
        json a = json::parse(read_text(out), nullptr, false);
        ASSERT_TRUE(a.is_object()) << read_text(out);
        EXPECT_EQ(a["page_views_per_minute"]["cleanup.policy"], "delete") << a.dump();
        EXPECT_EQ(a["page_views_per_minute"]["message.timestamp.type"], "CreateTime") << a.dump();
        EXPECT_EQ(a["0"]["broker.id"], "0") << a.dump();
        EXPECT_EQ(a["0"]["num.partitions"], std::to_string(workers)) << a.dump();
        const char* node = std::getenv("NODE");
        const char* script = std::getenv("KAFKAJS_ADMIN");
        ASSERT_TRUE(node && *node && script) << "NODE/KAFKAJS_ADMIN not set (meson sets them)";
        ASSERT_TRUE(run_client(60,
                               std::string(node) + " " + script + " " + broker(k) +
                                   " page_views_per_minute dead_letters",
                               out));
        a = json::parse(read_text(out), nullptr, false);
        ASSERT_TRUE(a.is_object()) << read_text(out);
        ASSERT_EQ(a["configs"].size(), 2u) << a.dump();
        for (const auto& c : a["configs"]) {
            EXPECT_EQ(c[1], 0) << a.dump();
            EXPECT_EQ(c[2]["cleanup.policy"], "delete") << a.dump();
        }
        ASSERT_EQ(a["offsets"].size(), 1u) << a.dump();
        EXPECT_EQ(a["offsets"][0]["partition"], 0) << a.dump();
        EXPECT_EQ(a["offsets"][0]["low"], "0") << a.dump();
        EXPECT_EQ(a["offsets"][0]["high"], std::to_string(live.size())) << a.dump();
    }

    // dead_letters: every bad line, as the model lists them (reason, XXH3-64 of the bytes).
    {
        const log_map dead = read_confluent(k, "dead_letters", "dead");
        std::vector<std::string> got;
        for (const auto& [at, c] : dead) {
            const auto r = c.headers.find("reason=");
            const auto l = c.headers.find("raw_len=");
            ASSERT_TRUE(r != std::string::npos && l != std::string::npos) << c.headers;
            got.push_back(c.headers.substr(r + 7, l - r - 7) + " " + hex64(c.value));
        }
        EXPECT_EQ(sorted(got), sorted(want.dead_letters));
    }

    // Retention cuts events-topic; a consumer still at offset 0 is OFFSET_OUT_OF_RANGE and
    // resets per auto_offset_reset: earliest to the new log start, latest to the end.
    auto before = storage::list_log_segments(k.dir + "/data/events", "w0");
    ASSERT_TRUE(before.ok());
    // Blocks are never split: a worker's ~30,000 rows (~180 B each uncompressed) fill at
    // least two blocks (batch_rows_max 16,384), each over 1 MiB, so at least one rotation;
    // how many more depends on how the flush interval cut the blocks.
    ASSERT_GE(before->size(), 2u) << "expected a rotation at 1 MiB";
    json r = k.proc->request({{"cmd", "retention"}, {"table", "events"}, {"max_bytes", 1}});
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
    // Retention deletes in passes: wait until only the segment being written is left.
    k.proc->wait_stats(
        [&](const json&) {
            auto now = storage::list_log_segments(k.dir + "/data/events", "w0");
            return now.ok() && now->size() == 1 && now->front().first_offset > 0;
        },
        30);
    auto after = storage::list_log_segments(k.dir + "/data/events", "w0");
    ASSERT_TRUE(after.ok() && !after->empty());
    const int64_t log_start = int64_t(after->front().first_offset);
    ASSERT_GT(log_start, 0);
    const uint64_t out_of_range = s["kafka"]["consume"]["out_of_range"].get<uint64_t>();
    const std::string script = write_file(k.dir + "/laggard.py", laggard_py);
    json reset[2];
    const char* policies[2] = {"earliest", "latest"};
    for (int i = 0; i < 2; ++i) {
        const std::string out = k.dir + "/laggard-" + policies[i] + ".out";
        ASSERT_TRUE(run_client(120, std::string(python) + " " + script + " " + broker(k) + " " + policies[i],
                               out));
        reset[i] = json::parse(read_text(out), nullptr, false);
        ASSERT_TRUE(reset[i].is_object()) << read_text(out);
        EXPECT_EQ(reset[i]["begin"], log_start) << reset[i].dump();
    }
    EXPECT_EQ(reset[0]["first"], log_start) << reset[0].dump();  // earliest: the new start
    EXPECT_TRUE(reset[1]["first"].is_null()) << reset[1].dump(); // latest: nothing old
    EXPECT_EQ(reset[1]["position"], reset[1]["end"]) << reset[1].dump();
    s = k.proc->request({{"cmd", "stats"}});
    EXPECT_GE(s["kafka"]["consume"]["out_of_range"].get<uint64_t>(), out_of_range + 2)
        << s["kafka"]["consume"].dump();

    // After a clean stop the table holds every window of the model; restarted (Kafka
    // input alone), the topic has them all, exactly, at the offsets it had before.
    ASSERT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    start(false, "sluiced2.log");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const log_map all = read_confluent(k, query_topic, "q-all");
    EXPECT_EQ(windows_of(all), want.windows_csv);
    for (const auto& [o, v] : live) {
        auto it = all.find({0, o});
        ASSERT_NE(it, all.end()) << o;
        EXPECT_EQ(it->second.value, v) << o;
    }
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced2.log";
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

} // namespace
} // namespace sluice::testing::kafka
