#pragma once
// Runs the real sluiced (and sluice-gen) for integration tests and reads back what
// they left: the expected outcome, the data dir, the stats.
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/loopback_tcp.h"

namespace sluice::testing {

using json = nlohmann::json;

std::string make_temp_dir(const std::string& tag);
// Runs a command line through /bin/sh; returns its exit status.
int run_command(const std::string& command);

// True when a reply is the control server's "rate limited" refusal.
bool is_rate_limited(const json& reply);

// EAL options that work without a NIC, on however many CPUs we may use: --no-huge, or
// in the suite's hugepage pass 2 MB hugepages (hugepage_pass()).
std::vector<std::string> eal_args(const std::string& prefix, uint32_t lcores);

// The suite's hugepage pass: SLUICE_TEST_HUGEPAGES=N (N 2 MB pages, leased for the test
// binary by tests/integration/hugepage_env.cpp) makes eal_args() give EAL hugepages with
// --in-memory (memfd-backed: no hugetlbfs mount needed, no page files left behind by a
// kill -9) instead of --no-huge. Returns N, 0 outside that pass.
uint32_t hugepage_pass();

// A network namespace for one test (root only): unique name, IPv6 off (no router or
// neighbour solicitations to count), deleted on destruction.
class netns {
  public:
    explicit netns(const std::string& tag);
    ~netns();
    netns(const netns&) = delete;
    netns& operator=(const netns&) = delete;
    bool ok() const { return _ok; }
    const std::string& name() const { return _name; }
    // `ip netns exec NAME`: a prefix for commands that must run inside.
    std::vector<std::string> exec_prefix() const { return {"ip", "netns", "exec", _name}; }
    // Runs a shell command inside the namespace; returns its exit status.
    int run(const std::string& command) const;

  private:
    std::string _name;
    bool _ok = false;
};

// True when this process may create network namespaces (root with CAP_NET_ADMIN).
bool can_create_netns();

// A child process (e.g. sluice-gen --memif) that the test signals and waits for.
class child_process {
  public:
    child_process(std::vector<std::string> argv, const std::string& log_path);
    ~child_process();
    // Sends SIGTERM and waits; returns the exit status (-1 on timeout).
    int terminate_and_wait(int timeout_s);
    // Waits for a natural exit; returns the exit status (-1 on timeout).
    int wait(int timeout_s);
    bool running() const;

  private:
    // Reaping happens in running() too: the exit status is kept for wait().
    mutable pid_t _pid = -1;
    mutable int _status = -1;
};

class daemon_process {
  public:
    // argv after the program name: EAL options, "--", sluice options. `wrapper` runs
    // before the program (e.g. `ip netns exec NS`).
    explicit daemon_process(std::vector<std::string> args, const std::string& log_path,
                            std::vector<std::string> wrapper = {});
    ~daemon_process();
    // One request; a "rate limited" reply is retried until `timeout_s` has passed.
    json request(const json& req, int timeout_s = 30) const;
    // One request as sent, whatever the answer (for tests of the limits themselves).
    json request_once(const json& req) const;
    // Waits until the control socket answers `status`.
    bool wait_up(int timeout_s) const;
    // Polls stats until pred(stats) or the timeout; returns the last stats.
    template <typename Pred>
    json wait_stats(Pred&& pred, int timeout_s) const;
    // Sends `shutdown` and waits for the exit status.
    int shutdown_and_wait(int timeout_s);
    // SIGKILL, as a crash; waits until it is gone.
    void kill9();
    bool running() const;
    // After the process ended on its own: "exit status N" or "killed by signal N".
    std::string how_it_ended() const;
    pid_t pid() const { return _pid; }
    std::string socket;

  private:
    pid_t _pid = -1;
    mutable int _status = -1; // from waitpid once reaped
};

// Sends payloads[from, to) as UDP datagrams to 127.0.0.1:`port`, never more than `window`
// ahead of what the daemon has received (`rx_packets`, which stood at `rx_before` before
// the first). UDP has no flow control: on a loaded machine the RX lcore can be starved
// long enough to overflow any socket buffer, and a test that needs every datagram taken
// must not race that. False, with the reason in *why, if the daemon stops taking them
// for `stall_s` seconds.
bool send_udp_in_step(const daemon_process& d, uint16_t port,
                      const std::vector<std::string>& payloads, size_t from, size_t to,
                      uint64_t rx_before, std::string* why, size_t window = 512,
                      int stall_s = 120);

// connect_loopback_tcp(port, rcvbuf): tests/integration/loopback_tcp.h, included above.

struct expected_outcome {
    json counters;
    std::vector<std::string> windows_csv; // without the header
    std::vector<std::string> events;      // "<xxh3 hex> <late>"
    std::vector<std::string> dead_letters; // "<reason> <xxh3 hex>"
};
expected_outcome read_expected(const std::string& dir);
// A CSV field as sluice-gen's windows.csv writes it (quoted when it holds , " CR or LF).
std::string csv_field(std::string_view s);

// The `sluiced: final stats {...}` line sluiced prints after a graceful stop: every counter
// once nothing moves any more. Empty if the log has none.
json read_final_stats(const std::string& log_path);
// The EAL --file-prefix runtime directory: removed after a test so runs leave nothing.
void remove_eal_runtime(const std::string& prefix);

struct stored_outcome {
    std::vector<std::string> windows_csv;
    std::vector<std::string> events;
    std::vector<std::string> dead_letters;
};
stored_outcome read_store(const std::string& data_dir, const std::string& query_table);

} // namespace sluice::testing

#include <chrono>
#include <thread>

template <typename Pred>
nlohmann::json sluice::testing::daemon_process::wait_stats(Pred&& pred, int timeout_s) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    json last;
    while (std::chrono::steady_clock::now() < deadline && running()) {
        last = request({{"cmd", "stats"}});
        if (last.value("ok", false) && pred(last)) return last;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return last;
}
