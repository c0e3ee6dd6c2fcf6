// libFuzzer target (clang, -Dfuzz=true): see protocol_fuzz.h for what one input does.
//   CXX=clang++ meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz tests/control/protocol_fuzz
//   build-fuzz/tests/control/protocol_fuzz -max_total_time=60
#include "tests/control/protocol_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sluice::control::fuzz::one_input(data, size);
    return 0;
}
