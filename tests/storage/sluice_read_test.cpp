// Runs the built sluice-read binary (path in $SLUICE_READ, set by meson) on a data dir.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <sstream>

#include "storage/segment_writer.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;

struct run_result {
    int status = -1;
    std::string out;
};

run_result run_reader(const std::string& args) {
    const char* bin = std::getenv("SLUICE_READ");
    run_result r;
    if (!bin) return r;
    std::string cmd = std::string(bin) + " " + args + " 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::vector<std::string> lines(const std::string& s, const char* sep = "\n") {
    std::vector<std::string> out;
    size_t pos = 0, len = std::strlen(sep);
    while (pos < s.size()) {
        size_t e = s.find(sep, pos);
        if (e == std::string::npos) e = s.size();
        out.push_back(s.substr(pos, e - pos));
        pos = e + len;
    }
    return out;
}

class SluiceRead : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!std::getenv("SLUICE_READ")) GTEST_SKIP() << "SLUICE_READ is not set (run via meson test)";
        auto schema = dead_letters_schema();
        writer_config cfg;
        cfg.data_dir = _tmp.path();
        cfg.writer_name = "w1";
        cfg.rows_per_block = 2;
        cfg.string_bytes_max = 4096;
        cfg.row_string_bytes_max = 1024;
        auto w = segment_writer::open(cfg, schema);
        ASSERT_TRUE(w.ok());
        const std::vector<row> rows = {
            {int64_t(1000), std::string("parse_error"), uint64_t(5), std::string("plain")},
            {int64_t(2000), std::string("oversize"), uint64_t(9), std::string("a,\"b\"\nc")},
            {int64_t(3000), std::string("bad_timestamp"), uint64_t(2), std::string("\x01\xff")},
        };
        for (const auto& r : rows) {
            push_row((*w)->batch(), r);
            (*w)->commit_row();
        }
        ASSERT_TRUE((*w)->close().ok());
    }
    temp_dir _tmp;
};

TEST_F(SluiceRead, PrintsJsonLinesWithColumnNames) {
    auto r = run_reader(_tmp.path() + " dead_letters");
    ASSERT_EQ(r.status, 0);
    auto ls = lines(r.out);
    ASSERT_EQ(ls.size(), 3u);
    auto j = nlohmann::json::parse(ls[1]);
    EXPECT_EQ(j["received_ms"], 2000);
    EXPECT_EQ(j["reason"], "oversize");
    EXPECT_EQ(j["raw_len"], 9);
    EXPECT_EQ(j["raw"], "a,\"b\"\nc");
    EXPECT_EQ(ls[0].rfind("{\"received_ms\":1000,", 0), 0u) << ls[0]; // column order kept
    auto bad_utf8 = nlohmann::json::parse(ls[2]);
    EXPECT_EQ(bad_utf8["raw"], "\x01\xEF\xBF\xBD"); // invalid UTF-8 -> U+FFFD
}

TEST_F(SluiceRead, PrintsCsvWithRfc4180Quoting) {
    auto r = run_reader(_tmp.path() + " dead_letters --format csv --from 1500 --to 2500");
    ASSERT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "received_ms,reason,raw_len,raw\r\n"
                     "2000,oversize,9,\"a,\"\"b\"\"\nc\"\r\n");
}

TEST_F(SluiceRead, WritesParquetToAFileAndShowsTheLayout) {
    const std::string out = _tmp.path() + "/dl.parquet";
    auto r = run_reader(_tmp.path() + " dead_letters --format parquet --out " + out);
    ASSERT_EQ(r.status, 0);
    std::FILE* f = std::fopen(out.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    char head[4] = {}, tail[4] = {};
    ASSERT_EQ(std::fread(head, 1, 4, f), 4u);
    std::fseek(f, -4, SEEK_END);
    ASSERT_EQ(std::fread(tail, 1, 4, f), 4u);
    std::fclose(f);
    EXPECT_EQ(std::string(head, 4), "PAR1");
    EXPECT_EQ(std::string(tail, 4), "PAR1");
    EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));

    auto layout = run_reader(_tmp.path() + " dead_letters --layout");
    ASSERT_EQ(layout.status, 0);
    EXPECT_NE(layout.out.find("dead_letters: 3 rows, 2 blocks"), std::string::npos) << layout.out;
    EXPECT_NE(layout.out.find("received_ms"), std::string::npos) << layout.out;
    EXPECT_NE(layout.out.find("delta_bitpack_i64"), std::string::npos) << layout.out;
}

TEST_F(SluiceRead, ListsTables) {
    auto r = run_reader(_tmp.path() + " --tables");
    ASSERT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "dead_letters\t3 rows\t1 segments\n");
}

TEST_F(SluiceRead, UnknownTableAndUsageErrors) {
    EXPECT_EQ(run_reader(_tmp.path() + " nope").status, 1);
    EXPECT_EQ(run_reader(_tmp.path()).status, 2);
    EXPECT_EQ(run_reader(_tmp.path() + " dead_letters --format xml").status, 2);
    EXPECT_EQ(run_reader(_tmp.path() + " dead_letters --from abc").status, 2);
    EXPECT_EQ(run_reader(_tmp.path() + " dead_letters --out").status, 2);
    EXPECT_EQ(run_reader(_tmp.path() + " dead_letters --out /no/such/dir/x.csv").status, 1);
}

} // namespace
} // namespace sluice::storage
