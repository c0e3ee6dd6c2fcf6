#pragma once
// kafka_codec: the Kafka wire subset that producers need (shared/kafka-protocol.md),
// parsed in place and encoded into caller-owned buffers. Pure: no I/O, no exceptions,
// no allocation per record. Every malformed input is a parse_error value, never a crash.
//
// A request's life: peek_frame() finds a whole frame in the receive buffer,
// parse_request_header() splits it into header and body, a parse_*_request() or
// produce_request_reader reads the body, and a write_*_response() appends the whole
// answer frame (size prefix, header, body) to a response_writer.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace sluice::dataplane::kafka {

using bytes_view = std::span<const uint8_t>;
using uuid = std::array<uint8_t, 16>; // Kafka's topic id; all zero = none

// Bounds (kept here, beside the codec, until the listener settles its own in limits.h).
inline constexpr uint32_t frame_bytes_max_default = 8u << 20;         // one request frame
inline constexpr uint32_t decompressed_bytes_max_default = 16u << 20; // one batch's records
inline constexpr uint32_t record_batch_header_bytes = 61;

namespace api_key {
inline constexpr int16_t produce = 0;
inline constexpr int16_t fetch = 1;
inline constexpr int16_t list_offsets = 2;
inline constexpr int16_t metadata = 3;
inline constexpr int16_t offset_commit = 8;
inline constexpr int16_t offset_fetch = 9;
inline constexpr int16_t find_coordinator = 10;
inline constexpr int16_t join_group = 11;
inline constexpr int16_t heartbeat = 12;
inline constexpr int16_t leave_group = 13;
inline constexpr int16_t sync_group = 14;
inline constexpr int16_t api_versions = 18;
inline constexpr int16_t init_producer_id = 22;
inline constexpr int16_t offset_for_leader_epoch = 23; // fetch_codec.h
inline constexpr int16_t describe_configs = 32;        // fetch_codec.h
} // namespace api_key

// Kafka's error codes, as sent on the wire.
namespace error_code {
inline constexpr int16_t unknown_server_error = -1;
inline constexpr int16_t none = 0;
inline constexpr int16_t offset_out_of_range = 1;
inline constexpr int16_t corrupt_message = 2;
inline constexpr int16_t unknown_topic_or_partition = 3;
inline constexpr int16_t invalid_fetch_size = 4;
inline constexpr int16_t leader_not_available = 5;
inline constexpr int16_t not_leader_or_follower = 6;
inline constexpr int16_t request_timed_out = 7;
inline constexpr int16_t message_too_large = 10;
inline constexpr int16_t coordinator_not_available = 15;
inline constexpr int16_t invalid_topic_exception = 17;
inline constexpr int16_t record_list_too_large = 18;
inline constexpr int16_t not_enough_replicas = 19;
inline constexpr int16_t invalid_required_acks = 21;
inline constexpr int16_t offset_metadata_too_large = 12;
inline constexpr int16_t illegal_generation = 22;
inline constexpr int16_t inconsistent_group_protocol = 23;
inline constexpr int16_t invalid_group_id = 24;
inline constexpr int16_t unknown_member_id = 25;
inline constexpr int16_t invalid_session_timeout = 26;
inline constexpr int16_t rebalance_in_progress = 27;
inline constexpr int16_t unsupported_version = 35;
inline constexpr int16_t invalid_request = 42;
inline constexpr int16_t unsupported_for_message_format = 43;
inline constexpr int16_t out_of_order_sequence_number = 45;
inline constexpr int16_t duplicate_sequence_number = 46;
inline constexpr int16_t invalid_producer_epoch = 47;
inline constexpr int16_t invalid_transaction_timeout = 50;
inline constexpr int16_t transactional_id_authorization_failed = 53;
inline constexpr int16_t unknown_producer_id = 59;
inline constexpr int16_t fenced_leader_epoch = 74;  // consume side (fetch_codec.h)
inline constexpr int16_t unknown_leader_epoch = 75;
inline constexpr int16_t unsupported_compression_type = 76;
inline constexpr int16_t unknown_topic_id = 100;
inline constexpr int16_t member_id_required = 79;
inline constexpr int16_t kafka_storage_error = 56;
inline constexpr int16_t group_max_size_reached = 81;
inline constexpr int16_t invalid_record = 87;
} // namespace error_code

