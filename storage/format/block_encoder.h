#pragma once
// block_encoder: column_batch -> data block (header, one chunk per column, padding).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "storage/column_batch.h"
#include "storage/format/chunk.h"
#include "storage/format/encoding.h"
#include "storage/format/footer.h"
#include "storage/format/headers.h"
#include "storage/schema.h"

namespace sluice::storage::format {

// Encodes column_batches into blocks. Owns every buffer it needs, sized at construction
// for the largest batch it will see, so encode() never allocates (hot path).
class block_encoder {
  public:
    block_encoder(const table_schema& schema, uint32_t rows_max, size_t string_bytes_max,
                  compression comp);
    block_encoder(const block_encoder&) = delete;
    block_encoder& operator=(const block_encoder&) = delete;

    // Bytes a block of a full batch may take, padded: size the output buffer to this.
    size_t block_bytes_max() const noexcept { return _block_bytes_max; }

    // Encodes the batch into out (block header, chunks, zero padding) and returns the
    // header it wrote; block_bytes(h.payload_bytes) bytes of out are used.
    block_header encode(const column_batch& batch, uint64_t block_index, uint8_t* out) noexcept;
    // The statistics of the last encoded block, one per column.
    const std::vector<column_stats>& block_stats() const noexcept { return _stats; }

  private:
    size_t encode_column(const column_batch& batch, int col, uint8_t* out) noexcept;
    size_t encode_values(const column_batch& batch, int col, uint8_t* out, encoding& enc) noexcept;
    size_t encode_strings(const column_batch& batch, int col, uint8_t* out, encoding& enc) noexcept;

    const table_schema* _schema;
    uint32_t _rows_max;
    size_t _block_bytes_max = 0;
    std::vector<uint8_t> _scratch; // one column's raw (uncompressed) chunk
    dict_string::dictionary _dict;
    ref_packed_string::skeleton_writer _skeletons;
    std::vector<column_stats> _stats;
    chunk_compressor _compressor;
};

} // namespace sluice::storage::format
