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
// other float is no integer and leaves the default. Bug 14 (fuzz_config): `= 3e64` went
// through toml++'s float-to-int static_cast, undefined behaviour. x86 happened to give
// the same answer, and gcc's -fsanitize=undefined leaves out float-cast-overflow, so the
// check that fails without the fix is clang's: fuzz_smoke (scripts/test) starts
// fuzz_config on corpus/config/crash-integer-key-float-3e64.
TEST(Config, IntegerKeysTakeWholeNumbersOnly) {
    testing::temp_dir dir;
    auto whole = load_toml(dir, "[input]\nkernel_rcvbuf_bytes = 65536.0\nslots = 8_192\n");
    ASSERT_TRUE(whole) << whole.err().message;
    EXPECT_EQ(whole->input.kernel_rcvbuf_bytes, 65536u);
    EXPECT_EQ(whole->input.slots, 8192u);
    for (const char* value : {"3e64", "-3e64", "1e19", "inf", "nan", "65536.5"}) {
        auto c = load_toml(dir, std::string("[input]\nkernel_rcvbuf_bytes = ") + value + "\n");
        ASSERT_TRUE(c) << value << ": " << c.err().message;
        EXPECT_EQ(c->input.kernel_rcvbuf_bytes, limits::kernel_rcvbuf_bytes_default) << value;
    }
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
