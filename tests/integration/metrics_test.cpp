// sluiced's HTTP /metrics as operators use it: the real Debian `prometheus` scrapes the
// real sluiced and answers PromQL with the counts `stats` reports; the endpoint serves the
// same exposition as the `metrics` command; and every metric the Grafana dashboard
// (deploy/grafana/sluice.json) queries is one sluiced exports.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "tests/integration/daemon_harness.h"

using namespace sluice::testing;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr)
        throw std::runtime_error(std::string(name) + " is not set (run through meson)");
    return v;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The first `prometheus` on PATH (or $PROMETHEUS), else "".
std::string find_prometheus() {
    if (const char* p = std::getenv("PROMETHEUS"); p && *p) return p;
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':'))
        if (::access((dir + "/prometheus").c_str(), X_OK) == 0) return dir + "/prometheus";
    return "";
}

uint16_t free_tcp_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

struct http_reply {
    int status = 0;
    std::string body;
};

// One HTTP/1.0 GET (no chunking, the server closes): status and body; status 0 when
// nothing answered within 10 s.
http_reply http_get(uint16_t port, const std::string& target) {
    http_reply r;
    const int fd = connect_loopback_tcp(port);
    if (fd < 0) return r;
    std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string in;
    const int64_t deadline = sluice::monotonic_ns() + 10'000'000'000;
    char chunk[16384];
    while (sluice::monotonic_ns() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        in.append(chunk, size_t(n));
    }
    ::close(fd);
    size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos || std::sscanf(in.c_str(), "HTTP/1.%*d %d", &r.status) != 1)
        return r;
    r.body = in.substr(end + 4);
    return r;
}

std::string url_encode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += char(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

// Sample names in a text exposition ("name{...} v" or "name v" lines).
std::set<std::string> sample_names(const std::string& text) {
    std::set<std::string> names;
    std::stringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        names.insert(line.substr(0, line.find_first_of("{ ")));
    }
    return names;
}

