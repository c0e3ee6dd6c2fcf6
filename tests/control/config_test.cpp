// sluiced's configuration (control/config.h): one struct per TOML section, defaults from
// base/limits.h only, the input mode as an enum, [storage] as the writer options every
// writer gets whole, and which keys a reload cannot apply.
#include "control/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tests/control/control_test_util.h"

namespace sluice::control {
namespace {

// load_config() with sluiced's own options (what follows EAL's `--`).
result<daemon_config> load(std::vector<std::string> args) {
    args.insert(args.begin(), "sluiced");
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    return load_config(int(args.size()), argv.data());
}

result<daemon_config> load_toml(const testing::temp_dir& dir, const std::string& text,
                                std::vector<std::string> more = {}) {
    const std::string path = dir.file("sluiced.toml");
    std::ofstream(path) << text;
    more.insert(more.begin(), {"--config", path});
    return load(more);
}

// The shipped example states every default: loading it changes nothing but what it sets
// on purpose (a metrics endpoint, the reference query spelled out). A default changed in
// base/limits.h without the example, or the other way round, fails here.
TEST(Config, TheShippedExampleStatesTheDefaults) {
    const char* src = std::getenv("SLUICE_SOURCE_ROOT");
    ASSERT_NE(src, nullptr);
    const std::string path = std::string(src) + "/docs/sluiced.toml";
    auto c = load({"--config", path});
    ASSERT_TRUE(c) << c.err().message;
    auto defaults = load({});
    ASSERT_TRUE(defaults) << defaults.err().message;
    daemon_config expected = defaults.value();
    expected.config_path = path;
    expected.metrics.listen = "127.0.0.1:9464";
    expected.queries_configured = true;
    EXPECT_EQ(c->sluice, expected.sluice);
    EXPECT_EQ(c->lcores, expected.lcores);
    EXPECT_EQ(c->control, expected.control);
    EXPECT_EQ(c->input.mode, expected.input.mode);
    EXPECT_TRUE(c->input.mode_set);
    expected.input.mode_set = true;
    EXPECT_EQ(c->input, expected.input);
    EXPECT_EQ(c->kafka, expected.kafka);
    EXPECT_EQ(c->processing, expected.processing);
    EXPECT_EQ(c->queries, expected.queries);
    EXPECT_EQ(c->storage, expected.storage);
    EXPECT_EQ(c->retention, expected.retention);
    EXPECT_EQ(c->metrics, expected.metrics);
    EXPECT_EQ(c->log, expected.log);
    EXPECT_EQ(c->testing, expected.testing);
    EXPECT_EQ(c.value(), expected);
}

TEST(Config, DefaultsComeFromLimits) {
    auto c = load({});
    ASSERT_TRUE(c) << c.err().message;
    EXPECT_EQ(c->sluice.data_dir, limits::data_dir_default);
    EXPECT_EQ(c->sluice.control_socket, limits::control_socket_default);
    EXPECT_EQ(c->input.mode, input_mode::dpdk);
    EXPECT_EQ(c->input.udp_ports, std::vector<uint16_t>{limits::udp_port_default});
    EXPECT_EQ(c->input.event_bytes_max, limits::event_bytes_default);
    EXPECT_EQ(c->processing.watermark_delay_ms, limits::watermark_delay_ms_default);
    EXPECT_EQ(c->processing.dedup_memory_mb << 20, limits::dedup_memory_bytes_default);
    EXPECT_EQ(c->storage, storage::writer_options{});
    EXPECT_EQ(c->storage.sync_bytes, limits::sync_bytes_default);
    EXPECT_EQ(c->kafka.idle_timeout_ms, limits::kafka_idle_timeout_ms_default);
    EXPECT_EQ(c->log.rate_limit.burst, limits::log_rate_limit_burst_default);
    // The reference query, with processing.watermark_delay_ms.
    ASSERT_EQ(c->queries.size(), 1u);
    EXPECT_EQ(c->queries[0], processing::reference_query());
}

TEST(Config, InputModeIsParsedOnceIntoTheEnum) {
    for (input_mode m : {input_mode::dpdk, input_mode::kernel_udp, input_mode::kafka})
        EXPECT_EQ(parse_input_mode(input_mode_name(m)), m);
    EXPECT_FALSE(parse_input_mode("udp"));

    testing::temp_dir dir;
    auto c = load_toml(dir, "[input]\nmode = \"kernel_udp\"\n");
    ASSERT_TRUE(c) << c.err().message;
    EXPECT_EQ(c->input.mode, input_mode::kernel_udp);
    EXPECT_TRUE(c->input.mode_set);

    auto bad = load_toml(dir, "[input]\nmode = \"udp\"\n");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.err().code, errc::bad_config);
    EXPECT_NE(bad.err().message.find("input.mode must be \"dpdk\", \"kernel_udp\" or \"kafka\""),
              std::string::npos)
        << bad.err().message;

