#include "tools/gen/model.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include "tools/gen/binary_batch.h"
#include "tools/gen/timestamp.h"

namespace sluice::tools {

std::string_view reason_text(reason r) noexcept {
    switch (r) {
    case reason::parse_error: return "parse_error";
    case reason::missing_timestamp: return "missing_timestamp";
    case reason::bad_timestamp: return "bad_timestamp";
    case reason::future_timestamp: return "future_timestamp";
    case reason::oversize: return "oversize";
    case reason::beyond_dedup_horizon: return "beyond_dedup_horizon";
    case reason::schema_mismatch: return "schema_mismatch";
    }
    return "unknown";
}

std::string hex16(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
    return buf;
}

std::string csv_field(std::string_view field) {
    if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
    std::string out = "\"";
    for (char c : field) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

void reference_model::feed_ignored_frame(std::string_view why) {
    _counters.rx_packets++;
    _counters.ignored_packets++;
    if (!why.empty()) _counters.ignored_by_reason[std::string(why)]++;
}

void reference_model::feed_datagram(std::string_view payload) {
    _counters.rx_packets++;
    _counters.datagrams++;
    if (!payload.empty() && uint8_t(payload[0]) == 0xB1) {
        feed_binary(payload);
        return;
    }
    size_t start = 0;
    while (start <= payload.size()) {
        size_t end = payload.find('\n', start);
        if (end == std::string_view::npos) end = payload.size();
        if (end > start) (void)feed_line(payload.substr(start, end - start));
        start = end + 1;
    }
}

// The RX-side checks, in §3's order. On success fills the event time, the dedup
// identity and the group key.
std::optional<reason> reference_model::rx_check(std::string_view line, int64_t& time_ms,
                                                identity& id, std::string& page) const {
    using json = nlohmann::json;
    if (line.size() > _config.event_bytes_max) return reason::oversize;

    const json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) return reason::parse_error;

    for (const char* field : {"event_id", "user_id", "event_type", "page"}) {
        const auto it = doc.find(field);
        if (it != doc.end() && !it->is_string()) return reason::schema_mismatch;
    }

    const auto ts = doc.find("timestamp");
    if (ts == doc.end()) return reason::missing_timestamp;
    if (ts->is_number_integer()) {
        // number_unsigned above INT64_MAX cannot be an event time.
        if (ts->is_number_unsigned() && ts->get<uint64_t>() > uint64_t(INT64_MAX))
            return reason::bad_timestamp;
        time_ms = ts->get<int64_t>();
    } else if (ts->is_string()) {
        if (!parse_rfc3339_ms(ts->get_ref<const std::string&>(), &time_ms))
            return reason::bad_timestamp;
    } else {
        return reason::bad_timestamp;
    }
    if (time_ms > _config.now_ms + _config.max_future_skew_ms) return reason::future_timestamp;

    const auto event_id = doc.find("event_id");
    if (event_id != doc.end())
        id = 'i' + event_id->get<std::string>();
    else
        id = 'b' + std::string(line);
    const auto page_it = doc.find("page");
    page = page_it != doc.end() ? page_it->get<std::string>() : std::string();
    return std::nullopt;
}

// docs/BINARY.md: a bad header is one parse_error; each record is judged in the
// documented order; what passes is judged like a JSON line, its raw being the canonical
// form.
void reference_model::feed_binary(std::string_view payload) {
    const auto records = bin_decode(payload);
    if (!records) {
        _counters.events_received++;
        dead_letter(payload, reason::parse_error);
        return;
    }
    constexpr int64_t year_1_ms = -62135596800000, year_9999_end_ms = 253402300799999;
    for (const bin_record& r : *records) {
        _counters.events_received++;
        if (!r.readable) {
            dead_letter(r.record, reason::parse_error);
            continue;
        }
        const bin_event& e = r.event;
        const std::string canonical = bin_canonical(e);
        std::optional<reason> bad;
        if (canonical.size() > _config.event_bytes_max) bad = reason::oversize;
        else if (!e.timestamp_ms) bad = reason::missing_timestamp;
        else if (*e.timestamp_ms < year_1_ms || *e.timestamp_ms > year_9999_end_ms)
            bad = reason::bad_timestamp;
        else if (*e.timestamp_ms > _config.now_ms + _config.max_future_skew_ms)
            bad = reason::future_timestamp;
        if (bad) {
            dead_letter(canonical, *bad);
            continue;
        }
        const identity id = e.event_id ? 'i' + *e.event_id : 'b' + canonical;
        (void)judge(canonical, *e.timestamp_ms, id, e.page.value_or(""));
    }
}

void reference_model::dead_letter(std::string_view line, reason why) {
    _counters.dead_letters++;
    _counters.dead_letters_by_reason[size_t(why)]++;
    const size_t n = std::min<size_t>(line.size(), _config.event_bytes_max);
    _dead_letters.emplace_back(why, XXH3_64bits(line.data(), n));
}

line_outcome reference_model::feed_line(std::string_view line) {
    _counters.events_received++;
    line_outcome out;

    int64_t t = 0;
    identity id;
    std::string page;
    if (const auto bad = rx_check(line, t, id, page)) {
        dead_letter(line, *bad);
        out.kind = verdict::dead_letter;
        out.why = *bad;
        return out;
    }
    return judge(line, t, id, page);
}

// §3 after the RX checks, for an event that passed them: horizon, dedup, lateness, windows.
line_outcome reference_model::judge(std::string_view raw, int64_t t, const identity& id,
                                    const std::string& page) {
    line_outcome out;
    const std::string_view line = raw;
    out.event_time_ms = t;

    // M_before: the max over earlier lines only; this line raises M whatever follows.
    const std::optional<int64_t> m_before = _max_time_ms;
    _max_time_ms = m_before ? std::max(*m_before, t) : t;

    if (m_before && t < *m_before - _config.dedup_horizon_ms) {
        dead_letter(line, reason::beyond_dedup_horizon);
        out.kind = verdict::dead_letter;
        out.why = reason::beyond_dedup_horizon;
        return out;
    }

    const auto seen = _accepted_at.find(id);
    if (seen != _accepted_at.end() && m_before &&
        seen->second >= *m_before - _config.dedup_horizon_ms) {
        _counters.duplicates++;
        out.kind = verdict::duplicate;
        return out;
    }

    _accepted_at[id] = t;
    _counters.events_accepted++;
    const int64_t window_start = floor_div(t, _config.window_size_ms) * _config.window_size_ms;
    const int64_t window_end = window_start + _config.window_size_ms;
    const bool late = m_before && window_end <= *m_before - _config.watermark_delay_ms;
    _accepted.emplace_back(XXH3_64bits(line.data(), line.size()), late);
    if (late) {
        _counters.late_events++;
        out.kind = verdict::accepted_late;
    } else {
        _window_counts[{window_start, page}]++;
        out.kind = verdict::accepted;
    }

    // Identities accepted before M - horizon can never be duplicates again (M only
    // grows), so forgetting them keeps a long run's memory flat. Sweeping only when the
    // map has doubled keeps the sweeps' cost linear overall.
    if (_accepted_at.size() >= _prune_at_size) {
        const int64_t oldest = *_max_time_ms - _config.dedup_horizon_ms;
        std::erase_if(_accepted_at, [oldest](const auto& kv) { return kv.second < oldest; });
        _prune_at_size = std::max<size_t>(1 << 16, 2 * _accepted_at.size());
    }
    return out;
}

std::vector<window_row> reference_model::windows() const {
    // std::map orders (start, page) by start then page bytes: already the file's order.
    std::vector<window_row> rows;
    rows.reserve(_window_counts.size());
    for (const auto& [key, count] : _window_counts)
        rows.push_back(
            window_row{key.first, key.first + _config.window_size_ms, key.second, count});
    return rows;
}

std::vector<std::string> reference_model::event_lines() const {
    std::vector<std::string> lines;
    lines.reserve(_accepted.size());
    for (const auto& [hash, late] : _accepted)
        lines.push_back(hex16(hash) + (late ? " 1" : " 0"));
    std::sort(lines.begin(), lines.end());
    return lines;
}

std::vector<std::string> reference_model::dead_letter_lines() const {
    std::vector<std::string> lines;
    lines.reserve(_dead_letters.size());
    for (const auto& [why, hash] : _dead_letters)
        lines.push_back(std::string(reason_text(why)) + " " + hex16(hash));
    std::sort(lines.begin(), lines.end());
    return lines;
}

namespace {

result<void> write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (out) out.write(text.data(), std::streamsize(text.size()));
    if (!out.flush())
        return make_error(errc::io_error, "cannot write " + path + ": " + std::strerror(errno) +
                                              " (check that the --out directory is writable)");
    return ok_result();
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) {
        text += l;
        text += '\n';
    }
    return text;
}

} // namespace

