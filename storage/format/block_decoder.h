#pragma once
// block_decoder: data block -> column_batch, verifying every checksum on the way.
#include <cstdint>

#include "base/result.h"
#include "storage/column_batch.h"
#include "storage/format/chunk.h"
#include "storage/format/headers.h"

namespace sluice::storage::format {

// Verifies and decodes blocks. Control path: it grows its buffers and the batch's
// vectors as needed (a decoded batch may hold more rows than its rows_max()).
class block_decoder {
  public:
    // payload = the payload_bytes bytes after the block header. Verifies the payload
    // checksum and each chunk's checksum before anything lands in out.
    result<void> decode(const block_header& h, const uint8_t* payload, column_batch& out);

  private:
    result<void> decode_chunk(const chunk_header& ch, const uint8_t* stored, uint32_t rows,
                              column_batch& out, int col);

    chunk_decompressor _decompressor;
};

} // namespace sluice::storage::format
