#pragma once
// parquet_writer: writes rows of one table as an Apache Parquet file that DuckDB, Spark
// and pandas read directly. Control path (export), never on an lcore.
//
// Layout: "PAR1", row groups of column chunks (an optional dictionary page, then data
// pages v1 with PLAIN or RLE_DICTIONARY values and RLE definition levels), the
// FileMetaData in Thrift's compact protocol, its length, "PAR1". Pages are compressed
// with zstd (or not). Types: i64 -> INT64; u64 -> INT64 as INTEGER(64, unsigned); u8 ->
// INT32 as INTEGER(8, unsigned); string -> BYTE_ARRAY as STRING (UTF-8: invalid
// sequences become U+FFFD, counted); bytes -> BYTE_ARRAY (binary). Nullable columns are
// OPTIONAL, the others REQUIRED. Column chunks carry null counts and, for numbers,
// min/max statistics.
//
// The Thrift structures are encoded here by hand (thrift_compact.h): Debian 12's
// libthrift headers need Boost and its library pulls in Qt 5, for the ~100 lines of the
// compact protocol that the footer and page headers use.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/column_batch.h"
#include "storage/schema.h"

struct ZSTD_CCtx_s;

namespace sluice::storage {

struct parquet_options {
    bool zstd = true;        // else uncompressed
    int zstd_level = 1;
    uint32_t row_group_rows = 1u << 20;
    size_t row_group_bytes = 256u << 20; // buffered values; a row group ends at either bound
    size_t page_bytes = 1u << 20;         // values per data page, before compression
    bool dictionary = true;               // RLE_DICTIONARY for repetitive string columns
};

class parquet_writer {
  public:
    // out must stay open until finish(); the writer does not close it.
    static result<std::unique_ptr<parquet_writer>> open(std::FILE* out, const table_schema& schema,
                                                        const parquet_options& options = {});
    ~parquet_writer();
    parquet_writer(const parquet_writer&) = delete;
    parquet_writer& operator=(const parquet_writer&) = delete;

    // Buffers the batch's rows (its schema must have the writer's columns); writes a row
    // group whenever one is full.
    result<void> append(const column_batch& batch);
    // Writes the last row group and the footer. The file is complete only after this.
    result<void> finish();

    uint64_t rows() const noexcept { return _rows_total; }
    uint64_t bytes() const noexcept { return _offset; }
    uint64_t invalid_utf8_values() const noexcept { return _invalid_utf8; }

  private:
    struct column_buffer {
        std::vector<uint64_t> fixed;   // numbers of non-null rows
        std::vector<char> bytes;       // strings of non-null rows, back to back
        std::vector<uint32_t> ends;    // end offset of each string in bytes
        std::vector<uint8_t> defined;  // per row: 1 = value, 0 = null (nullable columns)
        uint64_t nulls = 0;
    };
    struct chunk_meta {
        int64_t file_offset = 0;
        int64_t data_page_offset = 0;
        int64_t dictionary_page_offset = -1;
        int64_t uncompressed = 0;
        int64_t compressed = 0;
        int64_t values = 0;
        int64_t nulls = 0;
        bool has_minmax = false;
        uint64_t min = 0, max = 0;
        bool dictionary = false;
    };
    struct row_group_meta {
        std::vector<chunk_meta> columns;
        int64_t rows = 0;
        int64_t file_offset = 0;
        int64_t uncompressed = 0;
        int64_t compressed = 0;
    };

    parquet_writer(std::FILE* out, const table_schema& schema, const parquet_options& options);
    result<void> write(const void* data, size_t len);
    result<void> write_page(int page_type, const std::string& body, int32_t values,
                            int32_t encoding, chunk_meta& meta);
    result<void> flush_row_group();
    result<void> write_column(int col, chunk_meta& meta);
    std::string footer() const;

    std::FILE* _out;
    table_schema _schema;
    parquet_options _options;
    std::vector<column_buffer> _buffers;
    uint32_t _rows = 0; // in the current row group
    size_t _buffered_bytes = 0;
    uint64_t _rows_total = 0;
    uint64_t _offset = 0;
    uint64_t _invalid_utf8 = 0;
    std::vector<row_group_meta> _row_groups;
    std::string _scratch; // a compressed page
    std::string _body;    // a page before compression
    ZSTD_CCtx_s* _cctx = nullptr;
    bool _finished = false;
};

} // namespace sluice::storage
