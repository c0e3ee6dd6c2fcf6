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

#include <array>
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

#include "base/tsan.h"
#include "tests/integration/daemon_harness.h"
#include "tests/integration/kafka_harness.h"

using namespace sluice::testing;

namespace {

using kafka::hex64;
using kafka::python;
using kafka::query_table;
using kafka::read_text;
using kafka::total;
using kafka::write_file;
using kafka::write_frames_py;
using clock_type = std::chrono::steady_clock;

struct kafka_daemon {
    std::string dir, prefix;
    std::unique_ptr<daemon_process> proc;
    uint16_t port = 0;
    std::string kafka_extra;
    std::vector<std::string> wrapper;
    int starts = 0;
};

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
    kafka::write_config(k.dir, kafka_extra, 100);
    start(k);
}

void finish(kafka_daemon& k) {
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

std::string log_path(const kafka_daemon& k) {
    return k.dir + "/sluiced" + std::to_string(k.starts) + ".log";
}

int run_python(const kafka_daemon& k, const std::string& name, const std::string& script,
               const std::string& args, int timeout_s = 120) {
    write_frames_py(k.dir);
    const std::string path = write_file(k.dir + "/" + name + ".py", script);
    const std::string cmd = "cd " + k.dir + " && timeout " + std::to_string(timeout_s) + " " +
                            python + " " + path + " " + args + " > " + k.dir + "/" + name +
                            ".log 2>&1";
    return run_command(cmd);
}

// The memory bounds below are for sluiced's own allocations. The sluiced under test comes
// from this binary's build (meson's SLUICED): in a ThreadSanitizer build (base/tsan.h)
// every byte it touches also touches 2 bytes of TSan's shadow and every heap byte half a
// byte of TSan's allocation metadata (gcc 12's runtime, v3), all counted in VmRSS and
// VmHWM: the same growth reads ~3.5x larger (the bounds, set for a normal build, were
// exceeded by 6% and 19% under TSan: docs/RELIABILITY.md). Scaled by 4 there, each bound
// still stops a daemon that buffers what it should not (the 30 bombs decompressed whole:
// over 500 MiB; a frame buffer per idle connection); other builds use the bound as set.
#ifdef SLUICE_TSAN
constexpr uint64_t memory_factor = 4;
#else
constexpr uint64_t memory_factor = 1;
#endif

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
// bomb's partition is answered MESSAGE_TOO_LARGE (10) and stores nothing (zstd in Produce v7,
// the first version that allows it; the others in v3), the good batch
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
        v = 7 if name == 'zstd' else 3  # zstd needs Produce v7 (else 76)
        s.sendall(produce(corr, [(b'events-topic', [(0, b)]), (b'other-topic', [(0, good)])],
                          version=v))
        got = answer(s, corr, v)
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
    EXPECT_LT(hwm_after, hwm_before + 64 * 1024 * memory_factor)
        << "VmHWM " << hwm_before << " kB -> " << hwm_after << " kB";
    std::printf("VmHWM %llu kB -> %llu kB after %d rounds of bombs (bound +%llu kB)\n",
                static_cast<unsigned long long>(hwm_before), static_cast<unsigned long long>(hwm_after),
                rounds, static_cast<unsigned long long>(64 * 1024 * memory_factor));
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

// zstd arrived with Produce v7 (KIP-110): a broker answers a zstd batch in Produce v3-v6
// with UNSUPPORTED_COMPRESSION_TYPE (76) for that partition, stores nothing of it, and
// takes the same batch in v7. The zstd frame is built by hand: a single-segment frame with a
// one-byte content size and one raw (stored) block.
TEST(KafkaHostile, ZstdBeforeProduceV7IsUnsupportedCompressionType) {
    kafka_daemon k;
    init(k, "zstdv");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string script = R"(import struct, sys
from kframes import *
port = int(sys.argv[1])
def zstd_raw(data):
    assert len(data) < 256
    return (struct.pack('<I', 0xFD2FB528) + bytes([0x20, len(data)]) +
            struct.pack('<I', (len(data) << 3) | 1)[:3] + data)
def zbatch(eid):
    return batch_raw(zstd_raw(records([event(eid)])), 1, codec=4)
s = connect(port)
corr = 0
for version in (3, 4, 5, 6, 7):
    corr += 1
    s.sendall(produce(corr, [(b'events-topic', [(0, zbatch('z-%d' % version))]),
                             (b'other-topic', [(0, batch([event('plain-%d' % version)]))])],
                      version=version))
    got = answer(s, corr, version)
    want = 0 if version >= 7 else 76
    assert got[('events-topic', 0)][0] == want, (version, got)
    if want:
        assert got[('events-topic', 0)][1] == -1, (version, got)
    assert got[('other-topic', 0)][0] == 0, (version, got)
print('ok')
)";
    ASSERT_EQ(run_python(k, "zstdv", script, std::to_string(k.port)), 0)
        << "see " << k.dir << "/zstdv.log";
    json s = k.proc->wait_stats([](const json& s) { return total(s, "events_accepted") >= 6; }, 60);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_accepted"), 6u);
    const json& kf = s["kafka"];
    EXPECT_EQ(kf["errors_by_code"], json({{"76", 4}})) << kf.dump();
    EXPECT_EQ(kf["batches_by_compression"]["zstd"], 1) << kf.dump();
    EXPECT_EQ(kf["bad_requests"], 0) << kf.dump();
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);
    auto stored = read_store(k.dir + "/data", query_table).events;
    EXPECT_EQ(stored.size(), 6u);
    finish(k);
}