    // --kafka alone is the Kafka input; beside a mode from the file it is an extra listener.
    auto k = load({"--kafka", "127.0.0.1:9092"});
    ASSERT_TRUE(k) << k.err().message;
    EXPECT_EQ(k->input.mode, input_mode::kafka);
    EXPECT_EQ(k->kafka.listen, std::vector<std::string>{"127.0.0.1:9092"});
    auto beside = load_toml(dir, "[input]\nmode = \"dpdk\"\n", {"--kafka", "127.0.0.1:9092"});
    ASSERT_TRUE(beside) << beside.err().message;
    EXPECT_EQ(beside->input.mode, input_mode::dpdk);
    auto kernel = load({"--kernel-udp", "127.0.0.2"});
    ASSERT_TRUE(kernel) << kernel.err().message;
    EXPECT_EQ(kernel->input.mode, input_mode::kernel_udp);
    EXPECT_EQ(kernel->input.kernel_bind, "127.0.0.2");
}

// [storage] is the writer options, whole: codec, group commit, segment size, O_DIRECT.
// [lcores] idle: one key for every lcore that can block (workers, merger, Kafka RX); the
// default waits, "poll" keeps the sleeping back-off, anything else is refused.
TEST(Config, LcoresIdleSelectsWaitOrPoll) {
    for (idle_mode m : {idle_mode::wait, idle_mode::poll})
        EXPECT_EQ(parse_idle_mode(idle_mode_name(m)), m);
    auto d = load({});
    ASSERT_TRUE(d) << d.err().message;
    EXPECT_EQ(d->lcores.idle, idle_mode::wait);
    testing::temp_dir dir;
    auto p = load_toml(dir, "[lcores]\nidle = \"poll\"\n");
    ASSERT_TRUE(p) << p.err().message;
    EXPECT_EQ(p->lcores.idle, idle_mode::poll);
    auto bad = load_toml(dir, "[lcores]\nidle = \"spin\"\n");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.err().message.find("lcores.idle"), std::string::npos) << bad.err().message;
    daemon_config a, b;
    b.lcores.idle = idle_mode::poll;
    EXPECT_EQ(restart_required(a, b), std::vector<std::string>{"lcores.idle"});
}

TEST(Config, StorageSectionIsTheWriterOptions) {
    testing::temp_dir dir;
    auto c = load_toml(dir, "[storage]\nflush_interval_ms = 7\nsync_bytes = 4096\n"
                            "segment_bytes_max = 2097152\ndirect_io = false\n"
                            "compression = \"lz4\"\ncompression_level = 3\n");
    ASSERT_TRUE(c) << c.err().message;
    storage::writer_options expected;
    expected.flush_interval_ms = 7;
    expected.sync_bytes = 4096;
    expected.segment_bytes_max = 2u << 20;
    expected.direct_io = false;
    expected.compression = {storage::format::codec::lz4, 3};
    EXPECT_EQ(c->storage, expected);

    auto bad = load_toml(dir, "[storage]\ncompression = \"gzip\"\n");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.err().message.find("storage.compression"), std::string::npos);
}

// An integer key takes an integer, or a float that is a whole number inside int64; any
// other float is a value of the wrong type, refused naming the key. Bug 14 (fuzz_config):
// `= 3e64` went through toml++'s float-to-int static_cast, undefined behaviour. x86
// happened to give the same answer; the ASan+UBSan build (-fsanitize=float-cast-overflow,
// which gcc's -fsanitize=undefined leaves out) and clang's fuzz_smoke (scripts/test, on
// corpus/config/crash-integer-key-float-3e64) both stop on the cast.
TEST(Config, IntegerKeysTakeWholeNumbersOnly) {
    testing::temp_dir dir;
    auto whole = load_toml(dir, "[input]\nkernel_rcvbuf_bytes = 65536.0\nslots = 8_192\n");
    ASSERT_TRUE(whole) << whole.err().message;
    EXPECT_EQ(whole->input.kernel_rcvbuf_bytes, 65536u);
    EXPECT_EQ(whole->input.slots, 8192u);
    for (const char* value : {"3e64", "-3e64", "1e19", "inf", "nan", "65536.5"}) {
        auto c = load_toml(dir, std::string("[input]\nkernel_rcvbuf_bytes = ") + value + "\n");
        ASSERT_FALSE(c) << value;
        EXPECT_EQ(c.err().code, errc::bad_config);
        EXPECT_EQ(c.err().message.find("input.kernel_rcvbuf_bytes must be an integer within "
                                       "4096..1073741824, not a float ("),
                  0u)
            << value << ": " << c.err().message;
    }
}