// A kernel-UDP sluiced with a Kafka listener beside it (so the Kafka families exist), the
// HTTP endpoint on a free port of its choosing and JSON log lines.
class Metrics : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir = make_temp_dir("metrics");
        udp_port = free_udp_port();
        auto args = eal_args("sluice-metrics-" + std::to_string(getpid()), 4);
        args.insert(args.end(), {"--", "--data-dir", dir + "/data", "--control-socket",
                                 dir + "/ctl.sock", "--workers", "1", "--kernel-udp", "127.0.0.1",
                                 "--udp-port", std::to_string(udp_port), "--kafka", "127.0.0.1:0",
                                 "--metrics-listen", "127.0.0.1:0", "--log-format", "json"});
        d = new daemon_process(args, dir + "/sluiced.log");
        if (!d->wait_up(120)) return;
        // The control socket answers before the metrics listener is published (status
        // has metrics_url null until then): wait for it, with a deadline (a TSan build on
        // a loaded machine asked inside that window).
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (d->running() && std::chrono::steady_clock::now() < deadline) {
            json st = d->request({{"cmd", "status"}});
            auto url = st.find("metrics_url");
            unsigned p = 0;
            if (url != st.end() && url->is_string() &&
                std::sscanf(url->get<std::string>().c_str(), "http://127.0.0.1:%u/metrics", &p) == 1) {
                http_port = uint16_t(p);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    static void TearDownTestSuite() {
        if (d) {
            d->shutdown_and_wait(120);
            delete d;
            d = nullptr;
        }
        remove_eal_runtime("sluice-metrics-" + std::to_string(getpid()));
        if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
    }
    void SetUp() override {
        ASSERT_NE(d, nullptr);
        ASSERT_TRUE(d->running()) << slurp(dir + "/sluiced.log");
        ASSERT_NE(http_port, 0) << "status has no metrics_url: " << slurp(dir + "/sluiced.log");
    }
    static uint16_t free_udp_port() {
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        ::close(fd);
        return ntohs(a.sin_port);
    }
    static std::string dir;
    static uint16_t udp_port, http_port;
    static daemon_process* d;
};
std::string Metrics::dir;
uint16_t Metrics::udp_port = 0, Metrics::http_port = 0;
daemon_process* Metrics::d = nullptr;

// Sends `n` page views stamped now to the UDP input, in step with what the daemon has
// taken (UDP has no flow control; daemon_harness.h send_udp_in_step).
void send_events(const daemon_process& d, uint16_t port, int n, const std::string& tag) {
    std::vector<std::string> payloads;
    for (int i = 0; i < n; ++i)
        payloads.push_back("{\"event_id\":\"" + tag + std::to_string(i) +
                           "\",\"timestamp\":" + std::to_string(sluice::wall_clock_ms()) +
                           ",\"page\":\"/p" + std::to_string(i % 7) + "\"}");
    json st = d.request({{"cmd", "stats"}});
    ASSERT_TRUE(st.value("ok", false)) << st.dump();
    std::string why;
    ASSERT_TRUE(send_udp_in_step(d, port, payloads, 0, payloads.size(),
                                 st["totals"]["rx_packets"].get<uint64_t>(), &why))
        << why;
}

uint64_t accepted(const json& stats) {
    return stats["totals"]["events_accepted"].get<uint64_t>();
}

TEST_F(Metrics, TheEndpointServesTheSameExpositionAsTheMetricsCommand) {
    http_reply r = http_get(http_port, "/metrics");
    ASSERT_EQ(r.status, 200);
    json m = d->request({{"cmd", "metrics"}});
    ASSERT_TRUE(m.value("ok", false)) << m.dump();
    const std::string text = m["text"].get<std::string>();
    // Values move between the two reads (uptime, rates); the families and series do not.
    EXPECT_EQ(sample_names(r.body), sample_names(text));
    EXPECT_NE(r.body.find("# TYPE sluice_events_accepted_total counter"), std::string::npos);
    EXPECT_EQ(http_get(http_port, "/").status, 404);
    // The endpoint counts its own answers, in stats and in the exposition.
    json st = d->request({{"cmd", "stats"}});
    ASSERT_TRUE(st.value("ok", false));
    EXPECT_GE(st["metrics_http"]["ok"].get<uint64_t>(), 1u) << st["metrics_http"].dump();
    EXPECT_GE(st["metrics_http"]["not_found"].get<uint64_t>(), 1u);
    EXPECT_NE(http_get(http_port, "/metrics")
                  .body.find("sluice_metrics_http_requests_total{outcome=\"not_found\"}"),
              std::string::npos);
}

TEST_F(Metrics, EveryMetricTheGrafanaDashboardUsesIsExported) {
    json dash = json::parse(slurp(env("GRAFANA_DASHBOARD")));
    ASSERT_TRUE(dash["panels"].is_array());
    ASSERT_GE(dash["panels"].size(), 6u);
    std::set<std::string> used;
    const std::regex name("sluice_[A-Za-z0-9_:]+");
    size_t exprs = 0;
    for (const auto& p : dash["panels"]) {
        ASSERT_TRUE(p["targets"].is_array() && !p["targets"].empty()) << p.dump();
        for (const auto& t : p["targets"]) {
            const std::string e = t.value("expr", "");
            ++exprs;
            for (auto it = std::sregex_iterator(e.begin(), e.end(), name);
                 it != std::sregex_iterator(); ++it)
                used.insert(it->str());
        }
    }
    EXPECT_GE(exprs, 10u);
    // The watermark series exist once an event has arrived.
    const uint64_t before = accepted(d->request({{"cmd", "stats"}}));
    send_events(*d, udp_port, 5, "dash");
    json st = d->wait_stats([&](const json& s) { return accepted(s) >= before + 5; }, 120);
    ASSERT_EQ(accepted(st), before + 5) << slurp(dir + "/sluiced.log");
    for (const auto& v : dash["templating"]["list"])
        if (v.contains("query") && v["query"].is_string()) {
            const std::string q = v["query"];
            for (auto it = std::sregex_iterator(q.begin(), q.end(), name);
                 it != std::sregex_iterator(); ++it)
                used.insert(it->str());
        }
    http_reply r = http_get(http_port, "/metrics");
    ASSERT_EQ(r.status, 200);
    const std::set<std::string> exported = sample_names(r.body);
    for (const auto& n : used)
        EXPECT_TRUE(exported.contains(n)) << n << " is on the dashboard but not in /metrics";
    // The seed's four asks are all there.
    for (const char* must :
         {"sluice_events_accepted_total", "sluice_dead_letters_total",
          "sluice_latency_seconds_bucket", "sluice_watermark_lag_seconds", "sluice_dedup_tracked",
          "sluice_bytes_written_all_total", "sluice_kafka_produce_ack_latency_seconds_bucket"})
        EXPECT_TRUE(used.contains(must)) << must;
}

TEST_F(Metrics, WithLogFormatJsonSluicedsOwnLinesAreJsonObjects) {
    const std::string log = slurp(dir + "/sluiced.log");
    std::stringstream in(log);
    std::string line;
    size_t objects = 0;
    bool announced = false;
    while (std::getline(in, line)) {
        // EAL's and the start-up map's lines are printed by DPDK and printf, not the log.
        if (line.empty() || line[0] != '{') continue;
        json j = json::parse(line, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << line;
        ++objects;
        EXPECT_TRUE(j["ts"].is_string()) << line;
        EXPECT_TRUE(j["level"].is_string()) << line;
        const std::string msg = j.value("msg", "");
        if (msg == "metrics: Prometheus can scrape http://127.0.0.1:" + std::to_string(http_port) +
                       "/metrics")
            announced = true;
    }
    EXPECT_GE(objects, 2u) << log;
    EXPECT_TRUE(announced) << log;
    EXPECT_EQ(log.find("sluice info:"), std::string::npos) << log;
}

struct cmd_result {
    int code = -1;
    std::string err;
};

cmd_result run_sluiced(const std::string& dir, const std::string& options) {
    cmd_result r;
    r.code = run_command(env("SLUICED") + " -- --data-dir " + dir + "/data --control-socket " +
                         dir + "/ctl.sock " + options + " > " + dir + "/out 2> " + dir + "/err");
    r.err = slurp(dir + "/err");
    return r;
}

// Before EAL starts: a bad address, a bad log format and a taken port are each one line
// naming the key (nothing of EAL's before it), and no socket is left behind.
TEST(MetricsConfig, MistakesAreOneLineNamingTheKeyBeforeEal) {
    std::string dir = make_temp_dir("metrics-conf");
    cmd_result r = run_sluiced(dir, "--kernel-udp 127.0.0.1 --metrics-listen '[::1]:9464'");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: metrics.listen \"[::1]:9464\" is IPv6, which Debian's civetweb is "
                     "built without (give \"IPV4:PORT\", e.g. \"127.0.0.1:9464\", or \"\" for no "
                     "HTTP endpoint)\n");
    r = run_sluiced(dir, "--kernel-udp 127.0.0.1 --log-format xml");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: log.format must be \"text\" or \"json\", not \"xml\"\n");
    std::ofstream(dir + "/bad.toml") << "[log]\nrate_limit_interval_ms = 0\n";
    r = run_sluiced(dir, "--kernel-udp 127.0.0.1 --config " + dir + "/bad.toml");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: log.rate_limit_interval_ms must be within 1..3600000\n");
    // A port another process listens on.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string taken = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    r = run_sluiced(dir, "--kernel-udp 127.0.0.1 --metrics-listen " + taken);
    ::close(fd);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "sluiced: cannot serve metrics on " + taken +
                         ": Address already in use (is the port taken? set metrics.listen to a "
                         "free address, or \"\" for none)\n");
    EXPECT_FALSE(std::filesystem::exists(dir + "/ctl.sock"));
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

