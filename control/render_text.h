#pragma once
// Text helpers for sluicectl's renderings of replies (control/protocol_render.cpp):
// numbers, times, JSON objects as aligned `key: value` blocks and tables. Key order is
// lost in `json` (a sorted map), so the counters the spec names come first in its order
// and anything else follows alphabetically. None of them throws on a JSON object.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::control::text {

using json = nlohmann::json;

// One line of JSON; invalid UTF-8 is replaced rather than thrown on.
std::string dump(const json& j);
// The spec's counters first, in its order, then the rest alphabetically.
std::vector<std::string> ordered_keys(const std::vector<std::string>& present);
std::string format_number(double v); // up to 3 decimals, trailing zeros dropped
std::string format_scalar(const json& v);
std::string format_time_ms(int64_t ms); // RFC 3339, or "none yet"
void pad_to(std::string& s, size_t width);
void render_object(std::string& out, const json& obj, int indent);
// One row per array element, one column per scalar key seen in any element; a missing
// cell is "-". Nested values are left to --json.
void render_table(std::string& out, const json& rows, const std::vector<std::string>& extra,
                  const std::vector<std::vector<std::string>>& extra_cells);
void flatten(std::string& out, const json& v, const std::string& prefix);
const json* find_number(const json& obj, const char* key);
const json* find_object(const json& obj, const char* key);
double number_or(const json& obj, const char* key, double fallback);
std::string format_si(double v, const char* unit = ""); // 1234567 -> "1.23M"
std::string format_us(double us);                       // "850 us", "1.20 ms", "2.50 s"
std::string format_duration_s(double s);
// A table of plain strings: the first row is the header; columns padded to align.
std::string text_table(const std::vector<std::vector<std::string>>& rows, int indent = 2);

} // namespace sluice::control::text
