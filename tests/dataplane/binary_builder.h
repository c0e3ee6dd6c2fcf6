#pragma once
// A small docs/BINARY.md encoder for dataplane tests, written from the spec and
// independent of binary_parse: strings shared through the batch's table.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/binary_parse.h"

namespace sluice::dataplane::test {

inline constexpr int64_t binary_t0 = 1'740'754'800'000; // 2025-02-28T15:00:00Z

struct test_event {
    std::optional<int64_t> ts = binary_t0;
    std::optional<std::string> event_id,
        user_id = std::string("u1"), event_type = std::string("page_view"),
        page = std::string("/home"), metadata = std::string(R"({"ua":"curl"})");
};

// A small encoder written from the spec, independent of the parser. Strings are shared
// through a table; `raw_index` overrides a record's field index (bad indices).
struct batch_builder {
    std::vector<std::string> strings;
    std::map<std::string, uint32_t> index;
    std::vector<std::string> records;

    uint32_t intern(const std::optional<std::string>& s) {
        if (!s) return binary_absent;
        auto it = index.find(*s);
        if (it != index.end()) return it->second;
        strings.push_back(*s);
        return index[*s] = uint32_t(strings.size() - 1);
    }
    static void put(std::string& out, const void* p, size_t n) {
        out.append(static_cast<const char*>(p), n);
    }
    void add(const test_event& e, uint16_t extra_flags = 0,
             std::optional<uint32_t> page_index = {}) {
        std::string r;
        int64_t ts = e.ts.value_or(0);
        put(r, &ts, 8);
        const uint32_t idx[5] = {intern(e.event_id), intern(e.user_id), intern(e.event_type),
                                 page_index ? *page_index : intern(e.page), intern(e.metadata)};
        put(r, idx, sizeof idx);
        uint16_t flags = uint16_t((e.ts ? binary_flag_timestamp : 0) | extra_flags), zero = 0;
        put(r, &flags, 2);
        put(r, &zero, 2);
        records.push_back(r);
    }
    std::string build() const {
        std::string out("\xB1SLB", 4);
        out += char(1);
        out += char(0);
        uint16_t s = uint16_t(strings.size()), e = uint16_t(records.size()), zero = 0;
        put(out, &s, 2);
        put(out, &e, 2);
        put(out, &zero, 2);
        std::string data;
        std::vector<uint32_t> ends;
        for (const auto& str : strings) {
            data += str;
            ends.push_back(uint32_t(data.size()));
        }
        uint32_t b = uint32_t(data.size());
        put(out, &b, 4);
        put(out, ends.data(), ends.size() * 4);
        out += data;
        for (const auto& r : records)
            out += r;
        return out;
    }
};

} // namespace sluice::dataplane::test
