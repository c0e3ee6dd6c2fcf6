// Export to Parquet, CSV and JSON Lines, read back by DuckDB (from npm, via Node.js:
// tests/storage/duckdb_query.cjs; scripts/setup-duckdb installs it) with the right
// types, row counts and values.
#include "storage/export.h"

#include <gtest/gtest.h>
#include "tests/storage/duckdb_util.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "storage/segment_writer.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;
using json = nlohmann::json;
using sluice::test::duckdb;
using sluice::test::duckdb_available;




// Every column type, nulls, a dictionary-friendly column, numbers past INT64_MAX,
// bytes that are not text, strings that are not UTF-8, and a long string.
table_schema mixed_schema() {
    return {"mixed",
            {{"t", column_type::i64},
             {"n", column_type::i64, true},
             {"u", column_type::u64},
             {"b", column_type::u8},
             {"kind", column_type::string},
             {"maybe", column_type::string, true},
             {"raw", column_type::bytes},
             {"text", column_type::string}},
            0};
}

row mixed_row(uint64_t i) {
    std::string raw = {char(i), '\0', char(0xff), 'x'};
    std::string text = i % 500 == 7 ? std::string("bad\xff\xfe utf8") : "t" + std::to_string(i * 37);
    if (i == 1234) text = std::string(100000, 'L');
    return {int64_t(1700000000000 + int64_t(i)),
            i % 3 == 0 ? value(std::monostate{}) : value(int64_t(i) - 1000),
            uint64_t(i % 2 ? ~0ull - i : i),
            uint64_t(i % 256),
            std::string(i % 4 == 0 ? "click" : "page_view"),
            i % 5 == 0 ? value(std::monostate{}) : value(std::string(i % 7 == 0 ? "" : "m")),
            raw,
            text};
}

class Export : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string why;
        // CI installs DuckDB (scripts/bootstrap runs scripts/setup-duckdb): there a
        // missing DuckDB is a failure, not a skip.
        if (!duckdb_available(why)) FAIL() << why;
        writer_config cfg;
        cfg.data_dir = _tmp.path();
        cfg.writer_name = "w0";
        cfg.rows_per_block = 700;
        cfg.string_bytes_max = 1 << 20;
        cfg.row_string_bytes_max = 100000;
        _schema = mixed_schema();
        auto w = segment_writer::open(cfg, _schema);
        ASSERT_TRUE(w.ok()) << w.err().message;
        for (uint64_t i = 0; i < rows; ++i) {
            _model.push_back(mixed_row(i));
            push_row((*w)->batch(), _model.back());
            (*w)->commit_row();
        }
        ASSERT_TRUE((*w)->close().ok());
    }
    std::string out(const char* name) { return _tmp.path() + "/" + name; }

    static constexpr uint64_t rows = 3000;
    temp_dir _tmp;
    table_schema _schema;
    std::vector<row> _model;
};

// The model's row i as DuckDB returns it for the query in ParquetKeepsTypesAndValues.
json expected_row(const row& r) {
    auto str = [](const value& v) { return std::get<std::string>(v); };
    std::string text = str(r[7]);
    if (text.find('\xff') != std::string::npos) text = "bad\xef\xbf\xbd\xef\xbf\xbd utf8";
    char hex[16];
    std::string raw_hex;
    for (unsigned char c : str(r[6])) {
        std::snprintf(hex, sizeof hex, "%02X", c);
        raw_hex += hex;
    }
    return json::array({std::to_string(std::get<int64_t>(r[0])),
                        std::holds_alternative<std::monostate>(r[1])
                            ? json(nullptr)
                            : json(std::to_string(std::get<int64_t>(r[1]))),
                        std::to_string(std::get<uint64_t>(r[2])), std::get<uint64_t>(r[3]),
                        str(r[4]),
                        std::holds_alternative<std::monostate>(r[5]) ? json(nullptr) : json(str(r[5])),
                        raw_hex, text.size() > 1000 ? json(std::to_string(text.size())) : json(text)});
}

