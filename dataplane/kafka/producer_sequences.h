#pragma once
// producer_sequences: the idempotent producer's sequence checks, as a Kafka broker makes
// them (issue 13 item 6). Per (producer id, topic, partition) it keeps the producer epoch
// and the last kafka_producer_batches_kept batches accepted (first and last sequence, base
// offset). A batch is
//   - accepted when its first sequence follows the last one accepted (wrapping after
//     INT32_MAX), or when the producer is not known (new, forgotten, or from before a
//     restart: any sequence);
//   - a duplicate when its first and last sequence equal one of the kept batches: answered
//     with that batch's base offset, stored nothing;
//   - out of order (OUT_OF_ORDER_SEQUENCE_NUMBER, 45) on any other sequence;
//   - fenced (INVALID_PRODUCER_EPOCH, 47) for an epoch older than the one known; a newer
//     epoch starts over and must begin at sequence 0.
// Bounded: at most `capacity` states, preallocated; beyond, the least recently used one is
// forgotten (counted). Owned by the Kafka RX lcore: no allocation, no lock after start.
#include <cstdint>
#include <memory>

#include "base/limits.h"

namespace sluice::dataplane::kafka {

struct sequence_key {
    int64_t producer_id = -1;
    uint64_t topic = 0; // the topic's name hash (sequence_journal.h topic_hash): stable across restarts
    int32_t partition = 0;
    bool operator==(const sequence_key&) const = default;
};

enum class sequence_verdict : uint8_t { accept, duplicate, out_of_order, fenced };

struct sequence_check {
    sequence_verdict verdict = sequence_verdict::accept;
    int64_t base_offset = -1; // duplicate: the kept batch's base offset
};

/// The last sequence of a batch of `last_offset_delta + 1` records starting at `first`
/// (Kafka's wrap: INT32_MAX is followed by 0).
int32_t last_sequence(int32_t first, int32_t last_offset_delta) noexcept;

class producer_sequences {
  public:
    explicit producer_sequences(uint32_t capacity = limits::kafka_producer_partitions_max);
    ~producer_sequences();

    /// The verdict for a batch; changes nothing but recency.
    sequence_check check(const sequence_key& k, int16_t epoch, int32_t first_seq,
                         int32_t last_seq) noexcept;
    /// Records a batch whose records were all handed on (after check() said accept).
    void accepted(const sequence_key& k, int16_t epoch, int32_t first_seq, int32_t last_seq,
                  int64_t base_offset) noexcept;

    /// Takes back the newest batch accepted() for `k` (its records were never made durable:
    /// the store failed, and the producer was answered KAFKA_STORAGE_ERROR), so that the
    /// producer's retry of it is not taken for a duplicate. Batches are forgotten newest
    /// first. A state left with no batch is erased (its producer is then unknown: any
    /// sequence is accepted, and identity dedup catches what was stored), and so is one
    /// whose newest batch or epoch is not this one. An unknown key: nothing to do.
    void forget(const sequence_key& k, int16_t epoch, int32_t first_seq,
                int32_t last_seq) noexcept;

    /// Every kept batch, each state's oldest first (the journal's reduction; control path).
    template <typename F>
    void for_each_batch(F&& f) const;

    uint32_t size() const noexcept { return _size; }
    uint32_t capacity() const noexcept { return _capacity; }
    uint64_t evictions() const noexcept { return _evictions; }

  private:
    struct entry;
    uint32_t find(const sequence_key& k) const noexcept; // index or none
    uint32_t home(const sequence_key& k) const noexcept;
    void unlink(uint32_t i) noexcept;
    void push_front(uint32_t i) noexcept;
    void erase_slot_of(uint32_t i) noexcept;
    void erase(uint32_t i) noexcept; // the whole state: its slot, its LRU links, its entry

    static constexpr uint32_t none = UINT32_MAX;
    uint32_t _capacity;
    uint32_t _mask; // table size - 1 (a power of two >= 2 x capacity)
    std::unique_ptr<entry[]> _entries;
    std::unique_ptr<uint32_t[]> _table; // entry index + 1; 0: empty (linear probing)
    uint32_t _size = 0;
    uint32_t _lru_head = none, _lru_tail = none; // most / least recently used
    uint64_t _evictions = 0;
};

struct producer_sequences::entry {
    sequence_key key;
    int16_t epoch = 0;
    uint8_t kept = 0;   // batches in `batches`
    uint8_t newest = 0; // index of the last accepted batch
    struct batch {
        int32_t first_seq;
        int32_t last_seq;
        int64_t base_offset;
    } batches[limits::kafka_producer_batches_kept];
    uint32_t prev = none, next = none; // LRU list
};

template <typename F>
void producer_sequences::for_each_batch(F&& f) const {
    for (uint32_t i = 0; i < _size; ++i) {
        const entry& e = _entries[i];
        const uint32_t oldest = e.kept < limits::kafka_producer_batches_kept ? 0 : e.newest + 1u;
        for (uint32_t b = 0; b < e.kept; ++b) {
            const auto& x = e.batches[(oldest + b) % limits::kafka_producer_batches_kept];
            f(e.key, e.epoch, x.first_seq, x.last_seq, x.base_offset);
        }
    }
}

} // namespace sluice::dataplane::kafka
