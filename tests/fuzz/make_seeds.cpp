// fuzz_seeds DIR: writes the storage targets' seed segments (tests/fuzz/make_corpus runs
// it): small real segments of the events table and of a table of every column type,
// closed with a footer, left unclosed, and torn inside their last block, in each
// compression; under DIR/segment/ one file each, under DIR/recovery/ data dirs of
// several of them (recovery.cpp's file_separator between files).
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "storage/schema.h"
#include "storage/segment_writer.h"

namespace fs = std::filesystem;
using namespace sluice::storage;

namespace {

table_schema mixed_schema() {
    table_schema s;
    s.name = "t1";
    s.columns = {{"time", column_type::i64},          {"id", column_type::string, true},
                 {"user", column_type::string},       {"flag", column_type::u8},
                 {"count", column_type::u64, true},   {"ratio", column_type::f64, true},
                 {"raw", column_type::bytes, false, {1, 2}}};
    s.time_column = 0;
    return s;
}

void fill(segment_writer& w, const table_schema& s, int rows) {
    auto& b = w.batch();
    for (int i = 0; i < rows; ++i) {
        const std::string user = "user-" + std::to_string(i % 3);
        const std::string id = "id-" + std::to_string(1000 + i);
        for (int c = 0; c < int(s.columns.size()); ++c) {
            const auto& def = s.columns[size_t(c)];
            if (def.nullable && i % 4 == 3) {
                b.push_null(c);
                continue;
            }
            switch (def.type) {
            case column_type::i64: b.push_i64(c, 1764547200000 + i * 1000); break;
            case column_type::u64: b.push_u64(c, uint64_t(i) * 0x0123456789ull); break;
            case column_type::u8: b.push_u8(c, uint8_t(i % 2)); break;
            case column_type::f64: b.push_f64(c, i == 2 ? NAN : i * 0.25); break;
            case column_type::string:
            case column_type::bytes:
                b.push_string(c, c == 1   ? id
                                 : c == 2 ? user
                                          : "{\"id\":\"" + id + "\",\"user\":\"" + user +
                                                "\",\"\xff\":" + std::to_string(i) + "}");
                break;
            }
        }
        b.end_row();
        w.commit_row();
    }
}

// Events whose raw is a binary event's canonical form (docs/BINARY.md), appended with the
// places of its fields and time as the worker appends it: format 4 skeletons with escaped
// bytes 0..8 and the time's 8-byte rendering.
void fill_binary(segment_writer& w, const table_schema&, int rows) {
    namespace ev = events_col;
    auto& b = w.batch();
    for (int i = 0; i < rows; ++i) {
        const int64_t t = 1764547200000 + i * 1000;
        const std::string id = "id-" + std::to_string(1000 + i), user = "user-" + std::to_string(i % 3);
        const std::string type = "click", page = "/p/" + std::to_string(i);
        const std::string* fields[] = {&id, &user, &type, &page};
        std::string raw = std::string("\xB1\x01\x01\x00", 4);
        raw.append(reinterpret_cast<const char*>(&t), 8);
        for (const auto* f : fields) {
            const uint16_t n = uint16_t(f->size());
            raw.append(reinterpret_cast<const char*>(&n), 2);
        }
        raw += std::string("\x00\x00", 2); // an empty metadata
        uint16_t at[5];
        for (int f = 0; f < 4; ++f) {
            at[f] = uint16_t(raw.size());
            raw += *fields[f];
        }
        at[4] = 4;
        b.push_i64(ev::event_time_ms, t);
        b.push_string(ev::event_id, id);
        b.push_string(ev::user_id, user);
        b.push_string(ev::event_type, type);
        b.push_string(ev::page, page);
        b.push_u8(ev::late, 0);
        b.push_string_at(ev::raw, raw, at);
        b.push_i64(ev::max_time_ms, t);
        b.end_row();
        w.commit_row();
    }
}

// Writes one segment of `rows` rows; returns its bytes (closed, or flushed and left open).
std::string segment(const table_schema& s, format::codec codec, int rows, bool closed,
                    void (*filler)(segment_writer&, const table_schema&, int) = fill) {
    const fs::path dir = fs::temp_directory_path() / ("sluice-seeds-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    writer_config cfg;
    cfg.data_dir = dir.string();
    cfg.writer_name = "w0";
    cfg.rows_per_block = 3;
    cfg.string_bytes_max = 4096;
    cfg.row_string_bytes_max = 256;
    cfg.options.direct_io = false;
    cfg.options.compression = {codec, 1};
    auto w = segment_writer::open(cfg, s);
    if (!w) {
        std::cerr << "fuzz_seeds: " << w.err().message << "\n";
        std::exit(1);
    }
    filler(**w, s, rows);
    if (closed) {
        if (!(*w)->close().ok()) std::exit(1);
    } else if (!(*w)->flush_and_sync().ok()) {
        std::exit(1);
    }
    w.value().reset();
    std::string bytes;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".seg") {
            std::ifstream f(e.path(), std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        }
    fs::remove_all(dir);
    return bytes;
}

void put(const fs::path& p, const std::string& bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fuzz_seeds DIR\n";
        return 2;
    }
    const fs::path out = argv[1];
    const table_schema events = events_schema(), mixed = mixed_schema();
    const std::string ev_zstd = segment(events, format::codec::zstd, 5, true);
    const std::string mixed_none = segment(mixed, format::codec::none, 5, true);
    const std::string mixed_lz4 = segment(mixed, format::codec::lz4, 4, true);
    const std::string ev_open = segment(events, format::codec::none, 4, false);
    std::string torn = segment(mixed, format::codec::zstd, 6, false);
    torn.resize(torn.size() - 4096 + 100); // the last block cut 100 bytes in
    put(out / "segment/events-zstd-closed", ev_zstd);
    put(out / "segment/mixed-none-closed", mixed_none);
    put(out / "segment/mixed-lz4-closed", mixed_lz4);
    put(out / "segment/events-none-unclosed", ev_open);
    put(out / "segment/mixed-zstd-torn", torn);
    put(out / "segment/events-binary-none-closed",
        segment(events, format::codec::none, 5, true, fill_binary));
    const std::string sep = "\n--sluice-fuzz-file--\n"; // recovery.cpp's file_separator
    put(out / "recovery/closed-and-unclosed", ev_zstd + sep + ev_open);
    put(out / "recovery/torn-and-empty", ev_open + sep + std::string() + sep + ev_zstd + sep + torn);
    put(out / "recovery/header-only", ev_zstd.substr(0, 4096) + sep + ev_zstd.substr(0, 2000));
    return 0;
}
