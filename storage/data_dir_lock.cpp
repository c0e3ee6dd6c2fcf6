#include "storage/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sluice::storage {

namespace {

// The pid the holder wrote, or "" when it cannot be read (it may be writing it now).
std::string holder_pid(int fd) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return "";
    std::string s(buf, size_t(n));
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

} // namespace

result<data_dir_lock> data_dir_lock::acquire(const std::string& data_dir) {
    const std::string path = data_dir + "/" + data_dir_lock_file;
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        const int err = errno;
        return make_error(errc::io_error, "cannot open " + path + ": " + std::strerror(err) +
                                              " (check the data dir's owner and mode, or "
                                              "pass --data-dir)");
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        const std::string pid = err == EWOULDBLOCK ? holder_pid(fd) : "";
        ::close(fd);
        if (err == EWOULDBLOCK)
            return make_error(errc::busy,
                              "data dir " + data_dir + " is in use by another sluiced" +
                                  (pid.empty() ? std::string() : " (pid " + pid + ")") +
                                  " (stop it, or give this one its own --data-dir)");
        return make_error(errc::io_error,
                          "cannot lock " + path + ": " + std::strerror(err) +
                              " (the data dir's filesystem must support flock)");
    }
    // Ours now: record who holds it. A failure here leaves the lock held and only the
    // message of a later contender without its pid.
    char pid[24];
    const int len = std::snprintf(pid, sizeof pid, "%d\n", int(::getpid()));
    if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid, size_t(len), 0);
    return data_dir_lock(fd);
}

data_dir_lock& data_dir_lock::operator=(data_dir_lock&& o) noexcept {
    if (this != &o) {
        if (_fd >= 0) ::close(_fd);
        _fd = o._fd;
        o._fd = -1;
    }
    return *this;
}

data_dir_lock::~data_dir_lock() {
    if (_fd >= 0) ::close(_fd);
}

} // namespace sluice::storage