// ---------------------------------------------------------------------------------------
// Raw Produce frames from C++ (the clients below need more control than a script offers).

namespace {

uint32_t crc32c(const std::string& s, size_t from) {
    static const auto table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0u);
            t[i] = c;
        }
        return t;
    }();
    uint32_t crc = 0xffffffffu;
    for (size_t i = from; i < s.size(); ++i) crc = table[(crc ^ uint8_t(s[i])) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

struct wire {
    std::string b;
    wire& be(uint64_t v, int bytes) {
        for (int i = bytes - 1; i >= 0; --i) b.push_back(char(v >> (8 * i)));
        return *this;
    }
    wire& i8(int8_t v) { return be(uint8_t(v), 1); }
    wire& i16(int16_t v) { return be(uint16_t(v), 2); }
    wire& i32(int32_t v) { return be(uint32_t(v), 4); }
    wire& i64(int64_t v) { return be(uint64_t(v), 8); }
    wire& var(int64_t v) {
        uint64_t z = (uint64_t(v) << 1) ^ uint64_t(v >> 63);
        while (z >= 0x80) {
            b.push_back(char(z | 0x80));
            z >>= 7;
        }
        b.push_back(char(z));
        return *this;
    }
    wire& raw(const std::string& s) {
        b += s;
        return *this;
    }
    wire& str(const std::string& s) { return i16(int16_t(s.size())).raw(s); }
};

std::string record_batch(const std::vector<std::string>& values) {
    std::string recs;
    for (size_t i = 0; i < values.size(); ++i) {
        wire body;
        body.i8(0).var(0).var(int64_t(i)).var(-1).var(int64_t(values[i].size())).raw(values[i]).var(0);
        recs += wire().var(int64_t(body.b.size())).raw(body.b).b;
    }
    const int64_t ts = 1740756120000;
    wire after;
    after.i16(0).i32(int32_t(values.size()) - 1).i64(ts).i64(ts).i64(-1).i16(-1).i32(-1)
        .i32(int32_t(values.size())).raw(recs);
    wire rest;
    rest.i32(0).i8(2).be(crc32c(after.b, 0), 4).raw(after.b);
    return wire().i64(0).i32(int32_t(rest.b.size())).raw(rest.b).b;
}

// Produce v3 to events-topic partition 0.
std::string produce_request(int32_t corr, int16_t acks, const std::vector<std::string>& values) {
    const std::string rs = record_batch(values);
    wire body;
    body.i16(-1).i16(acks).i32(30000).i32(1).str("events-topic").i32(1).i32(0)
        .i32(int32_t(rs.size())).raw(rs);
    wire hdr;
    hdr.i16(0).i16(3).i32(corr).str("test");
    return wire().i32(int32_t(hdr.b.size() + body.b.size())).raw(hdr.b).raw(body.b).b;
}

std::string hand_event(const std::string& id) {
    return R"({"event_id": ")" + id +
           R"(", "user_id": "1", "event_type": "page_view", "timestamp": "2025-02-28T15:22:31Z", "page": "/n"})";
}

} // namespace

