#pragma once
// Random bytes almost never carry the right XXH3 checksums, so the readers would stop at
// the first check. fix_checksums() rewrites them (file header, block headers, payloads,
// uncompressed chunks) in a copy of the input so the fuzzer also reaches the decoders.
#include <string>

#include "storage/format/headers.h"
#include "storage/format/layout.h"

namespace sluice::fuzz {

inline std::string fix_checksums(std::string s) {
    namespace f = storage::format;
    auto get32 = [&](size_t o) { uint32_t v; std::memcpy(&v, s.data() + o, 4); return v; };
    auto get64 = [&](size_t o) { uint64_t v; std::memcpy(&v, s.data() + o, 8); return v; };
    auto put64 = [&](size_t o, uint64_t v) { std::memcpy(s.data() + o, &v, 8); };
    if (s.size() >= 16) {
        const uint64_t content = get32(12); // 64-bit: content + 8 must not wrap
        if (content >= 16 && content + 8 <= f::file_header_bytes && content + 8 <= s.size())
            put64(content, f::checksum(s.data(), content));
    }
    size_t off = f::file_header_bytes;
    while (off + f::block_header_bytes <= s.size() && get32(off) == f::block_magic) {
        const uint64_t payload = get64(off + 32);
        const size_t start = off + f::block_header_bytes;
        if (payload > s.size() - start) break;
        if (get32(off + 4) == uint32_t(f::block_kind::data)) {
            size_t p = start;
            const size_t end = start + payload;
            for (uint32_t c = get32(off + 12); c > 0 && end - p >= f::chunk_header_bytes; --c) {
                const uint32_t raw = get32(p + 4), stored = get32(p + 8);
                if (stored > end - p - f::chunk_header_bytes) break;
                if (uint8_t(s[p + 1]) == uint8_t(f::codec::none) && raw == stored)
                    put64(p + 16, f::checksum(s.data() + p + f::chunk_header_bytes, stored));
                p += f::chunk_header_bytes + stored;
            }
        }
        put64(off + 40, f::checksum(s.data() + start, payload));
        put64(off + 56, f::checksum(s.data() + off, 56));
        off += f::block_bytes(payload);
    }
    return s;
}

} // namespace sluice::fuzz
