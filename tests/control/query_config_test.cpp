// Query definitions from JSON (control protocol, registry) and TOML ([[query]] tables),
// including docs/sluiced.toml itself.
#include "control/query_config.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace sluice::control;
using sluice::processing::agg_kind;
using sluice::processing::window_kind;

TEST(QueryConfig, JsonRoundTripsEveryKind) {
    for (const char* text : {
             R"j({"name":"a","window":"tumbling","size":"1m","group_by":["page"],"aggregates":["count"]})j",
             R"j({"name":"b","window":"hopping","size":"10m","slide":"1m","group_by":["metadata.referrer","event_type"],
                 "aggregates":["count","distinct(user_id)","quantile(metadata.latency_ms, 0.5, 0.99)"],
                 "filter":"event_type!=bot","watermark_delay":"2m","memory_mb":8})j",
             R"j({"name":"c","window":"session","gap":30000,"group_by":"user_id","aggregates":["sum(x) as total"]})j",
         }) {
        auto q = query_from_json(json::parse(text), 600000);
        ASSERT_TRUE(q) << q.err().message;
        auto again = query_from_json(query_to_json(*q), 1);
        ASSERT_TRUE(again) << again.err().message;
        EXPECT_EQ(*again, *q) << text;
    }
    auto b = query_from_json(json::parse(R"j({"name":"b","window":"hopping","size":"10m","slide":"1m"})j"), 5);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->window.kind, window_kind::hopping);
    EXPECT_EQ(b->window.slide_ms, 60000);
    EXPECT_EQ(b->watermark_delay_ms, 5); // the daemon's default
    ASSERT_EQ(b->aggregates.size(), 1u);
    EXPECT_EQ(b->aggregates[0].kind, agg_kind::count);
}

TEST(QueryConfig, ErrorsNameTheKeyAndTheFix) {
    auto err = [](const char* text) {
        auto q = query_from_json(json::parse(text), 0);
        return q ? std::string() : q.err().message;
    };
    EXPECT_NE(err(R"j({"window":"tumbling"})j").find("\"name\""), std::string::npos);
    EXPECT_NE(err(R"j({"name":"a b","size":"1m"})j").find("letters"), std::string::npos);
    EXPECT_NE(err(R"j({"name":"a"})j").find("window size"), std::string::npos);
    EXPECT_NE(err(R"j({"name":"a","window":"session"})j").find("gap"), std::string::npos);
    EXPECT_NE(err(R"j({"name":"a","window":"hopping","size":"1m"})j").find("slide"), std::string::npos);
    EXPECT_NE(err(R"j({"name":"a","size":"1m","colour":"red"})j").find("unknown key \"colour\""),
              std::string::npos);
    EXPECT_NE(err(R"j({"name":"a","size":"1 min"})j").find("duration"), std::string::npos);
    EXPECT_NE(err(R"j({"name":"a","size":"1m","aggregates":["p99(x)"]})j").find("unknown aggregate"),
              std::string::npos);
    EXPECT_NE(err(R"j({"name":"a","size":"1m","filter":"x"})j").find("FIELD=VALUE"), std::string::npos);
    // A window that is not a string (`window = 5` in sluiced.toml, or from a client) threw
    // nlohmann's type_error out of the parser (found by fuzz_config).
    EXPECT_NE(err(R"j({"name":"a","size":"1m","window":5})j").find("window must be"),
              std::string::npos);
    EXPECT_NE(err(R"j({"name":"a","size":"1m","window":["session"]})j").find("window must be"),
              std::string::npos);
}

TEST(QueryConfig, TomlTablesAndTheShippedExampleConfig) {
    auto t = toml::parse(R"t(
[[query]]
name = "views"
window = "tumbling"
size = "1m"
group_by = ["page"]

[[query]]
name = "legacy"
window_size_ms = 30000
group_by = "page"
)t");
    json j = toml_to_json(t);
    ASSERT_EQ(j["query"].size(), 2u);
    auto v = query_from_json(j["query"][0], 1);
    ASSERT_TRUE(v) << v.err().message;
    auto legacy = query_from_json(j["query"][1], 1);
    ASSERT_TRUE(legacy) << legacy.err().message;
    EXPECT_EQ(legacy->window.size_ms, 30000);

    // docs/sluiced.toml parses and its queries are valid.
    const char* src = std::getenv("SLUICE_SOURCE_ROOT");
    ASSERT_NE(src, nullptr);
    auto doc = toml::parse_file(std::string(src) + "/docs/sluiced.toml");
    json dj = toml_to_json(doc);
    ASSERT_TRUE(dj["query"].is_array());
    for (const auto& q : dj["query"]) {
        auto r = query_from_json(q, 600000);
        EXPECT_TRUE(r) << r.err().message;
    }
    auto ref = query_from_json(dj["query"][0], 600000);
    ASSERT_TRUE(ref);
    EXPECT_EQ(*ref, sluice::processing::reference_query());
}
