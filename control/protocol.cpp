#include "control/protocol.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/time_format.h"

namespace sluice::control {

namespace {

// A stats reply grows with the core count; this is far above any real one and only
// stops a confused peer from filling our memory.
constexpr size_t reply_bytes_max = 16u << 20;

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void append_member(std::string& out, const std::string& key, const json& value) {
    out += ',';
    out += dump(json(key));
    out += ':';
    out += dump(value);
}

// Closes the descriptor on every return path of request().
struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

int remaining_ms(int64_t deadline_ns) {
    if (deadline_ns < 0) return -1;
    int64_t left = (deadline_ns - monotonic_ns()) / 1'000'000;
    return left > 0 ? int(std::min<int64_t>(left, 1 << 30)) : 0;
}

std::string connect_error(const std::string& path, int err) {
    std::string msg = "cannot connect to " + path + ": " + std::strerror(err);
    if (err == EACCES || err == EPERM)
        return msg + " (run as root, as sluiced's user, or in the socket's group)";
    return msg + " (is sluiced running? pass --socket)";
}

result<void> send_all(int fd, const std::string& path, const std::string& data,
                      int64_t deadline_ns) {
    size_t sent = 0;
    while (sent < data.size()) {
        ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n >= 0) {
            sent += size_t(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
            return make_error(errc::io_error,
                              "cannot send to " + path + ": " + std::strerror(errno));
        }
        pollfd p{fd, POLLOUT, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline_ns));
        if (r == 0) return make_error(errc::busy, "timed out sending to " + path);
    }
    return ok_result();
}

// Reads up to the first newline (or EOF) into `line`.
result<void> read_line(int fd, const std::string& path, std::string& line, int64_t deadline_ns,
                       int timeout_ms) {
    char buf[16384];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            line.append(buf, size_t(n));
            size_t nl = line.find('\n');
            if (nl != std::string::npos) {
                line.resize(nl);
                return ok_result();
            }
            if (line.size() > reply_bytes_max) {
                return make_error(errc::corrupt, "reply from " + path + " exceeds " +
                                                     std::to_string(reply_bytes_max) + " bytes");
            }
            continue;
        }
        if (n == 0) {
            if (line.empty()) {
                return make_error(errc::io_error, path + " closed the connection without a reply");
            }
            return ok_result();
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
            return make_error(errc::io_error,
                              "cannot read from " + path + ": " + std::strerror(errno));
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline_ns)) == 0) {
            return make_error(errc::busy, "no reply from " + path + " within " +
                                              std::to_string(timeout_ms) +
                                              " ms (sluiced is busy or stuck; retry or raise "
                                              "--timeout-ms)");
        }
    }
}

} // namespace

std::string encode_reply(const json& body) {
    if (body.is_null()) return encode_reply(json::object());
    if (!body.is_object()) return encode_reply(json{{"result", body}});

    auto ok_it = body.find("ok");
    bool failed = ok_it != body.end() && *ok_it == false;
    std::string out = "{\"ok\":";
    out += ok_it != body.end() ? dump(*ok_it) : "true";
    auto err_it = body.find("error");
    if (err_it != body.end()) append_member(out, "error", *err_it);
    if (!failed && !body.contains("v")) append_member(out, "v", protocol_version);
    for (auto it = body.begin(); it != body.end(); ++it) {
        if (it.key() == "ok" || it.key() == "error") continue;
        append_member(out, it.key(), it.value());
    }
    out += '}';
    return out;
}

std::string encode_error(std::string_view message) {
    return "{\"ok\":false,\"error\":" + dump(json(std::string(message))) + "}";
}

result<json> parse_request(std::string_view line) {
    json req;
    try {
        req = json::parse(line);
    } catch (const json::exception& e) {
        return make_error(errc::invalid_argument,
                          std::string("malformed request (send one JSON object per line): ") +
                              e.what());
    }
    if (!req.is_object()) {
        return make_error(errc::invalid_argument,
                          "request must be a JSON object like {\"v\":1,\"cmd\":\"status\"}");
    }
    auto cmd = req.find("cmd");
    if (cmd == req.end() || !cmd->is_string()) {
        return make_error(errc::invalid_argument,
                          "request has no \"cmd\" string (e.g. {\"v\":1,\"cmd\":\"status\"})");
    }
    auto v = req.find("v");
    if (v != req.end() && !(v->is_number_integer() && *v == protocol_version)) {
        return make_error(errc::unsupported, "unsupported protocol version " + dump(*v) +
                                                 " (this sluiced speaks v" +
                                                 std::to_string(protocol_version) + ")");
    }
    return req;
}

