#include "tools/gen/generator.h"

#include <algorithm>
#include <array>

#include "base/assert.h"
#include "tools/gen/frames.h"
#include "tools/gen/timestamp.h"

namespace sluice::tools {

namespace {

constexpr int64_t minute_ms = 60 * 1000;
constexpr size_t pages_count = 500;
constexpr size_t recent_max = 4096;
constexpr int ignored_per_datagram_max = 16;

// Weighted event types: mostly page views, like a clickstream.
struct weighted {
    std::string_view value;
    uint32_t weight;
};
constexpr std::array<weighted, 6> event_types = {{{"page_view", 60},
                                                  {"click", 20},
                                                  {"add_to_cart", 8},
                                                  {"scroll", 5},
                                                  {"purchase", 4},
                                                  {"login", 3}}};

constexpr std::array<std::string_view, 5> user_agents = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) \"Mobile\"",
    "curl/8.5.0",
};

constexpr std::array<std::string_view, 5> referrers = {
    "https://www.google.com", "https://www.bing.com/search?q=shoes", "",
    "https://news.ycombinator.com/item?id=1", "android-app://com.google.android.gm"};

constexpr std::array<int, 8> offsets_min = {120, -300, -330, 60, 330, 345, -480, 0};

uint32_t flow_of(const frame_addr& addr) {
    return uint32_t(addr.src_host - 1) % 8 + (addr.ipv6 ? 8 : 0);
}

} // namespace

void append_json_string(std::string& out, std::string_view value, bool escape_slash) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (size_t i = 0; i < value.size(); i++) {
        const auto c = uint8_t(value[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c == '/' && escape_slash) {
            out += "\\/";
        } else if (c < 0x20 || c >= 0x80) {
            uint32_t cp = c;
            // Two-byte UTF-8 is all the generator's tables hold.
            if (c >= 0xc0 && c < 0xe0 && i + 1 < value.size()) {
                cp = (uint32_t(c & 0x1f) << 6) | (uint8_t(value[i + 1]) & 0x3f);
                i++;
            }
            SLUICE_ASSERT(cp < 0x800);
            out += "\\u";
            for (int shift = 12; shift >= 0; shift -= 4)
                out += hex[(cp >> shift) & 0xf];
        } else {
            out += char(c);
        }
    }
    out += '"';
}

traffic_generator::traffic_generator(const gen_config& config)
    : _config(config), _rng(config.seed) {
    SLUICE_ASSERT(config.events_per_minute > 0);
    // A few hot pages first (the skew picks low indices most), including the ones that
    // test unescaping and CSV quoting: a comma, quotes, a non-ASCII letter, a backslash.
    _pages = {"/",
              "/home",
              "/products",
              "/cart",
              "/checkout",
              "/search?q=shoes,boots",
              "/search?q=\"red shoes\"",
              "/caf\xc3\xa9",
              "/files/C:\\temp",
              "/products/1234"};
    for (size_t i = _pages.size(); i < pages_count; i++) {
        _pages.push_back(i % 4 == 0 ? "/blog/post-" + std::to_string(i)
                                    : "/products/" + std::to_string(1000 + i));
    }
}

size_t traffic_generator::page_index() {
    const double u = ratio();
    return std::min(pages_count - 1, size_t(double(pages_count) * u * u * u * u));
}

std::string traffic_generator::random_page() {
    const size_t index = page_index();
    std::string out;
    append_json_string(out, _pages[index], chance(0.1));
    return out;
}

std::string traffic_generator::random_metadata() {
    const bool escape = chance(0.1);
    std::string out = "{\"user_agent\":";
    append_json_string(out, user_agents[below(user_agents.size())], escape);
    out += ",\"referrer\":";
    append_json_string(out, referrers[below(referrers.size())], escape);
    if (chance(0.2)) out += ",\"session_id\":\"s-" + std::to_string(below(1000000)) + "\"";
    if (chance(0.1)) out += ",\"screen\":{\"w\":1920,\"h\":1080}";
    out += '}';
    return out;
}

