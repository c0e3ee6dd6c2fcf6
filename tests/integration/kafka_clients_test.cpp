// More Kafka producers against the real sluiced (docs/KAFKA.md), beside kafka_test.cpp's
// kafka-python, kcat and confluent-kafka:
// - kafkajs 2.2.4 (npm; scripts/setup-node installs it), driven by
//   tests/integration/kafkajs_producer.cjs: acks 1 and -1, the idempotent producer
//   (InitProducerId, sequences), GZIP; it must negotiate the versions it knows best
//   (ApiVersions v2, Metadata v6, Produce v7, InitProducerId v1).
// - the flexible versions (KIP-482) that librdkafka 2.1+ and the Java client pick, spoken
//   raw by a Python client: ApiVersions v3, Metadata v9 and v12, InitProducerId v4,
//   Produce v9, every answer decoded field by field as apache/kafka's schemas lay it out.
// Each sends the hand set (an event, its duplicate, a later event, a late event, a value
// that is not a JSON object, an event without a timestamp); the counters, the Kafka stats
// and the events, dead_letters and page_views_per_minute tables must come out exactly as
// computed by hand (tests/integration/kafka_harness.cpp). And kafkajs, idempotent with
// acks -1 and GZIP, sends a sluice-gen stream beside kernel UDP, checked against sluice-gen's
// model (tests/integration/kafka_model.h).
//
// A client the machine lacks fails the test (CI installs them: scripts/bootstrap).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/kafka_harness.h"
#include "tests/integration/kafka_model.h"

using namespace sluice::testing;
using namespace sluice::testing::kafka;

