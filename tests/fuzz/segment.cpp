// Reading a segment file (storage/segment_reader, storage/format): any file is refused
// at its header, or read block by block until a footer, its end, or the first damaged
// block; the footer is peeked; every row decoded is read back. The input is read as
// given and again with its checksums fixed (segment_fixup.h) to reach the decoders.
#include "storage/segment_reader.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/segment_fixup.h"

namespace sluice::fuzz {

namespace {

uint64_t touch_rows(const storage::column_batch& b) {
    uint64_t h = 0;
    const auto& cols = b.schema().columns;
    for (uint32_t r = 0; r < b.rows(); ++r)
        for (int c = 0; c < int(cols.size()); ++c) {
            if (b.is_null(c, r)) continue;
            if (storage::is_variable(cols[c].type)) {
                for (char ch : b.string_at(c, r)) h = h * 31 + uint8_t(ch);
            } else {
                h += b.u64_at(c, r);
            }
        }
    return h;
}

void read_segment(const std::string& path) {
    auto opened = storage::segment_reader::open(path);
    if (!opened) {
        SLUICE_FUZZ_CHECK(!opened.err().message.empty());
        return;
    }
    auto& r = *opened.value();
    storage::format::footer f;
    if (r.peek_footer(f)) SLUICE_FUZZ_CHECK(f.columns.size() == r.schema().columns.size());
    storage::column_batch batch(r.schema(), 16, 4096, 4096);
    uint64_t rows = 0;
    for (int i = 0; r.next_block(); ++i) {
        switch (i % 3) {
        case 0: {
            auto ok = r.read_block(batch);
            if (ok) {
                SLUICE_FUZZ_CHECK(batch.rows() == r.block().rows);
                rows += batch.rows();
                (void)touch_rows(batch);
            }
            break;
        }
        case 1: (void)r.chunk_infos(); break;
        default: (void)r.verify_block(); break;
        }
    }
    SLUICE_FUZZ_CHECK(r.end() != storage::segment_reader::end_state::reading);
    if (r.end() == storage::segment_reader::end_state::damaged)
        SLUICE_FUZZ_CHECK(!r.damage().empty() && r.damage_offset() < r.file_size());
    SLUICE_FUZZ_CHECK(rows <= r.rows_seen());
}

} // namespace

void fuzz_segment(const uint8_t* data, size_t size) {
    static const std::string path = scratch_dir() + "/w0-000001.seg";
    std::string bytes(reinterpret_cast<const char*>(data), size);
    if (write_file(path, bytes)) read_segment(path);
    std::string fixed = fix_checksums(bytes);
    if (fixed != bytes && write_file(path, fixed)) read_segment(path);
}

} // namespace sluice::fuzz
