// The suite's hugepage pass (daemon_harness.h hugepage_pass()): before the first test the
// binary leases the 2 MB hugepages its daemons use (tests/hugepage_lease: added to the
// kernel's pool, given back after the last test, or by the next lease if this process is
// killed); where none can be had (not root, read-only sysfs, memory short) the binary
// exits 77 before any test, which meson reports as SKIP, printing the reason. Outside the pass it does nothing. Linked into the integration
// binaries that tests/integration/meson.build registers a second time with
// SLUICE_TEST_HUGEPAGES=N.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/daemon_harness.h"

namespace {

struct command_output {
    int code = -1;
    std::string text;
};

command_output run_lease(const std::string& args) {
    const char* lease = std::getenv("SLUICE_HUGEPAGE_LEASE");
    command_output out;
    if (lease == nullptr || *lease == '\0') {
        out.text = "SLUICE_HUGEPAGE_LEASE (the path of tests/hugepage_lease) is not set";
        return out;
    }
    const std::string cmd = std::string(lease) + " " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return out;
    std::array<char, 512> buf;
    while (std::fgets(buf.data(), int(buf.size()), p) != nullptr) out.text += buf.data();
    const int status = ::pclose(p);
    out.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    while (!out.text.empty() && out.text.back() == '\n') out.text.pop_back();
    return out;
}

class hugepage_environment : public ::testing::Environment {
  public:
    void SetUp() override {
        const uint32_t pages = sluice::testing::hugepage_pass();
        if (pages == 0) return;
        command_output r = run_lease("take " + std::to_string(::getpid()) + " " +
                                     std::to_string(pages));
        if (r.code == 77) {
            // Exit status 77: meson reports the whole run as SKIP, with this line in its
            // log (GTEST_SKIP here would report every test as passed without running it).
            std::printf("the hugepage pass is skipped: %s (the same tests ran without "
                        "hugepages in the other pass)\n",
                        r.text.c_str());
            // No stale report of an earlier run for meson to read.
            const std::string out = ::testing::GTEST_FLAG(output);
            if (out.rfind("xml:", 0) == 0) std::remove(out.substr(4).c_str());
            std::fflush(stdout);
            std::_Exit(77);
        }
        ASSERT_EQ(r.code, 0) << "hugepage lease: " << r.text;
        _leased = true;
        std::printf("%s\n", r.text.c_str());
    }
    void TearDown() override {
        if (!_leased) return;
        command_output r = run_lease("release " + std::to_string(::getpid()));
        EXPECT_EQ(r.code, 0) << "hugepage lease release: " << r.text;
        _leased = false;
    }

  private:
    bool _leased = false;
};

[[maybe_unused]] ::testing::Environment* const registered =
    ::testing::AddGlobalTestEnvironment(new hugepage_environment);

} // namespace
