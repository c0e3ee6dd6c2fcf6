#include "tests/integration/kafka_harness.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace sluice::testing::kafka {

const std::vector<std::string> hand_set = {
    R"({"event_id": "k1", "user_id": "12345", "event_type": "page_view", "timestamp": "2025-02-28T15:22:31Z", "page": "/products/1234"})",
    R"({"event_id": "k1", "user_id": "12345", "event_type": "page_view", "timestamp": "2025-02-28T15:22:31Z", "page": "/products/1234"})",
    R"({"event_id": "k3", "user_id": "7", "event_type": "page_view", "timestamp": "2025-02-28T15:40:00Z", "page": "/p2"})",
    // Its window [15:10, 15:11) closed when the watermark reached 15:40 - 10 min: late.
    R"({"event_id": "k4", "user_id": "8", "event_type": "click", "timestamp": "2025-02-28T15:10:00Z", "page": "/p1"})",
    R"("not an event")",
    R"({"event_id": "k6", "user_id": "9", "page": "/p3"})",
};

std::string hex64(const std::string& s) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits(s.data(), s.size())));
    return buf;
}

hand_outcome expected_store() {
    hand_outcome w;
    w.events = {hex64(hand_set[0]) + " 0", hex64(hand_set[2]) + " 0", hex64(hand_set[3]) + " 1"};
    w.dead_letters = {"missing_timestamp " + hex64(hand_set[5]), "parse_error " + hex64(hand_set[4])};
    std::sort(w.events.begin(), w.events.end());
    std::sort(w.dead_letters.begin(), w.dead_letters.end());
    w.windows_csv = {"1740756120000,1740756180000,/products/1234,1",
                     "1740757200000,1740757260000,/p2,1"};
    return w;
}

std::string write_config(const std::string& dir, const std::string& kafka_extra,
                         uint32_t flush_interval_ms) {
    std::string path = dir + "/sluiced.toml";
    std::ofstream(path) << "[input]\nslots = 8192\n[processing]\ndedup_memory_mb = 32\n"
                        << "[storage]\nflush_interval_ms = " << flush_interval_ms << "\n"
                        << "[kafka]\n" << kafka_extra
                        << "[[kafka.topic]]\nname = \"events-topic\"\npartitions = 1\n";
    return path;
}

void launch(kafka_daemon& k, const std::string& config, uint32_t workers, const std::string& log,
            uint32_t lcores, const std::vector<std::string>& options,
            const std::vector<std::string>& eal_extra) {
    std::vector<std::string> args = eal_args(k.prefix, lcores);
    args.insert(args.end(), eal_extra.begin(), eal_extra.end());
    args.insert(args.end(), {"--", "--data-dir", k.dir + "/data", "--control-socket",
                             k.dir + "/ctl.sock", "--config", config, "--workers",
                             std::to_string(workers), "--kafka", "127.0.0.1:0"});
    args.insert(args.end(), options.begin(), options.end());
    k.proc = std::make_unique<daemon_process>(args, k.dir + "/" + log);
    ASSERT_TRUE(k.proc->wait_up(60)) << "sluiced did not start; see " << k.dir << "/" << log;
    json s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    ASSERT_TRUE(s["kafka"].is_object()) << s.dump();
    k.port = s["kafka"]["ports"][0].get<uint16_t>();
}

void start(kafka_daemon& k, const std::string& tag, std::vector<std::string> options,
           uint32_t lcores, const std::string& kafka_extra) {
    k.dir = make_temp_dir("kafka-" + tag);
    k.prefix = "sluice-kafka-" + tag + "-" + std::to_string(getpid());
    launch(k, write_config(k.dir, kafka_extra), 2, "sluiced.log", lcores, options);
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_NE(k.port, 0);
    EXPECT_EQ(k.proc->request({{"cmd", "stats"}})["kafka"]["advertised"], broker(k));
}

std::string broker(const kafka_daemon& k) {
    return "127.0.0.1:" + std::to_string(k.port);
}

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
}

