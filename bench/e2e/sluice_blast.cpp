// sluice-blast: the benchmark sender. Loads a sluice-gen capture into memory, then sends
// its UDP payloads (as captured: NDJSON or binary batches), or the same events as
// sluice's binary batches or as InfluxDB line protocol for the peers, over UDP with
// sendmmsg, or POSTs line protocol to an HTTP /write endpoint. Paced to a datagram rate
// or unpaced. `--write-pcap` writes the chosen payloads as a capture instead of sending
// (the binary capture net_pcap reads). Prints one JSON object; `setup_s` is the time
// spent loading and converting before the first send.
#include <curl/curl.h>
#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "bench/e2e/workload.h"

namespace {

using sluice::errc;
using sluice::make_error;
using sluice::monotonic_ns;
using sluice::result;

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int connect_udp(const std::string& target) {
    size_t colon = target.rfind(':');
    if (colon == std::string::npos) return -1;
    std::string host = target.substr(0, colon), port = target.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* ai = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &ai) != 0) return -1;
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    int sndbuf = 8 << 20;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    return fd;
}

// Sends every datagram once, in order; datagram i leaves no earlier than start + i/pps.
// A full local queue is waited for, never dropped: loss is measured at the receiver.
bool send_udp(int fd, const std::vector<std::string>& datagrams, uint64_t pps) {
    constexpr size_t burst = 64;
    std::vector<mmsghdr> msgs(burst);
    std::vector<iovec> iov(burst);
    const int64_t start = monotonic_ns();
    size_t i = 0;
    while (i < datagrams.size()) {
        size_t n = std::min(burst, datagrams.size() - i);
        if (pps) {
            // Small bursts keep the pacing smooth at low rates.
            n = std::min<size_t>(n, std::max<uint64_t>(1, pps / 20000));
            int64_t due = start + int64_t(i * 1000000000ull / pps);
            int64_t now = monotonic_ns();
            if (due - now > 20000) {
                timespec ts{time_t((due - now) / 1000000000), long((due - now) % 1000000000)};
                nanosleep(&ts, nullptr);
            }
        }
        for (size_t k = 0; k < n; ++k) {
            iov[k] = {const_cast<char*>(datagrams[i + k].data()), datagrams[i + k].size()};
            msgs[k] = {};
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        int sent = sendmmsg(fd, msgs.data(), unsigned(n), 0);
        if (sent < 0) {
            if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) {
                usleep(20);
                continue;
            }
            std::fprintf(stderr, "sluice-blast: sendmmsg: %s\n", std::strerror(errno));
            return false;
        }
        i += size_t(sent);
    }
    return true;
}

size_t discard(char*, size_t size, size_t nmemb, void*) { return size * nmemb; }

// POSTs batches k, k + n, k + 2n, ... to `url` over one keep-alive connection; returns
// the requests that failed (not 2xx).
uint64_t post_batches(const std::string& url, const std::vector<std::string>& batches, size_t k,
                      size_t n) {
    CURL* c = curl_easy_init();
    if (!c) return batches.size();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: text/plain");
    headers = curl_slist_append(headers, "Expect:"); // no 100-continue round trip
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    uint64_t failed = 0;
    for (size_t i = k; i < batches.size(); i += n) {
        const std::string& b = batches[i];
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, b.data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(b.size()));
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status < 200 || status >= 300) {
            if (failed++ == 0)
                std::fprintf(stderr, "sluice-blast: POST %s: %s (HTTP %ld)\n", url.c_str(),
                             curl_easy_strerror(rc), status);
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return failed;
}

// POSTs every batch to `url` over `connections` keep-alive connections at once (batch i on
// connection i mod connections); false on any non-2xx.
bool send_http(const std::string& url, const std::vector<std::string>& batches, size_t connections,
               uint64_t& failed) {
    std::vector<uint64_t> failures(connections);
    std::vector<std::thread> threads;
    for (size_t k = 0; k < connections; ++k)
        threads.emplace_back([&, k] { failures[k] = post_batches(url, batches, k, connections); });
    for (auto& t : threads)
        t.join();
    for (uint64_t f : failures)
        failed += f;
    return failed == 0;
}

// The lines of a file in batches of `lines_per_batch` (each line with its newline).
result<std::vector<std::string>> file_batches(const std::string& path, size_t lines_per_batch,
                                              uint64_t& lines) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return make_error(errc::io_error, "cannot read " + path + ": " + std::strerror(errno));
    std::vector<std::string> batches;
    std::string batch;
    size_t in_batch = 0;
    char* line = nullptr;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        batch.append(line, size_t(len));
        if (batch.back() != '\n') batch += '\n';
        ++lines;
        if (++in_batch == lines_per_batch) {
            batches.push_back(std::move(batch));
            batch.clear();
            in_batch = 0;
        }
    }
    std::free(line);
    std::fclose(f);
    if (!batch.empty()) batches.push_back(std::move(batch));
    return batches;
}

} // namespace