// Why the codec refused some bytes. kafka_error_for() names the Kafka error a broker
// answers for each.
enum class parse_error : uint8_t {
    none,
    truncated,               // a field runs past the end of its frame / record / batch
    bad_length,              // a negative or lying length, count or size
    bad_varint,              // a varint longer than its type allows
    trailing_bytes,          // bytes left over where the structure says it ends
    unsupported_version,     // an api_version this codec does not parse
    legacy_magic,            // a magic 0/1 message set where RecordBatch v2 is required
    bad_magic,               // a magic byte that is neither 0, 1 nor 2
    bad_crc,                 // the RecordBatch's CRC-32C does not match its bytes
    unsupported_compression, // attributes codec 5..7
    too_large,               // decompressed output would exceed the caller's cap
    corrupt_compressed,      // the compressed stream is malformed or truncated
    record_count,            // recordsCount disagrees with the records present
    nested_compression,      // a compressed message inside a compressed legacy wrapper
};

std::string_view parse_error_name(parse_error e) noexcept;

/// The error a broker answers for a partition whose record set failed with `e`:
/// bad_crc and every structural error -> CORRUPT_MESSAGE (2); legacy_magic -> INVALID_RECORD
/// (87), what a broker (2.5+, KIP-467) answers for a Produce v3+ partition whose record set
/// is not a RecordBatch v2 (ProduceRequest.validateRecords);
/// unsupported_compression -> UNSUPPORTED_COMPRESSION_TYPE (76); too_large ->
/// MESSAGE_TOO_LARGE (10); unsupported_version -> UNSUPPORTED_VERSION (35).
int16_t kafka_error_for(parse_error e) noexcept;

// ---------------------------------------------------------------------------------------
// Reading primitives: a bounds-checked big-endian cursor with a sticky error. After the
// first failure every read returns 0/empty and error() stays set.

class byte_reader {
  public:
    byte_reader() = default;
    explicit byte_reader(bytes_view data) noexcept : _data(data) {}

    int8_t i8() noexcept;
    int16_t i16() noexcept;
    int32_t i32() noexcept;
    int64_t i64() noexcept;
    uint32_t uvarint() noexcept;        // unsigned LEB128, at most 5 bytes (flexible versions)
    int32_t varint() noexcept;          // zigzag, at most 5 bytes (record fields)
    int64_t varlong() noexcept;         // zigzag, at most 10 bytes
    bytes_view take(size_t n) noexcept; // n raw bytes in place
    uuid read_uuid() noexcept;          // 16 bytes (all zero after a failure)
    void skip(size_t n) noexcept { (void)take(n); }

    std::string_view string() noexcept;                                 // i16 length, not null
    std::optional<std::string_view> nullable_string() noexcept;         // i16 length, -1 = null
    std::optional<bytes_view> nullable_bytes() noexcept;                // i32 length, -1 = null
    std::string_view compact_string() noexcept;                         // uvarint length + 1
    std::optional<std::string_view> compact_nullable_string() noexcept; // 0 = null
    // i32; -1 (null) is returned as -1. Below -1, or more elements than bytes left (every
    // element is at least one byte): bad_length, before anyone loops over it.
    int32_t array_count() noexcept;
    int32_t compact_array_count() noexcept; // uvarint N+1, 0 = null (-1); same bound
    std::optional<bytes_view> compact_nullable_bytes() noexcept; // uvarint N+1, 0 = null
    void skip_tagged_fields() noexcept; // uvarint count, then {uvarint tag, uvarint len, bytes}

    void fail(parse_error e) noexcept {
        if (_error == parse_error::none) _error = e;
    }
    parse_error error() const noexcept { return _error; }
    bool ok() const noexcept { return _error == parse_error::none; }
    size_t position() const noexcept { return _pos; }
    size_t remaining() const noexcept { return _data.size() - _pos; }
    bytes_view rest() const noexcept { return _data.subspan(_pos); }

  private:
    bytes_view _data;
    size_t _pos = 0;
    parse_error _error = parse_error::none;
};

// ---------------------------------------------------------------------------------------
// Framing and the request header.

