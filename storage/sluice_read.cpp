// sluice-read: the offline reader. Reads a data dir directly, no daemon needed.
//   sluice-read DATA_DIR TABLE [--format jsonl|csv] [--from MS] [--to MS]
//   sluice-read DATA_DIR --tables
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "storage/table_reader.h"

namespace {

using namespace sluice::storage;

constexpr const char* usage_text =
    "usage: sluice-read DATA_DIR TABLE [--format jsonl|csv] [--from MS] [--to MS]\n"
    "       sluice-read DATA_DIR --tables\n"
    "Prints the rows of TABLE whose time is in [--from, --to] (epoch ms, inclusive).\n";

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

// Strings are bytes; JSON needs UTF-8, so invalid sequences print as U+FFFD.
void put_json_string(std::string& out, std::string_view s) {
    out += nlohmann::json(std::string(s)).dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace);
}

// RFC 4180: quote a field holding a comma, quote, CR or LF; double the quotes inside.
void put_csv_field(std::string& out, std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
        out += s;
        return;
    }
    out += '"';
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

void put_value(std::string& out, const column_batch& b, int c, uint32_t r, bool json) {
    switch (b.schema().columns[c].type) {
    case column_type::i64: out += std::to_string(b.i64_at(c, r)); break;
    case column_type::u64: out += std::to_string(b.u64_at(c, r)); break;
    case column_type::u8: out += std::to_string(unsigned(b.u8_at(c, r))); break;
    case column_type::f64: {
        double v = b.f64_at(c, r);
        if (std::isfinite(v)) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.17g", v);
            out += buf;
        } else {
            out += json ? "null" : "";
        }
        break;
    }
    case column_type::string:
        if (json) {
            put_json_string(out, b.string_at(c, r));
        } else {
            put_csv_field(out, b.string_at(c, r));
        }
        break;
    }
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
            std::printf("\t%llu damaged (run recovery)",
                        static_cast<unsigned long long>(t.damaged_segments));
        std::printf("\n");
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage(nullptr);
    std::string data_dir = argv[1];
    if (std::string_view(argv[2]) == "--tables") {
        if (argc != 3) return usage("--tables takes no other arguments");
        return list(data_dir);
    }
    std::string table = argv[2];
    if (table.starts_with("-")) return usage(("unknown option " + table).c_str());
    bool csv = false;
    int64_t from = std::numeric_limits<int64_t>::min();
    int64_t to = std::numeric_limits<int64_t>::max();
    for (int i = 3; i < argc; ++i) {
        std::string_view a = argv[i];
        if (i + 1 >= argc) return usage(("missing value after " + std::string(a)).c_str());
        const char* v = argv[++i];
        if (a == "--format") {
            if (std::string_view(v) == "csv") {
                csv = true;
            } else if (std::string_view(v) != "jsonl") {
                return usage("--format is jsonl or csv");
            }
        } else if (a == "--from") {
            if (!parse_ms(v, from)) return usage("--from takes epoch milliseconds");
        } else if (a == "--to") {
            if (!parse_ms(v, to)) return usage("--to takes epoch milliseconds");
        } else {
            return usage(("unknown option " + std::string(a)).c_str());
        }
    }

    std::string out;
    bool header_done = false;
    auto r = scan_table(data_dir, table, from, to, [&](const column_batch& b) {
        const auto& cols = b.schema().columns;
        if (csv && !header_done) {
            for (size_t c = 0; c < cols.size(); ++c) {
                if (c) out += ',';
                put_csv_field(out, cols[c].name);
            }
            out += "\r\n";
            header_done = true;
        }
        for (uint32_t row = 0; row < b.rows(); ++row) {
            if (!csv) out += '{';
            for (size_t c = 0; c < cols.size(); ++c) {
                if (c) out += ',';
                if (!csv) {
                    put_json_string(out, cols[c].name);
                    out += ':';
                }
                put_value(out, b, int(c), row, !csv);
            }
            out += csv ? "\r\n" : "}\n";
            if (out.size() >= (1u << 20)) {
                std::fwrite(out.data(), 1, out.size(), stdout);
                out.clear();
            }
        }
    });
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (!r) {
        std::fprintf(stderr, "sluice-read: %s%s\n", r.err().message.c_str(),
                     r.err().code == sluice::errc::not_found
                         ? " (sluice-read DATA_DIR --tables lists the tables)"
                         : "");
        return 1;
    }
    if (std::fflush(stdout) != 0) {
        std::fprintf(stderr, "sluice-read: write error: %s\n", std::strerror(errno));
        return 1;
    }
    return 0;
}