// ---------------------------------------------------------------------------------------
// 4. A client that pipelines Produce requests (acks=1) and never reads its answers.

// sluiced answers until the answers no longer fit in the kernel's buffers, then holds at
// most inflight_max unsent answers and stops reading the connection (connections_paused);
// what it has buffered stays under request_bytes_max plus a little, the client's sends
// block, and another producer is served meanwhile. When the client finally reads, every
// request is answered in order with no error and every record is stored exactly once.
TEST(KafkaHostile, ClientThatNeverReadsIsNotReadEither) {
    ASSERT_EQ(run_command("command -v kcat > /dev/null"), 0)
        << "kcat is missing: apt-get install kcat (scripts/bootstrap)";
    kafka_daemon k;
    const uint32_t request_bytes_max = 1u << 20;
    init(k, "noread", "request_bytes_max = " + std::to_string(request_bytes_max) + "\n");
    ASSERT_FALSE(::testing::Test::HasFailure());
    // A small receive buffer: the answers pile up on sluiced's side, not in this process.
    const int fd = connect_loopback_tcp(k.port, 4096);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    const uint32_t requests_max = 300000; // far more than the kernel's buffers hold
    std::vector<uint64_t> end_offset;     // bytes sent once request i is out, cumulative
    std::string pending;
    size_t pending_at = 0;
    uint64_t sent_bytes = 0;
    uint32_t generated = 0;
    auto value_of = [](uint32_t i) { return hand_event("nr" + std::to_string(i)); };
    auto next = [&] {
        pending = produce_request(int32_t(generated), 1, {value_of(generated)});
        pending_at = 0;
        end_offset.push_back((end_offset.empty() ? 0 : end_offset.back()) + pending.size());
        ++generated;
    };
    // Send until sluiced stops taking: the client's send blocks, and sluiced's count of
    // Produce requests stays put over three looks while it reports the connection paused.
    json stuck;
    uint64_t last_taken = UINT64_MAX;
    int same = 0;
    const auto deadline = clock_type::now() + std::chrono::seconds(240);
    while (clock_type::now() < deadline) {
        if (pending_at == pending.size()) {
            if (generated == requests_max) break;
            next();
        }
        const ssize_t n = send(fd, pending.data() + pending_at, pending.size() - pending_at,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            pending_at += size_t(n);
            sent_bytes += uint64_t(n);
            same = 0;
            continue;
        }
        ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            << std::strerror(errno) << " after " << generated << " requests; "
            << k.proc->request({{"cmd", "stats"}})["kafka"].dump();
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 300) > 0) continue;
        json s = k.proc->request({{"cmd", "stats"}});
        ASSERT_TRUE(s.value("ok", false)) << s.dump();
        const uint64_t taken = s["kafka"]["requests_by_api"].value("produce", uint64_t{0});
        same = taken == last_taken && s["kafka"]["connections_paused"].get<uint64_t>() > 0 ? same + 1 : 0;
        last_taken = taken;
        if (same == 3) {
            stuck = s;
            break;
        }
    }
    ASSERT_TRUE(stuck.is_object()) << "sluiced read " << generated
                                   << " requests without answers being read (or the deadline passed)";
    const json& kf = stuck["kafka"];
    const uint64_t taken = kf["requests_by_api"]["produce"].get<uint64_t>();
    ASSERT_GT(taken, 0u);
    ASSERT_LE(taken, generated);
    // What sluiced has received but not taken: under one request_bytes_max and the slack.
    const uint64_t buffered = kf["bytes_in"].get<uint64_t>() - end_offset[taken - 1];
    // (limits::kafka_connection_slack_bytes: the provided-buffer pool, 256 x 64 KiB.)
    EXPECT_LE(buffered, uint64_t(request_bytes_max) + 4 + (16u << 20)) << kf.dump();
    EXPECT_EQ(kf["connections_open"], 1) << kf.dump();
    EXPECT_EQ(kf["connections_closed"]["overrun"], 0) << kf.dump();
    std::printf("stuck after %u requests generated, %llu taken, %llu bytes buffered in sluiced\n",
                generated, static_cast<unsigned long long>(taken),
                static_cast<unsigned long long>(buffered));

    // Another producer is served meanwhile.
    const std::string values = write_file(k.dir + "/other.ndjson", hand_event("other1") + "\n" +
                                                                      hand_event("other2") + "\n");
    const std::string kcat = "timeout 60 kcat -P -b 127.0.0.1:" + std::to_string(k.port) +
                             " -t events-topic -X acks=all < " + values + " > " + k.dir +
                             "/kcat.log 2>&1";
    EXPECT_EQ(run_command(kcat), 0) << "see " << k.dir << "/kcat.log";

    // The client reads at last, and sends what it had started; every answer comes, in order.
    const uint32_t want = generated;
    uint32_t answered = 0;
    std::string in;
    const auto deadline2 = clock_type::now() + std::chrono::seconds(240);
    while (answered < want && clock_type::now() < deadline2) {
        if (pending_at < pending.size()) {
            const ssize_t n = send(fd, pending.data() + pending_at, pending.size() - pending_at,
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) pending_at += size_t(n);
        }
        pollfd p{fd, short(POLLIN | (pending_at < pending.size() ? POLLOUT : 0)), 0};
        if (::poll(&p, 1, 1000) <= 0) continue;
        char buf[65536];
        const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) break;
        if (n < 0) continue;
        in.append(buf, size_t(n));
        size_t at = 0;
        while (in.size() - at >= 4) {
            const auto* u = reinterpret_cast<const uint8_t*>(in.data() + at);
            const uint32_t len = uint32_t(u[0]) << 24 | uint32_t(u[1]) << 16 | uint32_t(u[2]) << 8 | u[3];
            if (in.size() - at < 4 + len) break;
            const auto* f = u + 4;
            auto be32 = [](const uint8_t* q) { return uint32_t(q[0]) << 24 | uint32_t(q[1]) << 16 | uint32_t(q[2]) << 8 | q[3]; };
            ASSERT_EQ(be32(f), answered) << "answers out of order";
            // corr, topics 1, name (2 + 12), partitions 1, index, error.
            const uint8_t* e = f + 4 + 4 + 2 + 12 + 4 + 4;
            ASSERT_EQ(int16_t(uint16_t(e[0]) << 8 | e[1]), 0) << "request " << answered;
            ++answered;
            at += 4 + len;
        }
        in.erase(0, at);
    }
    ::close(fd);
    ASSERT_EQ(answered, want) << k.proc->request({{"cmd", "stats"}})["kafka"].dump();
    json s = k.proc->wait_stats(
        [&](const json& s) { return total(s, "events_accepted") >= uint64_t(want) + 2; }, 120);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_accepted"), uint64_t(want) + 2);
    EXPECT_EQ(total(s, "duplicates"), 0u);
    EXPECT_EQ(s["kafka"]["errors_by_code"], json::object()) << s["kafka"].dump();
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);
    std::set<std::string> stored;
    size_t rows = 0;
    for (const auto& row : read_store(k.dir + "/data", query_table).events) {
        stored.insert(row.substr(0, row.find(' ')));
        ++rows;
    }
    EXPECT_EQ(rows, stored.size()) << "an event stored twice";
    EXPECT_EQ(rows, size_t(want) + 2);
    size_t missing = 0;
    for (uint32_t i = 0; i < want; ++i)
        if (!stored.count(hex64(value_of(i)))) ++missing;
    EXPECT_EQ(missing, 0u) << "answered (acks=1) records missing from the store";
    finish(k);
}

