#include "storage/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "storage/fault_injection.h"

namespace sluice::storage {

using std::strerror;

result<void> write_file_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = fault::fails(fault::op::open) ? -1 : ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
    if (fault::fails(fault::op::rename) || ::rename(tmp.c_str(), path.c_str()) != 0)
        return make_error(errc::io_error, "cannot rename " + tmp + ": " + strerror(errno));
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const int dfd =
        fault::fails(fault::op::open) ? -1 : ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return make_error(errc::io_error, "cannot open " + dir + ": " + strerror(errno));
    const int rc = ::fsync(dfd);
    const int e = errno;
    ::close(dfd);
    if (rc != 0) return make_error(errc::io_error, "cannot fsync " + dir + ": " + strerror(e));
    return ok_result();
}

result<void> create_state_folder(const std::string& path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec)
        return make_error(errc::io_error, "cannot create " + path + ": " + ec.message() +
                                              " (check the data dir's permissions)");
    return ok_result();
}

void remove_state_file(const std::string& path) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
}

std::optional<std::string> read_small_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace sluice::storage
