// main() of the unit tests that need DPDK's EAL (rings, mempools, lcores) but no device:
// EAL without hugepages or PCI, a file prefix of its own, torn down after the tests.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "dataplane/eal_setup.h"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    std::string program = argv[0];
    program = program.substr(program.find_last_of('/') + 1);
    auto eal = sluice::dataplane::eal_init_deviceless(program);
    if (!eal) {
        std::fprintf(stderr, "%s\n", eal.err().message.c_str());
        return 1;
    }
    int rc = RUN_ALL_TESTS();
    sluice::dataplane::eal_cleanup_deviceless();
    return rc;
}
