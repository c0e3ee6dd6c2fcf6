#include "control/render_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/time_format.h"

namespace sluice::control::text {

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

// The counters the spec names, in its order.
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

} // namespace

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
std::string format_si(double v, const char* unit) {
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
    } else if (!(s < 1e15)) {
        // NaN, infinity or a value no integer holds (a reply is parsed from the socket):
        // converting it to an integer would be undefined behaviour.
        std::snprintf(buf, sizeof buf, "%.3g s", s);
    } else {
        std::snprintf(buf, sizeof buf, "%lldd%02dh", (long long)(s / 86400),
                      int((long long)(s / 3600) % 24)); // hours over 2^31 below 1e15 s
    }
    return buf;
}

// A table of plain strings: the first row is the header; columns padded to align.
std::string text_table(const std::vector<std::vector<std::string>>& rows, int indent) {
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

} // namespace sluice::control::text
