#pragma once
// Helpers shared by the storage tests: a temp dir and a row model to compare against.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "storage/column_batch.h"
#include "storage/schema.h"

namespace sluice::storage::test {

// A fresh directory under /var/tmp (disk-backed, so O_DIRECT usually works), or under
// `base` when given; removed at destruction.
class temp_dir {
  public:
    explicit temp_dir(const std::string& base = "/var/tmp") {
        std::string tmpl = base + "/sluice-storage-XXXXXX";
        char* p = ::mkdtemp(tmpl.data());
        EXPECT_NE(p, nullptr) << "mkdtemp in " << base;
        _path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(_path, ec);
    }
    const std::string& path() const { return _path; }

  private:
    std::string _path;
};

// A cell: null (monostate), an i64, a u64/u8, or string/bytes.
// A tmpfs of `size` (e.g. "1m") mounted on a fresh directory: a small disk that fills
// up. Needs CAP_SYS_ADMIN (CI runs as root); ok() is false without it.
class tmpfs_mount {
  public:
    explicit tmpfs_mount(const std::string& size) {
        std::string tmpl = "/tmp/sluice-tmpfs-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) return;
        _path = tmpl;
        std::string opts = "size=" + size + ",mode=0700";
        if (::mount("tmpfs", _path.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
            _mounted = true;
        } else {
            _error = std::strerror(errno);
        }
    }
    ~tmpfs_mount() {
        if (_mounted) ::umount2(_path.c_str(), MNT_DETACH);
        if (!_path.empty()) ::rmdir(_path.c_str());
    }
    bool ok() const { return _mounted; }
    const std::string& error() const { return _error; }
    const std::string& path() const { return _path; }

  private:
    std::string _path;
    std::string _error;
    bool _mounted = false;
};

// Fills the filesystem at `dir` with a file `name`, leaving about `leave` bytes free.
inline void fill_disk(const std::string& dir, const std::string& name, size_t leave) {
    std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::vector<char> chunk(4096, 'f');
    for (;;) {
        auto space = std::filesystem::space(dir);
        if (space.available <= leave + chunk.size()) break;
        if (std::fwrite(chunk.data(), 1, chunk.size(), f) != chunk.size()) break;
        std::fflush(f);
    }
    std::fclose(f);
}

using value = std::variant<std::monostate, int64_t, uint64_t, std::string>;
using row = std::vector<value>;

// With `at`: a column that declares references is appended with those positions
// (column_batch::push_string_at), as the worker appends events.raw.
inline void push_row(column_batch& b, const row& r, const uint16_t* at = nullptr) {
    const auto& cols = b.schema().columns;
    for (size_t c = 0; c < cols.size(); ++c) {
        if (std::holds_alternative<std::monostate>(r[c])) {
            b.push_null(int(c));
            continue;
        }
        if (at != nullptr && !cols[c].refs.empty()) {
            b.push_string_at(int(c), std::get<std::string>(r[c]), at);
            continue;
        }
        switch (cols[c].type) {
        case column_type::i64: b.push_i64(int(c), std::get<int64_t>(r[c])); break;
        case column_type::u64: b.push_u64(int(c), std::get<uint64_t>(r[c])); break;
        case column_type::u8: b.push_u8(int(c), uint8_t(std::get<uint64_t>(r[c]))); break;
        case column_type::f64: b.push_f64(int(c), std::bit_cast<double>(std::get<uint64_t>(r[c]))); break; // bits
        case column_type::string:
        case column_type::bytes: b.push_string(int(c), std::get<std::string>(r[c])); break;
        }
    }
    b.end_row();
}

inline row row_at(const column_batch& b, uint32_t i) {
    row r;
    const auto& cols = b.schema().columns;
    for (size_t c = 0; c < cols.size(); ++c) {
        if (b.is_null(int(c), i)) {
            r.emplace_back(std::monostate{});
            continue;
        }
        switch (cols[c].type) {
        case column_type::i64: r.emplace_back(b.i64_at(int(c), i)); break;
        case column_type::u64: r.emplace_back(b.u64_at(int(c), i)); break;
        case column_type::u8: r.emplace_back(uint64_t(b.u8_at(int(c), i))); break;
        case column_type::f64: r.emplace_back(std::bit_cast<uint64_t>(b.f64_at(int(c), i))); break; // bits
        case column_type::string:
        case column_type::bytes: r.emplace_back(std::string(b.string_at(int(c), i))); break;
        }
    }
    return r;
}

inline void append_rows(const column_batch& b, std::vector<row>& out) {
    for (uint32_t i = 0; i < b.rows(); ++i) out.push_back(row_at(b, i));
}

// An events-table row with predictable contents: every third has no event_id, and raw
// holds the other fields as JSON (as the worker stores them).
inline row event_row(uint64_t i, int64_t time_ms) {
    std::string user = "user-" + std::to_string(i % 97);
    std::string type = i % 3 == 0 ? "click" : "page_view";
    std::string page = "/products/" + std::to_string(i % 13);
    value id = i % 3 == 1 ? value(std::monostate{}) : value("id-" + std::to_string(i));
    std::string raw = "{";
    if (!std::holds_alternative<std::monostate>(id))
        raw += "\"event_id\":\"" + std::get<std::string>(id) + "\",";
    raw += "\"user_id\":\"" + user + "\",\"event_type\":\"" + type + "\",\"timestamp\":" +
           std::to_string(time_ms) + ",\"page\":\"" + page + "\",\"n\":" + std::to_string(i) + "}";
    return {time_ms, id, user, type, page, uint64_t(i % 5 == 0), raw,
            int64_t(time_ms - int64_t(i % 7))}; // max_time_ms
}

} // namespace sluice::storage::test