enum class frame_status : uint8_t {
    need_more, // fewer than 4 + size bytes buffered
    ready,     // frame_bytes (excluding the 4-byte prefix) are all there
    too_large, // size above the cap: close the connection
    bad_size,  // negative size, or too small to hold a request header: close
};

/// Looks at the start of `buffer` for one size-prefixed frame. On ready and need_more
/// (once the prefix is there) `frame_bytes` is the declared size, prefix excluded.
frame_status peek_frame(bytes_view buffer, uint32_t frame_bytes_max,
                        uint32_t& frame_bytes) noexcept;

/// Whether (api_key, api_version) uses the flexible encoding: request header v2,
/// compact strings/arrays and tagged fields (ApiVersions v3+, Metadata v9+, Produce v9+,
/// InitProducerId v2+, ...). Keys 50..74 are flexible from v0; unknown keys: false.
bool is_flexible(int16_t api_key, int16_t api_version) noexcept;

/// Whether the response header carries a tag buffer: flexible, except ApiVersions.
bool response_header_tagged(int16_t api_key, int16_t api_version) noexcept;

struct request_header {
    int16_t api_key = 0;
    int16_t api_version = 0;
    int32_t correlation_id = 0;
    std::optional<std::string_view> client_id; // points into the frame
    bool flexible = false;                     // header v2 (tags were skipped)
    bytes_view body;                           // the rest of the frame, in place
};

/// Parses a frame (the bytes after the size prefix). Header v1, or v2 when
/// is_flexible(). On error the fields read so far stay set: with >= 8 bytes,
/// api_key/api_version/correlation_id are always valid, so an answer can be addressed.
parse_error parse_request_header(bytes_view frame, request_header& out) noexcept;

// ---------------------------------------------------------------------------------------
// Writing: a big-endian builder that appends to a caller-owned vector (grows it) or
// fills a fixed span (sets overflow() instead of writing past its end).

class response_writer {
  public:
    explicit response_writer(std::vector<uint8_t>& out) noexcept : _vec(&out), _pos(out.size()) {}
    explicit response_writer(std::span<uint8_t> out) noexcept
        : _buf(out.data()), _cap(out.size()) {}

    /// Starts a response frame: reserves the size prefix, writes correlation_id and,
    /// when `tagged`, the header's empty tag buffer. Frames may follow one another.
    void begin_frame(int32_t correlation_id, bool tagged) noexcept;
    /// Patches the size prefix of the frame begun last. Returns the frame's total size
    /// (prefix included), or 0 when a fixed buffer overflowed.
    size_t end_frame() noexcept;

    void i8(int8_t v) noexcept;
    void i16(int16_t v) noexcept;
    void i32(int32_t v) noexcept;
    void i64(int64_t v) noexcept;
    void uvarint(uint32_t v) noexcept;
    void varint(int32_t v) noexcept;  // zigzag
    void varlong(int64_t v) noexcept; // zigzag
    void raw(bytes_view v) noexcept;
    void string(std::string_view s) noexcept; // cut at 32767 bytes (i16 length)
    void nullable_string(std::optional<std::string_view> s) noexcept;
    void bytes(std::optional<bytes_view> b) noexcept; // i32 length, nullopt = -1
    void compact_string(std::string_view s) noexcept;
    void compact_nullable_string(std::optional<std::string_view> s) noexcept;
    void array_count(int32_t n) noexcept { i32(n); }
    void compact_array_count(uint32_t n) noexcept { uvarint(n + 1); }
    void empty_tags() noexcept { i8(0); }

    /// Offset of the next byte, from the start of the vector/span.
    size_t position() const noexcept { return _pos; }
    void patch_i32(size_t at, int32_t v) noexcept;
    bool overflow() const noexcept { return _overflow; }

  private:
    uint8_t* reserve(size_t n) noexcept;

    std::vector<uint8_t>* _vec = nullptr;
    uint8_t* _buf = nullptr;
    size_t _cap = 0;
    size_t _pos = 0;
    size_t _frame_start = 0;
    bool _overflow = false;
};

// ---------------------------------------------------------------------------------------
// ApiVersions (v0-v3).

struct api_version_range {
    int16_t api_key;
    int16_t min_version;
    int16_t max_version;
};

