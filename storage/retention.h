#pragma once
// Retention, like a log's: per table, whole segments are deleted once they are older
// than an age, or, oldest first, while the table is larger than a size. Runs in the
// background on a plain thread (never an lcore), a pass every interval; the policies
// can be changed at run time (the control socket's `retention` command) and every
// table's state is visible in `stats`.
//
// Age is measured against the wall clock, from a segment's newest row (the largest
// value of its time column), as Kafka's time-based retention measures from a segment's
// largest timestamp. A segment still being written (the newest segment of its writer
// that has no footer yet) is never deleted; a segment without a time column is deleted
// by size only. Segments set aside as *.seg.corrupt are left to the operator.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"

namespace sluice::storage {

struct retention_policy {
    int64_t max_age_ms = 0;  // 0: no age limit
    uint64_t max_bytes = 0;  // 0: no size limit (bytes of the table's segment files)
    friend bool operator==(const retention_policy&, const retention_policy&) = default;
};

struct table_retention {
    std::string table;
    retention_policy policy;
    bool policy_is_default = true; // no per-table policy: the default applies
    // The table after the last pass.
    uint64_t segments = 0;
    uint64_t bytes = 0;
    uint64_t rows = 0;
    int64_t oldest_time_ms = INT64_MIN; // the oldest segment's newest row (INT64_MIN: none)
    // Deleted since start.
    uint64_t segments_deleted = 0;
    uint64_t bytes_deleted = 0;
    uint64_t rows_deleted = 0;
};

struct retention_status {
    retention_policy default_policy;
    uint64_t passes = 0;
    int64_t last_pass_ms = 0; // wall clock; 0 before the first pass
    std::string last_error;   // of the last pass, empty when it went well
    std::vector<table_retention> tables; // by name
};

class retention_manager {
  public:
    // now_ms: the wall clock (a parameter so that tests can move time).
    retention_manager(std::string data_dir, retention_policy default_policy,
                      std::map<std::string, retention_policy> table_policies,
                      std::function<int64_t()> now_ms);
    ~retention_manager(); // stops the thread
    retention_manager(const retention_manager&) = delete;
    retention_manager& operator=(const retention_manager&) = delete;

    // One pass over every table of the data dir, now (any thread; passes serialize).
    result<void> run_once();
    // Runs a pass every interval_ms on a background thread until stop().
    void start(uint32_t interval_ms);
    void stop();

    // Sets the policy of one table, or the default with table "*"; the background
    // thread applies it at once. A table name must be a plain directory name.
    result<void> set_policy(const std::string& table, const retention_policy& policy);
    // Drops a table's own policy: the default applies again.
    void clear_policy(const std::string& table);
    retention_status status() const;

  private:
    struct segment_facts {
        uint64_t size = 0;
        uint64_t rows = 0;
        int64_t max_time_ms = INT64_MIN;
        bool timed = false;
        bool closed = false; // has a valid footer
        bool readable = false;
    };
    result<void> pass_table(const std::string& table, int64_t now_ms);
    segment_facts facts_of(const std::string& path, uint64_t size);
    retention_policy policy_of(const std::string& table) const; // _mutex held

    const std::string _data_dir;
    const std::function<int64_t()> _now_ms;
    mutable std::mutex _mutex; // guards everything below but the pass mutex and thread
    retention_policy _default;
    std::map<std::string, retention_policy> _policies;
    std::map<std::string, table_retention> _tables;
    retention_status _status;
    // Facts of unchanged segments are cached by path and size (pass thread only).
    std::map<std::string, segment_facts> _facts;
    std::mutex _pass_mutex;
    std::condition_variable _wake;
    bool _wake_requested = false;
    bool _stopping = false;
    std::thread _thread;
};

} // namespace sluice::storage
