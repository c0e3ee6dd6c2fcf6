#pragma once
// What the Kafka integration tests share (kafka_test.cpp, kafka_clients_test.cpp,
// kafka_hostile_test.cpp, kafka_consume_test.cpp, kafka_groups_test.cpp): sluiced started
// with a Kafka listener, the client processes run against it, the hand-made set of values
// every client sends, and its hand-computed outcome (counters, Kafka stats, events,
// dead_letters, page_views_per_minute); the raw-frame Python helpers.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/daemon_harness.h"

namespace sluice::testing::kafka {

inline const char* const query_table = "page_views_per_minute";
inline const char* const python = "/usr/bin/python3";

// An event, the same event again (a duplicate), a later event, a late event, a value that
// is not a JSON object and an event without a timestamp; one per line, written as Python's
// json.dumps writes them, so that kafka-python's value_serializer sends exactly these bytes.
extern const std::vector<std::string> hand_set;

std::string hex64(const std::string& s); // XXH3-64 in hex, as read_store names rows

struct hand_outcome {
    std::vector<std::string> events, dead_letters, windows_csv;
};
hand_outcome expected_store();

struct kafka_daemon {
    std::string dir, prefix;
    std::unique_ptr<daemon_process> proc;
    uint16_t port = 0;
};

// events-topic with one partition: the hand set's order (duplicate after original, late
// after the event that closed its window) holds within a partition, not across them.
// `kafka_extra` goes into [kafka].
std::string write_config(const std::string& dir, const std::string& kafka_extra = "",
                         uint32_t flush_interval_ms = 300);

// Runs sluiced over k.dir (data/, ctl.sock, the log `log`) with `config`, `workers`
// workers, a Kafka listener on a port the kernel picks (read back from stats), `options`,
// and `lcores` lcores and `eal_extra` for EAL. Fails the test (gtest assertions) if it
// does not come up.
void launch(kafka_daemon& k, const std::string& config, uint32_t workers, const std::string& log,
            uint32_t lcores = 4, const std::vector<std::string>& options = {},
            const std::vector<std::string>& eal_extra = {});

// Starts sluiced with a Kafka listener on a port the kernel picks (read back from stats).
// Fails the test (gtest assertions) if it does not come up.
void start(kafka_daemon& k, const std::string& tag, std::vector<std::string> options = {},
           uint32_t lcores = 4, const std::string& kafka_extra = "");

std::string broker(const kafka_daemon& k); // "127.0.0.1:<port>"
std::string env_or_empty(const char* name);

// Runs a client (kcat, python3 or node with its script and arguments; `command` may
// redirect stdin) as `timeout <seconds> <command> > <out> 2> <out>.err`. Passes when it
// exits 0; else says the command and what it wrote to stderr.
::testing::AssertionResult run_client(int seconds, const std::string& command,
                                      const std::string& out);

// kcat -P with acks=all: `values`, one per line (k.dir/<tag>.ndjson), into events-topic.
// Fails the test if kcat does not exit 0.
void kcat_produce(const kafka_daemon& k, const std::vector<std::string>& values,
                  const std::string& tag);

std::string write_values(const std::string& dir); // hand_set, one per line
std::string write_file(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// kframes.py, for the raw-frame Python scripts (`from kframes import ...`, run from the
// directory it is written to): CRC-32C, varints, RecordBatch v2 (plain, compressed,
// idempotent or corrupt), legacy magic 0/1 message sets, Produce v3+ requests and answers.
extern const char* const frames_py;
std::string write_frames_py(const std::string& dir); // dir/kframes.py

uint64_t total(const json& s, const char* k);
uint64_t durable_rows(const json& s, const std::string& table);

// Polls stats until the workers handled `values` values (accepted, duplicate or dead letter).
json wait_done(const kafka_daemon& k, uint64_t values);

// The hand set's counters and Kafka stats. `clean`: no Kafka errors were provoked on the way.
// `probed`: the client asked ApiVersions (all do, but a client told the broker's version).
void expect_hand_counts(const json& s, bool clean = true, bool probed = true);

// Stops sluiced and compares the final stats and the store with the hand-computed outcome;
// removes the test's directory when nothing failed.
void stop_and_check_store(kafka_daemon& k, bool clean = true, bool probed = true);

} // namespace sluice::testing::kafka
