#include "storage/export.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "storage/segment_files.h"
#include "storage/segment_reader.h"
#include "storage/text_format.h"

namespace sluice::storage {
namespace {

bool same_schema(const table_schema& a, const table_schema& b) {
    if (a.columns.size() != b.columns.size() || a.time_column != b.time_column) return false;
    for (size_t c = 0; c < a.columns.size(); ++c)
        if (a.columns[c].name != b.columns[c].name || a.columns[c].type != b.columns[c].type ||
            a.columns[c].nullable != b.columns[c].nullable)
            return false;
    return true;
}

void append_number(std::string& out, const column_batch& b, int c, uint32_t r) {
    char buf[32];
    const column_type t = b.schema().columns[c].type;
    // Doubles in their shortest form that reads back exactly.
    auto res = t == column_type::i64   ? std::to_chars(buf, buf + sizeof buf, b.i64_at(c, r))
               : t == column_type::f64 ? std::to_chars(buf, buf + sizeof buf, b.f64_at(c, r))
                                       : std::to_chars(buf, buf + sizeof buf, b.u64_at(c, r));
    out.append(buf, size_t(res.ptr - buf));
}

// Appends the batch's rows as JSON Lines or CSV; counts values that needed UTF-8 repair.
void format_rows(std::string& out, const column_batch& b, bool csv, uint64_t& repaired) {
    const auto& cols = b.schema().columns;
    std::string fixed;
    for (uint32_t r = 0; r < b.rows(); ++r) {
        if (!csv) {
            repaired += append_json_row(out, b, r);
            out += '\n';
            continue;
        }
        for (size_t c = 0; c < cols.size(); ++c) {
            if (c) out += ',';
            // A double that is not finite (NaN: a window without a number) has no CSV
            // number: it is written as null (an empty field).
            if (b.is_null(int(c), r) ||
                (cols[c].type == column_type::f64 && !std::isfinite(b.f64_at(int(c), r))))
                continue;
            if (!is_variable(cols[c].type)) {
                append_number(out, b, int(c), r);
                continue;
            }
            std::string_view s = b.string_at(int(c), r);
            if (text::valid_utf8(s)) {
                text::append_csv_field(out, s);
            } else {
                ++repaired;
                fixed.clear();
                text::append_utf8(fixed, s);
                text::append_csv_field(out, fixed);
            }
        }
        out += "\r\n";
    }
}

result<void> write_all(std::FILE* out, const std::string& text) {
    if (!text.empty() && std::fwrite(text.data(), 1, text.size(), out) != text.size())
        return make_error(errc::io_error, std::string("export: write failed: ") + std::strerror(errno));
    return ok_result();
}

} // namespace

uint64_t append_json_row(std::string& out, const column_batch& b, uint32_t r, int skip) {
    const auto& cols = b.schema().columns;
    uint64_t repaired = 0;
    out += '{';
    bool first = true;
    for (size_t c = 0; c < cols.size(); ++c) {
        if (int(c) == skip) continue;
        if (!first) out += ',';
        first = false;
        text::append_json_string(out, cols[c].name);
        out += ':';
        // A double that is not finite (NaN: a window without a number) has no JSON
        // number: it is written as null.
        if (b.is_null(int(c), r) ||
            (cols[c].type == column_type::f64 && !std::isfinite(b.f64_at(int(c), r)))) {
            out += "null";
            continue;
        }
        if (!is_variable(cols[c].type)) {
            append_number(out, b, int(c), r);
            continue;
        }
        if (!text::append_json_string(out, b.string_at(int(c), r))) ++repaired;
    }
    out += '}';
    return repaired;
}

std::optional<export_format> parse_export_format(std::string_view name) {
    if (name == "jsonl") return export_format::jsonl;
    if (name == "csv") return export_format::csv;
    if (name == "parquet") return export_format::parquet;
    return std::nullopt;
}

result<table_schema> read_table_schema(const std::string& data_dir, const std::string& table) {
    auto files = list_segments(data_dir + "/" + table);
    if (!files) {
        if (files.err().code == errc::not_found)
            return make_error(errc::not_found, "no table '" + table + "' in " + data_dir);
        return std::move(files).err();
    }
    for (const auto& f : *files) {
        auto rd = segment_reader::open(f.path);
        if (rd) return (*rd)->schema();
    }
    return make_error(errc::not_found, "table '" + table + "' in " + data_dir +
                                           " has no readable segment");
}

result<export_summary> export_table(const std::string& data_dir, const std::string& table,
                                    const export_options& options, std::FILE* out) {
    auto schema = read_table_schema(data_dir, table);
    if (!schema) return std::move(schema).err();
    export_summary sum;
    const bool parquet = options.format == export_format::parquet;
    const bool csv = options.format == export_format::csv;
    std::unique_ptr<parquet_writer> pq;
    if (parquet) {
        auto w = parquet_writer::open(out, *schema, options.parquet);
        if (!w) return std::move(w).err();
        pq = std::move(w.value());
    } else if (csv) {
        std::string header;
        for (size_t c = 0; c < schema->columns.size(); ++c) {
            if (c) header += ',';
            text::append_csv_field(header, schema->columns[c].name);
        }
        header += "\r\n";
        SLUICE_TRY(write_all(out, header));
        sum.bytes += header.size();
    }
    // Text is formatted in the scan's parallel stage, one string per slot, and written
    // in order; Parquet buffers rows in order (its pages are written per row group).
    std::vector<std::string> text_of(scan_slots());
    std::vector<uint64_t> repaired_of(scan_slots(), 0);
    result<void> failed = ok_result();
    auto transform = [&](const column_batch& b, size_t slot) {
        if (parquet) return;
        text_of[slot].clear();
        repaired_of[slot] = 0;
        format_rows(text_of[slot], b, csv, repaired_of[slot]);
    };
    auto deliver = [&](const column_batch& b, size_t slot) {
        if (!failed) return;
        if (!same_schema(b.schema(), *schema)) {
            failed = make_error(errc::unsupported,
                                "export: segments of table " + table + " have different schemas");
            return;
        }
        sum.rows += b.rows();
        if (pq) {
            failed = pq->append(b);
            return;
        }
        sum.bytes += text_of[slot].size();
        sum.invalid_utf8_values += repaired_of[slot];
        failed = write_all(out, text_of[slot]);
    };
    scan_progress last{};
    std::function<void(const scan_progress&)> progress;
    if (options.progress)
        progress = [&](const scan_progress& p) {
            last = p;
            // The scan's own last call comes before Parquet's final row group and footer
            // are written: that one is reported below, once the output is complete.
            if (!failed || p.segments_done == p.segments_total) return;
            options.progress({p, sum.rows, pq ? pq->bytes() : sum.bytes});
        };
    auto scan = scan_table_parallel(data_dir, table, options.from_ms, options.to_ms,
                                    {transform, deliver, progress});
    if (!scan) return std::move(scan).err();
    if (!failed) return std::move(failed).err();
    sum.scan = *scan;
    if (pq) {
        SLUICE_TRY(pq->finish());
        sum.bytes = pq->bytes();
        sum.invalid_utf8_values = pq->invalid_utf8_values();
    } else if (std::fflush(out) != 0) {
        return make_error(errc::io_error, std::string("export: write failed: ") + std::strerror(errno));
    }
    if (options.progress) options.progress({last, sum.rows, sum.bytes});
    return sum;
}

result<export_summary> export_table_to_file(const std::string& data_dir, const std::string& table,
                                            const export_options& options,
                                            const std::string& path) {
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
        return make_error(errc::io_error, "cannot create " + tmp + ": " + std::strerror(errno) +
                                              " (check the directory of --out)");
    auto r = export_table(data_dir, table, options, f);
    bool synced = r && ::fsync(::fileno(f)) == 0;
    int err = errno;
    std::fclose(f);
    if (!r || !synced) {
        ::unlink(tmp.c_str());
        if (!r) return r;
        return make_error(errc::io_error, "cannot sync " + tmp + ": " + std::strerror(err));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        err = errno;
        ::unlink(tmp.c_str());
        return make_error(errc::io_error, "cannot rename " + tmp + " to " + path + ": " +
                                              std::strerror(err));
    }
    return r;
}

} // namespace sluice::storage
