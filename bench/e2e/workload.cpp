#include "bench/e2e/workload.h"

#include <pcap/pcap.h>

#include <cstdlib>
#include <memory>
#include <unordered_set>
#include <string_view>

#include "base/limits.h"
#include "dataplane/event_parse.h"
#include "dataplane/frame_parse.h"
#include "processing/event.h"

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
        size_t start = 0;
        while (start < payload.size()) {
            size_t nl = payload.find('\n', start);
            size_t end = nl == std::string_view::npos ? payload.size() : nl;
            if (end > start) ++w.event_lines;
            start = end + 1;
        }
        w.datagrams.emplace_back(payload);
    }
    if (rc == -1)
        return make_error(errc::io_error, "reading capture " + path + ": " + pcap_geterr(pc.get()));
    return w;
}

namespace {

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
    dataplane::parse_config pc;
    pc.event_bytes_max = limits::event_bytes_default; // sluiced's default
    dataplane::event_parser parser(pc);
    const size_t slot_bytes = (processing::slot_bytes(pc.event_bytes_max) + 63) / 64 * 64;
    std::unique_ptr<void, void (*)(void*)> slot_mem(std::aligned_alloc(64, slot_bytes), std::free);
    auto* slot = static_cast<processing::event_slot*>(slot_mem.get());

    line_protocol lp;
    std::unordered_set<std::string> keys_ns, keys_ms;
    std::string line, datagram, batch, key;
    size_t batch_lines = 0;
    for (const std::string& d : w.datagrams) {
        std::string_view payload(d);
        size_t start = 0;
        while (start < payload.size()) {
            size_t nl = payload.find('\n', start);
            size_t end = nl == std::string_view::npos ? payload.size() : nl;
            std::string_view event = payload.substr(start, end - start);
            start = end + 1;
            if (event.empty()) continue;
            parser.parse(event, now_ms, *slot);
            if (slot->kind != processing::slot_kind::event) {
                ++lp.not_representable;
                continue;
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
        }
    }
    lp.distinct_ns = keys_ns.size();
    lp.distinct_ms = keys_ms.size();
    if (!datagram.empty()) lp.datagrams.push_back(std::move(datagram));
    if (!batch.empty()) lp.batches.push_back(std::move(batch));
    return lp;
}

} // namespace sluice::bench