// ---------------------------------------------------------------------------------------
// 3. 10,000 idle connections, and the file-descriptor limit.

namespace {

// Raises this process's soft RLIMIT_NOFILE (sluiced, its child, inherits it), and the
// hard one too where the process may (root, as in CI); false when it cannot reach `want`.
bool raise_fd_limit(rlim_t want) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
    if (rl.rlim_cur >= want) return true;
    rl.rlim_cur = want;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) rl.rlim_max = want;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

// True when the peer closed `fd` (EOF or reset) within timeout_ms.
bool closed_by_peer(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char c;
    const ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

const std::string hand_values = hand_event("idle1") + "\n" + hand_event("idle2") + "\n";

} // namespace

// connections_max = 10,000 connections that never send a byte: all are accepted and held
// (cheaply: no frame buffer until bytes arrive), 50 more are refused (closed at once,
// counted), a real producer (kcat, acks=all) is served meanwhile, and idle_timeout_ms then
// closes every silent connection (counted as idle).
TEST(KafkaHostile, TenThousandIdleConnections) {
    ASSERT_EQ(run_command("command -v kcat > /dev/null"), 0)
        << "kcat is missing: apt-get install kcat (scripts/bootstrap)";
    const uint32_t idle = 10000, extra = 50;
    if (!raise_fd_limit(idle + extra + 512))
        GTEST_SKIP() << "the hard RLIMIT_NOFILE is below " << idle + extra + 512
                     << " (this test holds 10,000 connections)";
    const int idle_timeout_ms = 30000;
    kafka_daemon k;
    init(k, "idle", "connections_max = " + std::to_string(idle) +
                        "\nidle_timeout_ms = " + std::to_string(idle_timeout_ms) + "\n");
    ASSERT_FALSE(::testing::Test::HasFailure());
    const uint64_t rss_before = proc_kb(k.proc->pid(), "VmRSS");
    std::vector<int> fds;
    fds.reserve(idle);
    for (uint32_t i = 0; i < idle; ++i) {
        const int fd = connect_loopback_tcp(k.port);
        ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
        fds.push_back(fd);
    }
    const auto opened = clock_type::now();
    json s = k.proc->wait_stats(
        [&](const json& s) { return s["kafka"]["connections_open"].get<uint64_t>() == idle; }, 120);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    ASSERT_EQ(s["kafka"]["connections_open"], idle) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"]["connections_max"], idle) << s["kafka"].dump();
    // Idle connections cost no frame buffer: well under 4 KiB each.
    const uint64_t rss_held = proc_kb(k.proc->pid(), "VmRSS");
    EXPECT_LT(rss_held, rss_before + idle * 4 * memory_factor)
        << "VmRSS " << rss_before << " kB -> " << rss_held << " kB";
    std::printf("VmRSS %llu kB -> %llu kB with %u idle connections\n",
                static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss_held), idle);
    // Beyond connections_max: accepted and closed at once.
    for (uint32_t i = 0; i < extra; ++i) {
        const int fd = connect_loopback_tcp(k.port);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        EXPECT_TRUE(closed_by_peer(fd, 30000)) << "extra connection " << i << " was not refused";
        ::close(fd);
    }
    s = k.proc->wait_stats([&](const json& s) { return s["kafka"]["connections_refused"] == extra; }, 60);
    EXPECT_EQ(s["kafka"]["connections_refused"], extra) << s["kafka"].dump();
    // The held ones are still open, and none of them was answered or closed.
    for (int i = 0; i < 100; ++i) EXPECT_FALSE(closed_by_peer(fds[size_t(i) * (idle / 100)], 0));

    // Close one idle connection: a real producer gets its slot and is served.
    ::close(fds.back());
    fds.pop_back();
    const std::string values = write_file(k.dir + "/idle.ndjson", hand_values);
    const std::string kcat = "timeout 60 kcat -P -b 127.0.0.1:" + std::to_string(k.port) +
                             " -t events-topic -X acks=all < " + values + " > " + k.dir +
                             "/kcat.log 2>&1";
    EXPECT_EQ(run_command(kcat), 0) << "see " << k.dir << "/kcat.log";
    s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_accepted"), 2u);
    if (clock_type::now() - opened < std::chrono::milliseconds(idle_timeout_ms)) {
        EXPECT_EQ(s["kafka"]["connections_closed"]["idle"], 0) << s["kafka"].dump();
    }

    // idle_timeout_ms closes all of them.
    s = k.proc->wait_stats([&](const json& s) { return s["kafka"]["connections_open"] == 0; },
                           idle_timeout_ms / 1000 + 120);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(s["kafka"]["connections_open"], 0) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"]["connections_closed"]["idle"], idle - 1) << s["kafka"].dump();
    EXPECT_GE(clock_type::now() - opened, std::chrono::milliseconds(idle_timeout_ms))
        << "closed before idle_timeout_ms";
    size_t seen_closed = 0;
    for (int fd : fds) seen_closed += closed_by_peer(fd, 5000) ? 1 : 0;
    EXPECT_EQ(seen_closed, fds.size());
    for (int fd : fds) ::close(fd);
    EXPECT_EQ(s["kafka"]["accept_errors"], 0) << s["kafka"].dump();
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);
    finish(k);
}

