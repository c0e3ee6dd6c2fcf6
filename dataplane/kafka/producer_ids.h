#pragma once
// producer_ids: the producer ids InitProducerId hands out, never repeated across restarts.
// The next id not yet reserved lives in <data_dir>/_processing/kafka_producer_ids (one
// decimal line), written atomically (temporary file, fdatasync, rename, fsync of the
// directory). Ids are reserved kafka_producer_id_block at a time: the file is written at
// start and then once per block, on the Kafka RX lcore (a rare control request, never per
// event). A crash skips the rest of the block, never reuses an id.
#include <cstdint>
#include <string>

#include "base/result.h"

namespace sluice::dataplane::kafka {

std::string producer_ids_path(const std::string& data_dir);

class producer_ids {
  public:
    producer_ids() = default;
    /// Reads the file (absent: ids start at the wall clock's ms << 8, above what versions
    /// without the file handed out) and reserves the first block. An empty data_dir: not
    /// persisted (tests).
    static result<producer_ids> open(const std::string& data_dir);

    /// The next id, or -1 when a block could not be reserved (disk full: the client retries).
    int64_t next() noexcept;

  private:
    result<void> reserve();

    std::string _path;
    int64_t _next = 0;
    int64_t _reserved_until = 0; // ids below are ours
};

} // namespace sluice::dataplane::kafka
