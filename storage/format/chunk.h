#pragma once
// A column chunk: its 24-byte header and its codec (none, zstd, lz4).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/result.h"
#include "storage/format/headers.h"
#include "storage/format/layout.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace sluice::storage::format {

struct chunk_header {
    encoding enc;
    codec cd;
    uint8_t flags;    // chunk_flag_validity when a validity bitmap leads the raw bytes
    uint8_t reserved; // 0
    uint32_t raw_len;
    uint32_t stored_len;
    uint32_t null_count;
    uint64_t raw_xxh3;
};
void write_chunk_header(const chunk_header& h, uint8_t* out) noexcept;
chunk_header read_chunk_header(const uint8_t* in) noexcept;

// The chunk headers of a data block's payload (for inspection: sluice-read --layout).
struct chunk_info {
    encoding enc;
    codec cd;
    uint32_t raw_len;
    uint32_t stored_len;
    uint32_t null_count;
};
result<std::vector<chunk_info>> read_chunk_infos(const block_header& h, const uint8_t* payload);
// The encoding's name as docs/FORMAT.md spells it ("?" for an unknown id).
const char* encoding_name(encoding e) noexcept;

// Compresses raw chunks with the writer's codec. The zstd context lives in a workspace
// sized once for the level, so compress() never allocates (hot path).
class chunk_compressor {
  public:
    explicit chunk_compressor(compression comp);
    chunk_compressor(const chunk_compressor&) = delete;
    chunk_compressor& operator=(const chunk_compressor&) = delete;

    // Writes the stored form of raw to out (room for raw_len bytes) and returns its
    // length; cd is the codec used: none when compressing would not shrink the chunk.
    size_t compress(const uint8_t* raw, size_t raw_len, uint8_t* out, codec& cd) noexcept;

  private:
    compression _comp;
    std::vector<uint64_t> _zstd_workspace; // 8-byte aligned, as zstd requires
    ZSTD_CCtx_s* _cctx = nullptr;
};

// Turns stored chunks back into raw ones. Control path: its buffer grows as needed.
class chunk_decompressor {
  public:
    chunk_decompressor();
    ~chunk_decompressor();
    chunk_decompressor(const chunk_decompressor&) = delete;
    chunk_decompressor& operator=(const chunk_decompressor&) = delete;

    // The raw bytes of a chunk: `stored` itself for codec none, else a buffer that holds
    // them until the next call.
    result<const uint8_t*> raw(const chunk_header& h, const uint8_t* stored);

  private:
    std::vector<uint8_t> _scratch;
    ZSTD_DCtx_s* _dctx = nullptr;
};

} // namespace sluice::storage::format
