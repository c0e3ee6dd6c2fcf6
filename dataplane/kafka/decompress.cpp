// Bounded decompression of RecordBatch record streams (kafka_codec.h). Every codec writes
// straight into the caller's buffer and stops at its end: the output never grows past the
// cap, whatever the input claims.
#include <cstring>
#include <new>

#include <lz4frame.h>
#include <snappy-c.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include "dataplane/kafka/byte_order.h"
#include "dataplane/kafka/kafka_codec.h"

namespace sluice::dataplane::kafka {

namespace {

// zstd frames may ask for a window of up to 2^31; producers' batches need far less
// (a window never exceeds the content). 2^24 bounds what one bad frame can make us hold.
constexpr int zstd_window_log_max = 24;

// kafka-python and Java frame snappy the way snappy-java's SnappyOutputStream does:
// this magic, two int32 versions, then (int32 length, raw snappy block) chunks.
constexpr uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
constexpr size_t xerial_header_bytes = 16;

// One raw snappy block into out; n = bytes written.
parse_error snappy_block(bytes_view in, std::span<uint8_t> out, size_t& n) noexcept {
    const auto* src = reinterpret_cast<const char*>(in.data());
    size_t length = 0;
    if (snappy_uncompressed_length(src, in.size(), &length) != SNAPPY_OK)
        return parse_error::corrupt_compressed;
    if (length > out.size()) return parse_error::too_large;
    n = length;
    if (snappy_uncompress(src, in.size(), reinterpret_cast<char*>(out.data()), &n) != SNAPPY_OK)
        return parse_error::corrupt_compressed;
    return parse_error::none;
}

} // namespace

decompressor::decompressor() noexcept {
    auto* zs = new (std::nothrow) z_stream{};
    if (zs && inflateInit2(zs, 15 + 32) == Z_OK) { // 32: accept gzip and zlib headers
        _zlib = zs;
        _zlib_ready = true;
    } else {
        delete zs;
    }
    LZ4F_dctx* lz = nullptr;
    if (!LZ4F_isError(LZ4F_createDecompressionContext(&lz, LZ4F_VERSION))) _lz4 = lz;
    ZSTD_DCtx* zd = ZSTD_createDCtx();
    if (zd && !ZSTD_isError(ZSTD_DCtx_setParameter(zd, ZSTD_d_windowLogMax, zstd_window_log_max)))
        _zstd = zd;
    else
        ZSTD_freeDCtx(zd);
}

decompressor::~decompressor() {
    if (_zlib_ready) inflateEnd(static_cast<z_stream*>(_zlib));
    delete static_cast<z_stream*>(_zlib);
    LZ4F_freeDecompressionContext(static_cast<LZ4F_dctx*>(_lz4));
    ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(_zstd));
}

bool decompressor::ok() const noexcept {
    return _zlib_ready && _lz4 && _zstd;
}

parse_error decompressor::decompress(compression codec, bytes_view in, std::span<uint8_t> out,
                                     size_t& out_bytes) noexcept {
    out_bytes = 0;
    switch (codec) {
    case compression::none:
        if (in.size() > out.size()) return parse_error::too_large;
        if (!in.empty()) std::memcpy(out.data(), in.data(), in.size());
        out_bytes = in.size();
        return parse_error::none;
    case compression::gzip: return gzip(in, out, out_bytes);
    case compression::snappy: return snappy(in, out, out_bytes);
    case compression::lz4: return lz4({}, in, out, out_bytes);
    case compression::zstd: return zstd(in, out, out_bytes);
    }
    return parse_error::unsupported_compression;
}

parse_error decompressor::gzip(bytes_view in, std::span<uint8_t> out, size_t& n) noexcept {
    if (!_zlib_ready) return parse_error::corrupt_compressed;
    if (in.size() > UINT32_MAX || out.size() > UINT32_MAX) return parse_error::too_large;
    auto* zs = static_cast<z_stream*>(_zlib);
    inflateReset(zs);
    zs->next_in = const_cast<Bytef*>(in.data());
    zs->avail_in = uInt(in.size());
    zs->next_out = out.data();
    zs->avail_out = uInt(out.size());
    parse_error e = parse_error::none;
    for (;;) {
        const int rc = inflate(zs, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            if (zs->avail_in == 0) break;
            inflateReset(zs); // another gzip member follows (what gzip -c a b makes)
            continue;
        }
        if (rc == Z_OK) continue;
        // Z_BUF_ERROR: no progress possible, for want of output room or of input.
        if (rc == Z_BUF_ERROR && zs->avail_out == 0)
            e = parse_error::too_large;
        else
            e = parse_error::corrupt_compressed;
        break;
    }
    n = out.size() - zs->avail_out;
    return e;
}

