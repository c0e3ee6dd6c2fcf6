// The Kafka listener against hostile and crashing conditions (docs/KAFKA.md, issue 13), with
// the real sluiced: an idempotent confluent-kafka producer (acks=all) while sluiced is
// killed with SIGKILL and restarted on the same data dir and port; compression bombs; 10,000
// idle connections and the file-descriptor limit; a client that never reads its answers;
// legacy magic 0/1 message sets. Every wait has a deadline; nothing sleeps a fixed time to
// let something happen.
//
// A client the machine lacks fails the test (CI installs them: scripts/bootstrap).
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/daemon_harness.h"

using namespace sluice::testing;

namespace {

const char* python = "/usr/bin/python3";
const char* query_table = "page_views_per_minute";
using clock_type = std::chrono::steady_clock;

std::string hex64(const std::string& s) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits(s.data(), s.size())));
    return buf;
}

uint64_t total(const json& s, const char* k) { return s["totals"][k].get<uint64_t>(); }

std::string write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

struct kafka_daemon {
    std::string dir, prefix;
    std::unique_ptr<daemon_process> proc;
    uint16_t port = 0;
    std::string kafka_extra;
    std::vector<std::string> wrapper;
    int starts = 0;
};

// events-topic with one partition; `kafka_extra` goes into [kafka].
std::string write_config(const std::string& dir, const std::string& kafka_extra) {
    std::string path = dir + "/sluiced.toml";
    std::ofstream(path) << "[input]\nslots = 8192\n[processing]\ndedup_memory_mb = 32\n"
                        << "[storage]\nflush_interval_ms = 100\n"
                        << "[kafka]\n" << kafka_extra
                        << "[[kafka.topic]]\nname = \"events-topic\"\npartitions = 1\n";
    return path;
}

// (Re)starts sluiced on k.dir's data dir; the first start lets the kernel pick the port,
// later ones listen on the same port again (a restarted broker, as clients see it).
void start(kafka_daemon& k) {
    const bool first = k.starts++ == 0;
    std::vector<std::string> args = eal_args(k.prefix, 4);
    args.insert(args.end(), {"--", "--data-dir", k.dir + "/data", "--control-socket",
                             k.dir + "/ctl.sock", "--config", k.dir + "/sluiced.toml",
                             "--workers", "2", "--kafka",
                             "127.0.0.1:" + std::to_string(first ? 0 : k.port)});
    const std::string log = k.dir + "/sluiced" + std::to_string(k.starts) + ".log";
    k.proc = std::make_unique<daemon_process>(args, log, k.wrapper);
    ASSERT_TRUE(k.proc->wait_up(60)) << "sluiced did not start; see " << log;
    json s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    ASSERT_TRUE(s["kafka"].is_object()) << s.dump();
    const uint16_t port = s["kafka"]["ports"][0].get<uint16_t>();
    ASSERT_NE(port, 0);
    if (!first) {
        ASSERT_EQ(port, k.port);
    }
    k.port = port;
}

void init(kafka_daemon& k, const std::string& tag, const std::string& kafka_extra = "") {
    k.dir = make_temp_dir("kafka-hostile-" + tag);
    k.prefix = "sluice-khostile-" + tag + "-" + std::to_string(getpid());
    k.kafka_extra = kafka_extra;
    write_config(k.dir, kafka_extra);
    start(k);
}