std::string traffic_generator::random_timestamp(int64_t t_ms, int64_t& named_ms) {
    const uint64_t pick = below(100);
    rendered_timestamp r;
    if (pick < 40) {
        r = render_timestamp(t_ms, ts_format::utc_seconds, 0, 0, 0);
    } else if (pick < 60) {
        r = render_timestamp(t_ms, ts_format::utc_fraction, int(1 + below(9)), _rng(), 0);
    } else if (pick < 75) {
        const int offset = offsets_min[below(offsets_min.size())];
        r = render_timestamp(t_ms, ts_format::offset, int(below(4)), 0, offset);
    } else {
        r = render_timestamp(t_ms, ts_format::epoch_ms, 0, 0, 0);
    }
    named_ms = r.named_ms;
    return r.json;
}

traffic_generator::event_parts traffic_generator::normal_parts(int64_t t_ms, int64_t& named_ms) {
    event_parts p;
    if (chance(0.5)) p.event_id = "\"e-" + std::to_string(_next_event_id++) + "\"";
    p.user_id = "\"" + std::to_string(1 + below(100000)) + "\"";
    uint64_t w = below(100);
    for (const auto& t : event_types) {
        if (w < t.weight) {
            p.event_type = "\"" + std::string(t.value) + "\"";
            break;
        }
        w -= t.weight;
    }
    p.timestamp = random_timestamp(t_ms, named_ms);
    if (!chance(0.01)) p.page = random_page(); // a missing page groups as ""
    p.metadata = random_metadata();
    if (chance(0.05)) p.extra = "\"ab_test\":\"" + std::string(chance(0.5) ? "A" : "B") + "\"";
    p.timestamp_first = chance(0.1);
    return p;
}

std::string traffic_generator::render(const event_parts& p) const {
    std::string out = "{";
    const auto field = [&out](std::string_view key, const std::string& value) {
        if (value.empty()) return;
        if (out.size() > 1) out += ',';
        out += '"';
        out += key;
        out += "\":";
        out += value;
    };
    if (p.timestamp_first) field("timestamp", p.timestamp);
    field("event_id", p.event_id);
    field("user_id", p.user_id);
    field("event_type", p.event_type);
    if (!p.timestamp_first) field("timestamp", p.timestamp);
    field("page", p.page);
    field("metadata", p.metadata);
    if (!p.extra.empty()) {
        out += ',';
        out += p.extra;
    }
    out += '}';
    return out;
}

void traffic_generator::note_valid_time(int64_t t_ms) {
    _max_ms = _have_max ? std::max(_max_ms, t_ms) : t_ms;
    _have_max = true;
}

void traffic_generator::remember(const std::string& line, const event_parts& parts, int64_t t_ms) {
    _recent.push_back(recent_event{line, parts.event_id, t_ms});
    // Keep the last ~5 min of event time: the window duplicates are drawn from.
    while (!_recent.empty() &&
           (_recent.size() > recent_max || _recent.front().time_ms < _max_ms - 5 * minute_ms))
        _recent.pop_front();
}

std::string traffic_generator::oversize_line(int64_t t_ms) {
    int64_t named = 0;
    event_parts p = normal_parts(t_ms, named);
    // Alone in its datagram, the frame must stay under frame_bytes_max.
    const size_t limit = frame_bytes_max - datagram_headers_max - 1;
    const size_t target = std::min<size_t>(limit, _config.event_bytes_max + 1 + below(4000));
    p.metadata = "{\"user_agent\":\"curl/8.5.0\",\"pad\":\"\"}";
    const size_t base = render(p).size();
    if (target > base) {
        std::string pad;
        for (size_t i = 0; i < target - base; i++)
            pad += char('a' + i % 26);
        p.metadata = "{\"user_agent\":\"curl/8.5.0\",\"pad\":\"" + pad + "\"}";
    }
    return render(p);
}

