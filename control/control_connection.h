#pragma once
// One control connection's state in the control server's loop (control_loop.cpp), and
// the pacing that loop applies: a token bucket per connection and in all (its refusal
// logs are paced by base/log.h's per-site rate limit). Used only by the loop.
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>

namespace sluice::control::detail {

inline constexpr size_t recv_chunk_bytes = 4096;

// Requests admitted at `rate` per second on average, one second's worth at once.
struct token_bucket {
    double tokens = -1; // full at first use
    int64_t last_ns = 0;
    bool take(int64_t now_ns, uint32_t rate) {
        if (rate == 0) return true;
        if (tokens < 0) {
            tokens = rate;
            last_ns = now_ns;
        }
        tokens = std::min(double(rate), tokens + double(now_ns - last_ns) * rate / 1e9);
        last_ns = now_ns;
        if (tokens < 1) return false;
        tokens -= 1;
        return true;
    }
};

struct connection {
    int fd = -1;
    uid_t uid = 0;
    pid_t pid = 0;
    int64_t last_request_ns = 0; // or the accept
    int64_t last_sent_ns = 0;    // the last send that moved bytes (idle: neither moves)
    bool timed_out = false;      // the idle timeout shut its reading side
    bool abandoned = false;      // ... and its writing side: it did not read its replies
    token_bucket bucket;
    bool armed = false;   // a recv or send is in flight
    bool sending = false; // ... and it is the send
    bool closing = false; // close once `out` is sent
    bool peer_eof = false;
    std::array<char, recv_chunk_bytes> chunk{};
    std::string in;  // bytes received, not yet a complete line
    std::string out; // replies not yet sent
    size_t out_sent = 0;
    // A slow request on the pool: nothing more is read or answered until its reply.
    bool waiting = false;
    uint64_t wait_id = 0; // the job's id; a reply with another id is stale
    int64_t wait_deadline_ns = 0;
    bool reply_ready = false; // `reply` arrived (or the deadline passed) while a send was in flight
    std::string reply;
};

} // namespace sluice::control::detail