// The value of an instant PromQL query with one result, or nullopt.
std::optional<double> promql(uint16_t port, const std::string& query, std::string* raw) {
    http_reply r = http_get(port, "/api/v1/query?query=" + url_encode(query));
    *raw = std::to_string(r.status) + " " + r.body;
    if (r.status != 200) return std::nullopt;
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return std::nullopt;
    const json& res = j["data"]["result"];
    if (!res.is_array() || res.size() != 1) return std::nullopt;
    return std::stod(res[0]["value"][1].get<std::string>());
}

TEST_F(Metrics, PrometheusScrapesTheCountsStatsReports) {
    const std::string prometheus = find_prometheus();
    if (prometheus.empty())
        GTEST_SKIP() << "no prometheus binary (apt-get install prometheus; scripts/bootstrap "
                        "installs it)";
    constexpr uint64_t events = 300;
    // Other tests of the suite may have sent events first: count from here.
    const uint64_t before = accepted(d->request({{"cmd", "stats"}}));
    const uint64_t total = before + events;
    send_events(*d, udp_port, int(events), "prom");
    json st = d->wait_stats(
        [&](const json& s) {
            return accepted(s) >= total &&
                   s["latency"]["window_visible"]["count"].get<uint64_t>() >= total;
        },
        120);
    ASSERT_EQ(accepted(st), total) << slurp(dir + "/sluiced.log");
    const uint64_t visible = st["latency"]["window_visible"]["count"].get<uint64_t>();

    const uint16_t prom_port = free_tcp_port();
    std::ofstream(dir + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        << "scrape_configs:\n  - job_name: sluice\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << http_port << "']\n";
    child_process prom({prometheus, "--config.file=" + dir + "/prometheus.yml",
                        "--storage.tsdb.path=" + dir + "/tsdb",
                        "--web.listen-address=127.0.0.1:" + std::to_string(prom_port),
                        "--log.level=warn"},
                       dir + "/prometheus.log");
    // Prometheus answers once it has started and scraped; wait for the values with a
    // deadline (its first scrape comes within one interval of the target appearing).
    std::string raw;
    std::optional<double> scraped, up, window_visible;
    const int64_t deadline = sluice::monotonic_ns() + 90'000'000'000;
    while (sluice::monotonic_ns() < deadline && prom.running()) {
        up = promql(prom_port, "up{job=\"sluice\"}", &raw);
        scraped = promql(prom_port, "sum(sluice_events_accepted_total{job=\"sluice\"})", &raw);
        window_visible = promql(
            prom_port, "sum(sluice_latency_seconds_count{job=\"sluice\",stage=\"window_visible\"})",
            &raw);
        if (up == 1.0 && scraped == double(total) && window_visible == double(visible)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    ASSERT_TRUE(prom.running()) << slurp(dir + "/prometheus.log");
    EXPECT_EQ(up, 1.0) << raw << "\n" << slurp(dir + "/prometheus.log");
    EXPECT_EQ(scraped, double(total)) << raw;
    EXPECT_EQ(window_visible, double(visible)) << raw;
    // More events while Prometheus scrapes: the counter it keeps follows, and a PromQL
    // increase() over it sees them.
    send_events(*d, udp_port, 100, "more");
    st = d->wait_stats([&](const json& s) { return accepted(s) >= total + 100; }, 120);
    ASSERT_EQ(accepted(st), total + 100);
    std::optional<double> increase;
    while (sluice::monotonic_ns() < deadline + 60'000'000'000 && prom.running()) {
        scraped = promql(prom_port, "sum(sluice_events_accepted_total{job=\"sluice\"})", &raw);
        increase = promql(prom_port,
                          "sum(increase(sluice_events_accepted_total{job=\"sluice\"}[5m]))", &raw);
        if (scraped == double(total + 100) && increase > 0.0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    EXPECT_EQ(scraped, double(total + 100)) << raw;
    ASSERT_TRUE(increase) << raw;
    EXPECT_GT(*increase, 0.0);
    EXPECT_EQ(prom.terminate_and_wait(60), 0) << slurp(dir + "/prometheus.log");
}

} // namespace
