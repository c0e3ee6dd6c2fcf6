#include "storage/segment_files.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

namespace sluice::storage {
namespace fs = std::filesystem;

bool parse_segment_name(const std::string& name, segment_file& out, bool with_corrupt) {
    std::string_view n = name;
    constexpr std::string_view seg = ".seg", bad = ".seg.corrupt";
    if (n.ends_with(seg)) {
        n.remove_suffix(seg.size());
    } else if (with_corrupt && n.ends_with(bad)) {
        n.remove_suffix(bad.size());
    } else {
        return false;
    }
    auto dash = n.rfind('-');
    if (dash == std::string_view::npos || dash == 0 || n.size() - dash - 1 < 6 ||
        n.size() - dash - 1 > 18)
        return false;
    uint64_t seq = 0;
    for (char c : n.substr(dash + 1)) {
        if (c < '0' || c > '9') return false;
        seq = seq * 10 + uint64_t(c - '0');
    }
    out.writer.assign(n.substr(0, dash));
    out.seq = seq;
    return true;
}

std::string segment_file_name(const std::string& writer, uint64_t seq) {
    char num[32];
    std::snprintf(num, sizeof num, "%06llu", static_cast<unsigned long long>(seq));
    return writer + "-" + num + ".seg";
}

static result<std::vector<segment_file>> scan_dir(const std::string& dir, bool with_corrupt) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec)
        return make_error(ec == std::errc::no_such_file_or_directory ? errc::not_found
                                                                      : errc::io_error,
                          "cannot list " + dir + ": " + ec.message());
    std::vector<segment_file> out;
    for (const auto& e : it) {
        segment_file f;
        if (!e.is_regular_file(ec) || !parse_segment_name(e.path().filename(), f, with_corrupt))
            continue;
        f.path = e.path().string();
        out.push_back(std::move(f));
    }
    std::sort(out.begin(), out.end(), [](const segment_file& a, const segment_file& b) {
        return a.writer != b.writer ? a.writer < b.writer : a.seq < b.seq;
    });
    return out;
}

result<std::vector<segment_file>> list_segments(const std::string& table_dir) {
    return scan_dir(table_dir, false);
}

result<uint64_t> next_segment_seq(const std::string& table_dir, const std::string& writer) {
    auto files = scan_dir(table_dir, true);
    if (!files) {
        if (files.err().code == errc::not_found) return uint64_t(1);
        return std::move(files).err();
    }
    uint64_t next = 1;
    for (const auto& f : *files)
        if (f.writer == writer) next = std::max(next, f.seq + 1);
    return next;
}

result<std::vector<std::string>> list_tables(const std::string& data_dir) {
    std::error_code ec;
    fs::directory_iterator it(data_dir, ec);
    if (ec)
        return make_error(ec == std::errc::no_such_file_or_directory ? errc::not_found
                                                                      : errc::io_error,
                          "cannot list data dir " + data_dir + ": " + ec.message());
    std::vector<std::string> out;
    for (const auto& e : it)
        if (e.is_directory(ec)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace sluice::storage
