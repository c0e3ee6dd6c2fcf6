#include "tests/integration/daemon_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "control/protocol.h"
#include "storage/schema.h"
#include "storage/table_reader.h"

namespace sluice::testing {

std::string make_temp_dir(const std::string& tag) {
    std::string tmpl = "/tmp/sluice-" + tag + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) std::abort();
    return buf.data();
}

int run_command(const std::string& command) {
    int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::vector<std::string> eal_args(const std::string& prefix, uint32_t lcores) {
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) cpus.push_back(c);
    // Lcores share the available CPUs round robin: the main lcore and RX on the first,
    // workers spread over the rest (2-core machines run every role).
    std::string map;
    for (uint32_t l = 0; l < lcores; ++l) {
        int cpu = cpus[l < 2 ? 0 : (l - 1) % cpus.size()];
        if (!map.empty()) map += ",";
        map += std::to_string(l) + "@" + std::to_string(cpu);
    }
    if (hugepage_pass() > 0)
        return {"--in-memory", "--no-pci", "--file-prefix", prefix, "--lcores", map,
                "--log-level", "*:warning"};
    return {"--no-huge", "--no-pci", "-m", "1024", "--file-prefix", prefix, "--lcores", map,
            "--log-level", "*:warning"};
}

uint32_t hugepage_pass() {
    const char* v = std::getenv("SLUICE_TEST_HUGEPAGES");
    return v ? uint32_t(std::strtoul(v, nullptr, 10)) : 0;
}

namespace {
pid_t spawn(std::vector<std::string> argv, const std::string& log_path) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        std::vector<char*> v;
        for (auto& a : argv) v.push_back(a.data());
        v.push_back(nullptr);
        execvp(v[0], v.data());
        _exit(127);
    }
    return pid;
}

int wait_exit(pid_t pid, int timeout_s) {
    for (int i = 0; i < timeout_s * 20; ++i) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(50 * 1000);
    }
    return -1;
}
} // namespace

netns::netns(const std::string& tag) {
    _name = "sl" + tag + std::to_string(getpid());
    if (_name.size() > 15) _name = _name.substr(_name.size() - 15);
    run_command("ip netns del " + _name + " 2>/dev/null");
    _ok = run_command("ip netns add " + _name) == 0 &&
          run("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
              "net.ipv6.conf.default.disable_ipv6=1") == 0 &&
          run("ip link set lo up") == 0;
}

netns::~netns() { run_command("ip netns del " + _name + " 2>/dev/null"); }

int netns::run(const std::string& command) const {
    return run_command("ip netns exec " + _name + " sh -c '" + command + "'");
}

bool can_create_netns() {
    if (geteuid() != 0) return false;
    std::string name = "slprobe" + std::to_string(getpid());
    if (run_command("ip netns add " + name + " 2>/dev/null") != 0) return false;
    run_command("ip netns del " + name);
    return true;
}

child_process::child_process(std::vector<std::string> argv, const std::string& log_path)
    : _pid(spawn(std::move(argv), log_path)) {}

child_process::~child_process() {
    if (running()) {
        kill(_pid, SIGKILL);
        waitpid(_pid, nullptr, 0);
    }
}

bool child_process::running() const {
    if (_pid <= 0) return false;
    int status;
    if (waitpid(_pid, &status, WNOHANG) != _pid) return true;
    _status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    _pid = -1;
    return false;
}

int child_process::terminate_and_wait(int timeout_s) {
    if (_pid > 0) kill(_pid, SIGTERM);
    return wait(timeout_s);
}

int child_process::wait(int timeout_s) {
    if (_pid <= 0) return _status;
    int rc = wait_exit(_pid, timeout_s);
    if (rc != -1) {
        _status = rc;
        _pid = -1;
    }
    return rc;
}

daemon_process::daemon_process(std::vector<std::string> args, const std::string& log_path,
                               std::vector<std::string> wrapper) {
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == "--control-socket") socket = args[i + 1];
    std::vector<std::string> argv = std::move(wrapper);
    argv.push_back(std::getenv("SLUICED"));
    argv.insert(argv.end(), args.begin(), args.end());
    _pid = spawn(std::move(argv), log_path);
}

