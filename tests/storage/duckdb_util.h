#pragma once
// DuckDB from npm (@duckdb/node-api, installed by scripts/setup-duckdb) run through
// Node.js and tests/storage/duckdb_query.cjs: the tests read sluice's exports with it.
// meson passes NODE and DUCKDB_QUERY in the environment.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::test {

inline std::string duckdb_shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Runs the statements; one JSON result per statement ({"columns","types","rows"}).
// A failing run or a missing result is a test failure.
inline std::vector<nlohmann::json> duckdb(const std::vector<std::string>& sql) {
    const char* node = std::getenv("NODE");
    const char* script = std::getenv("DUCKDB_QUERY");
    std::string cmd = std::string(node && *node ? node : "node") + " " +
                      duckdb_shell_quote(script ? script : "");
    for (const auto& s : sql) cmd += " " + duckdb_shell_quote(s);
    cmd += " 2>&1";
    std::vector<nlohmann::json> out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    std::string text;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    int st = ::pclose(p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "duckdb failed: " << text;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t e = text.find('\n', pos);
        if (e == std::string::npos) e = text.size();
        auto j = nlohmann::json::parse(text.substr(pos, e - pos), nullptr, false);
        if (!j.is_discarded()) out.push_back(j);
        pos = e + 1;
    }
    EXPECT_EQ(out.size(), sql.size()) << text;
    return out;
}

// count(*) of a FROM clause, -1 when DuckDB gave no answer.
inline int64_t duckdb_count(const std::string& from_clause) {
    auto r = duckdb({"SELECT count(*) FROM " + from_clause});
    if (r.size() != 1 || !r[0].contains("rows")) return -1;
    const auto& v = r[0]["rows"][0][0];
    return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

// Whether DuckDB loads; why not, when it does not.
inline bool duckdb_available(std::string& why) {
    const char* node = std::getenv("NODE");
    const char* script = std::getenv("DUCKDB_QUERY");
    if (!node || !*node || !script) {
        why = "NODE or DUCKDB_QUERY not set (run via meson test; install nodejs)";
        return false;
    }
    std::string dir = std::filesystem::path(script).parent_path().string();
    std::string cmd = "cd " + duckdb_shell_quote(dir) + " && " + node +
                      " -e \"require('@duckdb/node-api')\" 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) {
        why = "DuckDB for Node.js is not installed: run scripts/setup-duckdb";
        return false;
    }
    return true;
}

} // namespace sluice::test
