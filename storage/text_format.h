#pragma once
// Text forms of stored values for the export formats: UTF-8 repair, JSON strings, CSV
// fields (RFC 4180). Text formats need UTF-8, stored strings are bytes: a byte that does
// not begin a well-formed UTF-8 sequence becomes U+FFFD (the callers count such values).
#include <string>
#include <string_view>

namespace sluice::storage::text {

bool valid_utf8(std::string_view s) noexcept;
// Appends s, repaired; returns false when something had to be replaced.
bool append_utf8(std::string& out, std::string_view s);
// Appends s as a JSON string literal (quotes, escapes, UTF-8 repaired); returns false
// when something had to be replaced.
bool append_json_string(std::string& out, std::string_view s);
// Appends s as one CSV field: quoted when it holds a comma, quote, CR or LF, or is
// empty (an unquoted empty field is a null), with quotes doubled.
void append_csv_field(std::string& out, std::string_view s);

} // namespace sluice::storage::text
