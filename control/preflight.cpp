#include "control/preflight.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/limits.h"
#include "control/control_server.h"
#include "control/metrics_http.h"
#include "dataplane/kernel_udp_rx.h"

namespace sluice::control {

result<void> check_data_dir(const std::string& data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec)
        return make_error(errc::permission_denied,
                          "cannot create data dir " + data_dir + ": " + ec.message() +
                              " (create it for sluiced's user, or pass --data-dir)");
    // access() answers for the real uid; a file created and removed answers for what
    // sluiced will do (and for read-only mounts, where root's access() says yes).
    const std::string probe = data_dir + "/.sluiced-write-test-" + std::to_string(::getpid());
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        const int err = errno;
        return make_error(errc::permission_denied,
                          "cannot write to data dir " + data_dir + ": " + std::strerror(err) +
                              (err == EROFS ? " (the filesystem is read-only: remount it "
                                              "read-write or pass --data-dir)"
                                            : " (chown it to sluiced's user, run as its owner, "
                                              "or pass --data-dir)"));
    }
    ::close(fd);
    ::unlink(probe.c_str());
    // A full disk at start: one line now, rather than segment writes parked before the
    // control socket is up. Root may also fill the blocks kept for it.
    struct statvfs fs;
    if (::statvfs(data_dir.c_str(), &fs) == 0) {
        const uint64_t free_bytes =
            uint64_t(::geteuid() == 0 ? fs.f_bfree : fs.f_bavail) * fs.f_frsize;
        if (free_bytes < limits::data_dir_free_bytes_min)
            return make_error(errc::no_space,
                              "the data dir " + data_dir + "'s filesystem is full (" +
                                  std::to_string(free_bytes >> 10) + " KiB free, sluiced needs " +
                                  std::to_string(limits::data_dir_free_bytes_min >> 20) +
                                  " MiB to start): free space there (lower [retention] "
                                  "max_bytes or max_age_ms), or pass --data-dir on a disk with room");
    }
    return ok_result();
}

result<storage::data_dir_lock> preflight(const daemon_config& config) {
    SLUICE_TRY(check_data_dir(config.sluice.data_dir));
    SLUICE_TRY(check_control_socket(config.sluice.control_socket));
    SLUICE_TRY(probe_metrics_listen(config.metrics.listen));
    if (config.input.mode == input_mode::kernel_udp)
        SLUICE_TRY(dataplane::check_udp_port_free(config.input.kernel_bind,
                                                  config.input.udp_ports.front()));
    return storage::data_dir_lock::acquire(config.sluice.data_dir);
}

} // namespace sluice::control