/// What sluice advertises (dataplane/kafka/README.md has the table and what each client
/// picks from it): ApiVersions 0-3, Metadata 0-12, Produce 0-9 (v0-v2: legacy message
/// sets), InitProducerId 0-4 (the flexible versions too: Metadata 9+, Produce 9,
/// InitProducerId 2+), Fetch 4-10, ListOffsets 0-5, OffsetForLeaderEpoch 0-4 and
/// DescribeConfigs 0-4 (4 flexible; all four served by fetch_server when sluiced has one),
/// and the consumer-group APIs (group_server): FindCoordinator 0-2, JoinGroup 0-5,
/// SyncGroup 0-3, Heartbeat 0-3, LeaveGroup 0-3, OffsetCommit 0-7, OffsetFetch 0-5 — each
/// below its first flexible version, and at or above what kafka-python, librdkafka 2.0.2
/// and kafkajs 2.2.4 ask (docs/KAFKA.md).
/// librdkafka also derives features from them: RecordBatch v2 needs Fetch overlapping 4,
/// zstd Fetch 10, lz4 FindCoordinator 0; and gzip, snappy and lz4 need Produce 0 in the
/// list (librdkafka <= 2.11 asks "Produce [0, 0]?" before compressing).
/// Sorted by key.
inline constexpr api_version_range default_api_versions[] = {
    {api_key::produce, 0, 9},          {api_key::fetch, 4, 10},
    {api_key::list_offsets, 0, 5},     {api_key::metadata, 0, 12},
    {api_key::offset_commit, 0, 7},    {api_key::offset_fetch, 0, 5},
    {api_key::find_coordinator, 0, 2}, {api_key::join_group, 0, 5},
    {api_key::heartbeat, 0, 3},        {api_key::leave_group, 0, 3},
    {api_key::sync_group, 0, 3},       {api_key::api_versions, 0, 3},
    {api_key::init_producer_id, 0, 4}, {api_key::offset_for_leader_epoch, 0, 4},
    {api_key::describe_configs, 0, 4},
};

/// The versions this codec can parse and answer, per key: what the default table
/// advertises.
inline constexpr api_version_range codec_api_versions[] = {
    {api_key::produce, 0, 9},
    {api_key::fetch, 4, 10},       // fetch_codec.h
    {api_key::list_offsets, 0, 5}, // fetch_codec.h
    {api_key::metadata, 0, 12},
    {api_key::offset_commit, 0, 7}, // group_codec.h, the rows below too
    {api_key::offset_fetch, 0, 5},
    {api_key::find_coordinator, 0, 2},
    {api_key::join_group, 0, 5},
    {api_key::heartbeat, 0, 3},
    {api_key::leave_group, 0, 3},
    {api_key::sync_group, 0, 3},
    {api_key::api_versions, 0, 3},
    {api_key::init_producer_id, 0, 4},
    {api_key::offset_for_leader_epoch, 0, 4}, // fetch_codec.h
    {api_key::describe_configs, 0, 4},        // fetch_codec.h
};

/// The entry for `key` in `table`, or nullptr.
const api_version_range* find_api(std::span<const api_version_range> table, int16_t key) noexcept;
/// Whether `table` lists (key, version).
bool version_supported(std::span<const api_version_range> table, int16_t key,
                       int16_t version) noexcept;

struct api_versions_request {
    std::string_view client_software_name;    // v3+ only
    std::string_view client_software_version; // v3+ only

    /// v3+: both non-empty, letters, digits, '-' and '.', starting and ending with a letter
    /// or digit (Kafka's rule); a broker answers INVALID_REQUEST (42) otherwise.
    bool valid(int16_t api_version) const noexcept;
};

parse_error parse_api_versions_request(const request_header& h, api_versions_request& out) noexcept;

/// Appends the whole ApiVersions answer frame for `h`. When h.api_version is above the
/// table's ApiVersions max (or below its min), answers UNSUPPORTED_VERSION (35) with the
/// table in a v0-layout body, as a broker does (librdkafka then retries with v0).
/// Otherwise `error` and the table in h.api_version's layout (v0; v1/v2 + throttle; v3
/// compact + tags). The ApiVersions response header never carries tags.
void write_api_versions_response(response_writer& w, const request_header& h,
                                 std::span<const api_version_range> table,
                                 int16_t error = error_code::none,
                                 int32_t throttle_ms = 0) noexcept;

