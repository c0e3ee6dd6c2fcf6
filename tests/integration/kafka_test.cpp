// The Kafka produce path end to end (docs/KAFKA.md): the real sluiced with --kafka, fed by
// real clients that no one here wrote — kafka-python's canonical snippet (Debian's
// python3-kafka, run with /usr/bin/python3) with acks 0, 1 and all, told an old broker,
// and confluent-kafka send the same hand-made set: an event, the same event again (a
// duplicate), a later event, a late event, a value that is not a JSON object and an event
// without a timestamp. The counters, the Kafka stats, and the events, dead_letters and
// page_views_per_minute tables must come out exactly as computed by hand
// (kafka_harness.cpp); for acks=all the events must already be durable when the client
// returns. kafka-python with raw values (acks 0, 1 and all), kcat (librdkafka; acks=all,
// idempotence, every compression codec) and confluent-kafka (zstd, idempotent) each send a
// sluice-gen stream (late, beyond-horizon, duplicate and malformed lines) with datagrams of
// it over kernel UDP too, and everything is compared with sluice-gen's model
// (kafka_model.h).
//
// A client the machine lacks fails the test (CI installs them: scripts/bootstrap).
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/kafka_harness.h"
#include "tests/integration/kafka_model.h"

using namespace sluice::testing;
using namespace sluice::testing::kafka;

namespace {

// The reference architecture's producer snippet, verbatim but for the bootstrap address
// and acks; it sends every value of the file in order, then flushes.
std::string write_snippet(const std::string& dir) {
    std::string path = dir + "/producer.py";
    std::ofstream(path) << R"(import json
import sys
from kafka import KafkaProducer

port, acks, values = sys.argv[1], sys.argv[2], sys.argv[3]
producer = KafkaProducer(bootstrap_servers=['127.0.0.1:' + port],
                         acks=acks if acks == 'all' else int(acks),
                         value_serializer=lambda x: json.dumps(x).encode('utf-8'))
for line in open(values):
    event = json.loads(line)
    producer.send('events-topic', value=event)
producer.flush()
producer.close()
)";
    return path;
}

// Produce-ack latency (stats.kafka.ack_latency, docs/KAFKA.md): one sample per Produce
// request of that acks mode, p99 >= p50 > 0; and the Prometheus series has the same count.
void expect_ack_latency(const kafka_daemon& k, const json& s, const std::string& mode) {
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    const json& kf = s["kafka"];
    ASSERT_TRUE(kf["ack_latency"].is_object()) << kf.dump();
    const json& a = kf["ack_latency"][mode];
    ASSERT_TRUE(a.is_object()) << kf["ack_latency"].dump();
    const uint64_t requests = kf["produce_by_acks"][mode].get<uint64_t>();
    EXPECT_GT(requests, 0u) << kf.dump();
    EXPECT_EQ(a["count"].get<uint64_t>(), requests) << kf.dump();
    EXPECT_GT(a["p50_us"].get<double>(), 0.0) << a.dump();
    EXPECT_GE(a["p99_us"].get<double>(), a["p50_us"].get<double>()) << a.dump();
    EXPECT_GE(a["max_us"].get<double>(), a["p99_us"].get<double>()) << a.dump();
    for (const char* other : {"0", "1", "all"})
        if (other != mode) { EXPECT_EQ(kf["ack_latency"][other]["count"], 0) << kf.dump(); }
    json m = k.proc->request({{"cmd", "metrics"}});
    ASSERT_TRUE(m.value("ok", false)) << m.dump();
    const std::string text = m.value("text", "");
    const std::string series = "sluice_kafka_produce_ack_latency_seconds_count{acks=\"" + mode +
                               "\"} " + std::to_string(requests);
    EXPECT_NE(text.find(series), std::string::npos) << series << " not in\n" << text;
    EXPECT_NE(text.find("# TYPE sluice_kafka_produce_ack_latency_seconds histogram"),
              std::string::npos)
        << text;
}

void run_snippet(const std::string& acks) {
    ASSERT_EQ(access(python, X_OK), 0) << python << " is missing (scripts/bootstrap installs it)";
    ASSERT_EQ(run_command(std::string(python) + " -c 'import kafka' 2>/dev/null"), 0)
        << "kafka-python is missing: apt-get install python3-kafka (scripts/bootstrap)";
    kafka_daemon k;
    start(k, "py" + acks);
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string cmd = std::string("timeout 120 ") + python + " " + write_snippet(k.dir) + " " +
                            std::to_string(k.port) + " " + acks + " " + write_values(k.dir) + " > " +
                            k.dir + "/producer.log 2>&1";
    ASSERT_EQ(run_command(cmd), 0) << cmd << "; see " << k.dir << "/producer.log";
    // What each acks mode promises holds the moment the client has its answers.
    json now = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(now.value("ok", false)) << now.dump();
    if (acks == "1" || acks == "all") {
        EXPECT_EQ(total(now, "events_received"), 6u) << now.dump();
    }
    if (acks == "all") {
        EXPECT_GE(durable_rows(now, "events"), 3u) << now["storage"].dump();
        EXPECT_GE(durable_rows(now, "dead_letters"), 2u) << now["storage"].dump();
        EXPECT_EQ(now["kafka"]["produce_by_acks"]["all"].get<uint64_t>() > 0, true);
    }
    if (acks == "1") {
        EXPECT_GT(now["kafka"]["produce_by_acks"]["1"].get<uint64_t>(), 0u);
    }
    // acks 1 and all: recorded before the answer went out, so counted when the client
    // returns. acks 0: once its records are in the rings, so wait for them.
    if (acks != "0") expect_ack_latency(k, now, acks);
    // acks=0: the client returns once the bytes are sent, not when they are handled.
    json done = wait_done(k, 6);
    if (acks == "0") {
        json counted = k.proc->wait_stats(
            [](const json& s) {
                const json& kf = s["kafka"];
                return kf["produce_by_acks"]["0"].get<uint64_t>() > 0 &&
                       kf["ack_latency"]["0"]["count"] == kf["produce_by_acks"]["0"];
            },
            60);
        expect_ack_latency(k, counted, "0");
    }
    expect_hand_counts(done);
    const char* mode = acks == "all" ? "all" : acks.c_str();
    EXPECT_GT(done["kafka"]["produce_by_acks"][mode].get<uint64_t>(), 0u) << done["kafka"].dump();
    stop_and_check_store(k);
}