std::string traffic_generator::malformed_line(int64_t t_ms) {
    int64_t named = 0;
    event_parts p = normal_parts(t_ms, named);
    switch (below(6)) {
    case 0: { // parse_error
        static constexpr std::array<std::string_view, 4> not_json = {
            "GET /index.html HTTP/1.1", "hello world", "{not json}", "<event time=\"now\"/>"};
        const std::string whole = render(p);
        switch (below(4)) {
        case 0: return std::string(not_json[below(not_json.size())]);
        case 1: return whole.substr(0, 1 + below(whole.size() - 1)); // truncated
        case 2: return chance(0.5) ? "[" + whole + "]" : "[1,2,3]";
        default: return std::to_string(below(1000000));
        }
    }
    case 1: // missing_timestamp
        p.timestamp.clear();
        return render(p);
    case 2: { // bad_timestamp
        static constexpr std::array<std::string_view, 4> bad = {
            "\"yesterday\"", "\"2025-13-45T99:00:00Z\"", "true", "\"2025-02-30T10:00:00Z\""};
        p.timestamp = bad[below(bad.size())];
        return render(p);
    }
    case 3: { // future_timestamp: some time in 2099
        const int64_t t2099 =
            days_from_civil(civil_date{2099, 1, 1}) * 86400000 + int64_t(below(365ull * 86400000));
        p.timestamp = random_timestamp(t2099, named);
        return render(p);
    }
    case 4: // oversize, when a frame can carry one
        if (_config.event_bytes_max + 1 < frame_bytes_max - datagram_headers_max - 1)
            return oversize_line(t_ms);
        return std::to_string(below(1000000));
    default: // schema_mismatch: a typed field that is not a string
        switch (below(4)) {
        case 0: p.user_id = std::to_string(1 + below(100000)); break;
        case 1: p.page = "{\"path\":\"/products/1\"}"; break;
        case 2: p.event_type = "7"; break;
        default: p.event_id = std::to_string(below(1000000)); break;
        }
        return render(p);
    }
}

std::string traffic_generator::next_line(uint64_t index) {
    const int64_t slot_ms = std::max<int64_t>(1, minute_ms / _config.events_per_minute);
    const int64_t t_nominal =
        event_time_start_ms + int64_t(index * uint64_t(minute_ms) / _config.events_per_minute);
    int64_t t = t_nominal + int64_t(below(uint64_t(slot_ms)));
    int64_t named = 0;

    double u = ratio();
    if ((u -= _config.dup_rate) < 0) {
        if (!_recent.empty()) return _recent[below(_recent.size())].line;
    } else if ((u -= _config.id_dup_rate) < 0) {
        // Same event_id and time, fresh page and metadata: other bytes, one identity.
        for (int tries = 0; tries < 4 && !_recent.empty(); tries++) {
            const recent_event& r = _recent[below(_recent.size())];
            if (r.event_id.empty()) continue;
            event_parts p = normal_parts(r.time_ms, named);
            p.event_id = r.event_id;
            return render(p);
        }
    } else if ((u -= _config.late_rate) < 0) {
        // Window closed (end <= M - 10 min) but within the horizon (> M - 50 min).
        if (_have_max) {
            event_parts p =
                normal_parts(_max_ms - 12 * minute_ms - int64_t(below(38 * minute_ms)), named);
            return render(p);
        }
    } else if ((u -= _config.horizon_rate) < 0) {
        if (_have_max) {
            event_parts p =
                normal_parts(_max_ms - 65 * minute_ms - int64_t(below(30 * minute_ms)), named);
            return render(p);
        }
    } else if ((u -= _config.malformed_rate) < 0) {
        return malformed_line(t);
    } else if (chance(_config.disorder_rate)) {
        // Never late: at most 5 min behind M, and a window closes 10 min after its end.
        t -= int64_t(below(5 * minute_ms));
    }

    event_parts p = normal_parts(t, named);
    std::string line = render(p);
    note_valid_time(named);
    remember(line, p, named);
    return line;
}

void traffic_generator::emit_datagram(std::string_view payload,
                                      const std::function<void(const gen_frame&)>& sink) {
    frame_addr addr;
    addr.ipv6 = chance(_config.ipv6_rate);
    addr.vlan = chance(_config.vlan_rate);
    addr.src_host = uint8_t(1 + below(8));
    build_udp_frame(_frame, addr, uint16_t(40000 + addr.src_host), _config.dst_port, _ip_id++,
                    payload);
    SLUICE_ASSERT(_frame.size() <= frame_bytes_max);
    sink(gen_frame{_frame, false, payload, flow_of(addr)});
}

