// Torn writes and bit flips, walked systematically (issue 15, item 2): a segment cut at
// every 4 KiB boundary of its last block (and at odd offsets), and one bit flipped at
// positions walked through every region of a segment (file header, each block header,
// each column chunk's header and bytes for every encoding, the footer, the padding).
// For every case: a scan before recovery never returns an altered row (only a prefix of
// whole blocks), recovery detects the damage (truncates the torn tail or moves the
// segment aside), and afterwards exactly the rows of the whole blocks before the damage
// are served.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "storage/recovery.h"
#include "storage/segment_reader.h"
#include "storage/segment_writer.h"
#include "storage/table_reader.h"
#include "storage_test_util.h"

namespace sluice::storage {
namespace {

using namespace sluice::storage::test;
namespace fs = std::filesystem;

constexpr uint32_t rows_per_block = 96;
constexpr int data_blocks = 5;

// One column per kind the writer encodes differently: delta_bitpack_i64, suffix_number_string
// (nullable, so a validity bitmap too), dict_string, varint_u64, plain_u64 (u64 and f64),
// plain_u8, plain_string (bytes) and ref_packed_string.
table_schema kinds_schema() {
    table_schema s;
    s.name = "kinds";
    s.columns = {
        {"t", column_type::i64},
        {"id", column_type::string, true},
        {"user", column_type::string},
        {"n", column_type::u64},
        {"big", column_type::u64},
        {"flag", column_type::u8},
        {"v", column_type::f64},
        {"blob", column_type::bytes},
        {"raw", column_type::string, false, {0, 1, 2}},
    };
    s.time_column = 0;
    return s;
}

row kinds_row(uint64_t i) {
    const int64_t t = 1740754800000 + int64_t(i) * 37;
    value id = i % 5 == 3 ? value(std::monostate{}) : value("e-" + std::to_string(1000 + i));
    std::string user = "user-" + std::to_string(i % 6);
    std::string blob(24 + i % 17, '\0');
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    for (auto& c : blob) {
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        c = char(x >> 56);
    }
    std::string raw = "{";
    if (!std::holds_alternative<std::monostate>(id)) raw += "\"event_id\":\"" + std::get<std::string>(id) + "\",";
    raw += "\"user_id\":\"" + user + "\",\"timestamp\":" + std::to_string(t) + ",\"k\":" +
           std::to_string(i * 7) + "}";
    return {t, id, user, uint64_t(i % 300), uint64_t(i) * 0x0123456789abcdefull,
            uint64_t(i % 3), uint64_t(0x3ff0000000000000ull + i), blob, raw};
}

struct segment_image {
    std::string bytes;
    std::vector<row> model;              // every row, in order
    std::vector<uint64_t> block_offsets; // data blocks
    std::vector<uint64_t> block_ends;    // end of each block's payload (before padding)
    uint64_t footer_offset = 0;          // 0 when not closed
    std::vector<format::chunk_info> chunks; // block 0's chunks, in column order
};

// On tmpfs when there is one: recovery's fsyncs cost nothing there, and thousands of
// trials stay quick. What is tested is the bytes, not the disk.
std::string trial_base() { return fs::is_directory("/dev/shm") ? "/dev/shm" : "/var/tmp"; }

// Writes one segment with the real writer and reads its layout back (on tmpfs too: a
// disk's fdatasync can take seconds on a loaded machine).
segment_image make_segment(bool close, format::compression comp) {
    temp_dir tmp(trial_base());
    writer_config cfg;
    cfg.data_dir = tmp.path();
    cfg.writer_name = "w0";
    cfg.rows_per_block = rows_per_block;
    cfg.string_bytes_max = 64 << 10;
    cfg.row_string_bytes_max = 1024;
    cfg.options.compression = comp;
    segment_image img;
    {
        auto w = segment_writer::open(cfg, kinds_schema());
        EXPECT_TRUE(w.ok());
        for (uint64_t i = 0; i < uint64_t(data_blocks) * rows_per_block; ++i) {
            img.model.push_back(kinds_row(i));
            push_row((*w)->batch(), img.model.back());
            (*w)->commit_row();
        }
        EXPECT_TRUE(close ? (*w)->close().ok() : (*w)->flush_and_sync().ok());
    }
    const std::string path = tmp.path() + "/kinds/w0-000001.seg";
    std::ifstream in(path, std::ios::binary);
    img.bytes.assign(std::istreambuf_iterator<char>(in), {});
    auto rd = segment_reader::open(path);
    EXPECT_TRUE(rd.ok());
    while ((*rd)->next_block()) {
        img.block_offsets.push_back((*rd)->block_offset());
        img.block_ends.push_back((*rd)->block_offset() + format::block_header_bytes +
                                 (*rd)->block().payload_bytes);
        if (img.block_offsets.size() == 1) {
            auto ci = (*rd)->chunk_infos();
            EXPECT_TRUE(ci.ok());
            img.chunks = *ci;
        }
    }
    EXPECT_EQ(img.block_offsets.size(), size_t(data_blocks));
    if (close) {
        EXPECT_EQ((*rd)->end(), segment_reader::end_state::footer);
        img.footer_offset = (*rd)->footer().data_end_offset;
    } else {
        EXPECT_EQ((*rd)->end(), segment_reader::end_state::eof);
    }
    return img;
}

// A fresh table dir holding `bytes` as its only segment.
class trial_dir {
  public:
    trial_dir() : _tmp(trial_base()), _table(_tmp.path() + "/kinds"), _path(_table + "/w0-000001.seg") {
        fs::create_directories(_table);
    }
    void put(const std::string& bytes) {
        for (const auto& e : fs::directory_iterator(_table)) fs::remove(e.path());
        int fd = ::open(_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), ssize_t(bytes.size()));
        ::close(fd);
    }
    const std::string& data() const { return _tmp.path(); }
    const std::string& table() const { return _table; }