// The one message a refused key gets: the key by its table path, what it must be.
std::string refused(const testing::temp_dir& dir, const std::string& text) {
    auto c = load_toml(dir, text);
    if (c) return "(loaded)";
    EXPECT_EQ(c.err().code, errc::bad_config) << c.err().message;
    EXPECT_EQ(c.err().message.find('\n'), std::string::npos) << c.err().message;
    return c.err().message;
}

// A scalar of the wrong type (a string for an integer, a string for a boolean, an
// integer for a string) is refused, not ignored: the key, the type it needs, the type
// and value it has, where, and a value it could take (its default).
TEST(Config, AScalarOfTheWrongTypeIsRefusedNamingTheKey) {
    testing::temp_dir dir;
    const std::string path = dir.file("sluiced.toml");
    EXPECT_EQ(refused(dir, "[sluice]\nworkers = \"two\"\n"),
              "sluice.workers must be an integer within 0..1024, not the string \"two\" (line 2 "
              "of " + path + "; e.g. workers = 0)");
    EXPECT_EQ(refused(dir, "[storage]\ndirect_io = \"false\"\n"),
              "storage.direct_io must be true or false, not the string \"false\" (line 2 of " +
                  path + "; e.g. direct_io = true)");
    EXPECT_EQ(refused(dir, "\n[sluice]\ndata_dir = 5\n"),
              "sluice.data_dir must be a string, not an integer (5) (line 3 of " + path +
                  "; e.g. data_dir = \"" + std::string(limits::data_dir_default) + "\")");
    EXPECT_NE(refused(dir, "[kafka]\nauto_create_topics = 1\n")
                  .find("kafka.auto_create_topics must be true or false, not an integer (1)"),
              std::string::npos);
    EXPECT_NE(refused(dir, "[log]\nformat = true\n")
                  .find("log.format must be a string, not a boolean (true)"),
              std::string::npos);
    EXPECT_NE(refused(dir, "[lcores]\nrx = \"1,2\"\n")
                  .find("lcores.rx must be a count (0..1024) or a list of lcore ids, not the "
                        "string \"1,2\""),
              std::string::npos);
    EXPECT_NE(refused(dir, "[control]\nsocket_mode = 0.5\n")
                  .find("control.socket_mode must be an octal mode as a string, not a float"),
              std::string::npos);
}

// An array or a table where the key needs another shape, and an array element of the
// wrong type (named by its index).
TEST(Config, AnArrayOrTableOfTheWrongShapeIsRefusedNamingTheKey) {
    testing::temp_dir dir;
    const std::string path = dir.file("sluiced.toml");
    EXPECT_EQ(refused(dir, "[kafka]\nlisten = 9092\n"),
              "kafka.listen must be \"HOST:PORT\" or an array of them, not an integer (9092) "
              "(line 2 of " + path + "; e.g. listen = [\"127.0.0.1:9092\"])");
    EXPECT_NE(refused(dir, "[kafka]\nlisten = [\"127.0.0.1:9092\", 9093]\n")
                  .find("kafka.listen[1] must be a string, not an integer (9093)"),
              std::string::npos);
    EXPECT_NE(refused(dir, "[input]\nudp_ports = 9000\n")
                  .find("input.udp_ports must be an array of integers, not an integer (9000)"),
              std::string::npos);
    EXPECT_NE(refused(dir, "[control]\nallow_uids = [1000, \"root\"]\n")
                  .find("control.allow_uids[1] must be an integer within 0..4294967294, not the "
                        "string \"root\""),
              std::string::npos);
    EXPECT_NE(refused(dir, "[sluice]\ndata_dir = [\"/a\"]\n")
                  .find("sluice.data_dir must be a string, not an array"),
              std::string::npos);
    EXPECT_NE(refused(dir, "kafka = 5\n").find("kafka must be a table, not an integer (5)"),
              std::string::npos);
    EXPECT_NE(refused(dir, "[storage.compression]\nlevel = 3\n")
                  .find("storage.compression must be a string, not a table"),
              std::string::npos);
    EXPECT_NE(refused(dir, "[kafka.topic]\nname = \"t\"\n")
                  .find("kafka.topic must be an array of tables ([[kafka.topic]] on a line of "
                        "its own), not a table"),
              std::string::npos);
    EXPECT_NE(refused(dir, "query = 5\n").find("query must be tables ([[query]]"),
              std::string::npos);
    EXPECT_NE(refused(dir, "query = [5]\n").find("query must be a table ([[query]]"),
              std::string::npos);
    // An empty list is still a list: no queries; no topics beyond the default.
    auto none = load_toml(dir, "query = []\n[kafka]\ntopic = []\n");
    ASSERT_TRUE(none) << none.err().message;
    EXPECT_TRUE(none->queries.empty());
    EXPECT_TRUE(none->kafka.topics.empty());
}