void traffic_generator::emit_ignored(const std::function<void(const gen_frame&)>& sink) {
    frame_addr addr;
    addr.ipv6 = chance(_config.ipv6_rate);
    addr.vlan = chance(_config.vlan_rate);
    addr.src_host = uint8_t(1 + below(8));
    int64_t named = 0;
    // Event bytes inside frames that must not count as events.
    const std::string line = render(normal_parts(_have_max ? _max_ms : event_time_start_ms, named));
    const uint16_t other_port = _config.dst_port == 65535 ? 9999 : uint16_t(_config.dst_port + 1);
    std::string_view why;
    switch (below(_config.fragments ? 6 : 4)) {
    case 0:
        build_arp_request_frame(_frame, addr.vlan, addr.src_host);
        why = "not_ip";
        break;
    case 1:
        build_udp_frame(_frame, addr, 40000, other_port, _ip_id++, line);
        why = "wrong_port";
        break;
    case 2:
        build_tcp_frame(_frame, addr, 40000, _config.dst_port, _ip_id++, line);
        why = "not_udp";
        break;
    case 3:
        addr.ipv6 = false;
        build_icmp_echo_frame(_frame, addr, _ip_id++, uint16_t(_frames));
        why = "not_udp";
        break;
    case 4:
        addr.ipv6 = false;
        // Non-last fragments carry a multiple of 8 bytes.
        build_ipv4_fragment_frame(_frame, addr, true, 0, 40000, _config.dst_port, _ip_id++,
                                  std::string_view(line).substr(0, line.size() / 8 * 8));
        why = "fragment";
        break;
    default:
        addr.ipv6 = false;
        build_ipv4_fragment_frame(_frame, addr, false, uint16_t(1 + below(100)), 40000,
                                  _config.dst_port, _ip_id++, line);
        why = "fragment";
        break;
    }
    sink(gen_frame{_frame, true, {}, flow_of(addr), why});
}

void traffic_generator::flush_datagram(const std::function<void(const gen_frame&)>& sink) {
    if (_datagram.empty()) return;
    if (chance(0.25)) _datagram += '\n';
    // Geometric: on average ignored_rate / (1 - ignored_rate) ignored frames per datagram.
    for (int n = 0; n < ignored_per_datagram_max && chance(_config.ignored_rate); n++) {
        emit_ignored(sink);
        _frames++;
    }
    emit_datagram(_datagram, sink);
    _frames++;
    _datagram.clear();
}

void traffic_generator::run(const std::function<void(const gen_frame&)>& sink) {
    if (_config.binary) {
        run_binary(sink);
        return;
    }
    for (uint64_t i = 0; i < _config.events; i++) {
        const std::string line = next_line(i);
        SLUICE_DASSERT(!line.empty());
        SLUICE_DASSERT(line.find('\n') == std::string::npos);
        if (line.size() > datagram_pack_bytes) {
            // Long (oversize) lines travel alone, possibly in a jumbo frame.
            flush_datagram(sink);
            _datagram = line;
            flush_datagram(sink);
        } else if (_datagram.empty()) {
            _datagram = line;
        } else if (_datagram.size() + 1 + line.size() <= datagram_pack_bytes && !chance(0.15)) {
            // Now and then an empty line, which is not an event.
            _datagram += chance(0.005) ? "\n\n" : "\n";
            _datagram += line;
        } else {
            flush_datagram(sink);
            _datagram = line;
        }
    }
    flush_datagram(sink);
}

} // namespace sluice::tools