// A file-descriptor limit below connections_max: sluiced raises its soft limit to the hard
// one, and where that is still too low accepts only what fits beside the store's reserve
// and the control clients (control/fd_budget.h; connections_max in stats), says so in one
// start-up line, and refuses the rest like connections beyond the limit — instead of
// failing accepts with EMFILE.
TEST(KafkaHostile, FileDescriptorLimitBelowConnectionsMax) {
    ASSERT_EQ(run_command("command -v prlimit > /dev/null"), 0) << "prlimit (util-linux) is missing";
    const uint32_t nofile = 800;
    kafka_daemon k;
    k.wrapper = {"prlimit", "--nofile=256:" + std::to_string(nofile), "--"};
    init(k, "nofile", "connections_max = 5000\n");
    ASSERT_FALSE(::testing::Test::HasFailure());
    json s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    const uint32_t fit = s["kafka"]["connections_max"].get<uint32_t>();
    // Below what the limit holds: the store's reserve and the control clients come first.
    EXPECT_GT(fit, 0u);
    EXPECT_LT(fit + s["control"]["clients_max"].get<uint32_t>(), nofile) << s.dump();
    const std::string log = read_text(log_path(k));
    EXPECT_NE(log.find("kafka.connections_max = 5000 needs "), std::string::npos) << log;
    EXPECT_NE(log.find(" file descriptors but RLIMIT_NOFILE is " + std::to_string(nofile) +
                       ": accepting at most " + std::to_string(fit) + " Kafka connections"),
              std::string::npos)
        << log;
    std::vector<int> fds;
    for (uint32_t i = 0; i < fit; ++i) {
        const int fd = connect_loopback_tcp(k.port);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        fds.push_back(fd);
    }
    s = k.proc->wait_stats([&](const json& s) { return s["kafka"]["connections_open"] == fit; }, 60);
    ASSERT_EQ(s["kafka"]["connections_open"], fit) << s["kafka"].dump();
    for (int i = 0; i < 20; ++i) {
        const int fd = connect_loopback_tcp(k.port);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        EXPECT_TRUE(closed_by_peer(fd, 30000)) << "connection beyond the fitted limit not refused";
        ::close(fd);
    }
    s = k.proc->wait_stats([&](const json& s) { return s["kafka"]["connections_refused"] == 20; }, 60);
    EXPECT_EQ(s["kafka"]["connections_refused"], 20) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"]["accept_errors"], 0) << s["kafka"].dump();
    // Still serving once a slot frees.
    for (int fd : fds) ::close(fd);
    s = k.proc->wait_stats([&](const json& s) { return s["kafka"]["connections_open"] == 0; }, 60);
    const std::string values = write_file(k.dir + "/fd.ndjson", hand_values);
    const std::string kcat = "timeout 60 kcat -P -b 127.0.0.1:" + std::to_string(k.port) +
                             " -t events-topic -X acks=all < " + values + " > " + k.dir +
                             "/kcat.log 2>&1";
    EXPECT_EQ(run_command(kcat), 0) << "see " << k.dir << "/kcat.log";
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);
    finish(k);
}