// The codec a client asked for is the one its batches came in (stats.kafka
// .batches_by_compression): librdkafka <= 2.11 silently sends uncompressed batches to a
// broker that does not list Produce v0 (gzip, snappy, lz4), FindCoordinator (lz4) or
// Fetch 10 (zstd), and every earlier assertion would still pass.
void expect_batches_in(const json& kf, const std::string& codec) {
    const json by = kf.value("batches_by_compression", json(nullptr));
    ASSERT_TRUE(by.is_object()) << kf.dump();
    EXPECT_GT(by.value(codec, 0), 0) << codec << " asked, got " << by.dump();
    for (const char* other : {"none", "gzip", "snappy", "lz4", "zstd"})
        if (other != codec) { EXPECT_EQ(by.value(other, -1), 0) << codec << " asked, got " << by.dump(); }
}

// kcat -P with acks=all, idempotence and `codec`, sending a sluice-gen stream beside kernel
// UDP (kafka_model.h): counters and tables equal sluice-gen's model; one producer id, the
// codec as asked, every batch magic 2, the acks=all latency recorded.
void run_kcat(const std::string& codec, uint64_t seed) {
    ASSERT_EQ(run_command("command -v kcat > /dev/null"), 0)
        << "kcat is missing: apt-get install kcat (scripts/bootstrap)";
    run_against_model(
        "kcat-" + codec, 2000, seed,
        [&](const kafka_daemon& k, const std::string& values) {
            return "kcat -P -b " + broker(k) +
                   " -t events-topic -X acks=all -X enable.idempotence=true -z " + codec + " < " +
                   values;
        },
        [&](const kafka_daemon& k, const json& now) {
            EXPECT_EQ(now["kafka"]["requests_by_api"].value("init_producer_id", 0), 1)
                << now["kafka"].dump();
            EXPECT_EQ(now["kafka"]["producer_ids"], 1);
            expect_batches_in(now["kafka"], codec);
            EXPECT_EQ(now["kafka"]["batches_by_magic"]["2"],
                      now["kafka"]["batches_by_compression"][codec])
                << now["kafka"].dump();
            expect_ack_latency(k, now, "all");
        });
}

// kafka-python told it talks to an old broker (api_version (0, 10): Produce v2 with magic 1
// messages; (0, 9): Produce v1 with magic 0), uncompressed or gzip: the legacy message-set
// path (docs/KAFKA.md), through the same hand-computed outcome.
void run_legacy_snippet(const std::string& api_version, const std::string& codec) {
    ASSERT_EQ(access(python, X_OK), 0) << python << " is missing (scripts/bootstrap installs it)";
    ASSERT_EQ(run_command(std::string(python) + " -c 'import kafka' 2>/dev/null"), 0)
        << "kafka-python is missing: apt-get install python3-kafka (scripts/bootstrap)";
    kafka_daemon k;
    start(k, "py-legacy-" + api_version + "-" + codec);
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string script = write_file(k.dir + "/legacy.py", R"(import json
import logging
import sys
from kafka import KafkaProducer

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
port, version, codec, values = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
producer = KafkaProducer(bootstrap_servers=['127.0.0.1:' + port], acks=1,
                         api_version=tuple(int(x) for x in version.split('.')),
                         compression_type=None if codec == 'none' else codec,
                         value_serializer=lambda x: json.dumps(x).encode('utf-8'))
for line in open(values):
    producer.send('events-topic', value=json.loads(line))
producer.flush()
producer.close()
)");
    const std::string log = k.dir + "/producer.log";
    const std::string cmd = std::string("timeout 120 ") + python + " " + script + " " +
                            std::to_string(k.port) + " " + api_version + " " + codec + " " +
                            write_values(k.dir) + " > " + log + " 2>&1";
    ASSERT_EQ(run_command(cmd), 0) << cmd << "; see " << log;
    json now = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(now.value("ok", false)) << now.dump();
    EXPECT_EQ(total(now, "events_received"), 6u) << now.dump(); // acks=1: in the rings
    json& kf = now["kafka"]; // non-const: a missing counter reads as null, not an abort
    const char* magic = api_version == "0.10" ? "1" : "0";
    EXPECT_GT(kf["batches_by_magic"][magic].get<uint64_t>(), 0u) << kf.dump();
    EXPECT_EQ(kf["batches_by_magic"]["2"], 0) << kf.dump();
    expect_batches_in(kf, codec);
    // The Produce version it sent, from its own debug log ("Request N: ProduceRequest_vV").
    const std::string produce_v = api_version == "0.10" ? "ProduceRequest_v2" : "ProduceRequest_v1";
    EXPECT_EQ(run_command("grep -q " + produce_v + " " + log), 0) << "see " << log;
    EXPECT_EQ(kf["batches_by_magic"][magic], kf["batches_by_compression"][codec]) << kf.dump();
    expect_hand_counts(wait_done(k, 6), true, false); // told the version: no ApiVersions
    stop_and_check_store(k, true, false);
}