result<void> reference_model::write_expected(const std::string& dir) const {
    nlohmann::ordered_json c;
    c["rx_packets"] = _counters.rx_packets;
    c["ignored_packets"] = _counters.ignored_packets;
    nlohmann::ordered_json ignored = nlohmann::ordered_json::object();
    for (const char* why : {"not_ip", "not_udp", "wrong_port", "fragment"}) {
        auto it = _counters.ignored_by_reason.find(why);
        ignored[why] = it == _counters.ignored_by_reason.end() ? 0 : it->second;
    }
    c["ignored_by_reason"] = ignored;
    c["datagrams"] = _counters.datagrams;
    c["events_received"] = _counters.events_received;
    c["events_accepted"] = _counters.events_accepted;
    c["duplicates"] = _counters.duplicates;
    c["late_events"] = _counters.late_events;
    c["dead_letters"] = _counters.dead_letters;
    nlohmann::ordered_json by_reason = nlohmann::ordered_json::object();
    for (int r = 0; r < reason_count; r++)
        by_reason[std::string(reason_text(reason(r)))] =
            _counters.dead_letters_by_reason[size_t(r)];
    c["dead_letters_by_reason"] = by_reason;
    SLUICE_TRY(write_file(dir + "/counters.json", c.dump(2) + "\n"));

    std::string csv = "window_start_ms,window_end_ms,page,count\n";
    for (const auto& row : windows()) {
        csv += std::to_string(row.window_start_ms) + "," + std::to_string(row.window_end_ms) + "," +
               csv_field(row.page) + "," + std::to_string(row.count) + "\n";
    }
    SLUICE_TRY(write_file(dir + "/windows.csv", csv));
    SLUICE_TRY(write_file(dir + "/events.txt", join_lines(event_lines())));
    return write_file(dir + "/dead_letters.txt", join_lines(dead_letter_lines()));
}

} // namespace sluice::tools