// ---------------------------------------------------------------------------------------
// Metadata (v0-v8; v9-v12, the flexible encoding: compact strings and arrays, tagged
// fields; v10+ topic ids, v11 drops the cluster's authorized operations, v12 lets a request
// name a topic by id alone).

struct metadata_request_topic {
    std::optional<std::string_view> name; // null only from v10 on: asked by topic_id
    uuid topic_id{};                       // v10+; all zero: by name
};

class metadata_request {
  public:
    bool all_topics() const noexcept { return _all_topics; }      // v0: empty; v1+: null
    int32_t topic_count() const noexcept { return _topic_count; } // 0 when all_topics
    /// v4+ carries it; earlier versions always allow it.
    bool allow_auto_topic_creation() const noexcept { return _allow_auto_topic_creation; }

    /// The next requested topic (validated at parse time, so only the end stops it).
    bool next_topic(metadata_request_topic& out) noexcept;
    /// The same, name only (a null name reads as "").
    bool next_topic(std::string_view& name) noexcept;

  private:
    friend parse_error parse_metadata_request(const request_header& h,
                                              metadata_request& out) noexcept;
    byte_reader _topics;
    int16_t _version = 0;
    bool _flexible = false;
    int32_t _topic_count = 0;
    int32_t _topics_left = 0;
    bool _all_topics = false;
    bool _allow_auto_topic_creation = true;
};

/// v1+: a null array asks for all topics, an empty one for brokers only.
parse_error parse_metadata_request(const request_header& h, metadata_request& out) noexcept;

struct metadata_node {
    int32_t node_id = 0;
    std::string_view host;
    int32_t port = 9092;
    std::optional<std::string_view> rack;       // v1+
    std::optional<std::string_view> cluster_id; // v2+
};

struct metadata_topic {
    std::optional<std::string_view> name; // null: written "" before v12 (UNKNOWN_TOPIC_ID)
    int16_t error = error_code::none;
    int32_t partitions = 1;   // 0..partitions-1, each led by the node, replicas = isr = {node}
    bool is_internal = false; // v1+
    uuid topic_id{};          // v10+; all zero: sluice's topics have no ids
};

/// Appends the Metadata answer frame: one broker (`node`, also the controller and every
/// partition's leader) and `topics` in order. v3+: throttle 0; v7+: leader epoch 0;
/// v5+: no offline replicas; v8+: authorized operations omitted (INT32_MIN; the cluster's
/// only in v8-v10); v9+ flexible (header v1, compact, empty tag buffers).
void write_metadata_response(response_writer& w, const request_header& h, const metadata_node& node,
                             std::span<const metadata_topic> topics) noexcept;

// ---------------------------------------------------------------------------------------
// InitProducerId (v0-v1; v2-v4, the flexible encoding; v3+ carries the producer's current
// id and epoch, which a broker ignores without a transactional id).

struct init_producer_id_request {
    std::optional<std::string_view> transactional_id;
    int32_t transaction_timeout_ms = 0;
    int64_t producer_id = -1;   // v3+
    int16_t producer_epoch = -1; // v3+
};

parse_error parse_init_producer_id_request(const request_header& h,
                                           init_producer_id_request& out) noexcept;

void write_init_producer_id_response(response_writer& w, const request_header& h, int16_t error,
                                     int64_t producer_id, int16_t producer_epoch,
                                     int32_t throttle_ms = 0) noexcept;

// ---------------------------------------------------------------------------------------
// FindCoordinator v0-v2 (also advertised for librdkafka's lz4 check). Request: key string,
// v1+ key_type i8 (0 group, 1 transaction). Answer: v1+ throttle, error, v1+ error message,
// node_id, host, port.

struct find_coordinator_request {
    std::string_view key;
    int8_t key_type = 0; // v1+
};

parse_error parse_find_coordinator_request(const request_header& h,
                                           find_coordinator_request& out) noexcept;

/// Node `node` at host:port with `error` 0; with an error, node -1, host "", port -1 (and the
/// error's message from v1 on), as a broker answers.
void write_find_coordinator_response(response_writer& w, const request_header& h, int16_t error,
                                     int32_t node, std::string_view host, int32_t port) noexcept;