namespace sluice::tools {

bin_event traffic_generator::normal_binary(int64_t t_ms) {
    bin_event e;
    e.timestamp_ms = t_ms;
    if (chance(0.5)) e.event_id = "e-" + std::to_string(_next_event_id++);
    e.user_id = std::to_string(1 + below(100000));
    uint64_t w = below(100);
    for (const auto& t : event_types) {
        if (w < t.weight) {
            e.event_type = std::string(t.value);
            break;
        }
        w -= t.weight;
    }
    if (!chance(0.01)) e.page = _pages[page_index()]; // a missing page groups as ""
    e.metadata = random_metadata();
    return e;
}

bin_event traffic_generator::malformed_binary(int64_t t_ms) {
    bin_event e = normal_binary(t_ms);
    switch (below(5)) {
    case 0: // parse_error
        switch (below(3)) {
        case 0: e.bad_index = true; break;
        case 1: e.extra_flags = 0x8; break;
        default: e.user_id = "\xff" + *e.user_id; break; // not UTF-8
        }
        break;
    case 1: e.timestamp_ms.reset(); break; // missing_timestamp
    case 2:                                // bad_timestamp: beyond year 9999 or before year 1
        e.timestamp_ms = chance(0.5) ? 253402300800000 + int64_t(below(1000000000))
                                     : -62135596800001 - int64_t(below(1000000000));
        break;
    case 3: // future_timestamp: some time in 2099
        e.timestamp_ms =
            days_from_civil(civil_date{2099, 1, 1}) * 86400000 + int64_t(below(365ull * 86400000));
        break;
    default: { // oversize: metadata padded past the limit, the batch still fits a frame
        const size_t limit = frame_bytes_max - datagram_headers_max - 200;
        const size_t target = std::min<size_t>(limit, _config.event_bytes_max + 1 + below(4000));
        const size_t base = bin_canonical(e).size() - e.metadata->size();
        std::string pad;
        for (size_t i = 0; base + 30 + pad.size() < target; i++)
            pad += char('a' + i % 26);
        e.metadata = "{\"user_agent\":\"curl/8.5.0\",\"pad\":\"" + pad + "\"}";
        break;
    }
    }
    return e;
}

bin_event traffic_generator::next_binary(uint64_t index) {
    const int64_t slot_ms = std::max<int64_t>(1, minute_ms / _config.events_per_minute);
    const int64_t t_nominal =
        event_time_start_ms + int64_t(index * uint64_t(minute_ms) / _config.events_per_minute);
    int64_t t = t_nominal + int64_t(below(uint64_t(slot_ms)));

    double u = ratio();
    if ((u -= _config.dup_rate) < 0) {
        if (!_recent_binary.empty()) return _recent_binary[below(_recent_binary.size())].first;
    } else if ((u -= _config.id_dup_rate) < 0) {
        // Same event_id and time, other fields: other bytes, one identity.
        for (int tries = 0; tries < 4 && !_recent_binary.empty(); tries++) {
            const auto& [r, r_ms] = _recent_binary[below(_recent_binary.size())];
            if (!r.event_id) continue;
            bin_event e = normal_binary(r_ms);
            e.event_id = r.event_id;
            return e;
        }
    } else if ((u -= _config.late_rate) < 0) {
        if (_have_max)
            return normal_binary(_max_ms - 12 * minute_ms - int64_t(below(38 * minute_ms)));
    } else if ((u -= _config.horizon_rate) < 0) {
        if (_have_max)
            return normal_binary(_max_ms - 65 * minute_ms - int64_t(below(30 * minute_ms)));
    } else if ((u -= _config.malformed_rate) < 0) {
        return malformed_binary(t);
    } else if (chance(_config.disorder_rate)) {
        t -= int64_t(below(5 * minute_ms)); // never late, as in JSON mode
    }
    bin_event e = normal_binary(t);
    note_valid_time(t);
    _recent_binary.emplace_back(e, t);
    while (!_recent_binary.empty() && (_recent_binary.size() > recent_max ||
                                       _recent_binary.front().second < _max_ms - 5 * minute_ms))
        _recent_binary.pop_front();
    return e;
}

void traffic_generator::flush_binary(const std::function<void(const gen_frame&)>& sink) {
    if (_batch.empty()) return;
    // Now and then a batch whose header a receiver must refuse as a whole.
    const bool corrupt = chance(_config.malformed_rate * 0.2);
    _datagram = _batch.finish(corrupt);
    for (int n = 0; n < ignored_per_datagram_max && chance(_config.ignored_rate); n++) {
        emit_ignored(sink);
        _frames++;
    }
    emit_datagram(_datagram, sink);
    _frames++;
    _datagram.clear();
}

void traffic_generator::run_binary(const std::function<void(const gen_frame&)>& sink) {
    for (uint64_t i = 0; i < _config.events; i++) {
        const bin_event e = next_binary(i);
        if (_batch.size_with(e) > datagram_pack_bytes && !_batch.empty()) flush_binary(sink);
        _batch.add(e);
        // A batch closes early now and then, as NDJSON datagrams do.
        if (_batch.size() > datagram_pack_bytes || chance(0.02)) flush_binary(sink);
    }
    flush_binary(sink);
}

} // namespace sluice::tools
