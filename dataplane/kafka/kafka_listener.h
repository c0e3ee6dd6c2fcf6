#pragma once
// kafka_listener: the TCP side of the Kafka produce path (SPEC §2.2 item 3), on io_uring,
// owned by one Kafka RX lcore. No thread per connection: one ring, one multishot accept per
// listening socket, one receive per connection (multishot over a provided-buffer ring where
// the kernel has it, else single-shot re-armed per completion), one send in flight per
// connection.
//
// Framing: a request is an int32 big-endian size and that many bytes. Each connection
// reassembles frames in its own buffer (grown up to the largest frame allowed); a frame
// above request_bytes_max closes the connection, as a broker does. Responses go out in
// request order: a request that will be answered reserves the connection's next response
// slot when it is taken; the slot is sent once it is marked ready and every slot before it
// has gone out.
//
// Bounds (base/limits.h): connections (more are accepted and closed at once, counted),
// requests in flight per connection (at the limit the connection is not read: TCP's window
// then holds the client back), bytes buffered per connection. A connection is also not read
// while the RX loop leaves one of its frames untaken (back-pressure from the event rings).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <liburing.h>

#include "base/limits.h"
#include "base/result.h"

namespace sluice::dataplane::kafka {

struct kafka_listener_config {
    std::vector<std::string> listen{"127.0.0.1:9092"}; // "host:port", "[::1]:9092"
    uint32_t connections_max = limits::kafka_connections_default;
    uint32_t request_bytes_max = limits::kafka_request_bytes_default;
    uint32_t inflight_max = limits::kafka_inflight_per_connection;
    bool multishot = true; // false forces single-shot receives (tests, old kernels)
    // A connection with nothing received and nothing to answer for this long is closed
    // (Kafka's connections.max.idle.ms); 0: never.
    uint32_t idle_timeout_ms = limits::kafka_idle_timeout_ms_default;
};

/// Which connection, and which incarnation of its slot: a closed connection's slot is
/// reused, so a late answer to it must not reach the next client.
struct conn_ref {
    uint32_t index = 0;
    uint32_t gen = 0;
};

/// One complete request frame, without its size prefix. Valid until the frame is taken or
/// the next poll().
struct kafka_frame {
    conn_ref conn;
    const uint8_t* data;
    uint32_t len;
    /// tsc_now() when the receive that completed the frame was reaped (its arrival).
    uint64_t arrival_tsc = 0;
};

enum class close_reason : uint8_t {
    peer_closed,
    recv_error,
    send_error,
    request_too_large,
    overrun,
    protocol, // the RX loop found the request unusable (unknown API, malformed header)
    idle,     // nothing received and nothing to answer for idle_timeout_ms
    shutdown,
    count_
};
inline constexpr int close_reason_count = int(close_reason::count_);
const char* close_reason_name(close_reason r) noexcept;

struct alignas(64) kafka_listener_counters {
    std::atomic<uint64_t> connections_total{0};
    std::atomic<uint64_t> connections_open{0};
    std::atomic<uint64_t> connections_refused{0}; // beyond connections_max
    std::atomic<uint64_t> closed[close_reason_count]{};
    std::atomic<uint64_t> bytes_in{0};
    std::atomic<uint64_t> bytes_out{0};
    std::atomic<uint64_t> frames{0};
    std::atomic<uint64_t> paused{0}; // times a connection stopped being read
    std::atomic<uint64_t> accept_errors{0};
};

class kafka_listener {
  public:
    static result<std::unique_ptr<kafka_listener>> open(const kafka_listener_config& config);
    kafka_listener(const kafka_listener&) = delete;
    kafka_listener& operator=(const kafka_listener&) = delete;
    ~kafka_listener();

    /// Reaps completions (accepts, received bytes, finished sends), starts the sends that
    /// became possible and submits: at most one io_uring_enter, none when idle. Never
    /// blocks. Returns how many completions it handled.
    uint32_t poll() noexcept;

    /// Blocks until a completion is posted (received bytes, an accept, a finished send, a
    /// write to wake_fd()) or `timeout_us` passes; returns at once if one is already
    /// waiting. Submits what is queued. The caller polls after it.
    void wait(uint32_t timeout_us) noexcept;
    /// An eventfd whose writes (8 bytes, any value) end a wait(): workers write it when
    /// they publish durable slots, so parked acks=all answers go out without polling.
    int wake_fd() const noexcept { return _wake_fd; }
    /// Whether a connection is queued with a frame that may be taken (one refused for
    /// back-pressure stays queued): then the caller must poll, not block.
    bool has_ready() const noexcept { return _ready.size() > _ready_head; }

    /// Offers complete frames to `take(const kafka_frame&) -> bool`, connection by
    /// connection, in arrival order within a connection, only while the connection has a
    /// free response slot. `take` returns false to leave the frame (back-pressure): the
    /// connection is then not read, and the offering stops. Returns frames taken.
    template <typename Take>
    uint32_t take_frames(Take&& take, uint32_t max) noexcept;

    /// Reserves the connection's next response slot (request order); -1 when none is free
    /// or the connection is gone. The buffer is filled by the caller, then made ready.
    int32_t reserve_response(conn_ref c) noexcept;
    std::vector<uint8_t>* response_buffer(conn_ref c, int32_t slot) noexcept;
    void response_ready(conn_ref c, int32_t slot) noexcept;
    bool alive(conn_ref c) const noexcept;
    void close(conn_ref c, close_reason why) noexcept;
    /// Closes every connection (stop): their in-flight operations are cancelled.
    void close_all() noexcept;