TEST_F(Export, ParquetKeepsTypesAndValues) {
    for (bool zstd : {true, false}) {
        for (bool dict : {true, false}) {
            SCOPED_TRACE(std::string(zstd ? "zstd" : "uncompressed") + (dict ? ", dictionary" : ""));
            export_options o;
            o.format = export_format::parquet;
            o.parquet.zstd = zstd;
            o.parquet.dictionary = dict;
            o.parquet.row_group_rows = 1000; // three row groups
            o.parquet.page_bytes = 4096;     // many pages each
            auto r = export_table_to_file(_tmp.path(), "mixed", o, out("m.parquet"));
            ASSERT_TRUE(r.ok()) << r.err().message;
            EXPECT_EQ(r->rows, rows);
            EXPECT_EQ(r->invalid_utf8_values, rows / 500);
            EXPECT_EQ(r->bytes, std::filesystem::file_size(out("m.parquet")));
            const std::string f = "read_parquet('" + out("m.parquet") + "')";
            auto res = duckdb({"DESCRIBE SELECT * FROM " + f,
                               "SELECT count(*), count(n), count(maybe) FROM " + f,
                               "SELECT t, n, u, b, kind, maybe, hex(raw), "
                               "CASE WHEN length(text) > 1000 THEN length(text)::VARCHAR "
                               "ELSE text END FROM " + f + " ORDER BY t",
                               "SELECT count(DISTINCT row_group_id), max(num_values), "
                               "bool_or(encodings LIKE '%DICTIONARY%') FROM parquet_metadata('" +
                                   out("m.parquet") + "') WHERE path_in_schema = 'kind'"});
            ASSERT_EQ(res.size(), 4u);
            std::vector<std::pair<std::string, std::string>> want = {
                {"t", "BIGINT"},      {"n", "BIGINT"},     {"u", "UBIGINT"}, {"b", "UTINYINT"},
                {"kind", "VARCHAR"}, {"maybe", "VARCHAR"}, {"raw", "BLOB"},  {"text", "VARCHAR"}};
            ASSERT_EQ(res[0]["rows"].size(), want.size());
            for (size_t c = 0; c < want.size(); ++c) {
                EXPECT_EQ(res[0]["rows"][c][0], want[c].first);
                EXPECT_EQ(res[0]["rows"][c][1], want[c].second) << want[c].first;
            }
            uint64_t n_count = 0, maybe_count = 0;
            for (const auto& m : _model) {
                n_count += !std::holds_alternative<std::monostate>(m[1]);
                maybe_count += !std::holds_alternative<std::monostate>(m[5]);
            }
            EXPECT_EQ(res[1]["rows"][0], json::array({std::to_string(rows), std::to_string(n_count),
                                                      std::to_string(maybe_count)}));
            const json& got = res[2]["rows"];
            ASSERT_EQ(got.size(), rows);
            for (uint64_t i = 0; i < rows; ++i)
                ASSERT_EQ(got[i], expected_row(_model[i])) << "row " << i;
            EXPECT_EQ(res[3]["rows"][0][0], "3"); // row groups
            EXPECT_EQ(res[3]["rows"][0][2], dict);
        }
    }
}