// ---------------------------------------------------------------------------------------
// Produce (v0-v2: no transactional_id, legacy message sets; v3-v8, the same request layout
// with transactional_id; v9, the flexible encoding of it).

struct produce_topic {
    std::string_view name;
    int32_t partition_count = 0;
};

struct produce_partition {
    int32_t index = 0;
    std::optional<bytes_view> records; // the record set (RecordBatches), in place
};

/// A cursor over a Produce request body. open() walks the whole topic/partition
/// structure once, so a malformed request is refused before any partition is handed out
/// (nothing is half-accepted); after a successful open the cursor cannot fail.
/// Record-set contents are not looked at here (record_batch_reader does that).
class produce_request_reader {
  public:
    parse_error open(const request_header& h) noexcept;

    const std::optional<std::string_view>& transactional_id() const noexcept {
        return _transactional_id;
    }
    int16_t acks() const noexcept { return _acks; }
    /// -1, 0, 1; anything else is answered INVALID_REQUIRED_ACKS (21) per partition.
    bool acks_valid() const noexcept { return _acks >= -1 && _acks <= 1; }
    int32_t timeout_ms() const noexcept { return _timeout_ms; }
    int32_t topic_count() const noexcept { return _topic_count; }
    int32_t partition_count_total() const noexcept { return _partition_count_total; }

    /// Moves to the next topic (skipping any partitions not visited).
    bool next_topic(produce_topic& out) noexcept;
    /// The next partition of the current topic.
    bool next_partition(produce_partition& out) noexcept;
    /// Back to the first topic.
    void rewind() noexcept;

  private:
    int32_t count(byte_reader& r) const noexcept;

    byte_reader _topics; // positioned at the first topic's name
    byte_reader _cur;
    bool _flexible = false;
    bool _in_topic = false;
    std::optional<std::string_view> _transactional_id;
    int16_t _acks = 0;
    int32_t _timeout_ms = 0;
    int32_t _topic_count = 0;
    int32_t _partition_count_total = 0;
    int32_t _topics_left = 0;
    int32_t _partitions_left = 0;
};

struct produce_partition_result {
    int32_t index = 0;
    int16_t error = error_code::none;
    int64_t base_offset = -1;
    int64_t log_append_time_ms = -1;               // v2+
    int64_t log_start_offset = 0;                  // v5+
    std::optional<std::string_view> error_message; // v8+ (record_errors always empty)
};

/// Streams a Produce answer frame: begin_topic()/partition() for each topic in request
/// order, with the counts announced up front, then finish(). Do not write one when
/// acks == 0: the client expects no answer.
class produce_response_writer {
  public:
    produce_response_writer(response_writer& w, const request_header& h,
                            int32_t topic_count) noexcept;
    void begin_topic(std::string_view name, int32_t partition_count) noexcept;
    void partition(const produce_partition_result& r) noexcept;
    /// Writes throttle_ms (v1+); returns the frame size, as response_writer::end_frame().
    size_t finish(int32_t throttle_ms = 0) noexcept;

  private:
    response_writer& _w;
    int16_t _version;
    bool _flexible;
    bool _topic_open = false;
};

/// Rewrites, in place, a whole Produce answer frame as produce_response_writer wrote it for
/// `api_version` (size prefix included): every partition answered `from` is answered `to`
/// with base offset -1 instead (an acks=-1 answer, built before its records were durable,
/// whose store then failed). Returns how many partitions it changed, or -1 when the
/// bytes are not such a frame (nothing changed then).
int32_t rewrite_produce_errors(std::span<uint8_t> frame, int16_t api_version, int16_t from,
                               int16_t to) noexcept;

// ---------------------------------------------------------------------------------------
// RecordBatch v2, records, compression.

enum class compression : uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };

/// CRC-32C (Castagnoli) of `data`, as RecordBatch v2 uses it (DPDK's rte_hash_crc).
uint32_t crc32c(bytes_view data) noexcept;

