// libFuzzer target (clang, -Dfuzz=true): see kafka_codec_fuzz.h for what one input does.
//   CXX=clang++ meson setup build-fuzz -Dfuzz=true
//   ninja -C build-fuzz tests/dataplane/kafka_codec_fuzz
//   build-fuzz/tests/dataplane/kafka_codec_fuzz -max_total_time=60
#include "tests/dataplane/kafka_codec_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sluice::dataplane::kafka::fuzz::one_input(data, size);
    return 0;
}
