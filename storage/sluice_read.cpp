// sluice-read: the offline reader. Reads a data dir directly, no daemon needed.
//   sluice-read DATA_DIR TABLE [--format jsonl|csv|parquet] [--from MS] [--to MS] [--out PATH]
//   sluice-read DATA_DIR TABLE --layout
//   sluice-read DATA_DIR --tables
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <string_view>

#include "storage/export.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"
#include "storage/table_reader.h"

namespace {

using namespace sluice::storage;

constexpr const char* usage_text =
    "usage: sluice-read DATA_DIR TABLE [--format jsonl|csv|parquet] [--from MS] [--to MS]\n"
    "                  [--out PATH]\n"
    "       sluice-read DATA_DIR TABLE --layout\n"
    "       sluice-read DATA_DIR --tables\n"
    "Exports the rows of TABLE whose time is in [--from, --to] (epoch ms, inclusive) to\n"
    "stdout or PATH (written whole, then renamed into place). --layout prints how the\n"
    "table is stored: bytes per column and encoding. --tables lists the tables.\n";

int usage(const char* why) {
    if (why) std::fprintf(stderr, "sluice-read: %s\n", why);
    std::fputs(usage_text, stderr);
    return 2;
}

bool parse_ms(const char* s, int64_t& out) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return false;
    out = v;
    return true;
}

int list(const std::string& data_dir) {
    auto tables = list_table_infos(data_dir);
    if (!tables) {
        std::fprintf(stderr, "sluice-read: %s\n", tables.err().message.c_str());
        return 1;
    }
    for (const auto& t : *tables) {
        std::printf("%s\t%llu rows\t%llu segments", t.name.c_str(),
                    static_cast<unsigned long long>(t.rows),
                    static_cast<unsigned long long>(t.segments));
        if (t.damaged_segments)
            std::printf("\t%llu damaged (the daemon's recovery repairs them at start)",
                        static_cast<unsigned long long>(t.damaged_segments));
        std::printf("\n");
    }
    return 0;
}