void finish(kafka_daemon& k) {
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

std::string log_path(const kafka_daemon& k) {
    return k.dir + "/sluiced" + std::to_string(k.starts) + ".log";
}

// RecordBatch v2 and Produce v3 frames built by hand, shared by the raw-frame scripts.
const char* frames_py = R"(import socket, struct, zlib
_T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    _T.append(c)
def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc = _T[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff
assert crc32c(b'123456789') == 0xE3069283
def uvar(n):
    out = b''
    while True:
        b, n = n & 0x7f, n >> 7
        if n == 0:
            return out + bytes([b])
        out += bytes([b | 0x80])
def var(n):
    return uvar((n << 1) ^ (n >> 63))
def record(value, delta):
    body = b'\x00' + var(0) + var(delta) + var(-1) + var(len(value)) + value + var(0)
    return var(len(body)) + body
def records(values):
    return b''.join(record(v, i) for i, v in enumerate(values))
# codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd; payload: the (compressed) record bytes.
def batch_raw(payload, count, codec=0):
    ts = 1740756120000
    after = struct.pack('>hiqqqhii', codec, count - 1, ts, ts, -1, -1, -1, count) + payload
    rest = struct.pack('>ibI', 0, 2, crc32c(after)) + after
    return struct.pack('>qi', 0, len(rest)) + rest
def batch(values):
    return batch_raw(records(values), len(values))
def legacy(values, magic):
    out = b''
    for i, v in enumerate(values):
        body = struct.pack('>bb', magic, 0)
        if magic == 1:
            body += struct.pack('>q', 1740756120000)
        body += struct.pack('>i', -1) + struct.pack('>i', len(v)) + v
        msg = struct.pack('>I', zlib.crc32(body)) + body
        out += struct.pack('>qi', i, len(msg)) + msg
    return out
def s16(t):
    return struct.pack('>h', len(t)) + t
def produce(corr, topics, acks=1, version=3):
    body = struct.pack('>hhi', -1, acks, 30000) + struct.pack('>i', len(topics))
    for name, parts in topics:
        body += s16(name) + struct.pack('>i', len(parts))
        for index, rs in parts:
            body += struct.pack('>ii', index, len(rs)) + rs
    hdr = struct.pack('>hhih', 0, version, corr, 4) + b'test'
    return struct.pack('>i', len(hdr) + len(body)) + hdr + body
def recvn(s, n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        assert c, 'closed early'
        b += c
    return b
def frame(s):
    return recvn(s, struct.unpack('>i', recvn(s, 4))[0])
# A Produce v3-v5 answer: {(topic, partition): (error, base_offset)}.
def answer(s, corr, version=3):
    f = frame(s)
    o = 0
    c, nt = struct.unpack('>ii', f[o:o + 8]); o += 8
    assert c == corr, (c, corr)
    got = {}
    for _ in range(nt):
        n = struct.unpack('>h', f[o:o + 2])[0]; name = f[o + 2:o + 2 + n].decode(); o += 2 + n
        np_ = struct.unpack('>i', f[o:o + 4])[0]; o += 4
        for _ in range(np_):
            index, err, base, _ = struct.unpack('>ihqq', f[o:o + 22]); o += 22
            o += 8 if version >= 5 else 0  # log_start_offset
            got[(name, index)] = (err, base)
    return got
def connect(port):
    s = socket.create_connection(('127.0.0.1', port)); s.settimeout(60); return s
def event(eid, page='/h'):
    return ('{"event_id": "%s", "user_id": "1", "event_type": "page_view", '
            '"timestamp": "2025-02-28T15:22:31Z", "page": "%s"}' % (eid, page)).encode()
)";

std::string write_frames_py(const std::string& dir) { return write_file(dir + "/kframes.py", frames_py); }

int run_python(const kafka_daemon& k, const std::string& name, const std::string& script,
               const std::string& args, int timeout_s = 120) {
    write_frames_py(k.dir);
    const std::string path = write_file(k.dir + "/" + name + ".py", script);
    const std::string cmd = "cd " + k.dir + " && timeout " + std::to_string(timeout_s) + " " +
                            python + " " + path + " " + args + " > " + k.dir + "/" + name +
                            ".log 2>&1";
    return run_command(cmd);
}

// /proc/PID/status field in kB (VmRSS, VmHWM).
uint64_t proc_kb(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0) return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    return 0;
}

size_t count_lines(const std::string& path) {
    std::ifstream in(path);
    size_t n = 0;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) ++n;
    return n;
}

} // namespace

