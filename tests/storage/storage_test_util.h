#pragma once
// Helpers shared by the storage tests: a temp dir and a row model to compare against.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
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

using value = std::variant<int64_t, uint64_t, std::string>;
using row = std::vector<value>;

inline void push_row(column_batch& b, const row& r) {
    const auto& cols = b.schema().columns;
    for (size_t c = 0; c < cols.size(); ++c) {
        switch (cols[c].type) {
        case column_type::i64: b.push_i64(int(c), std::get<int64_t>(r[c])); break;
        case column_type::u64: b.push_u64(int(c), std::get<uint64_t>(r[c])); break;
        case column_type::u8: b.push_u8(int(c), uint8_t(std::get<uint64_t>(r[c]))); break;
        case column_type::f64: b.push_u64(int(c), std::get<uint64_t>(r[c])); break; // bits
        case column_type::string: b.push_string(int(c), std::get<std::string>(r[c])); break;
        }
    }
    b.end_row();
}

inline row row_at(const column_batch& b, uint32_t i) {
    row r;
    const auto& cols = b.schema().columns;
    for (size_t c = 0; c < cols.size(); ++c) {
        switch (cols[c].type) {
        case column_type::i64: r.emplace_back(b.i64_at(int(c), i)); break;
        case column_type::u64: r.emplace_back(b.u64_at(int(c), i)); break;
        case column_type::u8: r.emplace_back(uint64_t(b.u8_at(int(c), i))); break;
        case column_type::f64: r.emplace_back(b.u64_at(int(c), i)); break; // bits
        case column_type::string: r.emplace_back(std::string(b.string_at(int(c), i))); break;
        }
    }
    return r;
}

inline void append_rows(const column_batch& b, std::vector<row>& out) {
    for (uint32_t i = 0; i < b.rows(); ++i) out.push_back(row_at(b, i));
}

// An events-table row with predictable contents.
inline row event_row(uint64_t i, int64_t time_ms) {
    return {time_ms,
            uint64_t(i * 0x9e3779b97f4a7c15ull),
            uint64_t(~i * 0xc2b2ae3d27d4eb4full),
            "id-" + std::to_string(i),
            "user-" + std::to_string(i % 97),
            i % 3 == 0 ? std::string("click") : std::string("page_view"),
            "/products/" + std::to_string(i % 13),
            uint64_t(i % 5 == 0),
            "{\"user_id\":\"" + std::to_string(i % 97) + "\",\"n\":" + std::to_string(i) + "}",
            int64_t(time_ms - int64_t(i % 7))}; // max_time_ms
}

} // namespace sluice::storage::test
