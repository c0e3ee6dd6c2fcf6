#pragma once
// The fuzz targets (tests/fuzz/README.md): one function per input sluice parses, each
// taking one input of any bytes. Each is built twice: as a libFuzzer binary
// (fuzz_main.cpp, clang, -Dfuzz=true) and into fuzz_corpus_test, which replays the
// seed corpus (tests/fuzz/corpus/TARGET/) and the named regression inputs in every
// build. A target traps (__builtin_trap) when a property it checks fails, so libFuzzer
// and the replay test both see it as a crash.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace sluice::fuzz {

void fuzz_frame(const uint8_t* data, size_t size);
void fuzz_event(const uint8_t* data, size_t size);
void fuzz_binary(const uint8_t* data, size_t size);
void fuzz_protocol(const uint8_t* data, size_t size);
void fuzz_kafka(const uint8_t* data, size_t size);
void fuzz_config(const uint8_t* data, size_t size);
void fuzz_segment(const uint8_t* data, size_t size);
void fuzz_recovery(const uint8_t* data, size_t size);
void fuzz_export(const uint8_t* data, size_t size);

// A property the parser promises failed: report it and crash (a libFuzzer finding).
[[noreturn]] inline void violated(const char* what) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    __builtin_trap();
}
#define SLUICE_FUZZ_CHECK(cond)                                                             \
    do {                                                                                   \
        if (!(cond)) ::sluice::fuzz::violated(#cond);                                      \
    } while (0)

// A private directory for the targets that read files (on tmpfs when /dev/shm exists),
// made on first use and removed when the process exits.
const std::string& scratch_dir();
// Writes bytes to path (replacing it); false on any error.
bool write_file(const std::string& path, std::string_view bytes);
// Removes everything under dir (dir stays).
void clear_dir(const std::string& dir);

// Reads fuzz bytes as a stream of small values (0 once the input is used up).
class byte_reader {
  public:
    byte_reader(const uint8_t* data, size_t size) : _p(data), _end(data + size) {}
    bool empty() const noexcept { return _p == _end; }
    uint8_t u8() noexcept { return _p == _end ? 0 : *_p++; }
    uint64_t u64() noexcept {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= uint64_t(u8()) << (8 * i);
        return v;
    }
    std::string_view bytes(size_t n) noexcept {
        n = std::min<size_t>(n, size_t(_end - _p));
        std::string_view s(reinterpret_cast<const char*>(_p), n);
        _p += n;
        return s;
    }

  private:
    const uint8_t* _p;
    const uint8_t* _end;
};

} // namespace sluice::fuzz