// ---------------------------------------------------------------------------------------
// 1. An idempotent producer (confluent-kafka, acks=all) across kill -9.

namespace {

// Sends n distinct events (event_id c<i>) as fast as sluiced takes them, paced by the
// producer's own queue, and appends the index of every acknowledged one to acked.txt as
// its delivery report arrives; then flushes. librdkafka retries across disconnects.
const char* crash_producer_py = R"(import sys, time
from confluent_kafka import Producer
port, n, acked_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
acked = open(acked_path, 'a', buffering=1)
errors = {}
def value(i):
    return ('{"event_id": "c%d", "user_id": "%d", "event_type": "page_view", '
            '"timestamp": %d, "page": "/c%d"}' % (i, i % 97, 1740756120000 + i, i % 13)).encode()
def report(i):
    def delivered(err, msg):
        if err is None:
            acked.write('%d\n' % i)
        else:
            errors[str(err)] = errors.get(str(err), 0) + 1
    return delivered
p = Producer({'bootstrap.servers': '127.0.0.1:' + port, 'acks': 'all',
              'enable.idempotence': True, 'linger.ms': 5, 'message.timeout.ms': 240000,
              'queue.buffering.max.messages': 2000, 'reconnect.backoff.ms': 20,
              'reconnect.backoff.max.ms': 500})
i = 0
while i < n:
    try:
        p.produce('events-topic', value=value(i), callback=report(i))
        i += 1
        if i % 50 == 0:
            p.poll(0.002)
    except BufferError:
        p.poll(0.05)
left = p.flush(240)
print('left', left, 'errors', errors)
assert left == 0, 'undelivered messages'
)";

} // namespace

TEST(KafkaHostile, IdempotentProducerAcrossKill9StoresEveryAckedEventOnce) {
    ASSERT_EQ(run_command(std::string(python) + " -c 'import confluent_kafka' 2>/dev/null"), 0)
        << "confluent-kafka is missing: apt-get install python3-confluent-kafka (scripts/bootstrap)";
    kafka_daemon k;
    init(k, "crash");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const uint32_t n = 20000;
    const int kills = 3;
    const std::string acked = k.dir + "/acked.txt";
    write_file(acked, "");
    const std::string script = write_file(k.dir + "/crash_producer.py", crash_producer_py);
    child_process producer({"/usr/bin/timeout", "400", python, script, std::to_string(k.port),
                            std::to_string(n), acked},
                           k.dir + "/crash_producer.log");
    // Kill while it sends: each time a further share of the events has been acknowledged.
    for (int kill = 1; kill <= kills; ++kill) {
        const size_t want = n * size_t(kill) / (kills + 1);
        const auto deadline = clock_type::now() + std::chrono::seconds(180);
        while (count_lines(acked) < want && clock_type::now() < deadline && producer.running())
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ASSERT_GE(count_lines(acked), want)
            << "the producer stalled; see " << k.dir << "/crash_producer.log and " << log_path(k);
        EXPECT_LT(count_lines(acked), n) << "the producer was done before kill " << kill;
        k.proc->kill9();
        start(k);
        ASSERT_FALSE(::testing::Test::HasFailure());
    }
    ASSERT_EQ(producer.wait(300), 0) << "see " << k.dir << "/crash_producer.log";
    json s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    // The batches were idempotent ones (producer id >= 0): the sequence checks saw them.
    EXPECT_GE(s["kafka"]["producer_states"].get<uint64_t>(), 1u) << s["kafka"].dump();
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);

    // Every acknowledged event is stored exactly once; nothing is stored twice; nothing
    // that was not sent is stored.
    std::map<std::string, uint32_t> sent; // hash of the value -> index
    auto value = [](uint32_t i) {
        return "{\"event_id\": \"c" + std::to_string(i) + "\", \"user_id\": \"" +
               std::to_string(i % 97) + "\", \"event_type\": \"page_view\", \"timestamp\": " +
               std::to_string(1740756120000ull + i) + ", \"page\": \"/c" +
               std::to_string(i % 13) + "\"}";
    };
    for (uint32_t i = 0; i < n; ++i) sent[hex64(value(i))] = i;
    std::map<std::string, int> stored;
    for (const auto& row : read_store(k.dir + "/data", query_table).events) {
        const auto sp = row.find(' ');
        ++stored[row.substr(0, sp)];
        EXPECT_EQ(row.substr(sp + 1), "0") << "a late event: " << row;
    }
    size_t twice = 0, unknown = 0;
    for (const auto& [h, c] : stored) {
        if (c > 1) ++twice;
        if (!sent.count(h)) ++unknown;
    }
    EXPECT_EQ(twice, 0u) << "events stored more than once";
    EXPECT_EQ(unknown, 0u) << "stored events that were never sent";
    std::set<uint32_t> acks;
    {
        std::ifstream in(acked);
        std::string line;
        while (std::getline(in, line))
            if (!line.empty()) acks.insert(uint32_t(std::stoul(line)));
    }
    EXPECT_EQ(acks.size(), n) << "librdkafka gave up on some events; see " << k.dir
                              << "/crash_producer.log";
    size_t lost = 0;
    for (uint32_t i : acks)
        if (!stored.count(hex64(value(i)))) ++lost;
    EXPECT_EQ(lost, 0u) << "acknowledged (acks=all) events missing from the store";
    EXPECT_EQ(stored.size(), acks.size());
    finish(k);
}