parse_error decompressor::snappy(bytes_view in, std::span<uint8_t> out, size_t& n) noexcept {
    n = 0;
    if (in.size() < xerial_header_bytes ||
        std::memcmp(in.data(), xerial_magic, sizeof xerial_magic) != 0)
        return snappy_block(in, out, n); // librdkafka: one raw block
    size_t pos = xerial_header_bytes;
    while (pos < in.size()) {
        if (in.size() - pos < 4) return parse_error::corrupt_compressed;
        const uint32_t chunk = load_be32(in.data() + pos);
        pos += 4;
        if (chunk > in.size() - pos) return parse_error::corrupt_compressed;
        size_t got = 0;
        const parse_error e = snappy_block(in.subspan(pos, chunk), out.subspan(n), got);
        if (e != parse_error::none) return e;
        n += got;
        pos += chunk;
    }
    return parse_error::none;
}

parse_error decompressor::decompress_lz4_ignoring_header_checksum(bytes_view in,
                                                                  std::span<uint8_t> out,
                                                                  size_t& out_bytes) noexcept {
    out_bytes = 0;
    // Frame header: magic 4, FLG 1, BD 1, [content size 8 if FLG bit 3], [dictionary id 4
    // if FLG bit 0], HC 1 = second byte of XXH32 over FLG..before HC. Kafka < 0.10 hashed
    // from the magic on; the header is copied with HC recomputed and fed first.
    constexpr size_t header_max = 4 + 2 + 8 + 4 + 1;
    if (in.size() < 7) return parse_error::corrupt_compressed;
    const uint8_t flg = in[4];
    const size_t header = 7 + ((flg & 0x08) ? 8 : 0) + ((flg & 0x01) ? 4 : 0);
    if (in.size() < header) return parse_error::corrupt_compressed;
    uint8_t fixed[header_max];
    std::memcpy(fixed, in.data(), header);
    fixed[header - 1] = uint8_t(XXH32(fixed + 4, header - 5, 0) >> 8);
    return lz4(bytes_view(fixed, header), in.subspan(header), out, out_bytes);
}

// `head`, when not empty, is fed before `in` (a frame header fixed up by the caller).
parse_error decompressor::lz4(bytes_view head, bytes_view in, std::span<uint8_t> out,
                              size_t& n) noexcept {
    n = 0;
    if (!_lz4) return parse_error::corrupt_compressed;
    auto* dctx = static_cast<LZ4F_dctx*>(_lz4);
    LZ4F_resetDecompressionContext(dctx);
    bool on_head = !head.empty();
    bytes_view cur = on_head ? head : in;
    size_t in_pos = 0;
    for (;;) {
        if (on_head && in_pos == cur.size()) {
            on_head = false;
            cur = in;
            in_pos = 0;
        }
        size_t src = cur.size() - in_pos;
        size_t dst = out.size() - n;
        const size_t hint =
            LZ4F_decompress(dctx, out.data() + n, &dst, cur.data() + in_pos, &src, nullptr);
        if (LZ4F_isError(hint)) {
            LZ4F_resetDecompressionContext(dctx);
            return parse_error::corrupt_compressed;
        }
        in_pos += src;
        n += dst;
        if (hint == 0) { // a frame ended
            if (!on_head && in_pos == cur.size()) return parse_error::none;
            continue;
        }
        if (on_head && src != 0) continue; // the rest of the header is fed first
        if (src == 0 && dst == 0) {
            LZ4F_resetDecompressionContext(dctx);
            return n == out.size() ? parse_error::too_large : parse_error::corrupt_compressed;
        }
    }
}

parse_error decompressor::zstd(bytes_view in, std::span<uint8_t> out, size_t& n) noexcept {
    n = 0;
    if (!_zstd) return parse_error::corrupt_compressed;
    auto* dctx = static_cast<ZSTD_DCtx*>(_zstd);
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer src{in.data(), in.size(), 0};
    ZSTD_outBuffer dst{out.data(), out.size(), 0};
    parse_error e = parse_error::none;
    for (;;) {
        const size_t in_before = src.pos, out_before = dst.pos;
        const size_t rc = ZSTD_decompressStream(dctx, &dst, &src);
        if (ZSTD_isError(rc)) {
            e = parse_error::corrupt_compressed;
            break;
        }
        if (rc == 0) { // a frame ended
            if (src.pos == src.size) break;
            continue;
        }
        if (src.pos == in_before && dst.pos == out_before) {
            e = dst.pos == dst.size ? parse_error::too_large : parse_error::corrupt_compressed;
            break;
        }
    }
    n = dst.pos;
    return e;
}

parse_error batch_records(const record_batch& batch, decompressor& d, std::span<uint8_t> scratch,
                          bytes_view& records) noexcept {
    records = {};
    if (batch.codec() == compression::none) {
        records = batch.records;
        return parse_error::none;
    }
    size_t n = 0;
    const parse_error e = d.decompress(batch.codec(), batch.records, scratch, n);
    if (e == parse_error::none) records = scratch.first(n);
    return e;
}

} // namespace sluice::dataplane::kafka