// kafka-python sending a sluice-gen stream's lines as raw record values (no serializer:
// the malformed ones must reach sluiced byte for byte), acks as given.
std::string write_raw_producer(const std::string& dir) {
    return write_file(dir + "/raw_producer.py", R"(import sys
from kafka import KafkaProducer

port, acks, values = sys.argv[1], sys.argv[2], sys.argv[3]
producer = KafkaProducer(bootstrap_servers=['127.0.0.1:' + port],
                         acks=acks if acks == 'all' else int(acks))
with open(values, 'rb') as f:
    for line in f:
        producer.send('events-topic', value=line[:-1] if line.endswith(b'\n') else line)
producer.flush()
producer.close()
)");
}

// sluice-gen's stream (late, beyond-horizon, duplicate and malformed lines) through
// kafka-python with raw values and `acks`, with datagrams of it over kernel UDP before and
// after: the counters, events, dead_letters and page_views_per_minute equal sluice-gen's
// model; what acks 1 and all promise holds when the client returns (kafka_model.h).
void run_python_raw(const std::string& acks, uint64_t seed) {
    ASSERT_EQ(access(python, X_OK), 0) << python << " is missing (scripts/bootstrap installs it)";
    ASSERT_EQ(run_command(std::string(python) + " -c 'import kafka' 2>/dev/null"), 0)
        << "kafka-python is missing: apt-get install python3-kafka (scripts/bootstrap)";
    run_against_model(
        "py-raw-" + acks, 2000, seed,
        [&](const kafka_daemon& k, const std::string& values) {
            return std::string(python) + " " + write_raw_producer(k.dir) + " " +
                   std::to_string(k.port) + " " + acks + " " + values;
        },
        [&](const kafka_daemon& k, const json& s) {
            EXPECT_GT(s["kafka"]["produce_by_acks"][acks].get<uint64_t>(), 0u) << s["kafka"].dump();
            if (acks != "0") expect_ack_latency(k, s, acks);
        },
        acks);
}

} // namespace

TEST(Kafka, KafkaPythonRawAcks0BesideUdpMatchesModel) { run_python_raw("0", 70); }
TEST(Kafka, KafkaPythonRawAcks1BesideUdpMatchesModel) { run_python_raw("1", 71); }
TEST(Kafka, KafkaPythonRawAcksAllBesideUdpMatchesModel) { run_python_raw("all", 72); }

TEST(Kafka, KafkaPythonLegacyMagic1) { run_legacy_snippet("0.10", "none"); }
TEST(Kafka, KafkaPythonLegacyMagic1Gzip) { run_legacy_snippet("0.10", "gzip"); }
TEST(Kafka, KafkaPythonLegacyMagic0) { run_legacy_snippet("0.9", "none"); }
TEST(Kafka, KafkaPythonLegacyMagic0Gzip) { run_legacy_snippet("0.9", "gzip"); }

TEST(Kafka, KafkaPythonSnippetAcks0) { run_snippet("0"); }
TEST(Kafka, KafkaPythonSnippetAcks1) { run_snippet("1"); }
TEST(Kafka, KafkaPythonSnippetAcksAll) { run_snippet("all"); }

TEST(Kafka, KcatIdempotentAcksAllUncompressed) { run_kcat("none", 81); }
TEST(Kafka, KcatIdempotentAcksAllGzip) { run_kcat("gzip", 82); }
TEST(Kafka, KcatIdempotentAcksAllSnappy) { run_kcat("snappy", 83); }
TEST(Kafka, KcatIdempotentAcksAllLz4) { run_kcat("lz4", 84); }
TEST(Kafka, KcatIdempotentAcksAllZstd) { run_kcat("zstd", 85); }