    const kafka_listener_counters& counters() const noexcept { return _counters; }
    bool multishot() const noexcept { return _multishot; }
    /// Connections accepted at once (kafka.connections_max, or fewer where the file
    /// descriptor limit is lower: control/fd_budget.h).
    uint32_t connections_max() const noexcept { return _config.connections_max; }
    /// Lowers connections_max (never raises it, never below 1); before the RX lcore runs.
    void limit_connections(uint32_t n) noexcept {
        _config.connections_max = std::max<uint32_t>(1, std::min(_config.connections_max, n));
    }
    /// The bound ports, in `listen` order (port 0 in the config: the kernel's choice).
    const std::vector<uint16_t>& ports() const noexcept { return _ports; }
    const std::vector<std::string>& addresses() const noexcept { return _display; }

  private:
    struct connection;
    kafka_listener() = default;
    result<void> setup(const kafka_listener_config& config);
    void start() noexcept;
    io_uring_sqe* sqe() noexcept;
    void arm_accept(uint32_t listener) noexcept;
    void arm_recv(uint32_t index) noexcept;
    void on_accept(uint32_t listener, const io_uring_cqe* cqe) noexcept;
    void on_recv(uint32_t index, const io_uring_cqe* cqe) noexcept;
    void on_send(uint32_t index, const io_uring_cqe* cqe) noexcept;
    void op_done(uint32_t index) noexcept;
    bool append(connection& c, const uint8_t* data, uint32_t len) noexcept;
    void stamp_frames(connection& c, uint64_t now_tsc) noexcept;
    void update_reading(uint32_t index) noexcept;
    void start_send(uint32_t index) noexcept;
    void mark_ready(uint32_t index) noexcept;
    void free_connection(uint32_t index) noexcept;
    // The first complete frame buffered on connection `index`: 1 found, 0 incomplete,
    // -1 the frame is too large (the connection has been closed).
    int peek_frame(uint32_t index, kafka_frame* out) noexcept;
    void consume_frame(uint32_t index, const kafka_frame& f) noexcept;
    bool can_take(uint32_t index) const noexcept;
    bool has_frame(const connection& c) const noexcept;
    uint32_t pop_ready() noexcept;
    // held: a frame was refused (back-pressure) and the connection must not be read.
    void enqueue(uint32_t index, bool held = false) noexcept;
    void return_buffer(uint32_t bid) noexcept;
    void expire_idle() noexcept;
    void arm_wake() noexcept;
    uint8_t* buffer(uint32_t bid) const noexcept { return _buffers + size_t{bid} * _buffer_bytes; }

    kafka_listener_config _config;
    io_uring _ring{};
    bool _ring_ready = false;
    bool _ring_disabled = false;
    bool _started = false;
    bool _multishot = false;
    int _wake_fd = -1;      // eventfd (wake_fd()), read by one SQE re-armed on completion
    uint64_t _wake_value = 0; // that read's target
    std::vector<int> _listen_fds;
    std::vector<bool> _accept_armed;
    int64_t _accept_retry_ms = 0; // after a failed accept (EMFILE ...): re-armed from then on
    std::vector<uint16_t> _ports;
    std::vector<std::string> _display;

    uint8_t* _buffers = nullptr;
    size_t _buffers_size = 0;
    uint32_t _buffer_bytes = limits::kafka_recv_buffer_bytes;
    uint32_t _buffer_count = limits::kafka_recv_buffers;
    io_uring_buf_ring* _buf_ring = nullptr;
    size_t _buf_ring_size = 0;
    uint32_t _buf_ring_mask = 0;

    uint32_t _slots = 0; // connection slots: 2 x connections_max
    // Descriptors held by connections, open or closing: at most connections_max +
    // limits::kafka_closing_fds_max (the descriptor budget counts on it).
    uint32_t _fds_held = 0;
    std::unique_ptr<connection[]> _conns;
    std::vector<uint32_t> _free;  // free connection slots (a stack)
    std::vector<uint32_t> _ready; // connections that may hold a complete frame (a FIFO)
    size_t _ready_head = 0;
    uint32_t _polls = 0;
    int64_t _now_ms = 0; // refreshed by expire_idle()
    kafka_listener_counters _counters;
    std::thread::id _owner;
};

// ---------------------------------------------------------------------------------------

template <typename Take>
uint32_t kafka_listener::take_frames(Take&& take, uint32_t max) noexcept {
    uint32_t taken = 0;
    // One pass over the connections queued when it began; a connection is queued again
    // when more bytes arrive or a response slot frees (fairness between clients).
    for (size_t pass = _ready.size() - _ready_head; pass > 0 && taken < max; --pass) {
        const uint32_t index = pop_ready();
        while (taken < max && can_take(index)) {
            kafka_frame f;
            if (peek_frame(index, &f) <= 0) break;
            if (!take(f)) {
                // Back-pressure: the frame stays and is offered again; meanwhile the
                // connection is not read.
                enqueue(index, true);
                return taken;
            }
            consume_frame(index, f);
            ++taken;
        }
        update_reading(index);
    }
    return taken;
}

} // namespace sluice::dataplane::kafka
