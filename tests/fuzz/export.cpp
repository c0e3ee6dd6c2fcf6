// Export of odd values (storage/export, storage/parquet_writer): the input is a schema
// (column types, nullability, names) and rows of any values (invalid UTF-8, quotes and
// line breaks, NaN and infinities, extreme integers, nulls). The rows are written as a
// segment and exported as JSON Lines, CSV and Parquet, and straight through
// parquet_writer with small row groups and pages. Every JSON line parses and holds the
// row's values; the CSV has one record per row of one field per column; Parquet starts
// and ends with its magic.
#include <bit>
#include <filesystem>
#include <variant>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "storage/export.h"
#include "storage/segment_writer.h"
#include "tests/fuzz/fuzz_target.h"

namespace sluice::fuzz {

namespace {

using storage::column_type;
using cell = std::variant<std::monostate, uint64_t, std::string>; // numbers as their bits

// Holds what open_memstream wrote, freed at scope end.
struct mem_file {
    mem_file() : f(open_memstream(&buf, &len)) {}
    ~mem_file() {
        if (f) std::fclose(f);
        std::free(buf);
    }
    std::string_view text() {
        std::fflush(f);
        return {buf, len};
    }
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f;
};

// Records and fields of RFC 4180 text with CRLF line ends; false when a record has a
// field count other than `fields` or a quote is left open.
bool csv_shape(std::string_view s, size_t fields, uint64_t& records) {
    records = 0;
    size_t n = 1;
    bool quoted = false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char ch = s[i];
        if (quoted) {
            if (ch == '"') {
                if (i + 1 < s.size() && s[i + 1] == '"') ++i;
                else quoted = false;
            }
        } else if (ch == '"') {
            quoted = true;
        } else if (ch == ',') {
            ++n;
        } else if (ch == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
            if (n != fields) return false;
            ++records;
            n = 1;
            ++i;
        }
    }
    return !quoted;
}

void check_jsonl(std::string_view text, const storage::table_schema& schema,
                 const std::vector<std::vector<cell>>& rows, bool plain_names) {
    size_t r = 0;
    for (size_t pos = 0; pos < text.size(); ++r) {
        size_t nl = text.find('\n', pos);
        SLUICE_FUZZ_CHECK(nl != std::string_view::npos);
        auto j = nlohmann::json::parse(text.substr(pos, nl - pos), nullptr, false);
        SLUICE_FUZZ_CHECK(!j.is_discarded() && j.is_object());
        SLUICE_FUZZ_CHECK(r < rows.size());
        for (size_t c = 0; plain_names && c < schema.columns.size(); ++c) {
            const auto& v = j.at(schema.columns[c].name);
            const cell& want = rows[r][c];
            if (std::holds_alternative<std::monostate>(want)) {
                SLUICE_FUZZ_CHECK(v.is_null());
                continue;
            }
            switch (schema.columns[c].type) {
            case column_type::i64:
                SLUICE_FUZZ_CHECK(v.is_number_integer() &&
                                  v.get<int64_t>() == int64_t(std::get<uint64_t>(want)));
                break;
            case column_type::u64:
            case column_type::u8:
                SLUICE_FUZZ_CHECK(v.is_number_unsigned() &&
                                  v.get<uint64_t>() == std::get<uint64_t>(want));
                break;
            case column_type::f64: {
                const double d = std::bit_cast<double>(std::get<uint64_t>(want));
                if (!std::isfinite(d)) SLUICE_FUZZ_CHECK(v.is_null());
                else SLUICE_FUZZ_CHECK(v.is_number() && v.get<double>() == d);
                break;
            }
            case column_type::string:
            case column_type::bytes: SLUICE_FUZZ_CHECK(v.is_string()); break;
            }
        }
        pos = nl + 1;
    }
    SLUICE_FUZZ_CHECK(r == rows.size());
}

} // namespace

