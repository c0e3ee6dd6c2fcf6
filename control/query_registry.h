#pragma once
// The query registry: the queries added and removed at run time over the control socket,
// kept in <data_dir>/_processing/queries.json (processing/state_dir.h) and applied on top
// of the configured queries at start, so a restart runs the same set:
//   {"version": 1, "added": [<query as JSON, control/query_config.h>...],
//    "removed": ["name", ...]}
// The merger tells it of each change on its thread, in order (processing/merger.h).
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "processing/query.h"

namespace sluice::control {

class query_registry {
  public:
    query_registry(std::string data_dir, int64_t default_delay_ms)
        : _data_dir(std::move(data_dir)), _default_delay_ms(default_delay_ms) {}

    // Start-up: reads the registry (none: nothing changed at run time) and applies it to
    // `queries`: removed ones are dropped, added ones replace a configured one of the same
    // name or join the list.
    result<void> load_and_apply(std::vector<processing::query_def>& queries);
    // A query added / removed at run time; the registry is saved.
    result<void> added(const processing::query_def& def);
    result<void> removed(const std::string& name);

  private:
    result<void> save();

    std::string _data_dir;
    int64_t _default_delay_ms;
    std::mutex _mutex;
    std::vector<processing::query_def> _added;
    std::vector<std::string> _removed;
};

} // namespace sluice::control