// The broker-side protocol rules, spoken raw: ApiVersions above its max answers
// UNSUPPORTED_VERSION (35) in the v0 layout with the key list; answers come in request
// order for pipelined requests; Metadata answers every requested topic (unknown ones with
// UNKNOWN_TOPIC_OR_PARTITION when auto-creation is off); an unknown API key and a frame
// above request_bytes_max close the connection; connections beyond connections_max are
// refused. Each is counted in the kafka stats, and the listener keeps serving.
TEST(Kafka, ProtocolRulesAndLimits) {
    kafka_daemon k;
    start(k, "proto", {}, 4, "auto_create_topics = false\nconnections_max = 4\n");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string script = write_file(k.dir + "/proto.py", R"(import socket, struct, sys, time
from kframes import closed, frame, recvn
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(('127.0.0.1', port)); s.settimeout(10); return s
def req(key, ver, corr, body=b''):
    hdr = struct.pack('>hhih', key, ver, corr, 4) + b'test'
    return struct.pack('>i', len(hdr) + len(body)) + hdr + body
def string(b, o):
    n = struct.unpack('>h', b[o:o+2])[0]
    return b[o+2:o+2+max(n, 0)].decode(), o + 2 + max(n, 0)
s = conn()
f = frame(s) if s.sendall(req(18, 9, 7)) is None else None
corr, err, n = struct.unpack('>ihi', f[:10])
assert (corr, err) == (7, 35), (corr, err)
s.sendall(req(18, 0, 100) + req(18, 0, 101))
f1, f2 = frame(s), frame(s)
assert struct.unpack('>ih', f1[:6]) == (100, 0) and struct.unpack('>i', f2[:4])[0] == 101
n = struct.unpack('>i', f1[6:10])[0]
keys = {struct.unpack('>hhh', f1[10+6*i:16+6*i])[0]: struct.unpack('>hhh', f1[10+6*i:16+6*i])[1:] for i in range(n)}
assert keys[0] == (0, 9) and keys[1] == (4, 10) and keys[10] == (0, 2) and keys[11] == (0, 5) and keys[8] == (0, 7) and keys[9] == (0, 5) and keys[3] == (0, 12) and keys[18] == (0, 3) and keys[22] == (0, 4) and 1 in keys, keys
topics = struct.pack('>i', 2) + struct.pack('>h', 4) + b'nope' + struct.pack('>h', 12) + b'events-topic'
s.sendall(req(3, 1, 200, topics))
f = frame(s)
o = 4
nb = struct.unpack('>i', f[o:o+4])[0]; o += 4
assert nb == 1
node = struct.unpack('>i', f[o:o+4])[0]; o += 4
host, o = string(f, o)
bport = struct.unpack('>i', f[o:o+4])[0]; o += 4
rack, o = string(f, o)
assert (node, host, bport) == (0, '127.0.0.1', port), (node, host, bport)
o += 4  # controller
nt = struct.unpack('>i', f[o:o+4])[0]; o += 4
seen = {}
for _ in range(nt):
    terr = struct.unpack('>h', f[o:o+2])[0]; o += 2
    name, o = string(f, o)
    o += 1
    np_ = struct.unpack('>i', f[o:o+4])[0]; o += 4
    for _ in range(np_):
        o += 2 + 4 + 4
        nr = struct.unpack('>i', f[o:o+4])[0]; o += 4 + 4 * nr
        ni = struct.unpack('>i', f[o:o+4])[0]; o += 4 + 4 * ni
    seen[name] = (terr, np_)
assert seen == {'nope': (3, 0), 'events-topic': (0, 1)}, seen
s.sendall(req(99, 0, 9))
assert closed(s), 'unknown API key must close'
s = conn()
s.sendall(struct.pack('>i', 0x7fff0000) + b'x' * 100)
assert closed(s), 'an oversize frame must close'
held = [conn() for _ in range(4)]
for c in held:
    c.sendall(req(18, 0, 1)); frame(c)
extra = [conn() for _ in range(2)]
for c in extra:
    assert closed(c), 'a connection beyond connections_max must be refused'
c = held[0]; c.sendall(req(18, 0, 2)); assert struct.unpack('>ih', frame(c)[:6]) == (2, 0)
print('ok')
)");
    write_frames_py(k.dir);
    const std::string cmd = std::string("timeout 60 ") + python + " " + script + " " +
                            std::to_string(k.port) + " > " + k.dir + "/proto.log 2>&1";
    ASSERT_EQ(run_command(cmd), 0) << cmd << "; see " << k.dir << "/proto.log";
    json s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    const json& kf = s["kafka"];
    EXPECT_EQ(kf["connections_refused"], 2) << kf.dump();
    EXPECT_EQ(kf["connections_closed"]["protocol"], 1) << kf.dump();
    EXPECT_EQ(kf["connections_closed"]["request_too_large"], 1) << kf.dump();
    EXPECT_EQ(kf["unknown_api"], 1);
    EXPECT_EQ(kf["errors_by_code"]["35"], 1);
    EXPECT_EQ(kf["errors_by_code"]["3"], 1);
    EXPECT_EQ(kf["requests_by_api"]["api_versions"], 8);
    EXPECT_EQ(kf["requests_by_api"]["metadata"], 1);
    EXPECT_EQ(kf["topics"].size(), 1u) << "auto_create_topics = false created a topic";
    json m = k.proc->request({{"cmd", "metrics"}});
    ASSERT_TRUE(m.value("ok", false)) << m.dump();
    const std::string text = m.value("text", "");
    EXPECT_NE(text.find("sluice_kafka_connections_refused_total 2"), std::string::npos) << text;
    EXPECT_NE(text.find("sluice_kafka_requests_total{api=\"api_versions\"} 8"), std::string::npos)
        << text;
    // Still serving: a real client gets through.
    const std::string kcat = "timeout 60 kcat -P -b 127.0.0.1:" + std::to_string(k.port) +
                             " -t events-topic -X acks=all < " + write_values(k.dir) + " > " +
                             k.dir + "/kcat.log 2>&1";
    EXPECT_EQ(run_command(kcat), 0) << "see " << k.dir << "/kcat.log";
    expect_hand_counts(wait_done(k, 6), false);
    stop_and_check_store(k, false);
}

// Kafka beside the kernel UDP input, each on its own RX lcore: the same event over both is
// one event and one duplicate (nothing downstream knows where an event came from).
TEST(Kafka, BesideKernelUdpSameEventIsADuplicate) {
    kafka_daemon k;
    const uint16_t udp_port = uint16_t(20000 + (getpid() * 17) % 20000);
    start(k, "udp", {"--kernel-udp", "127.0.0.1", "--udp-port", std::to_string(udp_port)}, 5);
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string sender = write_file(k.dir + "/udp.py", R"(import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in open(sys.argv[2]):
    s.sendto(line.encode(), ('127.0.0.1', int(sys.argv[1])))
)");
    const std::string udp_values = write_file(k.dir + "/udp.ndjson", hand_set[0] + "\n" + hand_set[2] + "\n");
    ASSERT_EQ(run_command(std::string(python) + " " + sender + " " + std::to_string(udp_port) + " " +
                          udp_values),
              0);
    k.proc->wait_stats([](const json& s) { return total(s, "events_accepted") >= 2; }, 60);
    const std::string kafka_values = write_file(k.dir + "/kafka.ndjson", hand_set[0] + "\n");
    const std::string kcat = "timeout 60 kcat -P -b 127.0.0.1:" + std::to_string(k.port) +
                             " -t events-topic -X acks=all < " + kafka_values + " > " + k.dir +
                             "/kcat.log 2>&1";
    ASSERT_EQ(run_command(kcat), 0) << "see " << k.dir << "/kcat.log";
    json s = k.proc->wait_stats([](const json& s) { return total(s, "duplicates") >= 1; }, 60);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_received"), 3u);
    EXPECT_EQ(total(s, "events_accepted"), 2u);
    EXPECT_EQ(total(s, "duplicates"), 1u);
    EXPECT_EQ(s["kafka"]["records"], 1);
    std::set<std::string> inputs;
    for (const auto& c : s["per_core"])
        if (c["role"] == "rx") inputs.insert(c["input"].get<std::string>());
    EXPECT_EQ(inputs, (std::set<std::string>{"kafka", "kernel_udp"}));
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    stored_outcome got = read_store(k.dir + "/data", query_table);
    std::vector<std::string> want{hex64(hand_set[0]) + " 0", hex64(hand_set[2]) + " 0"};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got.events, want);
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

