#pragma once
// Export of a table's rows in a time range to JSON Lines, CSV or Parquet: the C++ API
// behind `sluice-read --format` (and any future `sluicectl export`). Control path; reads
// the data dir directly, with or without a running daemon.
//
// JSON Lines: one object per row, keys in column order; numbers as JSON numbers, null
// as null, strings as JSON strings. CSV (RFC 4180): a header of column names, CRLF line
// ends; a null is an empty field, an empty string is "". Text needs UTF-8: in JSON Lines
// and CSV, string and bytes values that are not UTF-8 have their bad bytes replaced
// with U+FFFD (counted in the summary). Parquet keeps bytes columns exact (binary);
// parquet_writer.h has its types.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "storage/parquet_writer.h"
#include "storage/schema.h"
#include "storage/table_reader.h"

namespace sluice::storage {

enum class export_format { jsonl, csv, parquet };
std::optional<export_format> parse_export_format(std::string_view name);

// How far an export is: the scan's progress (segments and bytes of the table walked,
// out of their totals) and what has been written.
struct export_progress {
    scan_progress scan;
    uint64_t rows = 0;  // rows written (or buffered for Parquet's current row group)
    uint64_t bytes = 0; // bytes written to the output so far
};

struct export_options {
    export_format format = export_format::jsonl;
    int64_t from_ms = std::numeric_limits<int64_t>::min(); // time column range, inclusive
    int64_t to_ms = std::numeric_limits<int64_t>::max();
    parquet_options parquet{};
    // Optional: called after each block of the table (never per row), in order, with
    // values that only grow, possibly on a TBB thread. The last call comes once every
    // row is written (Parquet: footer included; export_table_to_file then syncs and
    // renames) and has scan.bytes_done == scan.bytes_total (100%).
    std::function<void(const export_progress&)> progress;
};

struct export_summary {
    scan_summary scan;
    uint64_t rows = 0;
    uint64_t bytes = 0;               // written
    uint64_t invalid_utf8_values = 0; // text values whose bad bytes became U+FFFD
};

// The schema of a table, from its first segment (a table holds one schema).
// Appends row `r` of `b` as one JSON object, the jsonl export's form: {"column": value,
// ...} in schema order, numbers as numbers, a null or a non-finite double as null, strings
// UTF-8-repaired; column `skip` left out (-1: none). Returns the values that needed repair.
// (Also the value of a query topic's record, dataplane/kafka/fetch_server.)
uint64_t append_json_row(std::string& out, const column_batch& b, uint32_t r, int skip = -1);

result<table_schema> read_table_schema(const std::string& data_dir, const std::string& table);

// Writes the rows to out (e.g. stdout). Fails when segments of the table have
// different schemas.
result<export_summary> export_table(const std::string& data_dir, const std::string& table,
                                    const export_options& options, std::FILE* out);
// Writes to path through path.tmp, synced and renamed: a reader never sees half a file.
result<export_summary> export_table_to_file(const std::string& data_dir, const std::string& table,
                                            const export_options& options, const std::string& path);

} // namespace sluice::storage