bool daemon_process::wait_up(int timeout_s) const {
    for (int i = 0; i < timeout_s * 20 && running(); ++i) {
        if (request({{"cmd", "status"}}).value("ok", false)) return true;
        usleep(50 * 1000);
    }
    return false;
}

daemon_process::~daemon_process() {
    if (running()) {
        kill(_pid, SIGKILL);
        waitpid(_pid, nullptr, 0);
    }
}

void daemon_process::kill9() {
    if (_pid <= 0) return;
    kill(_pid, SIGKILL);
    waitpid(_pid, nullptr, 0);
    _pid = -1;
}

bool daemon_process::running() const {
    if (_pid <= 0 || _status != -1) return false;
    int status = 0;
    pid_t p = waitpid(_pid, &status, WNOHANG);
    if (p == _pid) _status = status;
    return p == 0;
}

std::string daemon_process::how_it_ended() const {
    if (_status == -1) return "still running or not reaped";
    if (WIFEXITED(_status)) return "exit status " + std::to_string(WEXITSTATUS(_status));
    if (WIFSIGNALED(_status)) return "killed by signal " + std::to_string(WTERMSIG(_status));
    return "ended with wait status " + std::to_string(_status);
}

json daemon_process::request_once(const json& req) const {
    auto r = control::request(socket, req, 5000);
    if (!r) return json{{"ok", false}, {"error", r.err().message}};
    return r.value();
}

bool is_rate_limited(const json& reply) {
    if (reply.value("ok", false)) return false;
    auto e = reply.find("error");
    return e != reply.end() && e->is_string() &&
           e->get<std::string>().rfind("rate limited", 0) == 0;
}

// A test's own requests pass the daemon's control limits like any client's, and some
// tests set those limits low on purpose: a "rate limited" answer is retried (backing off
// up to 200 ms) until the deadline, so the test sees what the daemon answers to the
// request, not what its limiter allowed that millisecond.
json daemon_process::request(const json& req, int timeout_s) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    auto backoff = std::chrono::milliseconds(10);
    for (;;) {
        json reply = request_once(req);
        if (!is_rate_limited(reply) || std::chrono::steady_clock::now() >= deadline ||
            !running())
            return reply;
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
    }
}

namespace {
uint64_t rx_packets_of(const json& stats) {
    auto t = stats.find("totals");
    if (t == stats.end() || !t->contains("rx_packets")) return 0;
    return (*t)["rx_packets"].get<uint64_t>();
}
} // namespace

bool send_udp_in_step(const daemon_process& d, uint16_t port,
                      const std::vector<std::string>& payloads, size_t from, size_t to,
                      uint64_t rx_before, std::string* why, size_t window, int stall_s) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return *why = std::string("socket: ") + std::strerror(errno), false;
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint64_t received = 0; // of ours, as the daemon last reported
    auto progress_at = std::chrono::steady_clock::now();
    bool ok = true;
    for (size_t i = from; i < to && ok; ++i) {
        // Sent so far: i - from. Wait while a whole window is outstanding.
        while (i - from >= received + window) {
            json s = d.request({{"cmd", "stats"}});
            uint64_t now = s.value("ok", false) ? rx_packets_of(s) : rx_before + received;
            if (now > rx_before + received) {
                received = now - rx_before;
                progress_at = std::chrono::steady_clock::now();
                continue;
            }
            if (!d.running() ||
                std::chrono::steady_clock::now() - progress_at > std::chrono::seconds(stall_s)) {
                *why = "sluiced took " + std::to_string(received) + " of " +
                       std::to_string(i - from) + " datagrams sent and no more for " +
                       std::to_string(stall_s) + " s (last stats: " + s.dump() + ")";
                ok = false;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        if (!ok) break;
        const std::string& p = payloads[i];
        if (::sendto(fd, p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst) !=
            ssize_t(p.size())) {
            *why = std::string("sendto: ") + std::strerror(errno);
            ok = false;
        }
    }
    ::close(fd);
    return ok;
}

int daemon_process::shutdown_and_wait(int timeout_s) {
    if (_status != -1) {
        int status = _status;
        _pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    // Retried while rate limited (request()): a test that set low control limits must
    // still be able to stop its daemon the way an operator would.
    json reply = request({{"cmd", "shutdown"}});
    if (!reply.value("ok", false))
        std::fprintf(stderr, "daemon_harness: shutdown refused: %s\n", reply.dump().c_str());
    int rc = wait_exit(_pid, timeout_s);
    if (rc != -1) _pid = -1;
    return rc;
}

json read_final_stats(const std::string& log_path) {
    std::ifstream in(log_path);
    std::string line;
    const std::string tag = "sluiced: final stats ";
    while (std::getline(in, line))
        if (line.rfind(tag, 0) == 0) return json::parse(line.substr(tag.size()), nullptr, false);
    return json();
}

void remove_eal_runtime(const std::string& prefix) {
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + prefix, ec);
}

namespace {
std::vector<std::string> read_lines(const std::string& path, bool skip_header) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (first && skip_header) {
            first = false;
            continue;
        }
        first = false;
        lines.push_back(line);
    }
    return lines;
}

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

} // namespace