result<json> request(const std::string& socket_path, const json& req, int timeout_ms) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
        return make_error(errc::invalid_argument,
                          "socket path \"" + socket_path + "\" must be 1 to " +
                              std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());

    int64_t deadline_ns =
        timeout_ms > 0 ? monotonic_ns() + int64_t(timeout_ms) * 1'000'000 : int64_t(-1);
    fd_guard fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0) {
        return make_error(errc::io_error,
                          std::string("cannot create a Unix socket: ") + std::strerror(errno));
    }
    // A Unix connect() honours the send timeout while the listen backlog is full.
    if (timeout_ms > 0) {
        timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        ::setsockopt(fd.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int rc;
    do {
        rc = ::connect(fd.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return make_error(errc::not_found, connect_error(socket_path, errno));
    int flags = ::fcntl(fd.fd, F_GETFL);
    ::fcntl(fd.fd, F_SETFL, flags | O_NONBLOCK);

    json full = req;
    if (full.is_object() && !full.contains("v")) full["v"] = protocol_version;
    auto sent = send_all(fd.fd, socket_path, dump(full) + "\n", deadline_ns);
    std::string line;
    auto got = read_line(fd.fd, socket_path, line, deadline_ns, timeout_ms);
    // A server that refuses us replies and closes at once, so a failed send may still
    // have left an explanation to read.
    if (!got.ok()) return sent.ok() ? std::move(got).err() : std::move(sent).err();

    json reply;
    try {
        reply = json::parse(line);
    } catch (const json::exception& e) {
        return make_error(errc::corrupt, "malformed reply from " + socket_path + ": " + e.what());
    }
    if (!reply.is_object() || !reply.contains("ok")) {
        return make_error(errc::corrupt,
                          "malformed reply from " + socket_path + ": not an object with \"ok\"");
    }
    return reply;
}

// Rendering for sluicectl. Key order is lost in `json` (a sorted map), so the counters
// the spec names come first in its order and anything else follows alphabetically.
namespace {

const std::vector<std::string> counter_order = {
    "lcore",
    "role",
    "rx_packets",
    "ignored_packets",
    "events_received",
    "events_accepted",
    "duplicates",
    "late_events",
    "dead_letters",
    "rx_dropped",
    "bytes_written",
    "watermark_ms",
    "rx",
    "worker",
    "occupancy",
    "capacity",
    // dead_letters_by_reason, in the spec's order
    "parse_error",
    "missing_timestamp",
    "bad_timestamp",
    "future_timestamp",
    "oversize",
    "beyond_dedup_horizon",
    "schema_mismatch",
};

std::vector<std::string> ordered_keys(const std::vector<std::string>& present) {
    std::vector<std::string> out;
    for (const auto& k : counter_order)
        if (std::find(present.begin(), present.end(), k) != present.end()) out.push_back(k);
    std::vector<std::string> rest;
    for (const auto& k : present)
        if (std::find(out.begin(), out.end(), k) == out.end()) rest.push_back(k);
    std::sort(rest.begin(), rest.end());
    out.insert(out.end(), rest.begin(), rest.end());
    return out;
}

std::string format_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    std::string s = buf;
    while (!s.empty() && s.back() == '0')
        s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

std::string format_scalar(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) return format_number(v.get<double>());
    return dump(v);
}

std::string format_time_ms(int64_t ms) {
    if (ms <= 0) return "none yet";
    return format_rfc3339_ms(ms);
}

void pad_to(std::string& s, size_t width) {
    if (s.size() < width) s.append(width - s.size(), ' ');
}

void render_object(std::string& out, const json& obj, int indent) {
    std::vector<std::string> keys;
    for (auto it = obj.begin(); it != obj.end(); ++it)
        keys.push_back(it.key());
    size_t width = 0;
    for (const auto& k : keys)
        if (!obj[k].is_object()) width = std::max(width, k.size());
    for (const auto& k : ordered_keys(keys)) {
        std::string line(size_t(indent), ' ');
        line += k;
        const json& v = obj[k];
        if (v.is_object()) {
            out += line + "\n";
            render_object(out, v, indent + 2);
            continue;
        }
        pad_to(line, size_t(indent) + width + 2);
        out += line + format_scalar(v) + "\n";
    }
}

// One row per array element, one column per scalar key seen in any element; a missing
// cell is "-". Nested values are left to --json.
void render_table(std::string& out, const json& rows, const std::vector<std::string>& extra,
                  const std::vector<std::vector<std::string>>& extra_cells) {
    std::vector<std::string> keys;
    for (const auto& row : rows) {
        if (!row.is_object()) continue;
        for (auto it = row.begin(); it != row.end(); ++it)
            if (!it->is_structured() && std::find(keys.begin(), keys.end(), it.key()) == keys.end())
                keys.push_back(it.key());
    }
    std::vector<std::string> header = ordered_keys(keys);
    std::vector<std::vector<std::string>> cells;
    for (size_t r = 0; r < rows.size(); ++r) {
        std::vector<std::string> line;
        for (const auto& k : header) {
            auto it = rows[r].is_object() ? rows[r].find(k) : rows[r].end();
            line.push_back(rows[r].is_object() && it != rows[r].end() ? format_scalar(*it) : "-");
        }
        if (r < extra_cells.size())
            line.insert(line.end(), extra_cells[r].begin(), extra_cells[r].end());
        cells.push_back(std::move(line));
    }
    header.insert(header.end(), extra.begin(), extra.end());
    std::vector<size_t> width(header.size());
    for (size_t c = 0; c < header.size(); ++c) {
        width[c] = header[c].size();
        for (const auto& line : cells)
            width[c] = std::max(width[c], line[c].size());
    }
    auto emit = [&](const std::vector<std::string>& line) {
        std::string s = "  ";
        for (size_t c = 0; c < line.size(); ++c) {
            s += line[c];
            if (c + 1 < line.size()) pad_to(s, s.size() + width[c] - line[c].size() + 2);
        }
        out += s + "\n";
    };
    emit(header);
    for (const auto& line : cells)
        emit(line);
}

void flatten(std::string& out, const json& v, const std::string& prefix) {
    if (v.is_object()) {
        for (auto it = v.begin(); it != v.end(); ++it)
            flatten(out, it.value(), prefix.empty() ? it.key() : prefix + "." + it.key());
        return;
    }
    out += prefix + ": " + format_scalar(v) + "\n";
}

} // namespace

namespace {

const json* find_number(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it != obj.end() && it->is_number() ? &*it : nullptr;
}

const json* find_object(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it != obj.end() && it->is_object() ? &*it : nullptr;
}

double number_or(const json& obj, const char* key, double fallback) {
    const json* v = find_number(obj, key);
    return v ? v->get<double>() : fallback;
}

// 1234567 -> "1.23M"; small values as they are.
std::string format_si(double v, const char* unit = "") {
    const char* prefixes[] = {"", "k", "M", "G", "T"};
    int i = 0;
    while (std::fabs(v) >= 1000 && i < 4) {
        v /= 1000;
        ++i;
    }
    char buf[64];
    if (i == 0)
        std::snprintf(buf, sizeof buf, "%.0f%s%s", v, *unit ? " " : "", unit);
    else
        std::snprintf(buf, sizeof buf, "%.*f%s%s%s", v < 10 ? 2 : v < 100 ? 1 : 0, v,
                      *unit ? " " : "", prefixes[i], unit);
    return buf;
}

// Microseconds as "850 us", "1.20 ms", "2.50 s".
std::string format_us(double us) {
    char buf[64];
    if (us < 1000)
        std::snprintf(buf, sizeof buf, "%.0f us", us);
    else if (us < 1e6)
        std::snprintf(buf, sizeof buf, "%.2f ms", us / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.2f s", us / 1e6);
    return buf;
}

std::string format_duration_s(double s) {
    char buf[64];
    if (s < 120) {
        std::snprintf(buf, sizeof buf, "%.1f s", s);
    } else if (s < 7200) {
        std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
    } else if (s < 172800) {
        std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, int(s) / 60 % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%lldd%02dh", (long long)(s / 86400), int(s / 3600) % 24);
    }
    return buf;
}

// A table of plain strings: the first row is the header; columns padded to align.
std::string text_table(const std::vector<std::vector<std::string>>& rows, int indent = 2) {
    std::vector<size_t> width;
    for (const auto& r : rows)
        for (size_t c = 0; c < r.size(); ++c) {
            if (width.size() <= c) width.push_back(0);
            width[c] = std::max(width[c], r[c].size());
        }
    std::string out;
    for (const auto& r : rows) {
        std::string line(size_t(indent), ' ');
        for (size_t c = 0; c < r.size(); ++c) {
            // Numbers read best right-aligned, the first (name) column left-aligned.
            std::string cell = r[c];
            if (c == 0) {
                line += cell;
                if (c + 1 < r.size()) pad_to(line, line.size() + width[c] - cell.size());
            } else {
                line += std::string(width[c] - cell.size(), ' ') + cell;
            }
            if (c + 1 < r.size()) line += "  ";
        }
        out += line + "\n";
    }
    return out;
}

// Rows of the latency table: since start, and recent when the reply has it.
std::vector<std::vector<std::string>> latency_rows(const json& lat) {
    std::vector<std::vector<std::string>> rows{
        {"", "count", "p50", "p99", "p99.9", "max", "mean"}};
    auto add = [&](const std::string& name, const json* s) {
        if (s == nullptr) return;
        if (number_or(*s, "count", 0) == 0) {
            rows.push_back({name, "0", "-", "-", "-", "-", "-"});
            return;
        }
        rows.push_back({name, format_si(number_or(*s, "count", 0)),
                        format_us(number_or(*s, "p50_us", 0)), format_us(number_or(*s, "p99_us", 0)),
                        format_us(number_or(*s, "p999_us", 0)), format_us(number_or(*s, "max_us", 0)),
                        format_us(number_or(*s, "mean_us", 0))});
    };
    const json* recent = find_object(lat, "recent");
    std::string window =
        recent ? " (last " + format_number(number_or(*recent, "interval_s", 0)) + " s)" : "";
    if (recent) {
        add("window-visible" + window, find_object(*recent, "window_visible"));
        add("durable" + window, find_object(*recent, "durable"));
    }
    add("window-visible (since start)", find_object(lat, "window_visible"));
    add("durable (since start)", find_object(lat, "durable"));
    return rows;
}

// Rows of the Kafka produce-ack latency table: per acks mode, recent and since start.
std::vector<std::vector<std::string>> ack_latency_rows(const json& ack) {
    std::vector<std::vector<std::string>> rows{{"", "count", "p50", "p99", "p99.9", "max", "mean"}};
    const json* recent = find_object(ack, "recent");
    std::string window =
        recent ? " (last " + format_number(number_or(*recent, "interval_s", 0)) + " s)" : "";
    for (const char* mode : {"0", "1", "all"}) {
        // latency_rows() formats one stage; reuse it per mode and keep its data rows.
        json one{{"window_visible", ack.value(mode, json::object())}};
        if (recent)
            one["recent"] = {{"interval_s", number_or(*recent, "interval_s", 0)},
                             {"window_visible", recent->value(mode, json::object())}};
        auto r = latency_rows(one);
        for (size_t i = 1; i < r.size(); ++i) {
            r[i][0] = std::string("acks ") + mode + (i + 1 < r.size() ? window : " (since start)");
            rows.push_back(std::move(r[i]));
        }
    }
    return rows;
}

// One line for `watch`: connections, request/record/error rates and ack p99 per acks mode
// (over the recent interval when the reply has it).
std::string kafka_watch_line(const json& k) {
    const json rates = k.value("rates", json::object());
    std::string out = "kafka: " + format_si(number_or(k, "connections_open", 0)) + " connected, " +
                      format_si(number_or(rates, "requests_per_s", 0)) + " requests/s, " +
                      format_si(number_or(rates, "records_per_s", 0)) + " records/s, " +
                      format_si(number_or(rates, "errors_per_s", 0)) + " errors/s";
    if (const json* ack = find_object(k, "ack_latency")) {
        const json* recent = find_object(*ack, "recent");
        out +=
            std::string(", ack p99") +
            (recent ? " (last " + format_number(number_or(*recent, "interval_s", 0)) + " s)" : "") +
            ":";
        for (const char* mode : {"0", "1", "all"}) {
            const json* s = find_object(recent ? *recent : *ack, mode);
            out += std::string(" ") + mode + " ";
            out += s && number_or(*s, "count", 0) > 0 ? format_us(number_or(*s, "p99_us", 0)) : "-";
        }
    }
    return out + "\n";
}

std::string headline(const json& reply) {
    std::string out;
    if (const json* up = find_number(reply, "uptime_s"))
        out += "uptime     " + format_scalar(*up) + " s\n";
    if (const json* wm = find_number(reply, "watermark_ms")) {
        out += "watermark  " + format_time_ms(wm->get<int64_t>());
        std::string notes;
        if (const json* d = find_number(reply, "watermark_delay_ms"))
            notes += "delay " + format_number(d->get<double>() / 1000.0) + " s";
        if (const json* lag = find_object(reply, "lag"))
            if (const json* l = find_number(*lag, "watermark_lag_ms"))
                notes += std::string(notes.empty() ? "" : ", ") +
                         format_duration_s(l->get<double>() / 1000.0) + " behind the wall clock";
        if (!notes.empty()) out += "  (" + notes + ")";
        out += "\n";
    }
    return out;
}

// Worker lag: the slots waiting in the rings that feed each worker.
std::map<std::string, double> worker_lag(const json& reply) {
    std::map<std::string, double> lag;
    auto rings = reply.find("rings");
    if (rings == reply.end() || !rings->is_array()) return lag;
    for (const auto& r : *rings)
        if (r.is_object() && r.contains("worker") && find_number(r, "occupancy"))
            lag[format_scalar(r["worker"])] += r["occupancy"].get<double>();
    return lag;
}

} // namespace

std::string render_stats(const json& reply) {
    if (!reply.is_object()) return dump(reply) + "\n";
    std::string out = headline(reply);
    if (const json* totals = find_object(reply, "totals")) {
        out += "\ntotals\n";
        render_object(out, *totals, 2);
    }
    if (const json* rates = find_object(reply, "rates")) {
        json r = *rates;
        r.erase("interval_s");
        out += "\nrates (per second, over the last " +
               format_number(number_or(*rates, "interval_s", 0)) + " s)\n";
        render_object(out, r, 2);
    }
    if (const json* lat = find_object(reply, "latency")) {
        out += "\nlatency from RX (per event)\n";
        out += text_table(latency_rows(*lat));
    }
    auto cores = reply.find("per_core");
    if (cores != reply.end() && cores->is_array() && !cores->empty()) {
        // One table per role, so each shows only its own counters.
        std::vector<std::string> roles;
        for (const auto& c : *cores) {
            std::string role = c.is_object() && c.contains("role") ? format_scalar(c["role"]) : "";
            if (std::find(roles.begin(), roles.end(), role) == roles.end()) roles.push_back(role);
        }
        for (const auto& role : roles) {
            json rows = json::array();
            for (const auto& c : *cores) {
                std::string r = c.is_object() && c.contains("role") ? format_scalar(c["role"]) : "";
                if (r == role) rows.push_back(c);
            }
            out += "\nper core" + (role.empty() ? std::string() : " (" + role + ")") + "\n";
            render_table(out, rows, {}, {});
        }
    }
    auto rings = reply.find("rings");
    if (rings != reply.end() && rings->is_array() && !rings->empty()) {
        // Ring occupancy is the consumer's lag; the fill ratio makes it comparable.
        std::vector<std::vector<std::string>> fill;
        for (const auto& r : *rings) {
            std::string cell = "-";
            if (r.is_object() && r.contains("occupancy") && r.contains("capacity") &&
                r["occupancy"].is_number() && r["capacity"].is_number() &&
                r["capacity"].get<double>() > 0) {
                double pct = 100.0 * r["occupancy"].get<double>() / r["capacity"].get<double>();
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.1f%%", pct);
                cell = buf;
            }
            fill.push_back({cell});
        }
        out += "\nrings (occupancy = consumer lag)\n";
        render_table(out, *rings, {"fill"}, fill);
    }
    for (const char* section : {"lag", "control", "kafka"}) {
        if (const json* obj = find_object(reply, section)) {
            out += std::string("\n") + section + "\n";
            json rest = *obj;
            rest.erase("ack_latency"); // a table below, not its buckets
            render_object(out, rest, 2);
            if (const json* ack = find_object(*obj, "ack_latency")) {
                out += "\nkafka produce-ack latency (from the request's arrival)\n";
                out += text_table(ack_latency_rows(*ack));
            }
        }
    }
    auto storage = reply.find("storage");
    if (storage != reply.end() && storage->is_object()) {
        // What is durable per table, the writers' state and retention.
        out += "\nstorage  " + format_scalar(storage->value("state", json("?")));
        if (storage->contains("error")) out += "  " + format_scalar((*storage)["error"]);
        out += "\n";
        auto tables = storage->find("tables");
        if (tables != storage->end() && tables->is_array() && !tables->empty())
            render_table(out, *tables, {}, {});
    }
    std::string other;
    for (auto it = reply.begin(); it != reply.end(); ++it) {
        static const char* const known[] = {
            "ok",     "v",     "uptime_s", "watermark_ms", "watermark_delay_ms", "totals",
            "rates",  "latency", "per_core", "rings",       "lag",                "control",
            "version", "storage",  "kafka"};
        if (std::find(std::begin(known), std::end(known), it.key()) != std::end(known)) continue;
        flatten(other, it.value(), "  " + it.key());
    }
    if (!other.empty()) out += "\nother\n" + other;
    return out;
}

std::string render_watch(const json& reply, int64_t now_ms) {
    if (!reply.is_object()) return dump(reply) + "\n";
    std::string out = "sluiced";
    if (reply.contains("version")) out += " " + format_scalar(reply["version"]);
    if (const json* up = find_number(reply, "uptime_s"))
        out += "   up " + format_duration_s(up->get<double>());
    out += "   " + format_time_ms(now_ms);
    const json rates = reply.value("rates", json::object());
    out += "   rates over " + format_number(number_or(rates, "interval_s", 0)) + " s\n";
    const json lag = reply.value("lag", json::object());
    if (const json* wm = find_number(reply, "watermark_ms")) {
        out += "watermark " + format_time_ms(wm->get<int64_t>());
        if (const json* l = find_number(lag, "watermark_lag_ms"))
            out += ", " + format_duration_s(l->get<double>() / 1000) + " behind";
        out += "   ring lag " + format_si(number_or(lag, "ring_occupancy_total", 0)) + " slots (max " +
               format_si(number_or(lag, "ring_occupancy_max", 0)) + ")\n";
    }
    out += "\n";
    std::vector<std::vector<std::string>> flow{{"per second", "received", "accepted", "duplicates",
                                                "late", "dead letters", "rx bytes", "disk bytes",
                                                "rx dropped"}};
    flow.push_back({"all cores", format_si(number_or(rates, "events_received_per_s", 0)),
                    format_si(number_or(rates, "events_accepted_per_s", 0)),
                    format_si(number_or(rates, "duplicates_per_s", 0)),
                    format_si(number_or(rates, "late_events_per_s", 0)),
                    format_si(number_or(rates, "dead_letters_per_s", 0)),
                    format_si(number_or(rates, "rx_bytes_per_s", 0), "B"),
                    format_si(number_or(rates, "bytes_written_per_s", 0), "B"),
                    format_si(number_or(rates, "rx_dropped_per_s", 0))});
    out += text_table(flow, 0);
    std::string reasons;
    if (const json* by = find_object(rates, "dead_letters_by_reason_per_s"))
        for (auto it = by->begin(); it != by->end(); ++it)
            if (it->is_number() && it->get<double>() > 0)
                reasons += "  " + it.key() + " " + format_si(it->get<double>());
    out += "dead letters/s:" + (reasons.empty() ? std::string("  none") : reasons) + "\n\n";
    if (const json* lat = find_object(reply, "latency")) {
        auto rows = latency_rows(*lat);
        rows[0][0] = "latency from RX";
        out += text_table(rows, 0) + "\n";
    }
    std::vector<std::vector<std::string>> cores{{"lcore", "role", "events/s", "bytes/s", "ring lag"}};
    std::map<std::string, double> lag_by_worker = worker_lag(reply);
    auto pc = reply.find("per_core");
    if (pc != reply.end() && pc->is_array())
        for (const auto& c : *pc) {
            if (!c.is_object()) continue;
            std::string role = c.contains("role") ? format_scalar(c["role"]) : "-";
            std::string ring = "-";
            if (role == "worker" && c.contains("worker"))
                ring = format_si(lag_by_worker[format_scalar(c["worker"])]);
            cores.push_back({c.contains("lcore") ? format_scalar(c["lcore"]) : "-", role,
                             format_si(number_or(c, "events_per_s", 0)),
                             format_si(number_or(c, "bytes_per_s", 0), "B"), ring});
        }
    out += text_table(cores, 0);
    if (const json* ctl = find_object(reply, "control"))
        out += "\ncontrol: " + format_si(number_or(*ctl, "requests", 0)) + " requests, " +
               format_si(number_or(*ctl, "refused_peers", 0)) + " peers refused, " +
               format_si(number_or(*ctl, "rate_limited", 0)) + " rate limited, " +
               format_si(number_or(*ctl, "connections_open", 0)) + " connected\n";
    if (const json* k = find_object(reply, "kafka")) out += kafka_watch_line(*k);
    return out;
}

std::string render_fields(const json& reply) {
    if (!reply.is_object()) return dump(reply) + "\n";
    json rest = reply;
    rest.erase("ok");
    rest.erase("v");
    std::string out;
    flatten(out, rest, "");
    return out;
}

} // namespace sluice::control
