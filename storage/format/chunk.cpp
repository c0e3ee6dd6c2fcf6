#include "storage/format/chunk.h"

#include <lz4.h>
// ZSTD_initStaticCCtx and ZSTD_estimateCCtxSize (exported by libzstd.so).
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <cstring>
#include <string>

#include "base/assert.h"
#include "storage/format/bytes.h"

namespace sluice::storage::format {
namespace {

error corrupt(std::string what) {
    return make_error(errc::corrupt, std::move(what));
}

} // namespace

void write_chunk_header(const chunk_header& h, uint8_t* out) noexcept {
    out[0] = uint8_t(h.enc);
    out[1] = uint8_t(h.cd);
    out[2] = h.flags;
    out[3] = h.reserved;
    put<uint32_t>(out + 4, h.raw_len);
    put<uint32_t>(out + 8, h.stored_len);
    put<uint32_t>(out + 12, h.null_count);
    put<uint64_t>(out + 16, h.raw_xxh3);
}

chunk_header read_chunk_header(const uint8_t* in) noexcept {
    return {encoding(in[0]),
            codec(in[1]),
            in[2],
            in[3],
            get<uint32_t>(in + 4),
            get<uint32_t>(in + 8),
            get<uint32_t>(in + 12),
            get<uint64_t>(in + 16)};
}

result<std::vector<chunk_info>> read_chunk_infos(const block_header& h, const uint8_t* payload) {
    std::vector<chunk_info> out;
    const uint8_t* p = payload;
    const uint8_t* end = payload + h.payload_bytes;
    for (uint32_t c = 0; c < h.columns; ++c) {
        if (end - p < ptrdiff_t(chunk_header_bytes)) return corrupt("chunk header truncated");
        const chunk_header ch = read_chunk_header(p);
        p += chunk_header_bytes;
        if (uint64_t(end - p) < ch.stored_len) return corrupt("chunk data truncated");
        p += ch.stored_len;
        out.push_back({ch.enc, ch.cd, ch.raw_len, ch.stored_len, ch.null_count});
    }
    return out;
}

chunk_compressor::chunk_compressor(compression comp) : _comp(comp) {
    if (_comp.kind != codec::zstd) return;
    // A static context in a workspace sized once for the level's largest parameters:
    // zstd then never allocates (a dynamic context frees and regrows its workspace when
    // chunk sizes vary, which is every block here).
    _zstd_workspace.resize(ZSTD_estimateCCtxSize(_comp.level) / sizeof(uint64_t) + 1);
    _cctx = ZSTD_initStaticCCtx(_zstd_workspace.data(), _zstd_workspace.size() * sizeof(uint64_t));
    SLUICE_ASSERT(_cctx != nullptr);
}

size_t chunk_compressor::compress(const uint8_t* raw, size_t raw_len, uint8_t* out,
                                  codec& cd) noexcept {
    // Only when it shrinks the chunk; tiny chunks are not worth a frame header.
    cd = codec::none;
    if (raw_len >= 64 && _comp.kind == codec::zstd) {
        size_t z = ZSTD_compressCCtx(_cctx, out, raw_len - 1, raw, raw_len, _comp.level);
        if (!ZSTD_isError(z) && z < raw_len) {
            cd = codec::zstd;
            return z;
        }
    } else if (raw_len >= 64 && _comp.kind == codec::lz4) {
        int z = LZ4_compress_fast(reinterpret_cast<const char*>(raw), reinterpret_cast<char*>(out),
                                  int(raw_len), int(raw_len - 1), _comp.level);
        if (z > 0) {
            cd = codec::lz4;
            return size_t(z);
        }
    }
    std::memcpy(out, raw, raw_len);
    return raw_len;
}

chunk_decompressor::chunk_decompressor() : _dctx(ZSTD_createDCtx()) {
    SLUICE_ASSERT(_dctx != nullptr);
}
chunk_decompressor::~chunk_decompressor() {
    ZSTD_freeDCtx(_dctx);
}

result<const uint8_t*> chunk_decompressor::raw(const chunk_header& h, const uint8_t* stored) {
    if (h.cd == codec::none && h.stored_len == h.raw_len) return stored;
    if (h.cd != codec::zstd && h.cd != codec::lz4)
        return corrupt("unknown codec " + std::to_string(unsigned(h.cd)));
    // A length the stored bytes cannot decompress to is refused before the buffer grows
    // to it (up to chunk_raw_bytes_max): LZ4 expands at most 255 times; a zstd frame
    // names its content size (the writer's one-shot compression always writes it).
    if (h.cd == codec::lz4 && h.raw_len > uint64_t(h.stored_len) * 255 + 16)
        return corrupt("lz4 chunk length out of range");
    if (h.cd == codec::zstd && ZSTD_getFrameContentSize(stored, h.stored_len) != h.raw_len)
        return corrupt("zstd chunk length does not match its frame");
    if (_scratch.size() < h.raw_len) _scratch.resize(h.raw_len);
    if (h.cd == codec::zstd) {
        size_t r = ZSTD_decompressDCtx(_dctx, _scratch.data(), h.raw_len, stored, h.stored_len);
        if (ZSTD_isError(r) || r != h.raw_len)
            return corrupt(std::string("zstd chunk does not decompress: ") +
                           (ZSTD_isError(r) ? ZSTD_getErrorName(r) : "length mismatch"));
    } else {
        int r = LZ4_decompress_safe(reinterpret_cast<const char*>(stored),
                                    reinterpret_cast<char*>(_scratch.data()), int(h.stored_len),
                                    int(h.raw_len));
        if (r < 0 || uint32_t(r) != h.raw_len) return corrupt("lz4 chunk does not decompress");
    }
    return static_cast<const uint8_t*>(_scratch.data());
}

} // namespace sluice::storage::format
