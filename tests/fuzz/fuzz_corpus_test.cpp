// Every fuzz target in every build (no clang needed): each replays its seed corpus
// (tests/fuzz/corpus/NAME/, which also holds every crash input a fuzzer found), then
// deterministic mutations of each seed (bit flips, truncations, duplicated spans). A
// target traps on a failed property, so a regression fails this test by crashing it.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

namespace sluice::fuzz {
namespace {

using target_fn = void (*)(const uint8_t*, size_t);

std::string corpus_dir(const std::string& target) {
    const char* root = std::getenv("SLUICE_FUZZ_CORPUS");
    return std::string(root ? root : "tests/fuzz/corpus") + "/" + target;
}

std::string read_all(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<std::filesystem::path> seeds(const std::string& target) {
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(corpus_dir(target), ec))
        if (e.is_regular_file()) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

void run(target_fn fn, const std::string& bytes) {
    fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// The corpus as is, then `mutations` variants of each seed.
void replay(const std::string& target, target_fn fn, int mutations) {
    auto files = seeds(target);
    ASSERT_FALSE(files.empty()) << "no seeds in " << corpus_dir(target);
    std::mt19937 rng(20261203);
    for (const auto& p : files) {
        SCOPED_TRACE(p.string());
        const std::string seed = read_all(p);
        run(fn, seed);
        for (int m = 0; m < mutations && !seed.empty(); ++m) {
            std::string s = seed;
            switch (m % 4) {
            case 0: // flip a few bits
                for (int k = 0; k < 1 + m % 3; ++k) s[rng() % s.size()] ^= char(1u << (rng() % 8));
                break;
            case 1: s.resize(rng() % s.size()); break; // cut short
            case 2: { // a byte set to an edge value
                static const char edges[] = {0, '\x7f', '\x80', '\xff', '"', '\\', '{', '\n'};
                s[rng() % s.size()] = edges[rng() % sizeof edges];
                break;
            }
            default: { // a span repeated
                size_t at = rng() % s.size(), len = 1 + rng() % std::min<size_t>(64, s.size() - at);
                s.insert(at, s.substr(at, len));
                break;
            }
            }
            run(fn, s);
        }
    }
}

// One kept crash input by name (corpus/TARGET/FILE): the bug it found stays fixed.
void regression(const std::string& target, target_fn fn, const std::string& file) {
    const std::filesystem::path p = corpus_dir(target) + "/" + file;
    ASSERT_TRUE(std::filesystem::exists(p)) << p;
    run(fn, read_all(p));
}

TEST(FuzzCorpus, Frame) { replay("frame", fuzz_frame, 64); }
TEST(FuzzCorpus, Event) { replay("event", fuzz_event, 64); }
TEST(FuzzCorpus, Binary) { replay("binary", fuzz_binary, 64); }
// An empty datagram as an invalid batch: memcpy from a null data() (UBSan; fuzz_binary).
TEST(FuzzRegression, BinaryEmptyInvalidBatch) {
    regression("binary", fuzz_binary, "crash-empty-invalid-batch");
}
TEST(FuzzCorpus, Protocol) { replay("protocol", fuzz_protocol, 64); }
TEST(FuzzCorpus, Kafka) { replay("kafka", fuzz_kafka, 64); }
TEST(FuzzCorpus, Config) { replay("config", fuzz_config, 16); }
// `[query] window = 9223372036854775807`: nlohmann's type_error escaped load_config and
// terminated sluiced (fuzz_config). Unit test: QueryConfig.ErrorsNameTheKeyAndTheFix.
TEST(FuzzRegression, ConfigQueryWindowNotAString) {
    regression("config", fuzz_config, "crash-query-window-number");
}
TEST(FuzzCorpus, Segment) { replay("segment", fuzz_segment, 16); }
// A zstd chunk claiming a 2 GiB raw length under a valid checksum: every read grew the
// decoder's buffer to it (libFuzzer out-of-memory; fuzz_segment). Unit test:
// SegmentFormatCorruption.RefusesRawLengthsTheStoredBytesCannotHold.
TEST(FuzzRegression, SegmentZstdRawLength) {
    regression("segment", fuzz_segment, "crash-oom-zstd-raw-len");
}
// A file header whose content length is near 4 GiB: the bounds check wrapped and the
// checksum was read 4 GiB past the header (SEGV; fuzz_segment). Unit test:
// SegmentFormatHeader.RefusesAContentLengthThatWrapsAround.
TEST(FuzzRegression, SegmentHeaderContentLengthWrap) {
    regression("segment", fuzz_segment, "crash-header-content-wrap");
}
// A block header claiming 117 M rows over small chunks: 940 MB and 31 s per read
// (fuzz_segment slow unit). Unit test: SegmentFormatCorruption.RefusesMoreRowsThanTheChunksHold.
TEST(FuzzRegression, SegmentRowsBeyondChunk) {
    regression("segment", fuzz_segment, "crash-slow-rows-beyond-chunk");
}
// A zstd frame without a content size claiming 2 GiB (fuzz_segment out-of-memory).
TEST(FuzzRegression, SegmentZstdNoContentSize) {
    regression("segment", fuzz_segment, "crash-oom-zstd-no-content-size");
}
TEST(FuzzCorpus, Recovery) { replay("recovery", fuzz_recovery, 8); }
// The same bug reached through recovery's scan: a 16 GB allocation (fuzz_recovery
// out-of-memory).
TEST(FuzzRegression, RecoveryRowsBeyondChunk) {
    regression("recovery", fuzz_recovery, "crash-oom-rows-beyond-chunk");
}
TEST(FuzzCorpus, Export) { replay("export", fuzz_export, 16); }

} // namespace
} // namespace sluice::fuzz
