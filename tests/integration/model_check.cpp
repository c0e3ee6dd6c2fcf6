#include "tests/integration/model_check.h"

#include <gtest/gtest.h>

namespace sluice::testing {

void expect_model_counters(const json& totals, const json& want) {
    for (const char* k : {"events_received", "events_accepted", "duplicates", "late_events",
                          "dead_letters"})
        EXPECT_EQ(totals[k], want[k]) << k;
    for (auto& [reason, n] : want["dead_letters_by_reason"].items())
        EXPECT_EQ(totals["dead_letters_by_reason"][reason], n) << reason;
}

void expect_model_store(const std::string& data_dir, const std::string& query_table,
                        const expected_outcome& want) {
    stored_outcome got = read_store(data_dir, query_table);
    EXPECT_EQ(got.events.size(), want.events.size());
    EXPECT_TRUE(got.events == want.events) << "events table differs from the expected rows";
    EXPECT_EQ(got.dead_letters.size(), want.dead_letters.size());
    EXPECT_TRUE(got.dead_letters == want.dead_letters) << "dead_letters differ";
    EXPECT_EQ(got.windows_csv.size(), want.windows_csv.size());
    EXPECT_TRUE(got.windows_csv == want.windows_csv) << "window rows differ";
}

} // namespace sluice::testing