int main(int argc, char** argv) {
    const int64_t started = monotonic_ns();
    std::string pcap, target, http, write_pcap, format = "json";
    uint16_t port = 9000;
    uint64_t pps = 0;
    int64_t now_ms = 0;
    size_t batch_lines = 5000;
    CLI::App app{"sluice-blast: send a sluice-gen capture's events for benchmarks"};
    app.add_option("--pcap", pcap, "sluice-gen capture")->required();
    app.add_option("--port", port, "UDP port the capture's events are addressed to")
        ->capture_default_str();
    app.add_option("--target", target, "send datagrams to HOST:PORT over UDP");
    app.add_option("--http", http, "POST line protocol batches to this URL instead");
    app.add_option("--format", format,
                   "json (the capture's payloads as they are), binary (its NDJSON events as "
                   "binary batches, docs/BINARY.md) or lp (line protocol)")
        ->check(CLI::IsMember({"json", "binary", "lp"}))
        ->capture_default_str();
    app.add_option("--write-pcap", write_pcap,
                   "write the payloads as a capture (IPv4/UDP to --port) instead of sending");
    std::string write_ndjson;
    app.add_option("--write-ndjson", write_ndjson,
                   "write the capture's NDJSON events one per line instead of sending (the "
                   "record values of the Kafka benchmark rows, one event each)");
    app.add_option("--pps", pps, "datagrams per second (0: as fast as the socket takes)");
    app.add_option("--now-ms", now_ms, "wall clock sluice-gen used (for future timestamps)");
    app.add_option("--batch-lines", batch_lines, "lines per HTTP POST")->capture_default_str();
    size_t connections = 1;
    app.add_option("--connections", connections, "HTTP connections posting at once")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    std::string http_file;
    app.add_option("--http-file", http_file,
                   "with --http: POST this file's lines (e.g. --write-rows output) instead of "
                   "line protocol");
    std::string write_rows, write_msgs;
    app.add_option("--write-rows", write_rows,
                   "write the events sluice parses as valid as ClickHouse JSONEachRow rows "
                   "(bench/e2e/workload.h) instead of sending");
    app.add_option("--write-msgs", write_msgs,
                   "write the same events as '<identity hex> <event bytes>' lines (the NATS "
                   "messages) instead of sending");
    CLI11_PARSE(app, argc, argv);
    const bool write_rows_msgs = !write_rows.empty() || !write_msgs.empty();
    if (int(!target.empty()) + int(!http.empty()) + int(!write_pcap.empty()) +
            int(!write_ndjson.empty()) + int(write_rows_msgs) != 1) {
        std::fprintf(stderr, "sluice-blast: give exactly one of --target, --http, --write-pcap, "
                             "--write-ndjson or --write-rows/--write-msgs\n");
        return 2;
    }
    if (!http_file.empty()) {
        // The file is the body: no capture conversion, so setup_s is reading the file.
        if (http.empty()) {
            std::fprintf(stderr, "sluice-blast: --http-file needs --http URL\n");
            return 2;
        }
        uint64_t lines = 0;
        auto batches = file_batches(http_file, batch_lines, lines);
        if (!batches) {
            std::fprintf(stderr, "sluice-blast: %s\n", batches.err().message.c_str());
            return 1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        uint64_t bytes = 0, failed = 0;
        for (auto& b : *batches)
            bytes += b.size();
        const double cpu0 = cpu_seconds();
        const int64_t t0 = monotonic_ns();
        const bool ok = send_http(http, *batches, connections, failed);
        nlohmann::json out{{"format", "file"}, {"events", lines},
                           {"setup_s", double(t0 - started) / 1e9},
                           {"requests", batches->size()}, {"connections", connections},
                           {"failed_requests", failed},
                           {"seconds", double(monotonic_ns() - t0) / 1e9},
                           {"cpu_s", cpu_seconds() - cpu0}, {"bytes", bytes}, {"ok", ok}};
        curl_global_cleanup();
        std::printf("%s\n", out.dump().c_str());
        return ok ? 0 : 1;
    }
    if (!http.empty()) format = "lp";

    auto w = sluice::bench::load_pcap(pcap, port);
    if (!w) {
        std::fprintf(stderr, "sluice-blast: %s\n", w.err().message.c_str());
        return 1;
    }
    if (now_ms == 0) now_ms = sluice::wall_clock_ms();
    if (!write_ndjson.empty()) {
        // Every non-empty line of the JSON payloads, in capture order: the events sluice's
        // UDP RX splits the same datagrams into (binary batches are not lines: skipped).
        std::FILE* f = std::fopen(write_ndjson.c_str(), "w");
        if (f == nullptr) {
            std::fprintf(stderr, "sluice-blast: cannot write %s: %s\n", write_ndjson.c_str(),
                         std::strerror(errno));
            return 1;
        }
        uint64_t lines = 0;
        for (const std::string& d : w->datagrams) {
            if (!d.empty() && uint8_t(d[0]) == 0xB1) continue;
            size_t start = 0;
            while (start < d.size()) {
                size_t nl = d.find('\n', start);
                size_t end = nl == std::string::npos ? d.size() : nl;
                if (end > start) {
                    std::fwrite(d.data() + start, 1, end - start, f);
                    std::fputc('\n', f);
                    ++lines;
                }
                start = end + 1;
            }
        }
        if (std::fclose(f) != 0) {
            std::fprintf(stderr, "sluice-blast: writing %s failed\n", write_ndjson.c_str());
            return 1;
        }
        std::printf("%s\n", nlohmann::json{{"events", lines}, {"ndjson", write_ndjson}}.dump().c_str());
        return 0;
    }
    if (write_rows_msgs) {
        std::FILE* rows = write_rows.empty() ? nullptr : std::fopen(write_rows.c_str(), "w");
        std::FILE* msgs = write_msgs.empty() ? nullptr : std::fopen(write_msgs.c_str(), "w");
        if ((!write_rows.empty() && !rows) || (!write_msgs.empty() && !msgs)) {
            std::fprintf(stderr, "sluice-blast: cannot write %s: %s\n",
                         (!rows && !write_rows.empty() ? write_rows : write_msgs).c_str(),
                         std::strerror(errno));
            return 1;
        }
        const sluice::bench::rows_summary r = sluice::bench::write_rows(*w, now_ms, rows, msgs);
        bool ok = true;
        for (std::FILE* f : {rows, msgs})
            if (f && std::fclose(f) != 0) ok = false;
        if (!ok) {
            std::fprintf(stderr, "sluice-blast: writing the rows/messages failed (disk full?)\n");
            return 1;
        }
        std::printf("%s\n", nlohmann::json{{"events", r.rows},
                                           {"not_representable", r.not_representable},
                                           {"distinct_ids", r.distinct_ids},
                                           {"pages", r.pages}, {"series", r.series}}
                                .dump()
                                .c_str());
        return 0;
    }
    // 1400 bytes: what sluice-gen packs a datagram to.
    constexpr size_t datagram_bytes = 1400;
    sluice::bench::line_protocol lp;
    sluice::bench::binary_workload bin;
    if (format == "lp") lp = sluice::bench::to_line_protocol(*w, now_ms, datagram_bytes, batch_lines);
    if (format == "binary") bin = sluice::bench::to_binary(*w, now_ms, datagram_bytes);
    const std::vector<std::string>& datagrams = format == "lp"       ? lp.datagrams
                                                : format == "binary" ? bin.datagrams
                                                                     : w->datagrams;

    nlohmann::json out;
    out["format"] = format;
    out["events"] = format == "lp" ? lp.points : format == "binary" ? bin.records : w->event_lines;
    if (format == "lp") {
        out["not_representable"] = lp.not_representable;
        out["distinct_ns"] = lp.distinct_ns;
        out["distinct_ms"] = lp.distinct_ms;
    }
    if (format == "binary") out["not_representable"] = bin.not_representable;
    if (!write_pcap.empty()) {
        auto frames = sluice::bench::write_pcap(write_pcap, datagrams, port);
        if (!frames) {
            std::fprintf(stderr, "sluice-blast: %s\n", frames.err().message.c_str());
            return 1;
        }
        out["datagrams"] = datagrams.size();
        out["frames"] = *frames;
        out["pcap"] = write_pcap;
        std::printf("%s\n", out.dump().c_str());
        return 0;
    }
    uint64_t bytes = 0;
    const double cpu0 = cpu_seconds();
    const int64_t t0 = monotonic_ns();
    out["setup_s"] = double(t0 - started) / 1e9;
    bool ok;
    if (!http.empty()) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        uint64_t failed = 0;
        ok = send_http(http, lp.batches, connections, failed);
        for (auto& b : lp.batches) bytes += b.size();
        out["requests"] = lp.batches.size();
        out["connections"] = connections;
        out["failed_requests"] = failed;
        curl_global_cleanup();
    } else {
        int fd = connect_udp(target);
        if (fd < 0) {
            std::fprintf(stderr, "sluice-blast: cannot connect UDP to %s (HOST:PORT)\n",
                         target.c_str());
            return 1;
        }
        ok = send_udp(fd, datagrams, pps);
        close(fd);
        for (auto& d : datagrams) bytes += d.size();
        out["datagrams"] = datagrams.size();
    }
    out["seconds"] = double(monotonic_ns() - t0) / 1e9;
    out["cpu_s"] = cpu_seconds() - cpu0;
    out["bytes"] = bytes;
    out["ok"] = ok;
    std::printf("%s\n", out.dump().c_str());
    return ok ? 0 : 1;
}
