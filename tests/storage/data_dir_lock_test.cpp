// One sluiced per data dir: the lock is exclusive, names its holder, and is gone when the
// holder is, even when it dies by SIGKILL.
#include "storage/data_dir_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>

#include "tests/storage/storage_test_util.h"

namespace sluice::storage {
namespace {

std::string read_all(const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

TEST(DataDirLock, SecondTakerIsRefusedNamingTheHolderUntilItLetsGo) {
    test::temp_dir dir;
    std::optional<data_dir_lock> first;
    {
        auto r = data_dir_lock::acquire(dir.path());
        ASSERT_TRUE(r.ok()) << r.err().message;
        first.emplace(std::move(r).value());
    }
    EXPECT_TRUE(first->held());
    EXPECT_EQ(read_all(dir.path() + "/" + data_dir_lock_file), std::to_string(::getpid()) + "\n");

    // flock belongs to the open file: a second open in this very process is refused too.
    auto second = data_dir_lock::acquire(dir.path());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.err().code, errc::busy);
    EXPECT_EQ(second.err().message, "data dir " + dir.path() + " is in use by another sluiced (pid " +
                                        std::to_string(::getpid()) +
                                        ") (stop it, or give this one its own --data-dir)");

    first.reset();
    auto third = data_dir_lock::acquire(dir.path());
    ASSERT_TRUE(third.ok()) << third.err().message;
    EXPECT_TRUE(third->held());
}

TEST(DataDirLock, MovedLockStaysHeldAndReleasesOnce) {
    test::temp_dir dir;
    auto r = data_dir_lock::acquire(dir.path());
    ASSERT_TRUE(r.ok()) << r.err().message;
    data_dir_lock a = std::move(r).value();
    data_dir_lock b = std::move(a);
    EXPECT_FALSE(a.held());
    EXPECT_TRUE(b.held());
    EXPECT_FALSE(data_dir_lock::acquire(dir.path()).ok());
}

TEST(DataDirLock, AHolderKilledWithSigkillLeavesNoStaleLock) {
    test::temp_dir dir;
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(ready[0]);
        auto l = data_dir_lock::acquire(dir.path());
        const char c = l.ok() ? 'y' : 'n';
        (void)!::write(ready[1], &c, 1);
        for (;;) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    ASSERT_EQ(c, 'y');

    auto held = data_dir_lock::acquire(dir.path());
    ASSERT_FALSE(held.ok());
    EXPECT_NE(held.err().message.find("(pid " + std::to_string(child) + ")"), std::string::npos)
        << held.err().message;

    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status));
    auto after = data_dir_lock::acquire(dir.path());
    EXPECT_TRUE(after.ok()) << after.err().message;
}

TEST(DataDirLock, MissingDataDirNamesThePathAndTheFix) {
    test::temp_dir dir;
    auto r = data_dir_lock::acquire(dir.path() + "/nope");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::io_error);
    EXPECT_EQ(r.err().message, "cannot open " + dir.path() + "/nope/sluiced.lock: No such file or "
                               "directory (check the data dir's owner and mode, or pass --data-dir)");
}

} // namespace
} // namespace sluice::storage