TEST_F(Export, CsvAndJsonLinesReadBackWithNullsAndEmptyStrings) {
    for (auto fmt : {export_format::csv, export_format::jsonl}) {
        const bool csv = fmt == export_format::csv;
        export_options o;
        o.format = fmt;
        o.from_ms = 1700000000000 + 100;
        o.to_ms = 1700000000000 + 2099;
        auto r = export_table_to_file(_tmp.path(), "mixed", o, out(csv ? "m.csv" : "m.jsonl"));
        ASSERT_TRUE(r.ok()) << r.err().message;
        EXPECT_EQ(r->rows, 2000u);
        // CSV carries no types: DuckDB is told the schema's. JSON Lines: detected.
        const std::string f =
            csv ? "read_csv('" + out("m.csv") + "', header = true, allow_quoted_nulls = false, "
                  "columns = {'t': 'BIGINT', "
                  "'n': 'BIGINT', 'u': 'UBIGINT', 'b': 'UTINYINT', 'kind': 'VARCHAR', "
                  "'maybe': 'VARCHAR', 'raw': 'VARCHAR', 'text': 'VARCHAR'})"
                : "read_json('" + out("m.jsonl") + "', format = 'newline_delimited')";
        auto res = duckdb({"SELECT count(*), count(n), count(maybe), count(*) FILTER (maybe = ''), "
                           "sum(b), min(t), max(u) FROM " + f,
                           "DESCRIBE SELECT t, n, kind, maybe FROM " + f});
        ASSERT_EQ(res.size(), 2u);
        uint64_t n = 0, maybe = 0, empty = 0, b = 0;
        for (uint64_t i = 100; i < 2100; ++i) {
            const row& m = _model[i];
            n += !std::holds_alternative<std::monostate>(m[1]);
            maybe += !std::holds_alternative<std::monostate>(m[5]);
            empty += m[5] == value(std::string());
            b += std::get<uint64_t>(m[3]);
        }
        const json& got = res[0]["rows"][0];
        EXPECT_EQ(got[0], "2000") << (csv ? "csv" : "jsonl");
        EXPECT_EQ(got[1], std::to_string(n));
        EXPECT_EQ(got[2], std::to_string(maybe)) << "nulls and empty strings must stay apart";
        EXPECT_EQ(got[3], std::to_string(empty));
        EXPECT_EQ(got[4], std::to_string(b));
        EXPECT_EQ(got[5], "1700000000100");
        EXPECT_EQ(got[6], std::to_string(~0ull - 101));
        // JSON numbers carry no width: DuckDB picks an integer type by sampling.
        const json& types = res[1]["rows"];
        auto integer = [](const json& t) {
            return t == "BIGINT" || t == "HUGEINT" || t == "UBIGINT" || t == "INTEGER";
        };
        EXPECT_TRUE(csv ? types[0][1] == "BIGINT" : integer(types[0][1])) << res[1].dump();
        EXPECT_TRUE(csv ? types[1][1] == "BIGINT" : integer(types[1][1])) << res[1].dump();
        EXPECT_EQ(types[2][1], "VARCHAR");
        EXPECT_EQ(types[3][1], "VARCHAR");
    }
}

TEST_F(Export, EmptyRangeGivesValidEmptyFiles) {
    export_options o;
    o.from_ms = 0;
    o.to_ms = 1;
    for (auto fmt : {export_format::parquet, export_format::csv}) {
        o.format = fmt;
        auto r = export_table_to_file(_tmp.path(), "mixed", o, out("empty"));
        ASSERT_TRUE(r.ok()) << r.err().message;
        EXPECT_EQ(r->rows, 0u);
        std::string f = fmt == export_format::parquet
                            ? "read_parquet('" + out("empty") + "')"
                            : "read_csv('" + out("empty") + "', header = true)";
        auto res = duckdb({"SELECT count(*) FROM " + f, "DESCRIBE SELECT * FROM " + f});
        ASSERT_EQ(res.size(), 2u);
        EXPECT_EQ(res[0]["rows"][0][0], "0");
        EXPECT_EQ(res[1]["rows"].size(), 8u); // the columns are there
    }
    EXPECT_FALSE(export_table(_tmp.path(), "nope", o, stdout).ok());
    EXPECT_FALSE(std::filesystem::exists(out("empty.tmp")));
}