// ---------------------------------------------------------------------------------------
// A store that fails: every fdatasync of the store fails with EIO once sluiced is up
// (SLUICE_TEST_FAULT, storage/fault_injection.h), so both workers' writers fail at their
// first commit. A broker answers KAFKA_STORAGE_ERROR (56) for partitions whose log it cannot
// write: acks=all requests waiting for durability are answered 56 at once (not left to the
// client's request timeout), and later ones (acks 1, all, 0; kafka-python with retries=0
// gets the error at once) are refused with 56, storing nothing. The idempotent producer's retry after a 56 is not a duplicate: after a restart
// on the same data dir (no fault) it is stored, its re-send then is a duplicate, and every
// value is stored exactly once.

const char* const storage_error_py = R"(import sys, time
from kframes import *
port, phase = int(sys.argv[1]), sys.argv[2]
PID = 4242
idem = [event('se-i%d' % i) for i in range(6)]
plain = [event('se-p%d' % i) for i in range(4)]
late_plain = [event('se-q%d' % i) for i in range(3)]
s = connect(port)
s.settimeout(20)  # far below the test's deadline; an unanswered request fails here
def ask(corr, values, acks, **kw):
    t = time.monotonic()
    s.sendall(produce(corr, [(b'events-topic', [(0, batch(values, **kw))])], acks=acks, version=5))
    a = answer(s, corr, 5)[('events-topic', 0)]
    dt = time.monotonic() - t
    print('corr %d acks %d %s: error %d base %d in %.3f s' % (corr, acks, kw, a[0], a[1], dt), flush=True)
    return a, dt