// Back-pressure is TCP's: with workers slowed down, the slot pool and rings fill, the Kafka
// RX leaves requests unread (counted) instead of dropping anything, and every record of
// 30,000 ends up handled once the workers catch up; acks=1 answers all of them.
TEST(Kafka, SlowWorkersHoldTheConnectionNothingIsLost) {
    kafka_daemon k;
    start(k, "slow", {"--test-slow-worker-us", "5000"});
    ASSERT_FALSE(::testing::Test::HasFailure());
    const uint32_t n = 30000;
    {
        std::ofstream out(k.dir + "/many.ndjson");
        for (uint32_t i = 0; i < n; ++i)
            out << R"({"event_id": "b)" << i
                << R"(", "user_id": "1", "event_type": "page_view", "timestamp": )"
                << (1740756120000 + i) << R"(, "page": "/p)" << (i % 7) << "\"}\n";
    }
    const std::string kcat = "timeout 300 kcat -P -b 127.0.0.1:" + std::to_string(k.port) +
                             " -t events-topic -X acks=1 < " + k.dir + "/many.ndjson > " +
                             k.dir + "/kcat.log 2>&1";
    ASSERT_EQ(run_command(kcat), 0) << "see " << k.dir << "/kcat.log";
    json s = wait_done(k, n);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_received"), n);
    EXPECT_EQ(total(s, "events_accepted"), n);
    EXPECT_EQ(total(s, "dead_letters"), 0u);
    EXPECT_EQ(s["kafka"]["records"], n);
    EXPECT_GT(s["kafka"]["backpressure"].get<uint64_t>(), 0u) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"]["connections_closed"]["overrun"], 0) << s["kafka"].dump();
    // Each Produce counted once, however often back-pressure left it for later.
    EXPECT_EQ(s["kafka"]["requests_by_api"]["produce"], s["kafka"]["produce_by_acks"]["1"]);
    EXPECT_EQ(s["kafka"]["connections_closed"]["recv_error"], 0) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"]["errors_by_code"], json::object());
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    stored_outcome got = read_store(k.dir + "/data", query_table);
    EXPECT_EQ(got.events.size(), n);
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

// confluent-kafka (python3-confluent-kafka, librdkafka underneath), idempotent, acks=all;
// uncompressed and gzip.
void run_confluent(const std::string& codec) {
    ASSERT_EQ(run_command(std::string(python) + " -c 'import confluent_kafka' 2>/dev/null"), 0)
        << "confluent-kafka is missing: apt-get install python3-confluent-kafka (scripts/bootstrap)";
    kafka_daemon k;
    start(k, "confluent-" + codec);
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string script = write_file(k.dir + "/confluent.py", R"(import sys
from confluent_kafka import Producer
failed = []
def delivered(err, msg):
    if err is not None:
        failed.append(err)
p = Producer({'bootstrap.servers': '127.0.0.1:' + sys.argv[1], 'acks': 'all',
              'enable.idempotence': True, 'compression.type': sys.argv[3]})
for line in open(sys.argv[2]):
    p.produce('events-topic', value=line.rstrip('\n').encode('utf-8'), callback=delivered)
assert p.flush(60) == 0, 'undelivered messages'
assert not failed, failed
)");
    const std::string cmd = std::string("timeout 120 ") + python + " " + script + " " +
                            std::to_string(k.port) + " " + write_values(k.dir) + " " + codec +
                            " > " + k.dir + "/confluent.log 2>&1";
    ASSERT_EQ(run_command(cmd), 0) << cmd << "; see " << k.dir << "/confluent.log";
    json now = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(now.value("ok", false)) << now.dump();
    EXPECT_GE(durable_rows(now, "events"), 3u) << now["storage"].dump();
    EXPECT_GE(durable_rows(now, "dead_letters"), 2u) << now["storage"].dump();
    expect_batches_in(now["kafka"], codec);
    expect_hand_counts(wait_done(k, 6));
    stop_and_check_store(k);
}

TEST(Kafka, ConfluentKafkaIdempotentAcksAll) { run_confluent("none"); }
TEST(Kafka, ConfluentKafkaIdempotentAcksAllGzip) { run_confluent("gzip"); }

