#pragma once
// sequence_journal: the idempotent producer's sequence state, persisted with the data
// (issue 13 item 6), so that a producer's retries across a kill -9 of sluiced are answered
// as a broker answers them: a batch stored before the crash is a duplicate (its first
// answer's offset, nothing stored again), a gap is OUT_OF_ORDER_SEQUENCE_NUMBER.
//
// <data_dir>/_processing/kafka_sequences is a log of fixed 48-byte records, one per
// accepted idempotent batch: (topic hash, producer id, base offset, partition, first and
// last sequence, epoch), a magic and a CRC-32C. The rule that keeps it right: **a record is
// written only after every record of its batch is durable in the store**, and an acks=all
// answer goes out only after its batches' records are durable in the journal. So after a
// crash the journal never claims a batch the store lacks (a "duplicate" answer would lose
// it), and it holds every batch a producer was told is stored (a lagging journal would make
// the producer's next batch look like a gap). Batches acknowledged before they were durable
// (acks=1) are journaled once they are, like the rest; acks=1 promises no more.
//
// Writes go through the journal's own small io_uring (write + linked fdatasync), submitted
// by the Kafka RX lcore at most once per group of ready batches and reaped without a system
// call: the lcore never blocks on the disk. At start the log is read (a torn tail ends it),
// reduced to the last kafka_producer_batches_kept batches per (producer, topic, partition)
// and rewritten whole (storage/atomic_file); it is reduced again the same way when it grows
// past journal_bytes_max. A write error is logged and counted, and the journal stops
// holding answers back (the sequence state of that run is then not persisted; sluice's own
// identity dedup still stores nothing twice).
#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "dataplane/kafka/producer_sequences.h"

namespace sluice::dataplane::kafka {

std::string sequence_journal_path(const std::string& data_dir);

struct sequence_record {
    uint64_t topic_hash = 0;
    int64_t producer_id = -1;
    int64_t base_offset = -1;
    int32_t partition = 0;
    int32_t first_seq = 0;
    int32_t last_seq = 0;
    int16_t epoch = 0;
    uint16_t zero = 0;
    uint32_t magic = 0;
    uint32_t crc = 0; // CRC-32C of the 44 bytes before it
};
static_assert(sizeof(sequence_record) == 48);

/// The key producer_sequences keeps a topic's state under: stable across restarts.
uint64_t topic_hash(std::string_view name) noexcept;

/// Reads a journal file into `into` (accepted() per record, in order). Returns how many
/// records were read; a missing file is 0, a torn or corrupt record ends the log.
result<uint64_t> read_sequence_journal(const std::string& path, producer_sequences& into);

class sequence_journal {
  public:
    static constexpr uint32_t staged_max = 1u << 16;  // records staged, not yet durable
    static constexpr uint64_t journal_bytes_max = 16u << 20;

    sequence_journal() : _records(new sequence_record[staged_max]) {}
    ~sequence_journal();
    sequence_journal(const sequence_journal&) = delete;
    sequence_journal& operator=(const sequence_journal&) = delete;

    /// Restores `into` from the data dir's journal, rewrites it reduced and opens it for
    /// appending. An empty data_dir: nothing persisted, every record durable at once (tests).
    result<void> open(const std::string& data_dir, producer_sequences& into);

    bool persisted() const noexcept { return _fd >= 0; }
    /// Each completion of the journal's writes also writes `fd` (an eventfd: the Kafka
    /// listener's wake_fd), so an RX blocked in its own ring wakes for it. False when the
    /// kernel refused; true when nothing is persisted (no writes to wait for).
    bool set_wake_fd(int fd) noexcept;
    /// Room for one more staged record (else the Produce waits: back-pressure).
    bool has_room() const noexcept { return _staged - _durable < staged_max; }
    /// Stages a batch's record; returns its position (durable once durable() exceeds it).
    uint64_t stage(const sequence_key& k, int16_t epoch, int32_t first_seq, int32_t last_seq,
                   int64_t base_offset) noexcept;
    /// Every record staged before position `end` may be written: its batch is durable.
    void writable_until(uint64_t end) noexcept;
    /// The store failed: the records staged but not yet writable belong to batches that
    /// will never be durable (their producers are answered KAFKA_STORAGE_ERROR). Drops
    /// them, never to be written, and takes their batches back from `from`
    /// (producer_sequences::forget, newest first), so a retry is not a duplicate. Returns
    /// how many were dropped; staged() is then where they began.
    uint64_t discard_unwritable(producer_sequences& from) noexcept;
    /// Reaps the write in flight and submits the next one. Returns work done (0: none).
    uint32_t poll() noexcept;
    /// Records before this position are durable in the journal.
    uint64_t durable() const noexcept { return _durable; }
    uint64_t staged() const noexcept { return _staged; }

    uint64_t restored() const noexcept { return _restored; }
    uint64_t written() const noexcept { return _durable_written; }
    uint64_t write_errors() const noexcept { return _write_errors; }
    uint64_t compactions() const noexcept { return _compactions; }

  private:
    result<void> rewrite_reduced();
    void submit() noexcept;
    void failed(int err) noexcept;

    std::string _path;
    int _fd = -1;
    io_uring _ring{};
    bool _ring_ready = false;
    std::unique_ptr<sequence_record[]> _records; // ring of staged_max
    uint64_t _staged = 0, _writable = 0, _submitted = 0, _durable = 0;
    uint32_t _inflight = 0; // CQEs outstanding for the write in flight (0: none)
    uint64_t _inflight_bytes = 0;
    iovec _iov[2]{};
    uint64_t _file_bytes = 0;
    int _inflight_error = 0;
    uint64_t _restored = 0, _durable_written = 0, _write_errors = 0, _compactions = 0;
};

} // namespace sluice::dataplane::kafka
