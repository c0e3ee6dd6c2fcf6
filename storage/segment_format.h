#pragma once
// The on-disk segment format (docs/FORMAT.md describes it byte by byte): the public
// face of storage/format/. Include this header; the files behind it are
//   format/layout.h        version, magics, sizes, encoding and codec ids
//   format/headers.*       file header, block header, checksum
//   format/footer.*        column statistics and the footer block
//   format/chunk.*         chunk header, codecs, read_chunk_infos (sluice-read --layout)
//   format/block_encoder.* column_batch -> block (hot path, no allocation)
//   format/block_decoder.* block -> column_batch (verifies every checksum)
// and, internal to format/, bytes.h (byte helpers), encoding.h with one
// encoding_<name>.cpp per encoding, and encodings.cpp (the decoder's table).
#include "storage/format/block_decoder.h"
#include "storage/format/block_encoder.h"
#include "storage/format/chunk.h"
#include "storage/format/footer.h"
#include "storage/format/headers.h"
#include "storage/format/layout.h"
