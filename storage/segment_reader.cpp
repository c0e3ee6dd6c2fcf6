#include "storage/segment_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace sluice::storage {

segment_reader::~segment_reader() {
    if (_fd >= 0) ::close(_fd);
}

result<std::unique_ptr<segment_reader>> segment_reader::open(const std::string& path) {
    std::unique_ptr<segment_reader> r(new segment_reader());
    r->_path = path;
    r->_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (r->_fd < 0)
        return make_error(errno == ENOENT ? errc::not_found : errc::io_error,
                          "cannot open " + path + ": " + std::strerror(errno));
    struct stat st;
    if (::fstat(r->_fd, &st) != 0)
        return make_error(errc::io_error, "cannot stat " + path + ": " + std::strerror(errno));
    r->_file_size = uint64_t(st.st_size);
    std::vector<uint8_t> header(format::file_header_bytes);
    size_t len = std::min<uint64_t>(r->_file_size, header.size());
    if (!pread_full(r->_fd, header.data(), len, 0))
        return make_error(errc::io_error, "cannot read " + path + ": " + std::strerror(errno));
    auto meta = format::read_file_header(header.data(), len);
    if (!meta) {
        error e = std::move(meta).err();
        e.message = path + ": " + e.message;
        return e;
    }
    r->_meta = std::move(*meta);
    return r;
}

bool segment_reader::damaged(uint64_t offset, std::string why) {
    _end = end_state::damaged;
    _damage_offset = offset;
    _damage = _path + ": block at offset " + std::to_string(offset) + ": " + why;
    return false;
}

bool segment_reader::peek_footer(format::footer& out) {
    const uint64_t len = format::block_bytes(format::footer_payload_bytes(_meta.schema.columns.size()));
    if (_file_size < format::file_header_bytes + len) return false;
    const uint64_t off = _file_size - len;
    std::vector<uint8_t> buf(len);
    if (!pread_full(_fd, buf.data(), len, off)) return false;
    format::block_header h;
    if (!format::read_block_header(buf.data(), h) || h.kind != format::block_kind::footer ||
        h.payload_bytes != format::footer_payload_bytes(_meta.schema.columns.size()))
        return false;
    const uint8_t* payload = buf.data() + format::block_header_bytes;
    if (format::checksum(payload, h.payload_bytes) != h.payload_xxh3) return false;
    format::footer f;
    if (!format::read_footer_payload(payload, h.payload_bytes, f) || f.data_end_offset != off ||
        f.data_blocks != h.block_index || f.columns.size() != _meta.schema.columns.size())
        return false;
    out = std::move(f);
    return true;
}

bool segment_reader::next_block() {
    if (_end != end_state::reading) return false;
    const uint64_t off = _next_offset;
    if (off == _file_size) {
        _end = end_state::eof;
        return false;
    }
    if (_file_size - off < format::block_header_bytes) return damaged(off, "torn block header");
    uint8_t raw[format::block_header_bytes];
    if (!pread_full(_fd, raw, sizeof raw, off)) return damaged(off, "read error");
    format::block_header h;
    if (!format::read_block_header(raw, h)) return damaged(off, "bad block header checksum");
    if (h.block_index != _blocks_seen) return damaged(off, "block index out of sequence");
    if (h.payload_bytes > _file_size ||
        format::block_bytes(h.payload_bytes) > _file_size - off)
        return damaged(off, "torn block (file ends inside it)");
    _block = h;
    _block_offset = off;
    _payload_loaded = false;
    _next_offset = off + format::block_bytes(h.payload_bytes);
    if (h.kind == format::block_kind::footer) {
        if (!read_payload()) return false;
        format::footer f;
        if (!format::read_footer_payload(_payload.data(), _payload.size(), f) ||
            f.rows != _rows_seen || f.data_blocks != _blocks_seen || f.data_end_offset != off ||
            f.columns.size() != _meta.schema.columns.size())
            return damaged(off, "footer does not match the blocks before it");
        _footer = std::move(f);
        _end = end_state::footer;
        return false;
    }
    if (h.columns != _meta.schema.columns.size()) return damaged(off, "column count mismatch");
    ++_blocks_seen;
    _rows_seen += h.rows;
    return true;
}

result<void> segment_reader::read_payload() {
    if (_payload_loaded) return ok_result();
    _payload.resize(_block.payload_bytes);
    auto fail = [this](const char* why) {
        damaged(_block_offset, why);
        return make_error(errc::corrupt, _damage);
    };
    if (!pread_full(_fd, _payload.data(), _payload.size(),
                    _block_offset + format::block_header_bytes))
        return fail("read error");
    if (format::checksum(_payload.data(), _payload.size()) != _block.payload_xxh3)
        return fail("payload checksum mismatch");
    _payload_loaded = true;
    return ok_result();
}

result<void> segment_reader::verify_block() {
    if (_end != end_state::reading) return make_error(errc::invalid_argument, "no current block");
    return read_payload();
}

result<std::vector<format::chunk_info>> segment_reader::chunk_infos() {
    SLUICE_TRY(verify_block());
    return format::read_chunk_infos(_block, _payload.data());
}

result<void> segment_reader::read_block(column_batch& out) {
    SLUICE_TRY(verify_block());
    auto r = _decoder.decode(_block, _payload.data(), out);
    if (!r) {
        damaged(_block_offset, r.err().message);
        return make_error(errc::corrupt, _damage);
    }
    return ok_result();
}

bool pread_full(int fd, void* buf, size_t len, uint64_t offset) {
    auto* p = static_cast<uint8_t*>(buf);
    while (len > 0) {
        ssize_t n = ::pread(fd, p, len, off_t(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= size_t(n);
        offset += uint64_t(n);
    }
    return true;
}

} // namespace sluice::storage