// Keys of tables inside tables are named by their whole path.
TEST(Config, AKeyOfANestedTableIsNamedByItsPath) {
    testing::temp_dir dir;
    EXPECT_NE(refused(dir, "[[kafka.topic]]\nname = \"t\"\npartitions = \"two\"\n")
                  .find("kafka.topic[0].partitions must be an integer within 0..1024, not the "
                        "string \"two\""),
              std::string::npos);
    EXPECT_NE(refused(dir, "[[kafka.topic]]\nname = \"a\"\n[[kafka.topic]]\nname = 7\n")
                  .find("kafka.topic[1].name must be a string, not an integer (7) (line 4 of "),
              std::string::npos);
    EXPECT_NE(refused(dir, "[retention.tables.events]\nmax_bytes = \"1G\"\n")
                  .find("retention.tables.events.max_bytes must be an integer >= 0, not the "
                        "string \"1G\""),
              std::string::npos);
    EXPECT_NE(refused(dir, "[retention.tables]\nevents = 5\n")
                  .find("retention.tables.events must be a table, not an integer (5)"),
              std::string::npos);
    EXPECT_NE(refused(dir, "[retention]\ntables = [1]\n")
                  .find("retention.tables must be a table, not an array"),
              std::string::npos);
}

// Integers outside what the key can mean are refused with its range, rather than
// wrapped into the field (-1 workers was 4294967295 of them).
TEST(Config, AnIntegerOutOfItsRangeIsRefusedNamingTheRange) {
    testing::temp_dir dir;
    EXPECT_EQ(refused(dir, "[sluice]\nworkers = -1\n"),
              "sluice.workers must be within 0..1024 (0: every lcore beyond the main and the RX "
              "lcores)");
    EXPECT_EQ(refused(dir, "[storage]\nsync_bytes = -5\n"), "storage.sync_bytes must be >= 1");
    EXPECT_EQ(refused(dir, "[retention]\nmax_bytes = -1\n"),
              "retention.max_bytes must be >= 0 (0: no size limit)");
    EXPECT_EQ(refused(dir, "[input]\nudp_ports = [9000, 0]\n"),
              "input.udp_ports[1] must be within 1..65535");
    EXPECT_EQ(refused(dir, "[input]\nport_id = 65536\n"), "input.port_id must be within 0..65535");
    // 2^32 + 64 used to wrap to 64 and pass.
    EXPECT_EQ(refused(dir, "[input]\nevent_bytes_max = 4294967360\n"),
              "input.event_bytes_max must be within 64..65536");
    EXPECT_EQ(refused(dir, "[input]\nmbufs = 100\n"), "input.mbufs must be within 512..4294967295");
    EXPECT_EQ(refused(dir, "[control]\nallow_gids = [-1]\n"),
              "control.allow_gids[0] must be within 0..4294967294");
    EXPECT_EQ(refused(dir, "[kafka]\nlcore = 5000\n"),
              "kafka.lcore must be within -1..1023 (-1: the first free lcore)");
    EXPECT_EQ(refused(dir, "[lcores]\nworkers = [3, 1024]\n"),
              "lcores.workers[1] must be within 0..1023");
    EXPECT_EQ(refused(dir, "[processing]\ndedup_memory_mb = 0\n"),
              "processing.dedup_memory_mb must be within 1..1048576 (all workers together, at "
              "most 1 TiB)");
    EXPECT_EQ(refused(dir, "[processing]\nwatermark_delay_ms = -1\n"),
              "processing.watermark_delay_ms must be >= 0");
    // 0 workers is the default: every lcore beyond the main and RX lcores.
    auto zero = load_toml(dir, "[sluice]\nworkers = 0\n");
    ASSERT_TRUE(zero) << zero.err().message;
    EXPECT_EQ(zero->lcores.worker_count, 0u);
}

