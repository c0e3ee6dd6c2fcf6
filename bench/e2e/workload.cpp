#include "bench/e2e/workload.h"

#include <pcap/pcap.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <unordered_set>

#include <simdjson.h>

#include "base/limits.h"
#include "dataplane/event_parse.h"
#include "dataplane/frame_parse.h"
#include "processing/event.h"
#include "tools/gen/binary_batch.h"
#include "tools/gen/frames.h"

namespace sluice::bench {

result<workload> load_pcap(const std::string& path, uint16_t port) {
    char err[PCAP_ERRBUF_SIZE] = {};
    std::unique_ptr<pcap_t, void (*)(pcap_t*)> pc(pcap_open_offline(path.c_str(), err),
                                                  pcap_close);
    if (!pc)
        return make_error(errc::invalid_argument,
                          "cannot read capture " + path + ": " + err +
                              " (make one with sluice-gen --out DIR)");
    dataplane::port_filter ports;
    ports.add(port);
    workload w;
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    int rc;
    while ((rc = pcap_next_ex(pc.get(), &h, &data)) == 1) {
        std::string_view payload;
        if (dataplane::parse_frame(data, h->caplen, ports, &payload) !=
            dataplane::frame_verdict::udp_to_port) {
            ++w.ignored_frames;
            continue;
        }
        if (payload.size() >= tools::bin_header_bytes && uint8_t(payload[0]) == 0xB1) {
            uint16_t records = 0; // a binary batch: event_count at offset 8
            std::memcpy(&records, payload.data() + 8, sizeof records);
            w.event_lines += records;
        } else {
            size_t start = 0;
            while (start < payload.size()) {
                size_t nl = payload.find('\n', start);
                size_t end = nl == std::string_view::npos ? payload.size() : nl;
                if (end > start) ++w.event_lines;
                start = end + 1;
            }
        }
        w.datagrams.emplace_back(payload);
    }
    if (rc == -1)
        return make_error(errc::io_error, "reading capture " + path + ": " + pcap_geterr(pc.get()));
    return w;
}

namespace {

// sluice's own RX checks (dataplane::event_parser with sluiced's default limits) on one
// event line at a time: which lines a sluice would accept as events, and their fields.
class rx_checker {
  public:
    rx_checker() : _parser(config()), _slot_mem(std::aligned_alloc(64, slot_bytes()), std::free) {}

    // The parsed slot when `line` passes the RX checks, else nullptr.
    const processing::event_slot* check(std::string_view line, int64_t now_ms) {
        auto* slot = static_cast<processing::event_slot*>(_slot_mem.get());
        _parser.parse(line, now_ms, *slot);
        return slot->kind == processing::slot_kind::event ? slot : nullptr;
    }

  private:
    static dataplane::parse_config config() {
        dataplane::parse_config pc;
        pc.event_bytes_max = limits::event_bytes_default; // sluiced's default
        return pc;
    }
    static size_t slot_bytes() {
        return (processing::slot_bytes(config().event_bytes_max) + 63) / 64 * 64;
    }

    dataplane::event_parser _parser;
    std::unique_ptr<void, void (*)(void*)> _slot_mem;
};

// Calls fn(line) for every non-empty `\n`-separated line of an NDJSON payload.
template <typename Fn> void for_each_line(std::string_view payload, Fn&& fn) {
    size_t start = 0;
    while (start < payload.size()) {
        size_t nl = payload.find('\n', start);
        size_t end = nl == std::string_view::npos ? payload.size() : nl;
        if (end > start) fn(payload.substr(start, end - start));
        start = end + 1;
    }
}

// Line protocol escapes for tag values and string field values.
void append_tag(std::string& out, std::string_view v) {
    if (v.empty()) {
        out += "none"; // an empty tag value is not allowed
        return;
    }
    for (char c : v) {
        if (c == ',' || c == ' ' || c == '=' || c == '\\') out += '\\';
        if (c == '\n' || c == '\r') c = ' ';
        out += c;
    }
}
void append_string_field(std::string& out, std::string_view v) {
    out += '"';
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n' || c == '\r') c = ' ';
        out += c;
    }
    out += '"';
}

} // namespace