void fuzz_export(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        log_set_level(log_level::error);
        return scratch_dir() + "/export";
    }();
    byte_reader in(data, size);
    storage::table_schema schema;
    schema.name = "t";
    const uint8_t shape = in.u8();
    const bool plain_names = (shape & 0x80) == 0;
    const size_t ncols = 1 + shape % 6;
    for (size_t c = 0; c < ncols; ++c) {
        const uint8_t t = in.u8();
        storage::column_def def{"c" + std::to_string(c), column_type(1 + t % 6), (t & 8) != 0};
        if (!plain_names) def.name = std::string(in.bytes(1 + in.u8() % 8));
        if (schema.time_column < 0 && def.type == column_type::i64 && !def.nullable && (t & 16))
            schema.time_column = int(c);
        schema.columns.push_back(std::move(def));
    }
    const uint8_t opts = in.u8();
    std::vector<std::vector<cell>> rows;
    for (uint32_t n = in.u8() % 64; n > 0 && !in.empty(); --n) {
        std::vector<cell>& row = rows.emplace_back();
        for (const auto& def : schema.columns) {
            const uint8_t k = in.u8();
            if (def.nullable && (k & 1)) {
                row.emplace_back(std::monostate{});
            } else if (storage::is_variable(def.type)) {
                row.emplace_back(std::string(in.bytes(k % 64)));
            } else if (def.type == column_type::u8) {
                row.emplace_back(uint64_t(in.u8()));
            } else if (k & 2) { // the extremes
                const uint64_t edges[] = {0, 1, uint64_t(INT64_MIN), uint64_t(INT64_MAX), UINT64_MAX,
                                          std::bit_cast<uint64_t>(std::nan("")),
                                          std::bit_cast<uint64_t>(-HUGE_VAL),
                                          std::bit_cast<uint64_t>(5e-324)};
                row.emplace_back(edges[(k >> 2) % std::size(edges)]);
            } else {
                row.emplace_back(in.u64());
            }
        }
    }

    auto push = [&](storage::column_batch& b, const std::vector<cell>& row) {
        for (size_t c = 0; c < row.size(); ++c) {
            const int ci = int(c);
            if (std::holds_alternative<std::monostate>(row[c])) b.push_null(ci);
            else if (auto* s = std::get_if<std::string>(&row[c])) b.push_string(ci, *s);
            else {
                const uint64_t v = std::get<uint64_t>(row[c]);
                switch (schema.columns[c].type) {
                case column_type::i64: b.push_i64(ci, int64_t(v)); break;
                case column_type::u64: b.push_u64(ci, v); break;
                case column_type::u8: b.push_u8(ci, uint8_t(v)); break;
                case column_type::f64: b.push_f64(ci, std::bit_cast<double>(v)); break;
                default: break;
                }
            }
        }
        b.end_row();
    };

    // Straight through parquet_writer, in small row groups and pages.
    storage::parquet_options popt;
    popt.zstd = opts & 1;
    popt.dictionary = opts & 2;
    popt.row_group_rows = 1 + (opts >> 2) % 8;
    popt.page_bytes = 16 + (opts >> 5) * 64;
    {
        mem_file out;
        auto pw = storage::parquet_writer::open(out.f, schema, popt);
        if (pw) {
            storage::column_batch b(schema, 8, 8 * 64, 64);
            for (const auto& row : rows) {
                push(b, row);
                if (b.full() || b.rows() == 8) {
                    SLUICE_FUZZ_CHECK((*pw)->append(b).ok());
                    b.clear();
                }
            }
            if (!b.empty()) SLUICE_FUZZ_CHECK((*pw)->append(b).ok());
            SLUICE_FUZZ_CHECK((*pw)->finish().ok());
            auto t = out.text();
            SLUICE_FUZZ_CHECK(t.size() >= 8 && t.substr(0, 4) == "PAR1" &&
                              t.substr(t.size() - 4) == "PAR1");
        }
    }

    // Through a segment and export_table, as sluice-read and sluicectl export do (a
    // writer that appended nothing leaves no segment, so no table to export).
    if (rows.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    storage::writer_config cfg;
    cfg.data_dir = dir;
    cfg.writer_name = "w0";
    cfg.rows_per_block = 1 + opts % 16;
    cfg.string_bytes_max = 16 * 64;
    cfg.row_string_bytes_max = 64;
    cfg.options.direct_io = false;
    auto w = storage::segment_writer::open(cfg, schema);
    if (!w) return; // names the format cannot hold: refused with a message
    for (const auto& row : rows) {
        push((*w)->batch(), row);
        (*w)->commit_row();
    }
    SLUICE_FUZZ_CHECK((*w)->close().ok());
    w.value().reset();
    for (auto fmt : {storage::export_format::jsonl, storage::export_format::csv,
                     storage::export_format::parquet}) {
        mem_file out;
        storage::export_options eo;
        eo.format = fmt;
        eo.parquet = popt;
        auto s = storage::export_table(dir, "t", eo, out.f);
        SLUICE_FUZZ_CHECK(s.ok());
        SLUICE_FUZZ_CHECK(s->rows == rows.size());
        auto text = out.text();
        if (fmt == storage::export_format::jsonl) {
            check_jsonl(text, schema, rows, plain_names);
        } else if (fmt == storage::export_format::csv) {
            uint64_t records = 0;
            SLUICE_FUZZ_CHECK(csv_shape(text, schema.columns.size(), records));
            SLUICE_FUZZ_CHECK(records == rows.size() + 1);
        } else {
            SLUICE_FUZZ_CHECK(text.size() >= 8 && text.substr(0, 4) == "PAR1");
        }
    }
}

} // namespace sluice::fuzz