// f64 columns (query tables' sum/min/max/mean/quantiles): DOUBLE in Parquet with the
// exact values; in JSON Lines and CSV the shortest exact decimal, NaN (a window with no
// number) as null.
TEST_F(Export, DoublesKeepTheirValuesAndNaNIsNullInText) {
    table_schema s{"dbl", {{"t", column_type::i64}, {"x", column_type::f64}}, 0};
    writer_config cfg;
    cfg.data_dir = _tmp.path();
    cfg.writer_name = "w0";
    cfg.rows_per_block = 500;
    auto w = segment_writer::open(cfg, s);
    ASSERT_TRUE(w.ok()) << w.err().message;
    const uint64_t n = 2000;
    double sum = 0;
    uint64_t numbers = 0;
    for (uint64_t i = 0; i < n; ++i) {
        double x = i % 7 == 0 ? std::nan("") : double(int64_t(i) - 900) * 0.125 + 1e-3;
        if (i % 7 != 0) {
            sum += x;
            ++numbers;
        }
        (*w)->batch().push_i64(0, int64_t(i));
        (*w)->batch().push_f64(1, x);
        (*w)->batch().end_row();
        (*w)->commit_row();
    }
    ASSERT_TRUE((*w)->close().ok());
    for (auto fmt : {export_format::parquet, export_format::csv, export_format::jsonl}) {
        export_options o;
        o.format = fmt;
        const std::string path = out("dbl.out");
        auto r = export_table_to_file(_tmp.path(), "dbl", o, path);
        ASSERT_TRUE(r.ok()) << r.err().message;
        EXPECT_EQ(r->rows, n);
        const std::string f = fmt == export_format::parquet ? "read_parquet('" + path + "')"
                              : fmt == export_format::csv
                                  ? "read_csv('" + path + "', header = true, columns = {'t': 'BIGINT', 'x': 'DOUBLE'})"
                                  : "read_json('" + path + "', format = 'newline_delimited', columns = {'t': 'BIGINT', 'x': 'DOUBLE'})";
        auto res = duckdb({"SELECT count(*), count(x) FILTER (NOT isnan(x)), count(x), "
                           "sum(x) FILTER (NOT isnan(x)) FROM " + f,
                           "DESCRIBE SELECT x FROM " + f,
                           "SELECT x FROM " + f + " WHERE t = 13"});
        ASSERT_EQ(res.size(), 3u);
        const json& got = res[0]["rows"][0];
        SCOPED_TRACE(res[0].dump());
        auto number = [](const json& j) { return j.is_string() ? std::stod(j.get<std::string>()) : j.get<double>(); };
        EXPECT_EQ(got[0], std::to_string(n));
        EXPECT_EQ(got[1], std::to_string(numbers));
        // Parquet keeps NaN as a value; text formats write it as null.
        EXPECT_EQ(got[2], std::to_string(fmt == export_format::parquet ? n : numbers));
        EXPECT_DOUBLE_EQ(number(got[3]), sum);
        EXPECT_EQ(res[1]["rows"][0][1], "DOUBLE");
        EXPECT_EQ(number(res[2]["rows"][0][0]), double(13 - 900) * 0.125 + 1e-3);
    }
}

// Three segments (writers w0..w2) of `per_segment` rows each, blocks of 100 rows;
// segment k holds times base + k * per_segment + i.
int64_t write_three_segments(const std::string& dir, uint64_t per_segment, int64_t base) {
    table_schema schema = mixed_schema();
    for (int k = 0; k < 3; ++k) {
        writer_config cfg;
        cfg.data_dir = dir;
        cfg.writer_name = "w" + std::to_string(k);
        cfg.rows_per_block = 100;
        cfg.string_bytes_max = 1 << 20;
        cfg.row_string_bytes_max = 100000;
        auto w = segment_writer::open(cfg, schema);
        EXPECT_TRUE(w.ok()) << w.err().message;
        if (!w.ok()) return base;
        for (uint64_t i = 0; i < per_segment; ++i) {
            row r = mixed_row(i);
            r[0] = base + int64_t(k * per_segment + i);
            push_row((*w)->batch(), r);
            (*w)->commit_row();
        }
        EXPECT_TRUE((*w)->close().ok());
    }
    return base;
}

