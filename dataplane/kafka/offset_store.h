#pragma once
// offset_store: consumer groups' committed offsets, durable in the data dir (docs/KAFKA.md
// "Consumer groups"). <data_dir>/_processing/kafka_offsets is an append-only log of
// variable-length records, one per committed (group, topic, partition):
//
//   [u32 payload bytes][u32 CRC-32C of the payload][payload]
//   payload: u8 version (1), u16 group bytes, group, u16 topic bytes, topic, i32 partition,
//            i64 offset, i32 leader epoch, i64 commit time (ms since the epoch),
//            i32 metadata bytes (-1: null), metadata        (little-endian)
//
// A commit appends its records with one write and fdatasyncs before it returns, so an
// OffsetCommit is answered only once its offsets survive a kill -9. At open the log is
// read up to the first torn or damaged record (a crash mid-write leaves at most a torn
// tail), the last record per key wins, and the file is rewritten with one record per key
// (storage/atomic_file: the old or the new file after a crash); it is rewritten the same
// way when it grows past twice its live size plus offset_log_slack_bytes. Used by the
// group thread only (group_server); not thread-safe.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "base/result.h"

namespace sluice::dataplane::kafka {

std::string offset_log_path(const std::string& data_dir);

inline constexpr uint64_t offset_log_slack_bytes = 1u << 20;
inline constexpr uint32_t offset_metadata_bytes_max = 4096; // Kafka's offset.metadata.max.bytes
// (group, topic, partition) keys kept: a commit of a new key beyond it is refused (a broker
// has no such cap; it bounds what hostile clients can make sluiced hold and rewrite).
inline constexpr uint32_t committed_offsets_max = 1u << 20;

struct committed_offset {
    int64_t offset = -1;
    int32_t leader_epoch = -1;
    int64_t commit_time_ms = 0;
    std::optional<std::string> metadata;
};

struct offset_key {
    std::string group;
    std::string topic;
    int32_t partition = 0;
    auto operator<=>(const offset_key&) const = default;
};

struct offset_commit_entry {
    offset_key key;
    committed_offset value;
};

class offset_store {
  public:
    /// Reads the data dir's log (a missing one is empty), rewrites it reduced and opens it
    /// for appending. An empty data_dir keeps offsets in memory only (tests).
    static result<offset_store> open(const std::string& data_dir);

    offset_store() = default;
    offset_store(offset_store&& o) noexcept;
    offset_store& operator=(offset_store&& o) noexcept;
    offset_store(const offset_store&) = delete;
    ~offset_store();

    /// Appends the entries (one write, then fdatasync) and only then applies them: on an
    /// error nothing is applied and the error names the file and the cause.
    result<void> commit(const std::vector<offset_commit_entry>& entries);

    const committed_offset* find(const offset_key& k) const;
    /// Every committed offset, ordered by (group, topic, partition).
    const std::map<offset_key, committed_offset>& all() const noexcept { return _offsets; }

    uint64_t restored() const noexcept { return _restored; }     // records read at open
    uint64_t torn_bytes() const noexcept { return _torn_bytes; } // dropped at open
    uint64_t commits() const noexcept { return _commits; }       // entries committed
    uint64_t compactions() const noexcept { return _compactions; }
    uint64_t file_bytes() const noexcept { return _file_bytes; }

  private:
    result<void> rewrite();

    std::string _path; // empty: memory only
    int _fd = -1;
    std::map<offset_key, committed_offset> _offsets;
    uint64_t _file_bytes = 0, _live_bytes = 0;
    uint64_t _restored = 0, _torn_bytes = 0, _commits = 0, _compactions = 0;
};

/// Appends one record's bytes (size, CRC, payload) to `out`.
void encode_offset_record(const offset_commit_entry& e, std::string& out);
/// Decodes the records of a log's bytes in order, stopping at the first torn or damaged one;
/// returns the bytes of whole, valid records read.
uint64_t decode_offset_log(std::string_view bytes, std::vector<offset_commit_entry>& out);

} // namespace sluice::dataplane::kafka
