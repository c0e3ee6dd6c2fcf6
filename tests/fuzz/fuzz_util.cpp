#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "tests/fuzz/fuzz_target.h"

namespace sluice::fuzz {

namespace {
std::string g_scratch;
void remove_scratch() {
    std::error_code ec;
    if (!g_scratch.empty()) std::filesystem::remove_all(g_scratch, ec);
}
} // namespace

const std::string& scratch_dir() {
    if (g_scratch.empty()) {
        std::string tmpl = (::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        tmpl += "/sluice-fuzz-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
            std::perror("sluice fuzz: mkdtemp");
            std::abort();
        }
        g_scratch = tmpl;
        std::atexit(remove_scratch);
    }
    return g_scratch;
}

bool write_file(const std::string& path, std::string_view bytes) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) {
            ::close(fd);
            return false;
        }
        done += size_t(n);
    }
    return ::close(fd) == 0;
}

void clear_dir(const std::string& dir) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
        std::filesystem::remove_all(e.path(), ec);
}

} // namespace sluice::fuzz