# The idempotent producer's three batches: sequences 0-2, 3-4 and 5.
idem_batches = [(idem[0:3], 0), (idem[3:5], 3), (idem[5:6], 5)]
if phase == 'failed':
    # Three batches pipelined: their commit is the store's first fdatasync, which fails
    # while their answers wait (parked) for durability. Each is answered 56, in order.
    t = time.monotonic()
    s.sendall(b''.join(produce(1 + i, [(b'events-topic', [(0, batch(v, pid=PID, epoch=0, seq=q))])],
                               acks=-1, version=5) for i, (v, q) in enumerate(idem_batches)))
    for i in range(3):
        a = answer(s, 1 + i, 5)[('events-topic', 0)]
        dt = time.monotonic() - t
        print('corr %d acks -1 pipelined, sequence %d: error %d base %d in %.3f s'
              % (1 + i, idem_batches[i][1], a[0], a[1], dt), flush=True)
        assert a == (56, -1), a
        assert dt < 10, dt
    # The producer's retry: 56 again while the store is failed, never a duplicate (0).
    a, _ = ask(4, idem[0:3], -1, pid=PID, epoch=0, seq=0)
    assert a == (56, -1), a
    a, _ = ask(5, plain, -1)
    assert a == (56, -1), a
    a, _ = ask(6, plain, 1)
    assert a == (56, -1), a
    # acks=0 gets no answer: the next request's answer follows directly.
    s.sendall(produce(7, [(b'events-topic', [(0, batch(late_plain))])], acks=0, version=5))
    a, _ = ask(8, plain, 1)
    assert a == (56, -1), a
    # A real client: kafka-python, acks=all, no retries, gets the broker's error at once
    # (2.0.2 predates code 56 and names it UnknownError; not a timeout).
    from kafka import KafkaProducer
    from kafka.errors import KafkaError, KafkaTimeoutError, RequestTimedOutError
    p = KafkaProducer(bootstrap_servers=['127.0.0.1:%d' % port], acks='all', retries=0,
                      request_timeout_ms=30000)
    t = time.monotonic()
    try:
        p.send('events-topic', event('se-k0')).get(timeout=25)
        raise AssertionError('kafka-python had its record acknowledged')
    except (KafkaTimeoutError, RequestTimedOutError):
        raise
    except KafkaError as e:
        print('kafka-python: %r in %.3f s' % (e, time.monotonic() - t), flush=True)
    assert time.monotonic() - t < 10
    p.close()
    print('ok')
else:
    # After the restart (no fault): the retries are stored; their re-sends are duplicates.
    first = [ask(1 + i, v, -1, pid=PID, epoch=0, seq=q)[0] for i, (v, q) in enumerate(idem_batches)]
    assert all(a[0] == 0 for a in first), first
    b, _ = ask(4, idem[3:5], -1, pid=PID, epoch=0, seq=3)
    assert b == first[1], (b, first)  # a duplicate: the first answer's offset
    a, _ = ask(5, plain, -1)
    assert a[0] == 0, a
    a, _ = ask(6, late_plain, -1)
    assert a[0] == 0, a
    a, _ = ask(7, [event('se-k0')], -1)
    assert a[0] == 0, a
    print('ok')
)";

