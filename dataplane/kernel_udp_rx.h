#pragma once
// The kernel UDP socket transport (SPEC §2.2 item 2) through io_uring: for machines where
// DPDK cannot own a port, and the baseline the DPDK path is measured against.
//
// Preferred mode: one multishot recvmsg fed by a provided-buffer ring (kernel >= 6.0), so a
// datagram costs no syscall and no SQE. Fallback, when the kernel refuses multishot: one
// single-shot recvmsg in flight per preallocated buffer, re-armed on release().
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "base/limits.h"
#include "base/result.h"

namespace sluice::dataplane {

/// One received datagram. `data` stays valid until release() returns its buffer.
struct datagram {
    const char* data;
    uint32_t len;
    uint32_t buffer_id;
};

struct kernel_rx_config {
    std::string bind_addr{limits::kernel_bind_default}; // IPv4 or IPv6 literal ("::1" or "[::1]")
    uint16_t port = limits::udp_port_default;
    int rcvbuf_bytes = int(limits::kernel_rcvbuf_bytes_default);
    uint32_t buffers = limits::kernel_rx_buffers; // 1 ..= kernel_rx_buffers_max
    // The largest datagram received whole; a longer one is dropped and counted.
    uint32_t buffer_bytes = limits::kernel_rx_buffer_bytes;
    bool multishot = true; // false forces the single-shot fallback (tests, old kernels)
    // SO_REUSEPORT: several RX lcores each bind their own socket to the same address and
    // the kernel spreads flows (by 4-tuple hash) over them.
    bool reuse_port = false;
};

/// Before sluiced starts (control/preflight.h): binds a plain socket (no SO_REUSEPORT) to
/// the address and lets it go. Fails, with the message open() would give, where another
/// process has the port, including another sluiced whose RX lcores share it through
/// SO_REUSEPORT, which a second sluiced with several RX lcores would otherwise join
/// quietly, taking part of the traffic. A port that comes free within
/// limits::udp_port_release_wait_ms (that of a sluiced just killed) is free.
result<void> check_udp_port_free(const std::string& bind_addr, uint16_t port);

/// Owned by one RX thread: the first thread that calls receive_burst() binds the io_uring
/// to itself (task work runs on the submitting task), and release() must be called from it
/// too. open() may run on any thread. The counters may be read from any thread.
class kernel_udp_rx {
  public:
    // The kernel caps a provided-buffer ring at 32768 entries, and buffer ids are 16 bits.
    static constexpr uint32_t buffers_max = 32768;
    static constexpr uint32_t buffer_bytes_max = 65536;

    static result<std::unique_ptr<kernel_udp_rx>> open(const kernel_rx_config& config);

    kernel_udp_rx(const kernel_udp_rx&) = delete;
    kernel_udp_rx& operator=(const kernel_udp_rx&) = delete;
    ~kernel_udp_rx();

    /// Reaps up to `max` received datagrams into `out`, in arrival order. Never blocks; at
    /// most one io_uring_enter per call, none when idle. Re-arms the multishot receive when
    /// the kernel ends it (e.g. it ran out of buffers and some were released since).
    uint32_t receive_burst(datagram* out, uint32_t max) noexcept;

    /// Returns the buffers of `n` datagrams obtained from receive_burst().
    void release(const datagram* d, uint32_t n) noexcept;

    /// Datagrams the kernel dropped at this socket (its receive buffer was full). Read from
    /// the socket itself (SO_MEMINFO, one getsockopt: control path only), so it is exact at
    /// any moment; where SO_MEMINFO is missing, from the SO_RXQ_OVFL count the kernel
    /// attaches to the next datagram received (it then lags by one datagram).
    uint64_t kernel_drops() const noexcept;
    uint64_t datagrams_total() const noexcept { return _datagrams.load(std::memory_order_relaxed); }
    /// Datagrams longer than buffer_bytes, dropped.
    uint64_t oversize_total() const noexcept { return _oversize.load(std::memory_order_relaxed); }
    /// Receive completions that carried an error other than running out of buffers.
    uint64_t errors_total() const noexcept { return _errors.load(std::memory_order_relaxed); }

    bool multishot() const noexcept { return _multishot; }
    uint16_t local_port() const noexcept { return _local_port; }

  private:
    struct slot; // fallback mode: one single-shot recvmsg and its buffer

    kernel_udp_rx() = default;
    result<void> setup_ring(const kernel_rx_config& config, bool multishot);
    void start() noexcept;
    void arm_multishot() noexcept;
    void arm_slot(uint32_t id) noexcept;
    bool reap_multishot(const io_uring_cqe* cqe, datagram* out) noexcept;
    bool reap_slot(const io_uring_cqe* cqe, datagram* out) noexcept;
    void note_drop_counter(const cmsghdr* cmsg) noexcept;
    char* buffer(uint32_t id) const noexcept { return _buffers + size_t{id} * _stride; }

    int _fd = -1;
    uint16_t _local_port = 0;
    bool _multishot = false;
    bool _ring_ready = false;
    bool _ring_disabled = false;
    bool _started = false;
    bool _armed = false; // multishot: a receive is in the kernel
    io_uring _ring{};

    char* _buffers = nullptr;
    size_t _buffers_bytes = 0;
    uint32_t _stride = 0; // bytes between buffers
    uint32_t _buffer_count = 0;
    uint32_t _payload_bytes = 0; // payload capacity of one buffer
    uint32_t _outstanding = 0;   // buffers held by the caller

    // Multishot mode.
    io_uring_buf_ring* _buf_ring = nullptr;
    size_t _buf_ring_bytes = 0;
    uint32_t _buf_ring_mask = 0;
    msghdr _msg_template{};

    // Fallback mode.
    std::unique_ptr<slot[]> _slots;

    uint32_t _last_drop_counter = 0; // the kernel's 32-bit cumulative count
    std::atomic<uint64_t> _kernel_drops{0};
    mutable std::atomic<uint64_t> _meminfo_drops{0}; // SO_MEMINFO drops, extended to 64 bits
    std::atomic<uint64_t> _datagrams{0};
    std::atomic<uint64_t> _oversize{0};
    std::atomic<uint64_t> _errors{0};
    std::thread::id _owner; // debug builds: the RX thread that owns the ring
};

} // namespace sluice::dataplane
