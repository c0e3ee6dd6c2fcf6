#include "dataplane/kafka/producer_ids.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/clock.h"
#include "base/limits.h"
#include "storage/atomic_file.h"

namespace sluice::dataplane::kafka {

std::string producer_ids_path(const std::string& data_dir) {
    return data_dir + "/_processing/kafka_producer_ids";
}

result<producer_ids> producer_ids::open(const std::string& data_dir) {
    producer_ids ids;
    ids._next = wall_clock_ms() << 8;
    if (data_dir.empty()) {
        ids._reserved_until = INT64_MAX;
        return ids;
    }
    ids._path = producer_ids_path(data_dir);
    std::error_code ec;
    std::filesystem::create_directories(data_dir + "/_processing", ec);
    if (ec)
        return make_error(errc::io_error, "cannot create " + data_dir + "/_processing: " +
                                              ec.message() + " (check the data dir's permissions)");
    if (std::ifstream in(ids._path); in) {
        long long v = -1;
        if (!(in >> v) || v < 0)
            return make_error(errc::corrupt, ids._path + " does not hold a producer id (remove "
                                                         "it only if no idempotent producer "
                                                         "is running)");
        ids._next = v;
    }
    ids._reserved_until = ids._next;
    if (auto r = ids.reserve(); !r) return std::move(r).err();
    return ids;
}

result<void> producer_ids::reserve() {
    const int64_t until = _reserved_until + limits::kafka_producer_id_block;
    if (auto r = storage::write_file_atomically(_path, std::to_string(until) + "\n"); !r) return r;
    _reserved_until = until;
    return ok_result();
}

int64_t producer_ids::next() noexcept {
    if (_next == _reserved_until) {
        try {
            if (!reserve()) return -1;
        } catch (...) {
            return -1;
        }
    }
    return _next++;
}

} // namespace sluice::dataplane::kafka
