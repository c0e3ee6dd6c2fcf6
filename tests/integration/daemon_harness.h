#pragma once
// Runs the real sluiced (and sluice-gen) for integration tests and reads back what
// they left: the expected outcome, the data dir, the stats.
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::testing {

using json = nlohmann::json;

std::string make_temp_dir(const std::string& tag);
// Runs a command line through /bin/sh; returns its exit status.
int run_command(const std::string& command);

// EAL options that work without hugepages or a NIC, on however many CPUs we may use.
std::vector<std::string> eal_args(const std::string& prefix, uint32_t lcores);

class daemon_process {
  public:
    // argv after the program name: EAL options, "--", sluice options.
    explicit daemon_process(std::vector<std::string> args, const std::string& log_path);
    ~daemon_process();
    json request(const json& req) const;
    // Polls stats until pred(stats) or the timeout; returns the last stats.
    template <typename Pred>
    json wait_stats(Pred&& pred, int timeout_s) const;
    // Sends `shutdown` and waits for the exit status.
    int shutdown_and_wait(int timeout_s);
    bool running() const;
    pid_t pid() const { return _pid; }
    std::string socket;

  private:
    pid_t _pid = -1;
};

struct expected_outcome {
    json counters;
    std::vector<std::string> windows_csv; // without the header
    std::vector<std::string> events;      // "<xxh3 hex> <late>"
    std::vector<std::string> dead_letters; // "<reason> <xxh3 hex>"
};
expected_outcome read_expected(const std::string& dir);

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