  private:
    temp_dir _tmp;
    std::string _table, _path;
};

struct scan_out {
    std::vector<row> rows;
    uint64_t damaged = 0;
    bool ok = false;
};

scan_out scan(const std::string& data_dir) {
    scan_out out;
    auto r = scan_table(data_dir, "kinds", INT64_MIN, INT64_MAX,
                        [&](const column_batch& b) { append_rows(b, out.rows); });
    out.ok = r.ok();
    if (r.ok()) out.damaged = r->damaged_segments;
    return out;
}

// The rows are the first k whole blocks of the model, unaltered: returns k, or -1.
int whole_block_prefix(const std::vector<row>& rows, const std::vector<row>& model) {
    if (rows.size() % rows_per_block != 0 || rows.size() > model.size()) return -1;
    for (size_t i = 0; i < rows.size(); ++i)
        if (rows[i] != model[i]) return -1;
    return int(rows.size() / rows_per_block);
}

// What a damaged segment must come to. served_blocks: the whole blocks served after
// recovery (-1: any prefix is acceptable, e.g. padding flips that change nothing).
struct expectation {
    bool detected;      // recovery must truncate or move aside (or remove an unborn file)
    int served_blocks;  // exactly this many whole blocks afterwards
};

// Runs one damaged image through scan → recovery → scan; reports failures with `what`.
void check_damaged(trial_dir& t, const std::string& bytes, const segment_image& img,
                   const expectation& want, const std::string& what) {
    t.put(bytes);
    // Without recovery, a reader never returns an altered row.
    scan_out before = scan(t.data());
    if (before.ok) {
        int k = whole_block_prefix(before.rows, img.model);
        ASSERT_GE(k, 0) << what << ": a scan before recovery returned an altered row";
        if (want.detected) {
            ASSERT_GT(before.damaged, 0u) << what << ": the scan did not report the damage";
        }
    }
    auto rep = recover_table_dir(t.table());
    ASSERT_TRUE(rep.ok()) << what << ": " << rep.err().message;
    const uint64_t acted = rep->truncated + rep->moved_aside + rep->removed_unborn;
    if (want.detected) { ASSERT_EQ(acted, 1u) << what << ": recovery did not detect the damage"; }
    scan_out after = scan(t.data());
    ASSERT_TRUE(after.ok) << what;
    ASSERT_EQ(after.damaged, 0u) << what << ": damage left after recovery";
    int k = whole_block_prefix(after.rows, img.model);
    ASSERT_GE(k, 0) << what << ": recovery served an altered row";
    if (want.served_blocks >= 0) {
        ASSERT_EQ(k, want.served_blocks) << what << ": wrong number of whole blocks served";
    }
    ASSERT_EQ(rep->rows, after.rows.size()) << what << ": report and scan disagree";
    // A second recovery finds nothing more to do.
    auto again = recover_table_dir(t.table());
    ASSERT_TRUE(again.ok());
    ASSERT_EQ(again->truncated + again->moved_aside + again->removed_unborn, 0u) << what;
}

// ---- torn writes ----

void walk_cuts(const segment_image& img, const char* name) {
    trial_dir t;
    const uint64_t size = img.bytes.size();
    const uint64_t last = img.block_offsets.back();
    std::vector<uint64_t> cuts;
    // Every 4 KiB boundary of the last data block (and of the footer block, if any)...
    for (uint64_t c = last; c < size; c += format::page_bytes) cuts.push_back(c);
    // ...and odd offsets: inside headers, payloads, padding, one byte short of the end.
    for (uint64_t d : {1ull, 63ull, 64ull, 65ull, 1000ull, 4095ull, 4097ull, 6000ull})
        if (last + d < size) cuts.push_back(last + d);
    cuts.push_back(size - 1);
    cuts.push_back(img.block_ends.back() - 1);
    if (img.footer_offset) {
        cuts.push_back(img.footer_offset + 1);
        cuts.push_back(img.footer_offset + 64);
    }
    // Earlier blocks too: a cut is a cut wherever the crash leaves it.
    for (size_t b = 1; b < img.block_offsets.size(); ++b) cuts.push_back(img.block_offsets[b] + 2048);
    size_t walked = 0;
    for (uint64_t c : cuts) {
        // Blocks wholly before the cut survive; a cut exactly at a block boundary is a
        // clean end (nothing to truncate).
        int whole = 0;
        for (size_t b = 0; b < img.block_offsets.size(); ++b) {
            const uint64_t end = b + 1 < img.block_offsets.size()
                                     ? img.block_offsets[b + 1]
                                     : (img.footer_offset ? img.footer_offset : size);
            if (end <= c) whole = int(b) + 1;
        }
        bool at_boundary = false;
        for (uint64_t o : img.block_offsets) at_boundary |= o == c;
        at_boundary |= img.footer_offset == c;
        SCOPED_TRACE(std::string(name) + " cut at " + std::to_string(c));
        check_damaged(t, img.bytes.substr(0, c), img, {!at_boundary, whole},
                      std::string(name) + " cut at " + std::to_string(c) + " of " +
                          std::to_string(size));
        if (::testing::Test::HasFatalFailure()) return;
        ++walked;
    }
    // Cuts inside the file header: a segment that was being created, no rows.
    for (uint64_t c : {0ull, 1ull, 100ull, 4095ull}) {
        check_damaged(t, img.bytes.substr(0, c), img, {true, 0},
                      std::string(name) + " cut in the file header at " + std::to_string(c));
        if (::testing::Test::HasFatalFailure()) return;
        ++walked;
    }
    std::printf("[ corruption ] %s: %zu cuts, each detected and served as whole blocks\n", name,
                walked);
}

TEST(TornWrite, UnclosedSegmentCutAnywhereServesWholeBlocksOnly) {
    auto img = make_segment(false, {format::codec::none, 0});
    ASSERT_GE(img.bytes.size() - img.block_offsets.back(), 3 * format::page_bytes)
        << "the last block should span several pages";
    walk_cuts(img, "unclosed");
}

TEST(TornWrite, ClosedSegmentCutAnywhereServesWholeBlocksOnly) {
    auto img = make_segment(true, {format::codec::none, 0});
    walk_cuts(img, "closed");
}

// ---- bit flips ----

struct region {
    std::string name;
    uint64_t begin, end; // file offsets
    uint64_t step;       // walk every step-th byte
    bool checked;        // covered by a checksum (padding is not, and changes no row)
    int block;           // data block index, -1 for the file header, data_blocks for the footer
};

std::vector<region> regions_of(const segment_image& img, uint64_t payload_step) {
    std::vector<region> rs;
    uint32_t content_len;
    std::memcpy(&content_len, img.bytes.data() + 12, 4);
    rs.push_back({"file header", 0, content_len + 8, 1, true, -1});
    rs.push_back({"file header padding", content_len + 8, format::file_header_bytes, 509, false, -1});
    for (size_t b = 0; b < img.block_offsets.size(); ++b) {
        const uint64_t o = img.block_offsets[b];
        const std::string bn = "block " + std::to_string(b);
        rs.push_back({bn + " header", o, o + format::block_header_bytes, 1, true, int(b)});
        const uint64_t next =
            b + 1 < img.block_offsets.size() ? img.block_offsets[b + 1]
                                             : (img.footer_offset ? img.footer_offset : img.bytes.size());
        if (b == 0) {
            // Block 0: every chunk of every column, its 24-byte header byte by byte.
            uint64_t c = o + format::block_header_bytes;
            const auto cols = kinds_schema().columns;
            for (size_t i = 0; i < img.chunks.size(); ++i) {
                const auto& ch = img.chunks[i];
                const std::string cn = bn + " column " + cols[i].name + " (" +
                                       format::encoding_name(ch.enc) + ")";
                rs.push_back({cn + " chunk header", c, c + 24, 1, true, int(b)});
                rs.push_back({cn + " data", c + 24, c + 24 + ch.stored_len,
                              std::max<uint64_t>(1, std::min<uint64_t>(payload_step, ch.stored_len / 8)),
                              true, int(b)});
                c += 24 + ch.stored_len;
            }
            EXPECT_EQ(c, img.block_ends[b]) << "chunks do not fill block 0's payload";
        } else {
            rs.push_back({bn + " payload", o + format::block_header_bytes, img.block_ends[b],
                          payload_step * 4, true, int(b)});
        }
        rs.push_back({bn + " padding", img.block_ends[b], next, 251, false, int(b)});
    }
    if (img.footer_offset) {
        const uint64_t f = img.footer_offset;
        const uint64_t end = f + format::block_header_bytes +
                             format::footer_payload_bytes(kinds_schema().columns.size());
        rs.push_back({"footer header", f, f + format::block_header_bytes, 1, true, data_blocks});
        rs.push_back({"footer payload", f + format::block_header_bytes, end, 1, true, data_blocks});
        rs.push_back({"footer padding", end, img.bytes.size(), 251, false, data_blocks});
    }
    return rs;
}

void walk_flips(const segment_image& img, const char* name, uint64_t payload_step) {
    trial_dir t;
    const bool closed = img.footer_offset != 0;
    std::map<std::string, size_t> walked;
    size_t total = 0;
    for (const auto& r : regions_of(img, payload_step)) {
        for (uint64_t p = r.begin; p < r.end; p += r.step) {
            std::string bytes = img.bytes;
            const int bit = int((p * 5 + 3) % 8); // vary the bit with the position
            bytes[p] = char(uint8_t(bytes[p]) ^ (1u << bit));
            expectation want{true, 0};
            if (!r.checked) {
                want = {false, -1}; // no row changes: any whole prefix, unaltered
            } else if (r.block < 0) {
                want = {true, 0}; // bad file header: moved aside
            } else if (r.block == data_blocks) {
                want = {true, data_blocks}; // bad footer: a torn tail, every data block kept
            } else {
                // A closed segment damaged before its footer is corrupt in the middle:
                // moved aside. An unclosed one is cut at the damaged block.
                want = {true, closed ? 0 : r.block};
            }
            const std::string what = std::string(name) + " " + r.name + ": bit " +
                                     std::to_string(bit) + " of byte " + std::to_string(p);
            check_damaged(t, bytes, img, want, what);
            if (::testing::Test::HasFatalFailure()) return;
            ++walked[r.name];
            ++total;
        }
    }
    std::printf("[ corruption ] %s: %zu bit flips over %zu regions, every one in a checked "
                "region detected, no altered row served\n",
                name, total, walked.size());
}

TEST(BitFlip, EveryRegionOfAClosedSegmentIsDetected) {
    walk_flips(make_segment(true, {format::codec::none, 0}), "closed/none", 8);
}

TEST(BitFlip, EveryRegionOfAnUnclosedSegmentIsDetected) {
    walk_flips(make_segment(false, {format::codec::none, 0}), "unclosed/none", 12);
}

TEST(BitFlip, CompressedChunksAreDetected) {
    walk_flips(make_segment(true, {format::codec::zstd, 1}), "closed/zstd", 16);
    walk_flips(make_segment(false, {format::codec::lz4, 1}), "unclosed/lz4", 16);
}

} // namespace
} // namespace sluice::storage
