// Start-up recovery of a damaged data dir (storage/recovery): the input is up to four
// files, split at file_separator, laid out as segments of two tables. Recovery either
// fails with a message or leaves a store whose every segment reads to its end: a scan
// serves no more rows than recovery counted (exactly as many when the bytes were not
// re-checksummed), and a second recovery finds nothing left to repair.
#include <filesystem>
#include <limits>

#include "base/log.h"
#include "storage/recovery.h"
#include "storage/table_reader.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/segment_fixup.h"

namespace sluice::fuzz {

namespace {

constexpr std::string_view file_separator = "\n--sluice-fuzz-file--\n";
constexpr const char* file_names[] = {"events/w0-000001.seg", "events/w0-000002.seg",
                                      "events/w1-000001.seg", "t1/w0-000001.seg"};

uint64_t served_rows(const std::string& dir, uint64_t& damaged) {
    uint64_t rows = 0;
    for (const char* table : {"events", "t1"}) {
        auto s = storage::scan_table(dir, table, std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max(),
                                     [](const storage::column_batch&) {});
        if (!s) continue; // a table recovery emptied or never had
        rows += s->rows;
        damaged += s->damaged_segments;
    }
    return rows;
}

void recover(const std::string& dir, std::string_view input, bool fixed) {
    clear_dir(dir);
    std::error_code ec;
    std::filesystem::create_directories(dir + "/events", ec);
    std::filesystem::create_directories(dir + "/t1", ec);
    size_t n = 0;
    for (size_t pos = 0; pos <= input.size() && n < std::size(file_names); ++n) {
        size_t end = input.find(file_separator, pos);
        if (end == std::string_view::npos) end = input.size();
        std::string bytes(input.substr(pos, end - pos));
        if (fixed) bytes = fix_checksums(std::move(bytes));
        if (!write_file(dir + "/" + file_names[n], bytes)) return;
        pos = end + file_separator.size();
    }
    auto first = storage::recover_data_dir(dir);
    if (!first) {
        SLUICE_FUZZ_CHECK(!first.err().message.empty());
        return;
    }
    uint64_t damaged = 0;
    const uint64_t served = served_rows(dir, damaged);
    SLUICE_FUZZ_CHECK(served <= first->rows);
    if (!fixed) SLUICE_FUZZ_CHECK(served == first->rows && damaged == 0);
    auto again = storage::recover_data_dir(dir);
    SLUICE_FUZZ_CHECK(again.ok());
    SLUICE_FUZZ_CHECK(again->truncated == 0 && again->moved_aside == 0 &&
                      again->removed_unborn == 0 && again->rows == first->rows);
}

} // namespace

void fuzz_recovery(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        log_set_level(log_level::error); // recovery warns once per damaged file
        return scratch_dir() + "/data";
    }();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string_view input(reinterpret_cast<const char*>(data), size);
    recover(dir, input, false);
    recover(dir, input, true);
}

} // namespace sluice::fuzz