// Bytes per column as stored (chunk headers included), per encoding, over every block.
int layout(const std::string& data_dir, const std::string& table) {
    auto files = list_segments(data_dir + "/" + table);
    if (!files) {
        std::fprintf(stderr, "sluice-read: %s\n", files.err().message.c_str());
        return 1;
    }
    struct col {
        uint64_t stored = 0, raw = 0;
        std::map<std::string, uint64_t> encodings; // blocks per encoding/codec
    };
    std::vector<std::string> names;
    std::vector<col> cols;
    uint64_t rows = 0, blocks = 0, file_bytes = 0, payload = 0;
    for (const auto& f : *files) {
        auto rd = segment_reader::open(f.path);
        if (!rd) continue;
        auto& r = **rd;
        file_bytes += r.file_size();
        if (cols.empty()) {
            cols.resize(r.schema().columns.size());
            for (const auto& c : r.schema().columns) names.push_back(c.name);
        }
        while (r.next_block()) {
            auto chunks = r.chunk_infos();
            if (!chunks || chunks->size() != cols.size()) break;
            ++blocks;
            rows += r.block().rows;
            payload += r.block().payload_bytes;
            for (size_t c = 0; c < cols.size(); ++c) {
                const auto& ch = (*chunks)[c];
                cols[c].stored += format::chunk_header_bytes + ch.stored_len;
                cols[c].raw += ch.raw_len;
                std::string key = format::encoding_name(ch.enc);
                key += ch.cd == format::codec::zstd ? "+zstd" : ch.cd == format::codec::lz4 ? "+lz4" : "";
                ++cols[c].encodings[key];
            }
        }
    }
    double n = rows ? double(rows) : 1.0;
    std::printf("%s: %llu rows, %llu blocks, %llu segment bytes = %.2f bytes/row (payload %.2f, "
                "headers and padding %.2f)\n",
                table.c_str(), static_cast<unsigned long long>(rows),
                static_cast<unsigned long long>(blocks), static_cast<unsigned long long>(file_bytes),
                double(file_bytes) / n, double(payload) / n, double(file_bytes - payload) / n);
    std::printf("%-16s %12s %10s %10s  %s\n", "column", "stored", "bytes/row", "raw/row",
                "encodings (blocks)");
    for (size_t c = 0; c < cols.size(); ++c) {
        std::string enc;
        for (const auto& [k, v] : cols[c].encodings)
            enc += (enc.empty() ? "" : ", ") + k + " (" + std::to_string(v) + ")";
        std::printf("%-16s %12llu %10.2f %10.2f  %s\n", names[c].c_str(),
                    static_cast<unsigned long long>(cols[c].stored), double(cols[c].stored) / n,
                    double(cols[c].raw) / n, enc.c_str());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
        std::fputs("sluice-read: reads a sluice data dir without the daemon (tables, rows, "
                   "segment layout)\n",
                   stdout);
        std::fputs(usage_text, stdout);
        return 0;
    }
    if (argc == 2 && std::string_view(argv[1]) == "--version") {
        std::printf("sluice-read %s\n", SLUICE_VERSION);
        return 0;
    }
    if (argc < 3) return usage(nullptr);
    std::string data_dir = argv[1];
    if (std::string_view(argv[2]) == "--tables") {
        if (argc != 3) return usage("--tables takes no other arguments");
        return list(data_dir);
    }
    std::string table = argv[2];
    if (table.starts_with("-")) return usage(("unknown option " + table).c_str());
    if (argc == 4 && std::string_view(argv[3]) == "--layout") return layout(data_dir, table);
    export_options opt;
    std::string out_path;
    for (int i = 3; i < argc; ++i) {
        std::string_view a = argv[i];
        if (i + 1 >= argc) return usage(("missing value after " + std::string(a)).c_str());
        const char* v = argv[++i];
        if (a == "--format") {
            auto f = parse_export_format(v);
            if (!f) return usage("--format is jsonl, csv or parquet");
            opt.format = *f;
        } else if (a == "--from") {
            if (!parse_ms(v, opt.from_ms)) return usage("--from takes epoch milliseconds");
        } else if (a == "--to") {
            if (!parse_ms(v, opt.to_ms)) return usage("--to takes epoch milliseconds");
        } else if (a == "--out") {
            out_path = v;
            if (out_path.empty()) return usage("--out needs a path");
        } else {
            return usage(("unknown option " + std::string(a)).c_str());
        }
    }
    if (opt.format == export_format::parquet && out_path.empty() && ::isatty(STDOUT_FILENO))
        return usage("Parquet is binary: pass --out PATH or redirect stdout");

    auto r = out_path.empty() ? export_table(data_dir, table, opt, stdout)
                              : export_table_to_file(data_dir, table, opt, out_path);
    if (!r) {
        std::fprintf(stderr, "sluice-read: %s%s\n", r.err().message.c_str(),
                     r.err().code == sluice::errc::not_found
                         ? " (sluice-read DATA_DIR --tables lists the tables)"
                         : "");
        return 1;
    }
    if (r->scan.damaged_segments)
        std::fprintf(stderr, "sluice-read: %llu damaged segment(s): their rows after the damage "
                             "were not exported (the daemon's recovery repairs them at start)\n",
                     static_cast<unsigned long long>(r->scan.damaged_segments));
    if (r->invalid_utf8_values)
        std::fprintf(stderr, "sluice-read: %llu value(s) were not UTF-8; bad bytes became U+FFFD\n",
                     static_cast<unsigned long long>(r->invalid_utf8_values));
    if (!out_path.empty())
        std::fprintf(stderr, "sluice-read: %llu rows, %llu bytes to %s\n",
                     static_cast<unsigned long long>(r->rows),
                     static_cast<unsigned long long>(r->bytes), out_path.c_str());
    return 0;
}