TEST(KafkaHostile, FailedStoreIsAnsweredStorageErrorAndRetriesAreStoredOnce) {
    kafka_daemon k;
    k.dir = make_temp_dir("kafka-hostile-storage");
    k.prefix = "sluice-khostile-storage-" + std::to_string(getpid());
    kafka::write_config(k.dir, "", 100);
    // How many fdatasyncs sluiced makes coming up on a fresh data dir (each new segment's
    // header and directory): a count-only run, stopped idle (an idle stop syncs nothing).
    setenv("SLUICE_TEST_FAULT", "0", 1);
    start(k);
    unsetenv("SLUICE_TEST_FAULT");
    ASSERT_FALSE(::testing::Test::HasFailure());
    ASSERT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);
    const std::string counted = read_text(log_path(k));
    const auto at = counted.rfind("fdatasync ");
    ASSERT_NE(at, std::string::npos) << "no fault injection summary in " << log_path(k);
    const uint64_t startup_syncs = std::strtoull(counted.c_str() + at + 10, nullptr, 10);
    ASSERT_GT(startup_syncs, 0u) << counted.substr(at);
    std::filesystem::remove_all(k.dir + "/data");
    // Every fdatasync after those fails: the first is the first Produce's commit.
    const std::string plan = std::to_string(startup_syncs + 1) + ":eio:persistent:fsync";
    setenv("SLUICE_TEST_FAULT", plan.c_str(), 1);
    start(k);
    unsetenv("SLUICE_TEST_FAULT");
    ASSERT_FALSE(::testing::Test::HasFailure());
    EXPECT_EQ(run_python(k, "storage_error_failed", storage_error_py, std::to_string(k.port) + " failed", 120), 0)
        << read_text(k.dir + "/storage_error_failed.log") << "see " << log_path(k);
    std::printf("%s", read_text(k.dir + "/storage_error_failed.log").c_str()); // the answer times
    json s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(s["storage"].value("state", ""), "failed") << s["storage"].dump();
    // One partition answered 56 per request that had an answer or none (acks=0): 8 raw
    // requests and kafka-python's.
    EXPECT_EQ(s["kafka"]["errors_by_code"].value("56", 0), 9) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"].value("acks_parked", 1), 0) << s["kafka"].dump();
    // The three batches answered 56 were taken back from the sequence state (their producer
    // is unknown again), and never journaled.
    EXPECT_EQ(s["kafka"].value("producer_states", 1), 0) << s["kafka"].dump();
    EXPECT_EQ(s["kafka"].value("sequences_journaled", 1), 0) << s["kafka"].dump();
    EXPECT_NE(read_text(log_path(k)).find("answered KAFKA_STORAGE_ERROR (56)"), std::string::npos)
        << "see " << log_path(k);
    // The daemon's rule for a failed store: exit status 1 when stopped.
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 1) << "see " << log_path(k);

    start(k); // the same data dir and port, no fault
    ASSERT_FALSE(::testing::Test::HasFailure());
    EXPECT_EQ(run_python(k, "storage_error_retry", storage_error_py, std::to_string(k.port) + " retry", 120), 0)
        << read_text(k.dir + "/storage_error_retry.log") << "see " << log_path(k);
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << log_path(k);

    // Every value the retries sent is stored exactly once (se-q: the values of the refused
    // acks=0 request, sent again with acks=all after the restart).
    auto value = [](const std::string& id) {
        return "{\"event_id\": \"" + id + "\", \"user_id\": \"1\", \"event_type\": \"page_view\", "
               "\"timestamp\": \"2025-02-28T15:22:31Z\", \"page\": \"/h\"}";
    };
    std::map<std::string, std::string> sent; // hash -> id
    for (int i = 0; i < 6; ++i) sent[hex64(value("se-i" + std::to_string(i)))] = "se-i" + std::to_string(i);
    for (int i = 0; i < 4; ++i) sent[hex64(value("se-p" + std::to_string(i)))] = "se-p" + std::to_string(i);
    for (int i = 0; i < 3; ++i) sent[hex64(value("se-q" + std::to_string(i)))] = "se-q" + std::to_string(i);
    sent[hex64(value("se-k0"))] = "se-k0";
    std::map<std::string, int> stored;
    for (const auto& row : read_store(k.dir + "/data", query_table).events)
        ++stored[row.substr(0, row.find(' '))];
    size_t unknown = 0;
    for (const auto& [h, c] : stored) unknown += sent.count(h) ? 0 : 1;
    EXPECT_EQ(unknown, 0u) << "stored events that were never sent";
    for (const auto& [h, id] : sent) {
        const auto it = stored.find(h);
        EXPECT_EQ(it == stored.end() ? 0 : it->second, 1) << id << " is not stored exactly once";
    }
    finish(k);
}