// sluice-gen's stream through confluent-kafka (idempotent, acks=all, zstd) beside kernel
// UDP: counters and tables equal sluice-gen's model (kafka_model.h).
TEST(Kafka, ConfluentKafkaZstdIdempotentBesideUdpMatchesModel) {
    ASSERT_EQ(run_command(std::string(python) + " -c 'import confluent_kafka' 2>/dev/null"), 0)
        << "confluent-kafka is missing: apt-get install python3-confluent-kafka (scripts/bootstrap)";
    run_against_model(
        "confluent-zstd", 2000, 74,
        [](const kafka_daemon& k, const std::string& values) {
            const std::string script = write_file(k.dir + "/confluent_raw.py", R"(import sys
from confluent_kafka import Producer
failed = []
def delivered(err, msg):
    if err is not None:
        failed.append(err)
p = Producer({'bootstrap.servers': '127.0.0.1:' + sys.argv[1], 'acks': 'all',
              'enable.idempotence': True, 'compression.type': 'zstd'})
with open(sys.argv[2], 'rb') as f:
    for line in f:
        p.produce('events-topic', value=line[:-1] if line.endswith(b'\n') else line,
                  callback=delivered)
        p.poll(0)
assert p.flush(60) == 0, 'undelivered messages'
assert not failed, failed
)");
            return std::string(python) + " " + script + " " + std::to_string(k.port) + " " + values;
        },
        [](const kafka_daemon&, const json& s) {
            expect_batches_in(s["kafka"], "zstd");
            EXPECT_EQ(s["kafka"]["producer_ids"], 1) << s["kafka"].dump();
        });
}