struct record_batch {
    int64_t base_offset = 0;
    int32_t batch_length = 0; // bytes after this field
    int32_t partition_leader_epoch = 0;
    int8_t magic = 0;
    uint32_t crc = 0;
    int16_t attributes = 0;
    int32_t last_offset_delta = 0;
    int64_t base_timestamp = 0;
    int64_t max_timestamp = 0;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    int32_t base_sequence = -1;
    int32_t records_count = 0;
    bytes_view records; // the bytes after recordsCount: compressed when codec() != none
    bytes_view bytes;   // the whole batch, header included (to store it verbatim)

    compression codec() const noexcept { return compression(attributes & 0x7); }
    bool log_append_time() const noexcept { return attributes & 0x8; }
    bool transactional() const noexcept { return attributes & 0x10; }
    bool control() const noexcept { return attributes & 0x20; }
};

/// Iterates the RecordBatches of one partition's record set. Each batch is checked
/// (lengths, magic 2, CRC-32C over bytes 21..end, codec 0..4) before it is handed out.
/// A legacy message set (magic 0/1) stops it with legacy_magic. next() returns false at
/// the end or on the first error: error() tells which (none at a clean end).
class record_batch_reader {
  public:
    explicit record_batch_reader(bytes_view record_set) noexcept : _in(record_set) {}
    bool next(record_batch& out) noexcept;
    parse_error error() const noexcept { return _error; }

  private:
    bytes_view _in;
    size_t _pos = 0;
    parse_error _error = parse_error::none;
};

/// Parses one RecordBatch v2 at the start of `data` (exactly batchLength + 12 bytes are
/// used; the rest is ignored). Same checks as record_batch_reader.
parse_error parse_record_batch(bytes_view data, record_batch& out) noexcept;

struct record_header {
    std::string_view key;
    std::optional<bytes_view> value;
};

/// A record's headers, validated when the record was read.
class record_header_reader {
  public:
    record_header_reader() = default;
    record_header_reader(bytes_view raw, int32_t count) noexcept : _in(raw), _left(count) {}
    bool next(record_header& out) noexcept;

  private:
    byte_reader _in;
    int32_t _left = 0;
};

struct record {
    int8_t attributes = 0;
    int64_t timestamp_ms = 0; // baseTimestamp + timestampDelta
    int32_t offset_delta = 0;
    std::optional<bytes_view> key;
    std::optional<bytes_view> value; // null = tombstone
    int32_t header_count = 0;
    bytes_view headers_raw;

    record_header_reader headers() const noexcept { return {headers_raw, header_count}; }
};

/// Iterates the records of one batch over `records` (batch.records when uncompressed,
/// else the decompressed bytes). Each record is fully validated (zigzag varints, lengths
/// within the record, the record's length used exactly); at the end the count must equal
/// batch.records_count and no bytes may remain (else record_count / trailing_bytes).
class record_reader {
  public:
    record_reader(const record_batch& batch, bytes_view records) noexcept;
    bool next(record& out) noexcept;
    parse_error error() const noexcept { return _in.error(); }

  private:
    byte_reader _in;
    int64_t _base_timestamp;
    int32_t _count;
    int32_t _read = 0;
    bool _done = false;
};

/// Reads every record of a batch once (the record_reader checks), without keeping them:
/// validate a whole batch before accepting any of its records.
parse_error check_records(const record_batch& batch, bytes_view records) noexcept;

// ---------------------------------------------------------------------------------------
// Legacy message sets (magic 0 and 1), what Produce v0-v2 carry: a sequence of
// [offset i64][message_size i32][crc u32][magic i8][attributes i8][timestamp i64, magic 1]
// [key bytes][value bytes]. The CRC is CRC-32 (IEEE, zlib's crc32) over magic..value. A
// compressed message (attributes' low 3 bits: gzip, snappy, lz4) is a wrapper whose value is
// a nested message set of uncompressed messages (one level).

class decompressor;

/// CRC-32 (IEEE 802.3, zlib's crc32) of `data`, as legacy messages use it.
uint32_t crc32_ieee(bytes_view data) noexcept;

/// Whether a Produce partition's record set is a legacy message set: its magic byte (offset
/// 16, where a RecordBatch v2 has its own) is 0 or 1.
bool is_legacy_message_set(bytes_view record_set) noexcept;

