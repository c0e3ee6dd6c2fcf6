#pragma once
// segment_reader: reads one segment file back. Validates the file header, then walks the
// blocks: every block header's checksum is checked when it is reached, every payload's
// checksum (and each column chunk's) before a row of it is returned. The walk stops at
// the first torn or corrupt block and reports where and why; nothing after it is read.
// Control path (offline reader, recovery, replay): it allocates and uses pread().
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/column_batch.h"
#include "storage/segment_format.h"

namespace sluice::storage {

// Reads exactly len bytes at offset (retrying short reads and EINTR); false on a short
// file or an error.
bool pread_full(int fd, void* buf, size_t len, uint64_t offset);

class segment_reader {
  public:
    enum class end_state {
        reading, // not at the end yet
        footer,  // closed cleanly: a valid footer that matches the blocks
        eof,     // the file ends at a block boundary without a footer (writer did not close)
        damaged, // a torn or corrupt block at damage_offset(); see damage()
    };

    // Fails (errc::corrupt / unsupported / io_error) when the file header is unusable.
    static result<std::unique_ptr<segment_reader>> open(const std::string& path);
    ~segment_reader();
    segment_reader(const segment_reader&) = delete;
    segment_reader& operator=(const segment_reader&) = delete;

    const std::string& path() const noexcept { return _path; }
    const format::segment_meta& meta() const noexcept { return _meta; }
    const table_schema& schema() const noexcept { return _meta.schema; }
    uint64_t file_size() const noexcept { return _file_size; }

    // Reads the footer at the end of the file without walking the blocks, to prune a
    // whole segment by its time range or to count its rows. false when the segment has
    // no valid footer there (not closed, torn, or damaged): walk it instead. A footer
    // found this way is trusted for pruning only; reads still verify every block.
    bool peek_footer(format::footer& out);

    // Moves to the next data block and checks its header; false at the end (end()).
    bool next_block();
    const format::block_header& block() const noexcept { return _block; }
    uint64_t block_offset() const noexcept { return _block_offset; }
    // Verifies the current block's payload and decodes it into out, which must have
    // been built on schema(). A checksum failure ends the walk (end() == damaged).
    result<void> read_block(column_batch& out);
    // Verifies the current block's payload checksum without decoding it.
    result<void> verify_block();
    // Verifies the current block's payload and lists its chunks.
    result<std::vector<format::chunk_info>> chunk_infos();

    end_state end() const noexcept { return _end; }
    const std::string& damage() const noexcept { return _damage; }
    uint64_t damage_offset() const noexcept { return _damage_offset; }
    // Set when end() == footer.
    const format::footer& footer() const noexcept { return _footer; }
    uint64_t blocks_seen() const noexcept { return _blocks_seen; }
    uint64_t rows_seen() const noexcept { return _rows_seen; }

  private:
    segment_reader() = default;
    bool damaged(uint64_t offset, std::string why);
    result<void> read_payload();

    std::string _path;
    int _fd = -1;
    uint64_t _file_size = 0;
    format::segment_meta _meta;
    uint64_t _next_offset = format::file_header_bytes;
    uint64_t _block_offset = 0;
    format::block_header _block;
    bool _payload_loaded = false;
    std::vector<uint8_t> _payload;
    format::block_decoder _decoder;
    end_state _end = end_state::reading;
    std::string _damage;
    uint64_t _damage_offset = 0;
    format::footer _footer;
    uint64_t _blocks_seen = 0;
    uint64_t _rows_seen = 0;
};

} // namespace sluice::storage
