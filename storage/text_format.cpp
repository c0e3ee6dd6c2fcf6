#include "storage/text_format.h"

#include <simdjson.h>

namespace sluice::storage::text {

bool valid_utf8(std::string_view s) noexcept { return simdjson::validate_utf8(s.data(), s.size()); }

bool append_utf8(std::string& out, std::string_view s) {
    if (valid_utf8(s)) {
        out += s;
        return true;
    }
    auto cont = [&](size_t i) { return i < s.size() && (uint8_t(s[i]) & 0xc0) == 0x80; };
    auto at = [&](size_t i) { return i < s.size() ? uint8_t(s[i]) : uint8_t(0); };
    for (size_t i = 0; i < s.size();) {
        const uint8_t c = uint8_t(s[i]);
        size_t n = 0;
        if (c < 0x80) {
            n = 1;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = cont(i + 1) ? 2 : 0;
        } else if (c >= 0xe0 && c <= 0xef) {
            // No overlong forms (e0 80..9f) and no surrogates (ed a0..bf).
            bool ok = c == 0xe0 ? at(i + 1) >= 0xa0 && cont(i + 1)
                      : c == 0xed ? at(i + 1) <= 0x9f && cont(i + 1)
                                  : cont(i + 1);
            n = ok && cont(i + 2) ? 3 : 0;
        } else if (c >= 0xf0 && c <= 0xf4) {
            // No overlong forms (f0 80..8f) and nothing above U+10FFFF (f4 90..).
            bool ok = c == 0xf0 ? at(i + 1) >= 0x90 && cont(i + 1)
                      : c == 0xf4 ? at(i + 1) <= 0x8f && cont(i + 1)
                                  : cont(i + 1);
            n = ok && cont(i + 2) && cont(i + 3) ? 4 : 0;
        }
        if (n == 0) {
            out += "\xef\xbf\xbd";
            ++i;
        } else {
            out.append(s.data() + i, n);
            i += n;
        }
    }
    return false;
}

bool append_json_string(std::string& out, std::string_view s) {
    std::string repaired;
    bool ok = true;
    if (!valid_utf8(s)) {
        ok = append_utf8(repaired, s);
        s = repaired;
    }
    static const char hex[] = "0123456789abcdef";
    out += '"';
    size_t from = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        const uint8_t c = uint8_t(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + from, i - from);
        from = i + 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    out.append(s.data() + from, s.size() - from);
    out += '"';
    return ok;
}

void append_csv_field(std::string& out, std::string_view s) {
    if (!s.empty() && s.find_first_of(",\"\r\n") == std::string_view::npos) {
        out += s;
        return;
    }
    out += '"';
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

} // namespace sluice::storage::text
