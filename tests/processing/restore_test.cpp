// processing/restore: the dedup filters reloaded from the events table at a restart.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "processing/identity.h"
#include "processing/restore.h"
#include "storage/schema.h"
#include "storage/segment_writer.h"
#include "tests/processing/processing_test_util.h"

namespace sluice::processing {
namespace {

namespace ev = storage::events_col;

struct stored_event {
    std::string raw, event_id; // event_id empty: none
    int64_t time_ms;
    identity id() const {
        return event_id.empty() ? identity_of_bytes(raw) : identity_of_event_id(event_id);
    }
};

// Every identity stored at or after the cutoff lands in the filter of the worker that
// owns it, and nothing else does; the blocks (here 512 rows) go in per worker in bursts.
TEST(Restore, ReloadDedupPutsEachStoredIdentityInItsWorkersFilter) {
    testing::temp_dir dir("restore");
    constexpr int rows = 5000;
    constexpr int64_t t0 = 1740754800000;
    std::vector<stored_event> events;
    for (int i = 0; i < rows; ++i) {
        stored_event e;
        e.time_ms = t0 + int64_t(i) * 1000;
        e.raw = "{\"n\":" + std::to_string(i) + "}";
        if (i % 3 == 0) e.event_id = "e-" + std::to_string(i);
        events.push_back(e);
    }
    {
        storage::writer_config cfg;
        cfg.data_dir = dir.path;
        cfg.writer_name = "w0";
        cfg.rows_per_block = 512;
        auto w = storage::segment_writer::open(cfg, storage::events_schema());
        ASSERT_TRUE(w) << w.err().message;
        for (const auto& e : events) {
            auto& b = (*w)->batch();
            b.push_i64(ev::event_time_ms, e.time_ms);
            if (e.event_id.empty()) {
                b.push_null(ev::event_id);
            } else {
                b.push_string(ev::event_id, e.event_id);
            }
            b.push_string(ev::user_id, "u");
            b.push_string(ev::event_type, "click");
            b.push_string(ev::page, "/");
            b.push_u8(ev::late, 0);
            b.push_string(ev::raw, e.raw);
            b.push_i64(ev::max_time_ms, e.time_ms);
            b.end_row();
            (*w)->commit_row();
        }
        auto closed = (*w)->close();
        ASSERT_TRUE(closed) << closed.err().message;
    }
    const int64_t max_ms = events.back().time_ms;
    const int64_t cutoff = max_ms - 3000 * 1000; // rows 1999.. are inside
    constexpr uint32_t workers = 3;
    std::vector<std::unique_ptr<dedup_filter>> filters;
    std::vector<dedup_filter*> ptrs;
    for (uint32_t w = 0; w < workers; ++w) {
        filters.push_back(std::make_unique<dedup_filter>(1 << 20, 24 * 3600 * 1000));
        ptrs.push_back(filters.back().get());
    }
    auto loaded = reload_dedup(dir.path, cutoff, max_ms, ptrs);
    ASSERT_TRUE(loaded) << loaded.err().message;
    EXPECT_EQ(*loaded, uint64_t(rows - 1999));
    uint64_t tracked = 0;
    for (auto* f : ptrs)
        tracked += f->tracked();
    EXPECT_EQ(tracked, uint64_t(rows - 1999));
    int duplicates = 0, accepted = 0;
    for (int i = 0; i < rows; ++i) {
        const identity id = events[i].id();
        const uint32_t owner = owner_worker(id, workers);
        // Not in another worker's filter...
        const uint32_t other = (owner + 1) % workers;
        EXPECT_EQ(ptrs[other]->check_and_insert(id, events[i].time_ms, max_ms),
                  dedup_verdict::accepted)
            << i;
        // ...and in its own when it was stored at or after the cutoff.
        const dedup_verdict v = ptrs[owner]->check_and_insert(id, events[i].time_ms, max_ms);
        EXPECT_EQ(v,
                  events[i].time_ms >= cutoff ? dedup_verdict::duplicate : dedup_verdict::accepted)
            << i;
        duplicates += v == dedup_verdict::duplicate;
        accepted += v == dedup_verdict::accepted;
    }
    EXPECT_EQ(duplicates, rows - 1999);
    EXPECT_EQ(accepted, 1999);
}

TEST(Restore, ReloadDedupFromAnEmptyStoreLoadsNothing) {
    testing::temp_dir dir("restore");
    dedup_filter f(1 << 20, 3600 * 1000);
    dedup_filter* ptrs[] = {&f};
    auto loaded = reload_dedup(dir.path, INT64_MIN, 0, ptrs);
    ASSERT_TRUE(loaded) << loaded.err().message;
    EXPECT_EQ(*loaded, 0u);
    EXPECT_EQ(f.tracked(), 0u);
}

} // namespace
} // namespace sluice::processing