::testing::AssertionResult run_client(int seconds, const std::string& command,
                                      const std::string& out) {
    const std::string cmd = "timeout " + std::to_string(seconds) + " " + command + " > " + out +
                            " 2> " + out + ".err";
    if (run_command(cmd) == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << cmd << "; " << read_text(out + ".err");
}

void kcat_produce(const kafka_daemon& k, const std::vector<std::string>& values,
                  const std::string& tag) {
    std::string text;
    for (const auto& v : values) text += v + "\n";
    const std::string file = write_file(k.dir + "/" + tag + ".ndjson", text);
    ASSERT_TRUE(run_client(120, "kcat -P -b " + broker(k) + " -t events-topic -X acks=all < " + file,
                           k.dir + "/" + tag + ".kcat.log"));
}

std::string write_values(const std::string& dir) {
    std::string path = dir + "/values.ndjson";
    std::ofstream out(path);
    for (const auto& v : hand_set) out << v << "\n";
    return path;
}

std::string write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

const char* const frames_py = R"(import socket, struct, zlib
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
# pid, epoch, seq: the idempotent producer's fields (-1: none); corrupt: a CRC off by one bit.
def batch_raw(payload, count, codec=0, pid=-1, epoch=-1, seq=-1, corrupt=False):
    ts = 1740756120000
    after = struct.pack('>hiqqqhii', codec, count - 1, ts, ts, pid, epoch, seq, count) + payload
    crc = crc32c(after) ^ (0x1 if corrupt else 0)
    rest = struct.pack('>ibI', 0, 2, crc) + after
    return struct.pack('>qi', 0, len(rest)) + rest
def batch(values, pid=-1, epoch=-1, seq=-1, corrupt=False):
    return batch_raw(records(values), len(values), 0, pid, epoch, seq, corrupt)
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
# lie: added to each record set's length, to run it past the frame.
def produce(corr, topics, acks=1, version=3, lie=0):
    body = struct.pack('>hhi', -1, acks, 30000) + struct.pack('>i', len(topics))
    for name, parts in topics:
        body += s16(name) + struct.pack('>i', len(parts))
        for index, rs in parts:
            body += struct.pack('>ii', index, len(rs) + lie) + rs
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
# True once the broker has closed the connection.
def closed(s):
    try:
        return s.recv(1) == b''
    except ConnectionResetError:
        return True
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

std::string write_frames_py(const std::string& dir) {
    return write_file(dir + "/kframes.py", frames_py);
}

uint64_t total(const json& s, const char* k) { return s["totals"][k].get<uint64_t>(); }

uint64_t durable_rows(const json& s, const std::string& table) {
    for (const auto& t : s["storage"]["tables"])
        if (t["table"] == table) return t["rows_durable"].get<uint64_t>();
    return 0;
}

json wait_done(const kafka_daemon& k, uint64_t values) {
    return k.proc->wait_stats(
        [&](const json& s) {
            return total(s, "events_accepted") + total(s, "duplicates") +
                       total(s, "dead_letters") >= values;
        },
        60);
}

void expect_hand_counts(const json& s, bool clean, bool probed) {
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    EXPECT_EQ(total(s, "events_received"), 6u);
    EXPECT_EQ(total(s, "events_accepted"), 3u);
    EXPECT_EQ(total(s, "duplicates"), 1u);
    EXPECT_EQ(total(s, "late_events"), 1u);
    EXPECT_EQ(total(s, "dead_letters"), 2u);
    EXPECT_EQ(s["totals"]["dead_letters_by_reason"]["parse_error"], 1);
    EXPECT_EQ(s["totals"]["dead_letters_by_reason"]["missing_timestamp"], 1);
    const json& kf = s["kafka"];
    EXPECT_EQ(kf["records"], 6);
    EXPECT_GE(kf["requests_by_api"].value("produce", 0), 1);
    EXPECT_GE(kf["requests_by_api"].value("metadata", 0), 1);
    if (probed)
        EXPECT_GE(kf["requests_by_api"].value("api_versions", 0), 1);
    else
        EXPECT_EQ(kf["requests_by_api"].value("api_versions", 0), 0);
    if (clean) {
        EXPECT_EQ(kf["errors_by_code"], json::object());
        EXPECT_EQ(kf["bad_requests"], 0);
        EXPECT_EQ(kf["unknown_api"], 0);
    }
    EXPECT_GE(kf["connections_total"].get<uint64_t>(), 1u);
}

void stop_and_check_store(kafka_daemon& k, bool clean, bool probed) {
    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    json fin = read_final_stats(k.dir + "/sluiced.log");
    ASSERT_TRUE(fin.is_object()) << "no final stats in " << k.dir << "/sluiced.log";
    expect_hand_counts(fin, clean, probed);
    const hand_outcome want = expected_store();
    stored_outcome got = read_store(k.dir + "/data", query_table);
    EXPECT_EQ(got.events, want.events);
    EXPECT_EQ(got.dead_letters, want.dead_letters);
    EXPECT_EQ(got.windows_csv, want.windows_csv);
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

} // namespace sluice::testing::kafka