// ---------------------------------------------------------------------------------------
// 2. Compression bombs through the listener.

// A gzip bomb (17 MiB of zeros in ~17 KB), a zstd bomb (a frame of RLE blocks, 18 MiB from
// under a kilobyte, built by hand) and a snappy block that declares 20 MiB, each beside a
// good batch of another topic in the same request, ten times each on one connection: each
// bomb's partition is answered MESSAGE_TOO_LARGE (10) and stores nothing, the good batch
// beside it is stored, and the same connection then produces normally.
TEST(KafkaHostile, CompressionBombsAreAnsweredPerPartitionAndBounded) {
    kafka_daemon k;
    init(k, "bomb");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const uint64_t hwm_before = proc_kb(k.proc->pid(), "VmHWM");
    ASSERT_GT(hwm_before, 0u);
    const int rounds = 10;
    const std::string script = R"(import gzip, struct, sys
from kframes import *
port, rounds = int(sys.argv[1]), int(sys.argv[2])
cap = 16 << 20
zeros = b'\0' * (cap + (1 << 20))
bombs = {}
bombs['gzip'] = batch_raw(gzip.compress(zeros, 9), 1000, codec=1)
# zstd frame: magic, descriptor 0 (window descriptor, no content size), window 1 MiB, then
# RLE blocks of 128 KiB: (size << 3) | (1 << 1) | last, one byte each.
blocks = (cap + (2 << 20)) // (128 << 10)
z = struct.pack('<I', 0xFD2FB528) + bytes([0x00, 0x50])
for i in range(blocks):
    z += struct.pack('<I', ((128 << 10) << 3) | (1 << 1) | (1 if i == blocks - 1 else 0))[:3] + b'\x00'
assert len(z) < 1024
bombs['zstd'] = batch_raw(z, 1000, codec=4)
# snappy raw block (librdkafka's form): a preamble declaring 20 MiB.
bombs['snappy'] = batch_raw(uvar(20 << 20) + b'\x00\x00', 1000, codec=2)
s = connect(port)
corr = 0
for r in range(rounds):
    for name, b in sorted(bombs.items()):
        corr += 1
        good = batch([event('g-%s-%d' % (name, r))])
        s.sendall(produce(corr, [(b'events-topic', [(0, b)]), (b'other-topic', [(0, good)])]))
        got = answer(s, corr)
        assert got[('events-topic', 0)] == (10, -1), (name, got)
        assert got[('other-topic', 0)][0] == 0, (name, got)
corr += 1
s.sendall(produce(corr, [(b'events-topic', [(0, batch([event('after')]))])]))
got = answer(s, corr)
assert got[('events-topic', 0)][0] == 0, got
print('ok')
)";
    ASSERT_EQ(run_python(k, "bombs", script, std::to_string(k.port) + " " + std::to_string(rounds)), 0)
        << "see " << k.dir << "/bombs.log";
    const uint64_t good = 3 * rounds + 1;
    json s = k.proc->wait_stats([&](const json& s) { return total(s, "events_accepted") >= good; }, 60);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_accepted"), good);
    EXPECT_EQ(total(s, "dead_letters"), 0u);
    const json& kf = s["kafka"];
    EXPECT_EQ(kf["errors_by_code"], json({{"10", 3 * rounds}})) << kf.dump();
    EXPECT_EQ(kf["records"], good) << kf.dump();
    EXPECT_EQ(kf["bad_requests"], 0) << kf.dump();
    EXPECT_EQ(kf["connections_open"], 0) << kf.dump();
    for (const auto& [why, n] : kf["connections_closed"].items())
        EXPECT_EQ(n, why == "peer_closed" ? 1 : 0) << why << ": " << kf.dump();
    // Memory: the decompression buffer is one preallocated 16 MiB; 30 bombs of ~17 MiB each
    // (over 500 MiB decompressed) must not add up.
    const uint64_t hwm_after = proc_kb(k.proc->pid(), "VmHWM");
    EXPECT_LT(hwm_after, hwm_before + 64 * 1024) << "VmHWM " << hwm_before << " kB -> " << hwm_after << " kB";
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);
    EXPECT_EQ(read_store(k.dir + "/data", query_table).events.size(), good);
    finish(k);
}

