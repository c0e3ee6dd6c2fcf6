#pragma once
// One sluiced per data dir. Two daemons writing one data dir would each number segments
// from what they listed at start, recover each other's open segments as torn and apply
// retention under each other: nothing in the store is safe from that. sluiced takes an
// exclusive flock(2) on DATA_DIR/sluiced.lock before anything touches the store and holds
// it for its life; the kernel drops it when the process ends, however it ends (kill -9
// included), so a crashed daemon never leaves a stale lock behind. The file holds the
// holder's pid, for the message the next one prints. Readers (sluice-read, exports) do not
// take it: they read only what writers made durable.
#include <string>

#include "base/result.h"

namespace sluice::storage {

inline constexpr const char* data_dir_lock_file = "sluiced.lock";

class data_dir_lock {
  public:
    /// Takes the lock on `data_dir` (which must exist), without waiting. errc::busy, naming
    /// the holder's pid and the fix, when another process holds it.
    static result<data_dir_lock> acquire(const std::string& data_dir);

    data_dir_lock(data_dir_lock&& o) noexcept : _fd(o._fd) { o._fd = -1; }
    data_dir_lock& operator=(data_dir_lock&& o) noexcept;
    data_dir_lock(const data_dir_lock&) = delete;
    data_dir_lock& operator=(const data_dir_lock&) = delete;
    ~data_dir_lock();

    bool held() const noexcept { return _fd >= 0; }

  private:
    explicit data_dir_lock(int fd) noexcept : _fd(fd) {}
    int _fd = -1;
};

} // namespace sluice::storage
