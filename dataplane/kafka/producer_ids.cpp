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

namespace sluice::dataplane::kafka {

std::string producer_ids_path(const std::string& data_dir) {
    return data_dir + "/_processing/kafka_producer_ids";
}

namespace {

// The same steps as control/checkpoint.h's write_file_atomically (dataplane cannot use
// control): a crash leaves the old or the new file.
result<void> write_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return make_error(errc::io_error, "cannot write " + tmp + ": " + strerror(errno) +
                                              " (check the data dir's permissions)");
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            ::close(fd);
            return make_error(e == ENOSPC ? errc::no_space : errc::io_error,
                              "cannot write " + tmp + ": " + strerror(e));
        }
        done += size_t(n);
    }
    if (::fdatasync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        return make_error(errc::io_error, "cannot fdatasync " + tmp + ": " + strerror(e));
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return make_error(errc::io_error, "cannot rename " + tmp + ": " + strerror(errno));
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return make_error(errc::io_error, "cannot open " + dir + ": " + strerror(errno));
    const int rc = ::fsync(dfd);
    const int e = errno;
    ::close(dfd);
    if (rc != 0) return make_error(errc::io_error, "cannot fsync " + dir + ": " + strerror(e));
    return ok_result();
}

} // namespace

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
    if (auto r = write_atomically(_path, std::to_string(until) + "\n"); !r) return r;
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