// A key no table has (a misspelling, a key of another table) is refused, as an unknown
// key of a [[query]] is: the key, where, and the keys its table has.
TEST(Config, AnUnknownKeyIsRefusedListingTheTablesKeys) {
    testing::temp_dir dir;
    const std::string path = dir.file("sluiced.toml");
    EXPECT_EQ(refused(dir, "[kafka]\nlisen = \"127.0.0.1:9092\"\n"),
              "unknown key kafka.lisen (line 2 of " + path +
                  "): remove it or fix its name; [kafka] has: advertised, auto_create_topics, "
                  "connections_max, idle_timeout_ms, lcore, listen, request_bytes_max, topic");
    EXPECT_EQ(refused(dir, "[kafak]\nlisten = \"127.0.0.1:9092\"\n"),
              "unknown key kafak (line 1 of " + path +
                  "): remove it or fix its name; the tables are: control, input, kafka, lcores, "
                  "log, metrics, processing, query, retention, sluice, storage, testing");
    EXPECT_NE(refused(dir, "[input]\nworkers = 2\n")
                  .find("unknown key input.workers (line 2 of "),
              std::string::npos);
    EXPECT_NE(refused(dir, "[[kafka.topic]]\nname = \"t\"\npartitons = 2\n")
                  .find("unknown key kafka.topic[0].partitons (line 3 of "),
              std::string::npos);
    EXPECT_NE(refused(dir, "[retention.tables.events]\nmax_byte = 1\n")
                  .find("unknown key retention.tables.events.max_byte (line 2 of "),
              std::string::npos);
}

TEST(Config, SectionsLandInTheirStructs) {
    testing::temp_dir dir;
    auto c = load_toml(dir, R"t(
[sluice]
data_dir = "/tmp/x"
workers = 3
[lcores]
rx = [1, 2]
[control]
allow_uids = [1000]
socket_mode = "0660"
[kafka]
listen = ["127.0.0.1:9093"]
connections_max = 10
[[kafka.topic]]
name = "t"
partitions = 2
[processing]
dedup_horizon_ms = 1000
[retention]
max_bytes = 5
interval_ms = 20
[retention.tables.events]
max_age_ms = 9
[log]
format = "json"
rate_limit_burst = 0
[testing]
slow_worker_us = 4
)t",
                       {"--test-hold-us", "5", "--bench-sink"});
    ASSERT_TRUE(c) << c.err().message;
    EXPECT_EQ(c->sluice.data_dir, "/tmp/x");
    EXPECT_EQ(c->lcores.worker_count, 3u);
    EXPECT_EQ(c->lcores.rx, (std::vector<unsigned>{1, 2}));
    EXPECT_EQ(c->control.allow_uids, std::vector<uint32_t>{1000});
    EXPECT_EQ(c->control.socket_mode, 0660u);
    EXPECT_EQ(c->kafka.listen, std::vector<std::string>{"127.0.0.1:9093"});
    EXPECT_EQ(c->kafka.connections_max, 10u);
    EXPECT_EQ(c->kafka.topics, (std::vector<kafka_topic_def>{{"t", 2}}));
    EXPECT_EQ(c->input.mode, input_mode::dpdk); // a listener beside the default input
    EXPECT_EQ(c->processing.dedup_horizon_ms, 1000);
    EXPECT_EQ(c->retention.defaults.max_bytes, 5u);
    EXPECT_EQ(c->retention.interval_ms, 20u);
    EXPECT_EQ(c->retention.tables.at("events").max_age_ms, 9);
    EXPECT_EQ(c->log.format, log_format::json);
    EXPECT_EQ(c->log.rate_limit.burst, 0u);
    EXPECT_EQ(c->testing.slow_worker_us, 4u);
    EXPECT_EQ(c->testing.hold_us, 5u);
    EXPECT_TRUE(c->testing.bench_sink);

    auto bad = load({"--log-format", "xml"});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.err().message.find("log.format must be \"text\" or \"json\""), std::string::npos);
}

TEST(Config, RestartRequiredNamesTheTomlKeys) {
    daemon_config a, b;
    EXPECT_TRUE(restart_required(a, b).empty());
    b.storage.compression = {storage::format::codec::none, 0};
    b.input.mode = input_mode::kernel_udp;
    b.kafka.lcore = 3;
    b.control.allow_uids = {5};         // reloadable
    b.retention.defaults.max_bytes = 1; // reloadable
    EXPECT_EQ(restart_required(a, b),
              (std::vector<std::string>{"input.mode", "kafka", "storage.compression",
                                        "storage.compression_level"}));
}

} // namespace
} // namespace sluice::control