std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

expected_outcome read_expected(const std::string& dir) {
    expected_outcome e;
    std::ifstream in(dir + "/expected/counters.json");
    e.counters = json::parse(in);
    e.windows_csv = read_lines(dir + "/expected/windows.csv", true);
    e.events = read_lines(dir + "/expected/events.txt", false);
    e.dead_letters = read_lines(dir + "/expected/dead_letters.txt", false);
    return e;
}

stored_outcome read_store(const std::string& data_dir, const std::string& query_table) {
    namespace ev = storage::events_col;
    namespace dl = storage::dead_letters_col;
    namespace wc = storage::window_col;
    stored_outcome s;
    auto r1 = storage::scan_table(data_dir, "events", INT64_MIN, INT64_MAX,
                                  [&](const storage::column_batch& b) {
                                      for (uint32_t i = 0; i < b.rows(); ++i) {
                                          auto raw = b.string_at(ev::raw, i);
                                          s.events.push_back(hex64(XXH3_64bits(raw.data(), raw.size())) +
                                                             " " + std::to_string(b.u8_at(ev::late, i)));
                                      }
                                  });
    auto r2 = storage::scan_table(data_dir, "dead_letters", INT64_MIN, INT64_MAX,
                                  [&](const storage::column_batch& b) {
                                      for (uint32_t i = 0; i < b.rows(); ++i) {
                                          auto raw = b.string_at(dl::raw, i);
                                          s.dead_letters.push_back(
                                              std::string(b.string_at(dl::reason, i)) + " " +
                                              hex64(XXH3_64bits(raw.data(), raw.size())));
                                      }
                                  });
    std::vector<std::tuple<int64_t, std::string, std::string>> rows;
    // The reference query's table: window_start_ms, window_end_ms, page, count, revision.
    auto r3 = storage::scan_table(data_dir, query_table, INT64_MIN, INT64_MAX,
                                  [&](const storage::column_batch& b) {
                                      const int page = b.schema().column_index("page");
                                      const int count = b.schema().column_index("count");
                                      if (page < 0 || count < 0) {
                                          rows.emplace_back(INT64_MIN, "", "<no page/count column>");
                                          return;
                                      }
                                      for (uint32_t i = 0; i < b.rows(); ++i) {
                                          std::string key(b.string_at(page, i));
                                          std::string line =
                                              std::to_string(b.i64_at(wc::window_start_ms, i)) + "," +
                                              std::to_string(b.i64_at(wc::window_end_ms, i)) + "," +
                                              csv_field(key) + "," +
                                              std::to_string(b.u64_at(count, i));
                                          rows.emplace_back(b.i64_at(wc::window_start_ms, i), key, line);
                                      }
                                  });
    if (!r1 || !r2 || !r3) {
        s.events.push_back("<scan failed>");
        return s;
    }
    std::sort(s.events.begin(), s.events.end());
    std::sort(s.dead_letters.begin(), s.dead_letters.end());
    std::sort(rows.begin(), rows.end());
    for (auto& r : rows) s.windows_csv.push_back(std::get<2>(r));
    return s;
}

} // namespace sluice::testing