namespace {

// The last `versions {...}` line the kafkajs script printed: API name -> versions sent.
json kafkajs_versions(const std::string& log) {
    std::istringstream in(read_text(log));
    std::string line;
    json found;
    while (std::getline(in, line))
        if (line.rfind("versions ", 0) == 0) found = json::parse(line.substr(9), nullptr, false);
    return found;
}

// acks: "1" or "-1"; codec: none|gzip; mode: plain|idempotent.
void run_kafkajs(const std::string& acks, const std::string& codec, const std::string& mode) {
    const std::string node = env_or_empty("NODE");
    const std::string script = env_or_empty("KAFKAJS_PRODUCER");
    ASSERT_FALSE(node.empty()) << "Node.js is missing: apt-get install nodejs npm (scripts/bootstrap)";
    ASSERT_FALSE(script.empty()) << "KAFKAJS_PRODUCER is not set (meson sets it)";
    const std::string probe = node + " " + script + " --version 2>&1";
    ASSERT_EQ(run_command(probe + " | grep -qx 2.2.4"), 0)
        << "kafkajs 2.2.4 is missing: run scripts/setup-node (scripts/bootstrap does)";
    kafka_daemon k;
    start(k, "kafkajs-" + mode + "-" + codec + (acks == "1" ? "-1" : "-all"));
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string log = k.dir + "/kafkajs.log";
    ASSERT_TRUE(run_client(120,
                           "env KAFKAJS_NO_PARTITIONER_WARNING=1 " + node + " " + script + " " +
                               std::to_string(k.port) + " " + acks + " " + codec + " " + mode +
                               " " + write_values(k.dir),
                           log));
    // What the acks mode promises holds the moment kafkajs has its answers.
    json now = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(now.value("ok", false)) << now.dump();
    EXPECT_EQ(total(now, "events_received"), 6u) << now.dump();
    const json& kf = now["kafka"];
    const char* by_acks = acks == "1" ? "1" : "all";
    // One Produce per send(), each with these acks.
    EXPECT_GE(kf["produce_by_acks"][by_acks].get<uint64_t>(), 6u) << kf.dump();
    EXPECT_EQ(kf["produce_by_acks"][by_acks], kf["requests_by_api"]["produce"]) << kf.dump();
    if (acks == "-1") {
        EXPECT_GE(durable_rows(now, "events"), 3u) << now["storage"].dump();
        EXPECT_GE(durable_rows(now, "dead_letters"), 2u) << now["storage"].dump();
    }
    json want_versions = {{"ApiVersions", {2}}, {"Metadata", {6}}, {"Produce", {7}}};
    if (mode == "idempotent") {
        want_versions["InitProducerId"] = {1};
        // Its batches carry the producer id: the sequence check ran, once per partition.
        EXPECT_EQ(kf["requests_by_api"].value("init_producer_id", 0), 1) << kf.dump();
        EXPECT_EQ(kf["producer_ids"], 1) << kf.dump();
        EXPECT_EQ(kf["producer_states"], 1) << kf.dump();
        EXPECT_EQ(kf["out_of_order_sequences"], 0) << kf.dump();
    } else {
        // kafkajs's plain batches carry producer id -1: nothing to check.
        EXPECT_EQ(kf["producer_states"], 0) << kf.dump();
    }
    EXPECT_EQ(kafkajs_versions(log), want_versions) << "see " << log;
    // sluiced counted the same versions the client says it negotiated.
    const json& by_version = kf["requests_by_version"];
    EXPECT_EQ(by_version["produce"], json({{"7", kf["requests_by_api"]["produce"]}})) << kf.dump();
    EXPECT_EQ(by_version["metadata"], json({{"6", kf["requests_by_api"]["metadata"]}})) << kf.dump();
    if (mode == "idempotent") {
        EXPECT_EQ(by_version["init_producer_id"], json({{"1", 1}})) << kf.dump();
    }
    // The codec asked for is the one the batches came in (kafkajs compresses whatever the
    // broker lists; librdkafka did not: kafka_test.cpp).
    const json by = kf.value("batches_by_compression", json::object());
    EXPECT_GT(by.value(codec, 0), 0) << by.dump();
    for (const char* other : {"none", "gzip", "snappy", "lz4", "zstd"})
        if (other != codec) { EXPECT_EQ(by.value(other, -1), 0) << codec << ": " << by.dump(); }
    expect_hand_counts(wait_done(k, 6));
    stop_and_check_store(k);
}

// The flexible versions spoken raw (see the file comment). Also: a Metadata v12 topic asked
// by id alone is UNKNOWN_TOPIC_ID (100) with a null name, an ApiVersions v3 with an invalid
// client software name is INVALID_REQUEST (42) with no key list, a resent idempotent batch
// is answered with its first offset, and a Metadata v12 with a lying compact count closes
// the connection.
const char* flexible_script = R"(import socket, struct, sys
from kframes import batch, recvn, uvar
port, values = int(sys.argv[1]), [l.rstrip('\n').encode() for l in open(sys.argv[2])]
def cstr(s):
    return uvar(len(s) + 1) + s
def req(key, ver, corr, body):
    # Request header v2: client_id stays an i16 string, then an empty tag buffer.
    hdr = struct.pack('>hhih', key, ver, corr, 7) + b'rdkafka' + b'\x00'
    return struct.pack('>i', len(hdr) + len(body)) + hdr + body
def call(s, key, ver, corr, body):
    s.sendall(req(key, ver, corr, body))
    r = R(recvn(s, struct.unpack('>i', recvn(s, 4))[0]))
    assert r.i32() == corr, 'correlation id'
    if key != 18:
        r.tags()  # response header v1 (ApiVersions keeps v0)
    return r
class R:
    def __init__(self, b):
        self.b, self.o = b, 0
    def take(self, n):
        assert self.o + n <= len(self.b), ('truncated', self.o, n, self.b)
        v = self.b[self.o:self.o + n]; self.o += n; return v
    def i8(self): return struct.unpack('>b', self.take(1))[0]
    def i16(self): return struct.unpack('>h', self.take(2))[0]
    def i32(self): return struct.unpack('>i', self.take(4))[0]
    def i64(self): return struct.unpack('>q', self.take(8))[0]
    def uvar(self):
        v = shift = 0
        while True:
            c = self.take(1)[0]; v |= (c & 0x7f) << shift; shift += 7
            if not c & 0x80: return v
    def cstr(self):
        n = self.uvar()
        return None if n == 0 else self.take(n - 1).decode()
    def count(self): return self.uvar() - 1
    def tags(self): assert self.uvar() == 0, 'unexpected tagged fields'
    def end(self): assert self.o == len(self.b), ('bytes left', self.b[self.o:])
s = socket.create_connection(('127.0.0.1', port)); s.settimeout(30)
# ApiVersions v3 as librdkafka 2.3 sends it.
r = call(s, 18, 3, 1, cstr(b'librdkafka') + cstr(b'2.3.0') + b'\x00')
assert r.i16() == 0
keys = {}
for _ in range(r.count()):
    k, lo, hi = r.i16(), r.i16(), r.i16(); r.tags(); keys[k] = (lo, hi)
assert r.i32() == 0; r.tags(); r.end()
assert keys == {0: (0, 9), 1: (4, 10), 2: (0, 5), 3: (0, 12), 8: (0, 7), 9: (0, 5), 10: (0, 2), 11: (0, 5), 12: (0, 3), 13: (0, 3), 14: (0, 3), 18: (0, 3), 22: (0, 4), 23: (0, 4), 32: (0, 4)}, keys
# Metadata v12 (v10+ topic ids, no cluster operations) and v9 (no ids, cluster operations).
asked_id = bytes(range(1, 17))
def metadata(ver, corr, body, by_id):
    r = call(s, 3, ver, corr, body)
    assert r.i32() == 0  # throttle
    assert r.count() == 1
    node, host, bport, rack = r.i32(), r.cstr(), r.i32(), r.cstr(); r.tags()
    assert (node, host, bport, rack) == (0, '127.0.0.1', port, None), (node, host, bport, rack)
    r.cstr()  # cluster_id
    assert r.i32() == 0  # controller
    topics = {}
    for _ in range(r.count()):
        err, name = r.i16(), r.cstr()
        tid = r.take(16) if ver >= 10 else None
        assert r.i8() == 0  # is_internal
        parts = []
        for _ in range(r.count()):
            perr, idx, leader, epoch = r.i16(), r.i32(), r.i32(), r.i32()
            reps = [r.i32() for _ in range(r.count())]
            isr = [r.i32() for _ in range(r.count())]
            off = [r.i32() for _ in range(r.count())]
            r.tags()
            parts.append((perr, idx, leader, reps, isr, off))
        r.i32()  # topic_authorized_operations
        r.tags()
        topics[name] = (err, tid, parts)
    if ver <= 10:
        r.i32()  # cluster_authorized_operations
    r.tags(); r.end()
    assert topics['events-topic'] == (0, bytes(16) if ver >= 10 else None, [(0, 0, 0, [0], [0], [])]), topics
    if by_id:
        assert topics[None] == (100, asked_id, []), topics
    return topics
metadata(12, 2, uvar(3) + bytes(16) + cstr(b'events-topic') + b'\x00' + asked_id + uvar(0) + b'\x00' + b'\x01\x00\x00', True)
metadata(9, 3, uvar(2) + cstr(b'events-topic') + b'\x00' + b'\x01\x00\x00\x00', False)
# InitProducerId v4 as librdkafka 2.x sends it for enable.idempotence.
r = call(s, 22, 4, 4, uvar(0) + struct.pack('>iqh', 60000, -1, -1) + b'\x00')
throttle, err, pid, epoch = r.i32(), r.i16(), r.i64(), r.i16(); r.tags(); r.end()
assert (throttle, err, epoch) == (0, 0, 0) and pid >= 0, (throttle, err, pid, epoch)
# Produce v9, acks -1: the hand set in one idempotent batch; then the same batch again.
rs = batch(values, pid, 0, 0)
body = uvar(0) + struct.pack('>hi', -1, 30000) + uvar(2) + cstr(b'events-topic') + uvar(2)
body += struct.pack('>i', 0) + uvar(len(rs) + 1) + rs + b'\x00' + b'\x00' + b'\x00'
for corr in (5, 6):
    r = call(s, 0, 9, corr, body)
    assert r.count() == 1 and r.cstr() == 'events-topic' and r.count() == 1
    idx, err, base, append_time, start = r.i32(), r.i16(), r.i64(), r.i64(), r.i64()
    assert r.count() == 0 and r.cstr() is None  # record_errors, error_message
    r.tags(); r.tags()
    assert r.i32() == 0; r.tags(); r.end()
    assert (idx, err, base, append_time) == (0, 0, 0, -1), (idx, err, base, append_time)
# An invalid client software name: INVALID_REQUEST (42), no key list.
r = call(s, 18, 3, 7, cstr(b'bad name') + cstr(b'1.0') + b'\x00')
assert r.i16() == 42 and r.count() == 0 and r.i32() == 0; r.tags(); r.end()
# A lying compact count: the connection is closed.
s.sendall(req(3, 12, 8, uvar(100) + b'\x00'))
try:
    assert s.recv(1) == b'', 'a malformed request must close the connection'
except ConnectionResetError:
    pass
print('ok', pid)
)";

} // namespace