// Bad Kafka configuration is one line that names the cause and the fix, and sluiced exits.
TEST(Kafka, PortInUseAndMissingListenerAreOneLineErrors) {
    const std::string dir = make_temp_dir("kafka-badcfg");
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    const std::string port = std::to_string(ntohs(a.sin_port));
    const std::string prefix = "sluice-kafka-badcfg-" + std::to_string(getpid());
    std::string eal;
    for (const auto& arg : eal_args(prefix, 3)) eal += " '" + arg + "'";
    const std::string cmd = std::string(std::getenv("SLUICED")) + eal + " -- --data-dir " + dir +
                            "/data --control-socket " + dir + "/ctl.sock --kafka 127.0.0.1:" +
                            port + " > " + dir + "/out.log 2>&1";
    EXPECT_EQ(run_command(cmd), 1);
    std::ifstream in(dir + "/out.log");
    const std::string out((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(out.find("cannot listen for Kafka on 127.0.0.1:" + port + ": Address already in use"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("--kafka ADDR:PORT"), std::string::npos) << out;
    ::close(fd);

    std::ofstream(dir + "/kafka.toml") << "[input]\nmode = \"kafka\"\n";
    const std::string cmd2 = std::string(std::getenv("SLUICED")) + eal + " -- --data-dir " + dir +
                             "/data --config " + dir + "/kafka.toml > " + dir + "/out2.log 2>&1";
    EXPECT_NE(run_command(cmd2), 0);
    std::ifstream in2(dir + "/out2.log");
    const std::string out2((std::istreambuf_iterator<char>(in2)), {});
    EXPECT_NE(out2.find("input.mode = \"kafka\" needs a listener: set kafka.listen or pass --kafka"),
              std::string::npos)
        << out2;
    remove_eal_runtime(prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// Produce spoken raw (RecordBatch v2 built by hand, CRC-32C in Python): errors are per
// partition and never fail the records beside them — a good batch is stored while a
// corrupt one (bad CRC) in the same request is answered CORRUPT_MESSAGE (2) and stores
// nothing, an unknown partition UNKNOWN_TOPIC_OR_PARTITION (3); a frame split over many
// writes is reassembled; a Produce whose record-set length runs past its frame closes the
// connection; a truncated frame and a vanished client leave the listener serving; acks
// outside {-1, 0, 1} are INVALID_REQUIRED_ACKS (21) and store nothing.
TEST(Kafka, ProduceErrorsArePerPartitionRaw) {
    kafka_daemon k;
    start(k, "rawproduce");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string script = write_file(k.dir + "/produce.py", R"(import socket, struct, sys, time
from kframes import answer, batch, closed, frame, produce
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port)); s.settimeout(20)
good = batch([b'{"event_id": "r1", "timestamp": "2025-02-28T15:22:31Z", "page": "/r"}', b'not json'])
bad = batch([b'{"event_id": "r2", "timestamp": "2025-02-28T15:22:31Z", "page": "/r"}'], corrupt=True)
req = produce(42, [(b'events-topic', [(0, good), (5, good)]), (b'other-topic', [(0, bad)])])
for i in range(0, len(req), 7):
    s.sendall(req[i:i + 7])
    time.sleep(0.002)
got = answer(s, 42)
assert got == {('events-topic', 0): (0, 0), ('events-topic', 5): (3, -1), ('other-topic', 0): (2, -1)}, got
s.sendall(produce(43, [(b'events-topic', [(0, good)])], lie=1000))
assert closed(s), 'a record set running past its frame must close the connection'
t = socket.create_connection(('127.0.0.1', port))
t.sendall(struct.pack('>i', 100) + b'x' * 50)
t.close()
u = socket.create_connection(('127.0.0.1', port)); u.settimeout(20)
u.sendall(produce(44, [(b'events-topic', [(0, batch([b'{"event_id": "r3", "timestamp": "2025-02-28T15:22:32Z", "page": "/r"}']))])]))
f = frame(u)
assert struct.unpack('>i', f[:4])[0] == 44
u.sendall(produce(45, [(b'events-topic', [(0, good)])], acks=2))
f = frame(u)
assert struct.unpack('>ii', f[:8]) == (45, 1)
n = struct.unpack('>h', f[8:10])[0]
assert struct.unpack('>iihq', f[10 + n:28 + n]) == (1, 0, 21, -1), f
print('ok')
)");
    write_frames_py(k.dir);
    const std::string cmd = std::string("timeout 60 ") + python + " " + script + " " +
                            std::to_string(k.port) + " > " + k.dir + "/produce.log 2>&1";
    ASSERT_EQ(run_command(cmd), 0) << cmd << "; see " << k.dir << "/produce.log";
    json s = k.proc->wait_stats([](const json& s) { return total(s, "events_accepted") >= 2; }, 60);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_received"), 3u);
    EXPECT_EQ(total(s, "events_accepted"), 2u); // r1 and r3; r2's batch was corrupt
    EXPECT_EQ(s["totals"]["dead_letters_by_reason"]["parse_error"], 1);
    const json& kf = s["kafka"];
    EXPECT_EQ(kf["errors_by_code"]["2"], 1) << kf.dump();
    EXPECT_EQ(kf["errors_by_code"]["3"], 1) << kf.dump();
    EXPECT_EQ(kf["errors_by_code"]["21"], 1) << kf.dump(); // acks = 2: INVALID_REQUIRED_ACKS
    EXPECT_EQ(kf["bad_requests"], 1) << kf.dump();
    EXPECT_EQ(kf["records"], 3);
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

// The record key is not an identity (docs/KAFKA.md): without event_id, two values under one
// key are two events, and one value under two keys is one event and a duplicate.
TEST(Kafka, RecordKeyIsNotTheIdentity) {
    kafka_daemon k;
    start(k, "keys");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string v1 = R"({"timestamp": "2025-02-28T15:22:31Z", "page": "/k1"})";
    const std::string v2 = R"({"timestamp": "2025-02-28T15:22:31Z", "page": "/k2"})";
    const std::string values = write_file(k.dir + "/keyed.txt", "samekey|" + v1 + "\nsamekey|" +
                                                                    v2 + "\notherkey|" + v1 + "\n");
    const std::string kcat = "timeout 60 kcat -P -K '|' -b 127.0.0.1:" + std::to_string(k.port) +
                             " -t events-topic -X acks=all < " + values + " > " + k.dir +
                             "/kcat.log 2>&1";
    ASSERT_EQ(run_command(kcat), 0) << "see " << k.dir << "/kcat.log";
    json s = wait_done(k, 3);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_received"), 3u);
    EXPECT_EQ(total(s, "events_accepted"), 2u);
    EXPECT_EQ(total(s, "duplicates"), 1u);
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    std::vector<std::string> want{hex64(v1) + " 0", hex64(v2) + " 0"};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(read_store(k.dir + "/data", query_table).events, want);
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

// The idempotent producer (docs/KAFKA.md), with hand-built frames: InitProducerId, then a
// batch with (producer id, epoch 0, sequence 0); the same batch again is answered with the
// same offset and stored nothing (it never reaches the workers: `duplicates` stays 0, the
// Kafka `duplicate_sequences` counts it); a gap is OUT_OF_ORDER_SEQUENCE_NUMBER (45) and
// stores nothing; the next sequence is accepted. After a clean restart InitProducerId hands
// out a larger id (the counter is in the data dir); the old producer's sequence state is
// not persisted, so its re-sent first batch is accepted again and its records are caught
// by sluice's identity dedup (`duplicates` 2), and its sequence goes on from there. After
// a kill -9 and a restart, InitProducerId again hands out a larger id.
const char* idempotent_script = R"(import socket, struct, sys
from kframes import batch, frame
port, mode, idfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def produce(corr, rs):
    body = struct.pack('>hhi', -1, -1, 30000) + struct.pack('>i', 1)
    body += struct.pack('>h', 12) + b'events-topic' + struct.pack('>i', 1)
    body += struct.pack('>ii', 0, len(rs)) + rs
    hdr = struct.pack('>hhih', 0, 3, corr, 4) + b'test'
    return struct.pack('>i', len(hdr) + len(body)) + hdr + body
def answer(s, corr, rs):
    s.sendall(produce(corr, rs))
    f = frame(s)
    assert struct.unpack('>ii', f[:8]) == (corr, 1), f
    n = struct.unpack('>h', f[8:10])[0]
    np_, index, err, base = struct.unpack('>iihq', f[10 + n:28 + n])
    assert (np_, index) == (1, 0), f
    return err, base
s = socket.create_connection(('127.0.0.1', port)); s.settimeout(30)
hdr = struct.pack('>hhih', 22, 0, 7, 4) + b'test'
body = struct.pack('>hi', -1, 60000)
s.sendall(struct.pack('>i', len(hdr) + len(body)) + hdr + body)
f = frame(s)
corr, _, err, pid, epoch = struct.unpack('>iihqh', f[:20])
assert (corr, err, epoch) == (7, 0, 0), f
v = lambda i: ('{"event_id": "idem%d", "timestamp": "2025-02-28T15:22:31Z", "page": "/i"}' % i).encode()
if mode == 'first':
    a = batch([v(1), v(2)], pid, 0, 0)
    assert answer(s, 10, a) == (0, 0)
    assert answer(s, 11, a) == (0, 0), 'a re-sent batch: the first answer again'
    assert answer(s, 12, batch([v(9)], pid, 0, 5))[0] == 45, 'a gap'
    assert answer(s, 13, batch([v(3)], pid, 0, 2)) == (0, 2)
    assert answer(s, 14, a) == (0, 0), 'still one of the last five'
    open(idfile, 'w').write(str(pid))
    open(idfile + '.producer', 'w').write(str(pid))
else:
    old = int(open(idfile).read())
    assert pid > old, (pid, old)
    open(idfile, 'w').write(str(pid))
    first = int(open(idfile + '.producer').read())
    if mode == 'second':
        # The sequence state is persisted (sequence_journal): after the restart a retry of
        # the first batch is the duplicate it was, and a gap is still a gap.
        assert answer(s, 20, batch([v(1), v(2)], first, 0, 0)) == (0, 0), 'journaled: a duplicate'
        assert answer(s, 21, batch([v(9)], first, 0, 5))[0] == 45, 'a gap on the restored state'
        err, base = answer(s, 22, batch([v(4)], first, 0, 3))
        assert err == 0, err
        assert answer(s, 23, batch([v(4)], first, 0, 3)) == (0, base), 'and its duplicate'
        open(idfile + '.base', 'w').write(str(base))
    elif mode == 'third':
        # After a kill -9: the batch answered (acks=all) before it is still known.
        base = int(open(idfile + '.base').read())
        assert answer(s, 30, batch([v(4)], first, 0, 3)) == (0, base), 'journaled before the kill'
        assert answer(s, 31, batch([v(5)], first, 0, 4))[0] == 0, 'the next sequence'
print('ok', pid)
)";

void run_idempotent_script(const kafka_daemon& k, const std::string& mode) {
    const std::string script = write_file(k.dir + "/idempotent.py", idempotent_script);
    write_frames_py(k.dir);
    const std::string log = k.dir + "/idempotent-" + mode + ".log";
    const std::string cmd = std::string("timeout 60 ") + python + " " + script + " " +
                            std::to_string(k.port) + " " + mode + " " + k.dir + "/pid > " + log +
                            " 2>&1";
    ASSERT_EQ(run_command(cmd), 0) << cmd << "; see " << log;
}

TEST(Kafka, IdempotentProducerSequencesRaw) {
    kafka_daemon k;
    start(k, "idem");
    ASSERT_FALSE(::testing::Test::HasFailure());
    run_idempotent_script(k, "first");
    ASSERT_FALSE(::testing::Test::HasFailure());
    json s = k.proc->wait_stats([](const json& s) { return total(s, "events_accepted") >= 3; }, 60);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_received"), 3u);
    EXPECT_EQ(total(s, "events_accepted"), 3u);
    EXPECT_EQ(total(s, "duplicates"), 0u); // the re-sent batches never reached the workers
    const json& kf = s["kafka"];
    EXPECT_EQ(kf["records"], 3);
    EXPECT_EQ(kf["duplicate_sequences"], 2) << kf.dump();
    EXPECT_EQ(kf["out_of_order_sequences"], 1) << kf.dump();
    EXPECT_EQ(kf["errors_by_code"], json({{"45", 1}})) << kf.dump();
    EXPECT_EQ(kf["producer_ids"], 1);
    EXPECT_EQ(kf["producer_states"], 1);
    json m = k.proc->request({{"cmd", "metrics"}});
    const std::string text = m.value("text", "");
    EXPECT_NE(text.find("sluice_kafka_duplicate_sequences_total 2"), std::string::npos) << text;
    EXPECT_NE(text.find("sluice_kafka_out_of_order_sequences_total 1"), std::string::npos)
        << text;
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    ASSERT_TRUE(std::filesystem::exists(k.dir + "/data/_processing/kafka_producer_ids"));

    // Restarts on the same data dir.
    auto restart = [&](const std::string& log) {
        std::vector<std::string> args = eal_args(k.prefix, 4);
        args.insert(args.end(), {"--", "--data-dir", k.dir + "/data", "--control-socket",
                                 k.dir + "/ctl.sock", "--config", k.dir + "/sluiced.toml",
                                 "--workers", "2", "--kafka", "127.0.0.1:0"});
        k.proc = std::make_unique<daemon_process>(args, k.dir + "/" + log);
        ASSERT_TRUE(k.proc->wait_up(60)) << "see " << k.dir << "/" << log;
        json st = k.proc->request({{"cmd", "stats"}});
        ASSERT_TRUE(st["kafka"].is_object()) << st.dump();
        k.port = st["kafka"]["ports"][0].get<uint16_t>();
    };
    restart("sluiced2.log");
    ASSERT_FALSE(::testing::Test::HasFailure());
    s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(s["kafka"]["sequences_restored"], 2) << s["kafka"].dump(); // a, idem3
    EXPECT_EQ(s["kafka"]["producer_states"], 1) << s["kafka"].dump();
    run_idempotent_script(k, "second");
    s = k.proc->wait_stats([](const json& s) { return total(s, "events_accepted") >= 1; }, 60);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_received"), 1u); // idem4 only: the retries never reached a worker
    EXPECT_EQ(total(s, "events_accepted"), 1u);
    EXPECT_EQ(total(s, "duplicates"), 0u);
    EXPECT_EQ(s["kafka"]["duplicate_sequences"], 2) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"]["out_of_order_sequences"], 1) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"]["sequences_journaled"], 1) << s["kafka"].dump(); // idem4
    // After a crash too: the sequence state answered with acks=all survives, and the ids
    // reserved at start are never handed out again.
    k.proc->kill9();
    restart("sluiced3.log");
    ASSERT_FALSE(::testing::Test::HasFailure());
    run_idempotent_script(k, "third");
    s = k.proc->wait_stats([](const json& s) { return total(s, "events_accepted") >= 1; }, 60);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(s["kafka"]["sequences_restored"], 3) << s["kafka"].dump(); // a, idem3, idem4
    EXPECT_EQ(total(s, "events_received"), 1u); // idem5
    EXPECT_EQ(total(s, "duplicates"), 0u);
    EXPECT_EQ(s["kafka"]["duplicate_sequences"], 1) << s["kafka"].dump();
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced3.log";
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}
