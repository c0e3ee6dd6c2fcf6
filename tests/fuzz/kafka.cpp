// The Kafka codec (requests, record batches, legacy message sets, the decompressors):
// tests/dataplane/kafka_codec_fuzz.h says what one input does.
#include "tests/dataplane/kafka_codec_fuzz.h"
#include "tests/fuzz/fuzz_target.h"

namespace sluice::fuzz {
void fuzz_kafka(const uint8_t* data, size_t size) {
    dataplane::kafka::fuzz::one_input(data, size);
}
} // namespace sluice::fuzz