line_protocol to_line_protocol(const workload& w, int64_t now_ms, size_t datagram_bytes,
                               size_t lines_per_batch) {
    rx_checker rx;
    line_protocol lp;
    std::unordered_set<std::string> keys_ns, keys_ms;
    std::string line, datagram, batch, key;
    size_t batch_lines = 0;
    for (const std::string& d : w.datagrams) {
        for_each_line(d, [&](std::string_view event) {
            const processing::event_slot* slot = rx.check(event, now_ms);
            if (!slot) {
                ++lp.not_representable;
                return;
            }
            line = "events,page=";
            append_tag(line, slot->field(slot->page));
            line += ",event_type=";
            append_tag(line, slot->field(slot->event_type));
            line += " user_id=";
            append_string_field(line, slot->field(slot->user_id));
            line += ",n=1i ";
            const size_t series_end = line.find(' ');
            key.assign(line, 0, series_end);
            key += ' ';
            key += std::to_string(slot->event_time_ms);
            keys_ms.insert(key);
            line += std::to_string(slot->event_time_ms * 1000000 + int64_t(slot->id.lo % 1000000));
            key.assign(line, 0, series_end);
            key += line.substr(line.rfind(' '));
            keys_ns.insert(key);
            line += '\n';
            ++lp.points;
            if (!datagram.empty() && datagram.size() + line.size() > datagram_bytes) {
                lp.datagrams.push_back(std::move(datagram));
                datagram.clear();
            }
            datagram += line;
            batch += line;
            if (++batch_lines == lines_per_batch) {
                lp.batches.push_back(std::move(batch));
                batch.clear();
                batch_lines = 0;
            }
        });
    }
    lp.distinct_ns = keys_ns.size();
    lp.distinct_ms = keys_ms.size();
    if (!datagram.empty()) lp.datagrams.push_back(std::move(datagram));
    if (!batch.empty()) lp.batches.push_back(std::move(batch));
    return lp;
}

namespace {

// A JSON string literal of arbitrary bytes: quotes, backslashes and control characters
// escaped, everything else (UTF-8 included) as it is.
void append_json_string(std::string& out, std::string_view v) {
    out += '"';
    for (char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (uint8_t(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", unsigned(uint8_t(c)));
            out += esc;
        } else {
            out += c;
        }
    }
    out += '"';
}

void append_hex(std::string& out, const storage::event_identity& id) {
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(id.hi),
                  static_cast<unsigned long long>(id.lo));
    out.append(hex, 32);
}

struct identity_hash {
    size_t operator()(const storage::event_identity& id) const noexcept { return id.lo; }
};

} // namespace

rows_summary write_rows(const workload& w, int64_t now_ms, std::FILE* rows, std::FILE* msgs) {
    rx_checker rx;
    simdjson::dom::parser json;
    rows_summary out;
    std::unordered_set<storage::event_identity, identity_hash> ids;
    std::unordered_set<std::string> pages, series;
    std::string row, msg;
    for (const std::string& d : w.datagrams) {
        for_each_line(d, [&](std::string_view line) {
            const processing::event_slot* slot = rx.check(line, now_ms);
            simdjson::dom::object obj;
            if (!slot || json.parse(line.data(), line.size()).get(obj) != simdjson::SUCCESS) {
                ++out.not_representable;
                return;
            }
            ids.insert(slot->id);
            ++out.rows;
            const std::string page(slot->field(slot->page));
            pages.insert(page);
            series.insert(page + '\0' + std::string(slot->field(slot->event_type)));
            if (rows) {
                row = "{\"id\":\"";
                append_hex(row, slot->id);
                row += "\",\"event_id\":";
                append_json_string(row, slot->has_event_id ? slot->field(slot->event_id)
                                                           : std::string_view());
                row += ",\"user_id\":";
                append_json_string(row, slot->field(slot->user_id));
                row += ",\"event_type\":";
                append_json_string(row, slot->field(slot->event_type));
                row += ",\"page\":";
                append_json_string(row, slot->field(slot->page));
                row += ",\"ts\":";
                row += std::to_string(slot->event_time_ms);
                row += ",\"metadata\":";
                simdjson::dom::element metadata;
                append_json_string(row, obj["metadata"].get(metadata) == simdjson::SUCCESS
                                            ? std::string_view(simdjson::minify(metadata))
                                            : std::string_view());
                row += "}\n";
                std::fwrite(row.data(), 1, row.size(), rows);
            }
            if (msgs) {
                msg.clear();
                append_hex(msg, slot->id);
                msg += ' ';
                msg += line;
                msg += '\n';
                std::fwrite(msg.data(), 1, msg.size(), msgs);
            }
        });
    }
    out.distinct_ids = ids.size();
    out.pages = pages.size();
    out.series = series.size();
    return out;
}