TEST(KafkaClients, KafkajsAcks1) { run_kafkajs("1", "none", "plain"); }
TEST(KafkaClients, KafkajsAcksAll) { run_kafkajs("-1", "none", "plain"); }
TEST(KafkaClients, KafkajsIdempotentAcksAll) { run_kafkajs("-1", "none", "idempotent"); }
TEST(KafkaClients, KafkajsIdempotentAcksAllGzip) { run_kafkajs("-1", "gzip", "idempotent"); }

// sluice-gen's stream through kafkajs (idempotent, acks -1, GZIP, 100 records to a send())
// beside kernel UDP: counters and tables equal sluice-gen's model (kafka_model.h).
TEST(KafkaClients, KafkajsIdempotentGzipBesideUdpMatchesModel) {
    const std::string node = env_or_empty("NODE");
    const std::string script = env_or_empty("KAFKAJS_PRODUCER");
    ASSERT_FALSE(node.empty()) << "Node.js is missing: apt-get install nodejs npm (scripts/bootstrap)";
    ASSERT_FALSE(script.empty()) << "KAFKAJS_PRODUCER is not set (meson sets it)";
    ASSERT_EQ(run_command(node + " " + script + " --version 2>&1 | grep -qx 2.2.4"), 0)
        << "kafkajs 2.2.4 is missing: run scripts/setup-node (scripts/bootstrap does)";
    run_against_model(
        "kafkajs-gzip", 2000, 73,
        [&](const kafka_daemon& k, const std::string& values) {
            return "env KAFKAJS_NO_PARTITIONER_WARNING=1 " + node + " " + script + " " +
                   std::to_string(k.port) + " -1 gzip idempotent " + values + " 100";
        },
        [](const kafka_daemon&, const json& s) {
            const json& kf = s["kafka"];
            EXPECT_GT(kf["batches_by_compression"].value("gzip", 0), 0) << kf.dump();
            EXPECT_EQ(kf["producer_ids"], 1) << kf.dump();
            EXPECT_EQ(kf["out_of_order_sequences"], 0) << kf.dump();
        });
}