struct legacy_message {
    int64_t offset = 0;
    int8_t magic = 0;
    int8_t attributes = 0;
    int64_t timestamp_ms = -1; // magic 1 only
    std::optional<bytes_view> key;
    std::optional<bytes_view> value; // null = tombstone
    bytes_view bytes;                // the whole message, offset and size included

    compression codec() const noexcept { return compression(attributes & 0x7); }
};

/// Iterates the messages of a legacy message set, each checked (lengths, magic 0/1, CRC-32,
/// codec 0..3 — zstd needs magic 2 —, key and value using the message exactly) before it is
/// handed out. An outer set may end with a partial message (brokers ignore it: legacy
/// producers and fetch responses cut sets at a size): next() stops cleanly there and
/// partial_bytes() says how many bytes were ignored. An `inner` set (a wrapper's
/// decompressed value) must end exactly (truncated otherwise), and a compressed message in
/// it is nested_compression.
class legacy_message_reader {
  public:
    explicit legacy_message_reader(bytes_view message_set, bool inner = false) noexcept
        : _in(message_set), _inner(inner) {}
    bool next(legacy_message& out) noexcept;
    parse_error error() const noexcept { return _error; }
    size_t partial_bytes() const noexcept { return _partial; }

  private:
    bytes_view _in;
    size_t _pos = 0;
    size_t _partial = 0;
    bool _inner = false;
    parse_error _error = parse_error::none;
};

/// Reads every message of a legacy set once (the legacy_message_reader checks) without
/// decompressing: validate a partition's whole set before accepting any of it.
parse_error check_legacy_message_set(bytes_view message_set, bool inner = false) noexcept;

/// A compressed wrapper's nested message set, decompressed into `scratch` (its size is the
/// cap, as for batch_records). Magic 0 lz4 frames carry the header checksum Kafka computed
/// wrongly before 0.10 (KAFKA-3160: over the frame magic too); it is ignored for them, as
/// brokers do, and checked for magic 1.
parse_error legacy_wrapper_records(const legacy_message& wrapper, decompressor& d,
                                   std::span<uint8_t> scratch, bytes_view& inner) noexcept;

/// Reusable decompression contexts (zlib, LZ4F, zstd): one per lcore or connection.
/// Decompresses into a caller-provided buffer whose size is the hard cap: output that
/// would exceed it is refused with too_large (compression-bomb protection), and nothing
/// is allocated in proportion to the input or the output.
class decompressor {
  public:
    decompressor() noexcept;
    ~decompressor();
    decompressor(const decompressor&) = delete;
    decompressor& operator=(const decompressor&) = delete;

    /// Whether the contexts were created (false only when memory ran out at start).
    bool ok() const noexcept;

    /// gzip (a gzip or zlib stream, concatenated members allowed), snappy (a raw block,
    /// as librdkafka sends, or xerial framing, as kafka-python and Java send), lz4 (LZ4
    /// frame), zstd (one or more frames; unknown content size is fine).
    parse_error decompress(compression codec, bytes_view in, std::span<uint8_t> out,
                           size_t& out_bytes) noexcept;

    /// An LZ4 frame whose header checksum is not checked (recomputed before decoding):
    /// legacy magic 0 messages (KAFKA-3160). The block and content checksums still are.
    parse_error decompress_lz4_ignoring_header_checksum(bytes_view in, std::span<uint8_t> out,
                                                        size_t& out_bytes) noexcept;

  private:
    parse_error gzip(bytes_view in, std::span<uint8_t> out, size_t& n) noexcept;
    parse_error snappy(bytes_view in, std::span<uint8_t> out, size_t& n) noexcept;
    parse_error lz4(bytes_view head, bytes_view in, std::span<uint8_t> out, size_t& n) noexcept;
    parse_error zstd(bytes_view in, std::span<uint8_t> out, size_t& n) noexcept;

    void* _zlib = nullptr; // z_stream
    void* _lz4 = nullptr;  // LZ4F_dctx
    void* _zstd = nullptr; // ZSTD_DCtx
    bool _zlib_ready = false;
};

/// The batch's record bytes ready for record_reader: batch.records when uncompressed,
/// otherwise decompressed into `scratch` (its size is the cap).
parse_error batch_records(const record_batch& batch, decompressor& d, std::span<uint8_t> scratch,
                          bytes_view& records) noexcept;

} // namespace sluice::dataplane::kafka