binary_workload to_binary(const workload& w, int64_t now_ms, size_t datagram_bytes) {
    rx_checker rx;
    simdjson::dom::parser json;
    binary_workload out;
    tools::bin_batch_encoder batch;
    for (const std::string& d : w.datagrams) {
        for_each_line(d, [&](std::string_view line) {
            const processing::event_slot* slot = rx.check(line, now_ms);
            simdjson::dom::object obj;
            // sluice accepted the line, so it is a JSON object; simdjson copies it into
            // a padded buffer of its own.
            if (!slot || json.parse(line.data(), line.size()).get(obj) != simdjson::SUCCESS) {
                ++out.not_representable;
                return;
            }
            tools::bin_event e;
            e.timestamp_ms = slot->event_time_ms;
            auto text = [&](const char* key) -> std::optional<std::string> {
                std::string_view v;
                if (obj[key].get(v) != simdjson::SUCCESS) return std::nullopt;
                return std::string(v);
            };
            e.event_id = text("event_id");
            e.user_id = text("user_id");
            e.event_type = text("event_type");
            e.page = text("page");
            simdjson::dom::element metadata;
            if (obj["metadata"].get(metadata) == simdjson::SUCCESS)
                e.metadata = simdjson::minify(metadata);
            if (!batch.empty() && batch.size_with(e) > datagram_bytes)
                out.datagrams.push_back(batch.finish());
            batch.add(e);
            ++out.records;
        });
    }
    if (!batch.empty()) out.datagrams.push_back(batch.finish());
    return out;
}

result<uint64_t> write_pcap(const std::string& path, const std::vector<std::string>& datagrams,
                            uint16_t port) {
    std::unique_ptr<pcap_t, void (*)(pcap_t*)> dead(pcap_open_dead(DLT_EN10MB, 65535),
                                                     pcap_close);
    if (!dead) return make_error(errc::internal, "pcap_open_dead failed");
    std::unique_ptr<pcap_dumper_t, void (*)(pcap_dumper_t*)> dumper(
        pcap_dump_open(dead.get(), path.c_str()), pcap_dump_close);
    if (!dumper)
        return make_error(errc::io_error, "cannot create " + path + ": " +
                                              pcap_geterr(dead.get()) + " (check the path)");
    std::vector<uint8_t> frame;
    uint64_t frames = 0;
    for (const std::string& d : datagrams) {
        tools::frame_addr addr;
        addr.src_host = uint8_t(1 + frames % 8);
        tools::build_udp_frame(frame, addr, uint16_t(40000 + addr.src_host), port,
                               uint16_t(frames), d);
        pcap_pkthdr h{};
        h.ts.tv_sec = time_t(frames / 100000); // synthetic: 10 us apart
        h.ts.tv_usec = suseconds_t(frames % 100000 * 10);
        h.caplen = h.len = bpf_u_int32(frame.size());
        pcap_dump(reinterpret_cast<u_char*>(dumper.get()), &h, frame.data());
        ++frames;
    }
    if (pcap_dump_flush(dumper.get()) != 0)
        return make_error(errc::io_error, "cannot write " + path + " (disk full?)");
    return frames;
}

} // namespace sluice::bench
