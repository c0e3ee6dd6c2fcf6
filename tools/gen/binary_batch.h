#pragma once
// sluice-gen's side of docs/BINARY.md: an encoder for the generator and a decoder for the
// reference model, written from the spec (nothing shared with dataplane/binary_parse).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::tools {

inline constexpr uint32_t bin_absent = 0xFFFFFFFF;
inline constexpr size_t bin_header_bytes = 16;
inline constexpr size_t bin_record_bytes = 32;

// One event as the binary format carries it. The last two fields make malformed records.
struct bin_event {
    std::optional<int64_t> timestamp_ms;
    std::optional<std::string> event_id, user_id, event_type, page, metadata;
    uint16_t extra_flags = 0; // flag bits beyond "timestamp present" (a parse_error)
    bool bad_index = false;   // the page index points past the string table (a parse_error)
};

class bin_batch_encoder {
  public:
    void add(const bin_event& e);
    // The batch's encoded size if `e` were added (strings already in the table are free).
    size_t size_with(const bin_event& e) const;
    size_t size() const { return _size; }
    bool empty() const { return _records.empty(); }
    // Encodes the batch and starts a new one. `corrupt_header` writes version 2.
    std::string finish(bool corrupt_header = false);

  private:
    uint32_t intern(const std::optional<std::string>& s);
    size_t extra_for(const std::optional<std::string>& s) const;

    std::vector<std::string> _strings;
    std::map<std::string, uint32_t> _index;
    size_t _string_bytes = 0;
    std::vector<std::string> _records;
    size_t _size = bin_header_bytes;
};

// The canonical form (the events table's raw) of a well-formed event.
std::string bin_canonical(const bin_event& e);

// A decoded record: the event, or why its fields could not be read (then `record` holds
// its 32 bytes as sent).
struct bin_record {
    bool readable = false;
    bin_event event;
    std::string record;
};
// Decodes a batch; nullopt when the header or string table is invalid.
std::optional<std::vector<bin_record>> bin_decode(std::string_view payload);

// Strict UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view s);

} // namespace sluice::tools
