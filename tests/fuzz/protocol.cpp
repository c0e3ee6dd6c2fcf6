// The control protocol: tests/control/protocol_fuzz.h says what one input does.
#include "tests/control/protocol_fuzz.h"
#include "tests/fuzz/fuzz_target.h"

namespace sluice::fuzz {
void fuzz_protocol(const uint8_t* data, size_t size) { control::fuzz::one_input(data, size); }
} // namespace sluice::fuzz