// The progress callback: called per block (not per row), every field only grows, the
// totals are the table's segments and bytes, and the last call is 100% with the
// summary's rows and bytes.
void check_progress(const std::vector<export_progress>& calls, const export_summary& sum,
                    uint64_t segments, uint64_t bytes, size_t min_calls) {
    ASSERT_GE(calls.size(), min_calls);
    EXPECT_LT(calls.size(), 200u); // 3 segments of 10 blocks: per block, never per row
    for (size_t i = 0; i < calls.size(); ++i) {
        const auto& c = calls[i];
        SCOPED_TRACE("call " + std::to_string(i));
        EXPECT_EQ(c.scan.segments_total, segments);
        EXPECT_EQ(c.scan.bytes_total, bytes);
        EXPECT_LE(c.scan.segments_done, c.scan.segments_total);
        EXPECT_LE(c.scan.bytes_done, c.scan.bytes_total);
        if (i == 0) continue;
        const auto& p = calls[i - 1];
        EXPECT_GE(c.scan.segments_done, p.scan.segments_done);
        EXPECT_GE(c.scan.bytes_done, p.scan.bytes_done);
        EXPECT_GE(c.rows, p.rows);
        EXPECT_GE(c.bytes, p.bytes);
    }
    const auto& last = calls.back();
    EXPECT_EQ(last.scan.segments_done, segments);
    EXPECT_EQ(last.scan.bytes_done, bytes);
    EXPECT_EQ(last.rows, sum.rows);
    EXPECT_EQ(last.bytes, sum.bytes);
    // Before the end, some call was strictly between 0% and 100%.
    bool partway = false;
    for (size_t i = 0; i + 1 < calls.size(); ++i)
        partway |= calls[i].scan.bytes_done > 0 && calls[i].scan.bytes_done < bytes;
    EXPECT_TRUE(partway);
}

TEST(ExportProgress, MonotoneFromFirstBlockTo100Percent) {
    temp_dir tmp;
    constexpr uint64_t per_segment = 1000;
    const int64_t base = 1700000000000;
    write_three_segments(tmp.path(), per_segment, base);
    uint64_t bytes = 0;
    for (const auto& e : std::filesystem::directory_iterator(tmp.path() + "/mixed"))
        bytes += e.file_size();
    ASSERT_GT(bytes, 0u);

    for (auto fmt : {export_format::jsonl, export_format::csv, export_format::parquet}) {
        SCOPED_TRACE(int(fmt));
        std::vector<export_progress> calls;
        export_options o;
        o.format = fmt;
        o.progress = [&](const export_progress& p) { calls.push_back(p); };
        auto r = export_table_to_file(tmp.path(), "mixed", o, tmp.path() + "/all.out");
        ASSERT_TRUE(r.ok()) << r.err().message;
        EXPECT_EQ(r->rows, 3 * per_segment);
        check_progress(calls, *r, 3, bytes, 30);
        EXPECT_EQ(r->bytes, std::filesystem::file_size(tmp.path() + "/all.out"));
    }

    // Only the middle segment's times, and half of its rows: the other segments are
    // pruned by their footers, the blocks outside by their headers, and the progress
    // still ends at 100% of the table.
    std::vector<export_progress> calls;
    export_options o;
    o.format = export_format::jsonl;
    o.from_ms = base + int64_t(per_segment) + 250;
    o.to_ms = base + int64_t(per_segment) + 749;
    o.progress = [&](const export_progress& p) { calls.push_back(p); };
    auto r = export_table_to_file(tmp.path(), "mixed", o, tmp.path() + "/mid.jsonl");
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(r->rows, 500u);
    EXPECT_EQ(r->scan.segments_skipped, 2u);
    check_progress(calls, *r, 3, bytes, 5);

    // A failed export (no such table) does not call it.
    calls.clear();
    EXPECT_FALSE(export_table_to_file(tmp.path(), "nope", o, tmp.path() + "/x.jsonl").ok());
    EXPECT_TRUE(calls.empty());
}

} // namespace
} // namespace sluice::storage

