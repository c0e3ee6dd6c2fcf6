// libFuzzer entry point of one target, chosen by -DSLUICE_FUZZ_TARGET=fuzz_NAME
// (tests/fuzz/meson.build builds one binary per target).
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sluice::fuzz::SLUICE_FUZZ_TARGET(data, size);
    return 0;
}
