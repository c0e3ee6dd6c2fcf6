#include "storage/export.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
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
    char buf[24];
    auto res = b.schema().columns[c].type == column_type::i64
                   ? std::to_chars(buf, buf + sizeof buf, b.i64_at(c, r))
                   : std::to_chars(buf, buf + sizeof buf, b.u64_at(c, r));
    out.append(buf, size_t(res.ptr - buf));
}

// Rows to JSON Lines or CSV text, flushed to the file every ~1 MiB.
class text_export {
  public:
    text_export(std::FILE* out, bool csv, export_summary& sum) : _out(out), _csv(csv), _sum(sum) {}

    void header(const table_schema& s) {
        if (!_csv) return;
        for (size_t c = 0; c < s.columns.size(); ++c) {
            if (c) _buf += ',';
            text::append_csv_field(_buf, s.columns[c].name);
        }
        _buf += "\r\n";
    }

    result<void> rows(const column_batch& b) {
        const auto& cols = b.schema().columns;
        for (uint32_t r = 0; r < b.rows(); ++r) {
            if (!_csv) _buf += '{';
            for (size_t c = 0; c < cols.size(); ++c) {
                if (c) _buf += ',';
                if (!_csv) {
                    text::append_json_string(_buf, cols[c].name);
                    _buf += ':';
                }
                if (b.is_null(int(c), r)) {
                    if (!_csv) _buf += "null";
                    continue;
                }
                if (!is_variable(cols[c].type)) {
                    append_number(_buf, b, int(c), r);
                    continue;
                }
                std::string_view s = b.string_at(int(c), r);
                if (!_csv) {
                    if (!text::append_json_string(_buf, s)) ++_sum.invalid_utf8_values;
                } else if (text::valid_utf8(s)) {
                    text::append_csv_field(_buf, s);
                } else {
                    ++_sum.invalid_utf8_values;
                    _fixed.clear();
                    text::append_utf8(_fixed, s);
                    text::append_csv_field(_buf, _fixed);
                }
            }
            _buf += _csv ? "\r\n" : "}\n";
            if (_buf.size() >= (1u << 20)) SLUICE_TRY(flush());
        }
        return ok_result();
    }

    result<void> flush() {
        if (!_buf.empty() && std::fwrite(_buf.data(), 1, _buf.size(), _out) != _buf.size())
            return make_error(errc::io_error, std::string("export: write failed: ") + std::strerror(errno));
        _sum.bytes += _buf.size();
        _buf.clear();
        return ok_result();
    }

  private:
    std::FILE* _out;
    bool _csv;
    export_summary& _sum;
    std::string _buf, _fixed;
};

} // namespace

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
    std::unique_ptr<parquet_writer> pq;
    std::optional<text_export> txt;
    if (options.format == export_format::parquet) {
        auto w = parquet_writer::open(out, *schema, options.parquet);
        if (!w) return std::move(w).err();
        pq = std::move(w.value());
    } else {
        txt.emplace(out, options.format == export_format::csv, sum);
        txt->header(*schema);
    }
    result<void> failed = ok_result();
    auto scan = scan_table(data_dir, table, options.from_ms, options.to_ms,
                           [&](const column_batch& b) {
                               if (!failed) return;
                               if (!same_schema(b.schema(), *schema)) {
                                   failed = make_error(errc::unsupported,
                                                       "export: segments of table " + table +
                                                           " have different schemas");
                                   return;
                               }
                               sum.rows += b.rows();
                               failed = pq ? pq->append(b) : txt->rows(b);
                           });
    if (!scan) return std::move(scan).err();
    if (!failed) return std::move(failed).err();
    sum.scan = *scan;
    if (pq) {
        SLUICE_TRY(pq->finish());
        sum.bytes = pq->bytes();
        sum.invalid_utf8_values = pq->invalid_utf8_values();
    } else {
        SLUICE_TRY(txt->flush());
        if (std::fflush(out) != 0)
            return make_error(errc::io_error, std::string("export: write failed: ") + std::strerror(errno));
    }
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