TEST(KafkaClients, FlexibleVersionsRaw) {
    ASSERT_EQ(access(python, X_OK), 0) << python << " is missing (scripts/bootstrap installs it)";
    kafka_daemon k;
    start(k, "flexible");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string script = write_file(k.dir + "/flexible.py", flexible_script);
    write_frames_py(k.dir);
    const std::string log = k.dir + "/flexible.log";
    ASSERT_TRUE(run_client(60,
                           std::string(python) + " " + script + " " + std::to_string(k.port) + " " +
                               write_values(k.dir),
                           log))
        << "see " << log;
    // acks -1: durable by the time the script saw its answers (and went on).
    json now = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(now.value("ok", false)) << now.dump();
    EXPECT_GE(durable_rows(now, "events"), 3u) << now["storage"].dump();
    EXPECT_GE(durable_rows(now, "dead_letters"), 2u) << now["storage"].dump();
    json s = wait_done(k, 6);
    expect_hand_counts(s, false);
    const json& kf = s["kafka"];
    EXPECT_EQ(kf["errors_by_code"], json({{"100", 1}, {"42", 1}})) << kf.dump();
    EXPECT_EQ(kf["bad_requests"], 1) << kf.dump();
    EXPECT_EQ(kf["connections_closed"]["protocol"], 1) << kf.dump();
    EXPECT_EQ(kf["duplicate_sequences"], 1) << kf.dump(); // the resent batch stored nothing
    EXPECT_EQ(kf["producer_ids"], 1) << kf.dump();
    EXPECT_EQ(kf["produce_by_acks"]["all"], 2) << kf.dump();
    EXPECT_EQ(kf["requests_by_api"],
              json({{"api_versions", 2}, {"metadata", 3}, {"init_producer_id", 1}, {"produce", 2}}))
        << kf.dump();
    EXPECT_EQ(total(s, "duplicates"), 1u); // the hand set's own duplicate, not the resend
    stop_and_check_store(k, false);
}