// ---------------------------------------------------------------------------------------
// 5. Legacy magic 0/1 message sets in Produce v3+.

// A broker answers Produce v3+ whose record set is not a RecordBatch v2 with INVALID_RECORD
// (87) for that partition (ProduceRequest.validateRecords: "Produce requests with version N
// are only allowed to contain record batches with magic version 2"); sluiced does the same,
// stores nothing of it, counts it, and goes on serving the connection.
TEST(KafkaHostile, LegacyMagicMessageSetsAreInvalidRecord) {
    kafka_daemon k;
    init(k, "legacy");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string script = R"(import sys
from kframes import *
port = int(sys.argv[1])
s = connect(port)
corr = 0
for version in (3, 4, 5):
    for magic in (0, 1):
        corr += 1
        old = legacy([event('legacy-%d-%d' % (version, magic))], magic)
        s.sendall(produce(corr, [(b'events-topic', [(0, old)]),
                                 (b'other-topic', [(0, batch([event('v2-%d-%d' % (version, magic))]))])],
                          version=version))
        got = answer(s, corr, version)
        assert got[('events-topic', 0)] == (87, -1), (version, magic, got)
        assert got[('other-topic', 0)][0] == 0, (version, magic, got)
print('ok')
)";
    ASSERT_EQ(run_python(k, "legacy", script, std::to_string(k.port)), 0)
        << "see " << k.dir << "/legacy.log";
    json s = k.proc->wait_stats([](const json& s) { return total(s, "events_accepted") >= 6; }, 60);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_received"), 6u);
    EXPECT_EQ(total(s, "events_accepted"), 6u);
    const json& kf = s["kafka"];
    EXPECT_EQ(kf["errors_by_code"], json({{"87", 6}})) << kf.dump();
    EXPECT_EQ(kf["bad_requests"], 0) << kf.dump();
    EXPECT_EQ(kf["records"], 6);
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);
    finish(k);
}
