#include "processing/query.h"

#include <gtest/gtest.h>

#include "processing/query_runtime.h"
#include "tests/processing/processing_test_util.h"

using namespace sluice::processing;

TEST(Query, ParsesDurations) {
    EXPECT_EQ(parse_duration_ms("250ms").value(), 250);
    EXPECT_EQ(parse_duration_ms("30s").value(), 30000);
    EXPECT_EQ(parse_duration_ms("5m").value(), 300000);
    EXPECT_EQ(parse_duration_ms("2h").value(), 7200000);
    EXPECT_EQ(parse_duration_ms("1d").value(), 86400000);
    EXPECT_EQ(parse_duration_ms("1500").value(), 1500);
    EXPECT_FALSE(parse_duration_ms("1y"));
    EXPECT_FALSE(parse_duration_ms("s"));
    EXPECT_FALSE(parse_duration_ms("-5s"));
    EXPECT_EQ(format_duration(60000), "1m");
    EXPECT_EQ(format_duration(1500), "1500ms");
}

TEST(Query, ParsesAggregatesAndNamesTheirColumns) {
    auto count = parse_aggregate("count");
    ASSERT_TRUE(count);
    EXPECT_EQ(count->kind, agg_kind::count);
    EXPECT_EQ(aggregate_column_names(*count), std::vector<std::string>{"count"});
    auto sum = parse_aggregate(" sum(metadata.bytes) as total ");
    ASSERT_TRUE(sum) << sum.err().message;
    EXPECT_EQ(sum->kind, agg_kind::sum);
    EXPECT_EQ(sum->field, "metadata.bytes");
    EXPECT_EQ(aggregate_column_names(*sum), std::vector<std::string>{"total"});
    auto mean = parse_aggregate("avg(latency)");
    ASSERT_TRUE(mean);
    EXPECT_EQ(mean->kind, agg_kind::mean);
    EXPECT_EQ(aggregate_column_names(*mean), std::vector<std::string>{"mean_latency"});
    auto d = parse_aggregate("distinct(user_id, 12)");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->precision, 12u);
    auto q = parse_aggregate("quantile(metadata.latency_ms, 0.5, 0.99, 0.999)");
    ASSERT_TRUE(q) << q.err().message;
    EXPECT_EQ(aggregate_column_names(*q),
              (std::vector<std::string>{"p50_metadata_latency_ms", "p99_metadata_latency_ms",
                                        "p99_9_metadata_latency_ms"}));
    for (const char* text : {"count", "sum(x)", "min(metadata.y)", "max(z)", "mean(a)",
                             "distinct(user_id)", "distinct(u, 10)", "quantile(v, 0.5, 0.9)",
                             "sum(x) as s"}) {
        auto a = parse_aggregate(text);
        ASSERT_TRUE(a) << text;
        auto again = parse_aggregate(format_aggregate(*a));
        ASSERT_TRUE(again) << format_aggregate(*a);
        EXPECT_EQ(*again, *a) << text;
    }
    EXPECT_FALSE(parse_aggregate("median(x)"));
    EXPECT_FALSE(parse_aggregate("sum()"));
    EXPECT_FALSE(parse_aggregate("sum(a.b.c)"));
    EXPECT_FALSE(parse_aggregate("quantile(x)"));
    EXPECT_FALSE(parse_aggregate("quantile(x, 1.5)"));
    EXPECT_FALSE(parse_aggregate("distinct(x, 30)"));
    EXPECT_FALSE(parse_aggregate("sum(timestamp)"));
}

TEST(Query, ParsesFilters) {
    auto f = parse_filter("event_type=click");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->field, "event_type");
    EXPECT_EQ(f->value, "click");
    EXPECT_FALSE(f->negate);
    auto n = parse_filter("metadata.region!=eu");
    ASSERT_TRUE(n);
    EXPECT_TRUE(n->negate);
    EXPECT_EQ(n->field, "metadata.region");
    EXPECT_EQ(format_filter(*n), "metadata.region!=eu");
    EXPECT_FALSE(parse_filter("novalue"));
}

TEST(Query, ValidatesWithMessagesNamingTheFix) {
    query_def q = reference_query();
    EXPECT_TRUE(validate(q));
    auto bad = [](query_def d) {
        auto r = validate(d);
        return r ? std::string() : r.err().message;
    };
    query_def d = q;
    d.name = "events";
    EXPECT_NE(bad(d).find("reserved"), std::string::npos);
    d = q;
    d.name = "a/b";
    EXPECT_NE(bad(d).find("letters"), std::string::npos);
    d = q;
    d.window = {window_kind::hopping, 60000, 100, 0};
    EXPECT_NE(bad(d).find("64 windows"), std::string::npos);
    d.window = {window_kind::hopping, 60000, 70000, 0};
    EXPECT_NE(bad(d).find("slide"), std::string::npos);
    d = q;
    d.window = {window_kind::session, 0, 0, 0};
    EXPECT_NE(bad(d).find("gap"), std::string::npos);
    d = q;
    d.aggregates.clear();
    EXPECT_NE(bad(d).find("at least one aggregate"), std::string::npos);
    d = q;
    d.aggregates = {parse_aggregate("sum(x)").value(), parse_aggregate("sum(x)").value()};
    EXPECT_NE(bad(d).find("appears twice"), std::string::npos);
    d = q;
    d.group_by = {"a.b.c"};
    EXPECT_NE(bad(d).find("nesting"), std::string::npos);
}

TEST(Query, CompileResolvesFieldsThroughTheCatalog) {
    field_catalog catalog;
    query_def q = reference_query();
    q.group_by = {"page", "metadata.referrer"};
    q.aggregates = {parse_aggregate("count").value(), parse_aggregate("sum(metadata.bytes)").value(),
                    parse_aggregate("max(metadata.bytes)").value(), parse_aggregate("distinct(user_id)").value()};
    q.filter = parse_filter("region=eu").value();
    q.memory_bytes = 4 << 20;
    auto c = compile(q, catalog, 3, 0, 4096);
    ASSERT_TRUE(c) << c.err().message;
    EXPECT_EQ((*c)->group.size(), 2u);
    EXPECT_EQ((*c)->group[0].source, field_source::page);
    EXPECT_EQ((*c)->group[1].source, field_source::extra);
    EXPECT_EQ((*c)->values.size(), 2u); // metadata.bytes once, user_id
    EXPECT_EQ(catalog.count(), 0u);     // reserved, not published
    catalog.publish();
    ASSERT_EQ(catalog.count(), 3u);
    EXPECT_EQ(catalog.path_of(0), "metadata.referrer");
    EXPECT_EQ(catalog.head_of(0), "metadata");
    EXPECT_EQ(catalog.tail_of(0), "referrer");
    EXPECT_EQ(catalog.path_of(2), "region");
    EXPECT_TRUE(catalog.tail_of(2).empty());
    EXPECT_EQ((*c)->group_columns, (std::vector<std::string>{"page", "metadata_referrer"}));
    EXPECT_EQ((*c)->value_columns, (std::vector<std::string>{"count", "sum_metadata_bytes",
                                                              "max_metadata_bytes", "distinct_user_id"}));
    // A query that needs too much state per cell for its memory is refused.
    q.aggregates = {parse_aggregate("distinct(user_id, 16)").value()};
    q.memory_bytes = 1 << 20;
    auto big = compile(q, catalog, 4, 0, 4096);
    ASSERT_FALSE(big);
    EXPECT_NE(big.err().message.find("raise its memory"), std::string::npos);
}
