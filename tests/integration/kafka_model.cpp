#include "tests/integration/kafka_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/clock.h"
#include "tests/integration/model_check.h"
#include "tools/gen/generator.h"
#include "tools/gen/model.h"

namespace sluice::testing::kafka {

namespace {

std::vector<std::string> event_lines(std::string_view payload) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= payload.size()) {
        size_t end = payload.find('\n', start);
        if (end == std::string_view::npos) end = payload.size();
        if (end > start) out.emplace_back(payload.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

json model_counters_json(const sluice::tools::reference_model& m, const std::string& dir) {
    std::filesystem::create_directories(dir + "/expected");
    EXPECT_TRUE(m.write_expected(dir + "/expected").ok()) << dir;
    return read_expected(dir).counters;
}

uint64_t handled(const json& s) {
    return total(s, "events_accepted") + total(s, "duplicates") + total(s, "dead_letters");
}

// Waits until the workers have handled (accepted, duplicate, dead letter) `lines` lines.
json wait_handled(const kafka_daemon& k, uint64_t lines) {
    return k.proc->wait_stats([&](const json& s) { return handled(s) >= lines; }, 120);
}

uint64_t rx_packets_of(const json& s, const char* input) {
    uint64_t n = 0;
    for (const auto& c : s["per_core"])
        if (c["role"] == "rx" && c.value("input", "") == input) n += c["rx_packets"].get<uint64_t>();
    return n;
}

} // namespace

model_workload make_model_workload(const std::string& dir, uint64_t events, uint64_t seed) {
    sluice::tools::gen_config g; // sluice-gen's defaults: late, horizon, dups, malformed
    g.events = events;
    g.seed = seed;
    g.events_per_minute = 500; // a few minutes of event time: many windows
    std::vector<std::string> datagrams;
    sluice::tools::traffic_generator(g).run([&](const sluice::tools::gen_frame& f) {
        if (!f.ignored) datagrams.emplace_back(f.payload);
    });

    model_workload w;
    sluice::tools::model_config mc;
    mc.now_ms = sluice::wall_clock_ms();
    sluice::tools::reference_model model(mc);
    // UDP first: the stream's first datagrams, which Kafka then sends again.
    const size_t before = std::min<size_t>(20, datagrams.size() / 10);
    for (size_t i = 0; i < before; ++i) {
        w.udp_before.push_back(datagrams[i]);
        model.feed_datagram(datagrams[i]);
        w.lines_before += event_lines(datagrams[i]).size();
    }
    // Kafka: every event line of the stream, one record each.
    for (const auto& d : datagrams)
        for (auto& line : event_lines(d)) {
            (void)model.feed_line(line);
            w.kafka_values.push_back(std::move(line));
        }
    w.counters_after_kafka = model_counters_json(model, dir);
    // UDP again: every fifth datagram past the first ones, re-sent byte for byte.
    for (size_t i = before; i < datagrams.size(); i += 5) {
        w.udp_after.push_back(datagrams[i]);
        model.feed_datagram(datagrams[i]);
        w.lines_after += event_lines(datagrams[i]).size();
    }
    (void)model_counters_json(model, dir);
    w.want = read_expected(dir);
    return w;
}

void run_against_model(
    const std::string& tag, uint64_t events, uint64_t seed,
    const std::function<std::string(const kafka_daemon&, const std::string&)>& client,
    const std::function<void(const kafka_daemon&, const json&)>& after_produce,
    const std::string& acks) {
    kafka_daemon k;
    const uint16_t udp_port = uint16_t(20000 + (getpid() * 31 + seed) % 20000);
    start(k, "model-" + tag, {"--kernel-udp", "127.0.0.1", "--udp-port", std::to_string(udp_port)},
          5);
    ASSERT_FALSE(::testing::Test::HasFailure());
    const model_workload w = make_model_workload(k.dir, events, seed);
    const json& want = w.want.counters;
    ASSERT_GT(want["duplicates"].get<uint64_t>(), 0u);
    ASSERT_GT(want["late_events"].get<uint64_t>(), 0u);
    ASSERT_GT(want["dead_letters"].get<uint64_t>(), 0u);
    // The UDP re-sends after Kafka are duplicates of what Kafka stored.
    ASSERT_GT(want["duplicates"].get<uint64_t>(),
              w.counters_after_kafka["duplicates"].get<uint64_t>());
    std::string why;

    // Phase 1: UDP, in step with what sluiced has taken; then wait until it is handled, so
    // that the Kafka records come after it as the model has them.
    ASSERT_TRUE(send_udp_in_step(*k.proc, udp_port, w.udp_before, 0, w.udp_before.size(), 0, &why))
        << why;
    json s = wait_handled(k, w.lines_before);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    ASSERT_EQ(handled(s), w.lines_before) << s["totals"].dump();

    // Phase 2: the Kafka client, every line a record. acks=all: every record is handled
    // and durable once it returns; acks=1: every record is in a worker ring.
    std::string text;
    for (const auto& v : w.kafka_values) text += v + "\n";
    const std::string values = write_file(k.dir + "/values.ndjson", text);
    ASSERT_TRUE(run_client(180, client(k, values), k.dir + "/client.log"));
    s = k.proc->request({{"cmd", "stats"}});
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    const json& mid = w.counters_after_kafka;
    const uint64_t mid_lines = mid["events_received"].get<uint64_t>();
    if (acks != "0") {
        EXPECT_EQ(s["kafka"]["records"], w.kafka_values.size()) << s["kafka"].dump();
        EXPECT_EQ(total(s, "events_received"), mid_lines);
    }
    if (acks == "all") {
        EXPECT_EQ(handled(s), mid_lines) << s["totals"].dump();
        EXPECT_EQ(durable_rows(s, "events"), mid["events_accepted"].get<uint64_t>())
            << s["storage"].dump();
        EXPECT_EQ(durable_rows(s, "dead_letters"), mid["dead_letters"].get<uint64_t>())
            << s["storage"].dump();
    }
    if (after_produce) after_produce(k, s);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    s = wait_handled(k, mid_lines);
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    ASSERT_EQ(handled(s), mid_lines) << s["totals"].dump();

    // Phase 3: UDP re-sends of what Kafka stored.
    const uint64_t rx_before = total(s, "rx_packets");
    ASSERT_TRUE(
        send_udp_in_step(*k.proc, udp_port, w.udp_after, 0, w.udp_after.size(), rx_before, &why))
        << why;
    s = wait_handled(k, want["events_received"].get<uint64_t>());
    ASSERT_TRUE(s.value("ok", false)) << s.dump();
    expect_model_counters(s["totals"], want);
    EXPECT_EQ(s["kafka"]["records"], w.kafka_values.size());
    EXPECT_EQ(rx_packets_of(s, "kernel_udp"), w.udp_before.size() + w.udp_after.size())
        << s["per_core"].dump();
    EXPECT_EQ(s["kafka"]["errors_by_code"], json::object()) << s["kafka"].dump();

    EXPECT_EQ(k.proc->shutdown_and_wait(120), 0) << "see " << k.dir << "/sluiced.log";
    json fin = read_final_stats(k.dir + "/sluiced.log");
    ASSERT_TRUE(fin.is_object()) << "no final stats in " << k.dir << "/sluiced.log";
    expect_model_counters(fin["totals"], want);
    expect_model_store(k.dir + "/data", query_table, w.want);
    remove_eal_runtime(k.prefix);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(k.dir);
}

} // namespace sluice::testing::kafka
