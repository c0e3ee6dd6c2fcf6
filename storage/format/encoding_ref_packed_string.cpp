// ref_packed_string (id 10, format 3) and ref_escaped_string (id 11, format 4): the
// skeletons of ref_string with changes that make events.raw cheaper to write and smaller.
// References carry a rendering, so an event time can be cut out of an RFC 3339 timestamp
// as well as out of a decimal one; and the skeleton lengths are bit-packed after the
// skeleton bytes instead of varints between them (zstd then sees the JSON text alone).
// The writer finds what to cut in one vector pass over the value: the quotes split it
// into gaps, and a gap between two quotes is compared with the string references of the
// same length and with the time's renderings, until every one is found; a decimal time
// is searched with a vector substring search. No memchr/memcmp substring search per
// reference per row.
//
// Format 4 (ref_escaped_string, what the writer writes): a literal byte 0..refs_max in a
// skeleton is written as the escape byte 0 followed by it, so a value holding such
// bytes (every binary event's canonical raw, docs/BINARY.md) still has its references
// cut, where format 3 stored it verbatim; and a time has a fourth rendering, its 8 bytes
// little-endian as the canonical binary raw holds timestamp_ms. A value without marker
// bytes is written and read exactly as in format 3 (no escape to look for). Format 3's
// chunks are still read (decode), never written.
//
// Layout (both): u8 k (1..8), k x (u16 column, u8 rendering), u32 S, S bytes of
// skeletons back to back, then the rows' skeleton lengths bit-packed (bitpack.h).
#include <charconv>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "base/time_format.h"
#include "storage/format/bitpack.h"
#include "storage/format/bytes.h"
#include "storage/format/encoding.h"
#include "storage/format/headers.h"

namespace sluice::storage::format::ref_packed_string {
namespace {

constexpr size_t rfc3339_seconds_len = 19; // YYYY-MM-DDTHH:MM:SS
constexpr size_t rfc3339_millis_len = 23;  // YYYY-MM-DDTHH:MM:SS.mmm
constexpr int64_t rfc3339_ms_min = -62167219200000; // 0000-01-01T00:00:00.000
constexpr int64_t rfc3339_ms_max = 253402300799999; // 9999-12-31T23:59:59.999

inline void two_digits(char* p, int64_t v) noexcept {
    p[0] = char('0' + v / 10);
    p[1] = char('0' + v % 10);
}

// ms as YYYY-MM-DDTHH:MM:SS.mmm (UTC) into buf (23 bytes); false outside years 0..9999.
// The seconds part is cached: rows of a block mostly share or step their second.
class rfc3339_renderer {
  public:
    bool render(int64_t ms, char* buf) noexcept {
        if (ms < rfc3339_ms_min || ms > rfc3339_ms_max) return false;
        const int64_t sec = floor_div(ms, 1000);
        if (sec != _sec) {
            _sec = sec;
            const int64_t days = floor_div(sec, 86400);
            const int64_t in_day = sec - days * 86400;
            const civil_date d = civil_from_days(days);
            two_digits(_text, d.year / 100);
            two_digits(_text + 2, d.year % 100);
            _text[4] = '-';
            two_digits(_text + 5, d.month);
            _text[7] = '-';
            two_digits(_text + 8, d.day);
            _text[10] = 'T';
            two_digits(_text + 11, in_day / 3600);
            _text[13] = ':';
            two_digits(_text + 14, in_day / 60 % 60);
            _text[16] = ':';
            two_digits(_text + 17, in_day % 60);
        }
        std::memcpy(buf, _text, rfc3339_seconds_len);
        const int64_t frac = ms - sec * 1000;
        buf[19] = '.';
        buf[20] = char('0' + frac / 100);
        two_digits(buf + 21, frac % 100);
        return true;
    }

  private:
    int64_t _sec = std::numeric_limits<int64_t>::min();
    char _text[rfc3339_seconds_len] = {};
};

// Text of a referenced value as a rendering gives it. buf holds at least 24 bytes.
// Empty when the value has no such text (a time outside years 0..9999).
std::string_view ref_text(const column_batch& batch, int col, rendering how, uint32_t row,
                          char* buf, rfc3339_renderer& rfc) noexcept {
    if (batch.col(col).type != column_type::i64) return batch.string_at(col, row);
    const int64_t v = batch.i64_at(col, row);
    switch (how) {
    case rendering::as_is: {
        auto r = std::to_chars(buf, buf + 20, v);
        return {buf, size_t(r.ptr - buf)};
    }
    case rendering::rfc3339_seconds:
        return rfc.render(v, buf) ? std::string_view(buf, rfc3339_seconds_len) : std::string_view();
    case rendering::rfc3339_millis:
        return rfc.render(v, buf) ? std::string_view(buf, rfc3339_millis_len) : std::string_view();
    case rendering::le64:
        put<int64_t>(reinterpret_cast<uint8_t*>(buf), v);
        return {buf, sizeof v};
    }
    return {};
}

// The first byte of s[i..n) that is a marker or the escape (<= refs_max), or n.
inline size_t next_marker(const uint8_t* s, size_t i, size_t n) noexcept {
#if defined(__AVX2__)
    const __m256i top = _mm256_set1_epi8(char(refs_max));
    for (; i + 32 <= n; i += 32) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
        const uint32_t low =
            uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(x, top), x)));
        if (low != 0) return i + size_t(std::countr_zero(low));
    }
#endif
    while (i < n && s[i] > refs_max)
        ++i;
    return i;
}

// Calls on_quote(position) for the '"'s in s, in order, until it returns false or a
// chunk holds a byte in 0..refs_max (a marker); returns whether s holds one (its
// references are then searched as bytes, row_cutter::search_bytes).
template <typename OnQuote>
inline bool scan_quotes(const char* s, size_t n, OnQuote on_quote) noexcept {
    size_t i = 0;
    bool quotes = true; // on_quote still wants them
#if defined(__AVX2__)
    const __m256i quote = _mm256_set1_epi8('"');
    const __m256i top = _mm256_set1_epi8(char(refs_max));
    auto chunk = [&](__m256i x, size_t at) {
        const __m256i low = _mm256_cmpeq_epi8(_mm256_min_epu8(x, top), x); // x <= refs_max
        if (!_mm256_testz_si256(low, low)) return false;
        if (!quotes) return true;
        for (uint32_t q = uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, quote))); q != 0;
             q &= q - 1)
            if (!on_quote(at + size_t(std::countr_zero(q)))) {
                quotes = false;
                break;
            }
        return true;
    };
    for (; i + 32 <= n; i += 32)
        if (!chunk(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)), i)) return true;
    if (i < n) {
        alignas(32) char tail[32];
        std::memset(tail, ' ', sizeof tail);
        std::memcpy(tail, s + i, n - i);
        if (!chunk(_mm256_load_si256(reinterpret_cast<const __m256i*>(tail)), i)) return true;
    }
    return false;
#else
    for (; i < n; ++i) {
        if (uint8_t(s[i]) <= refs_max) return true;
        if (quotes && s[i] == '"') quotes = on_quote(i);
    }
    return false;
#endif
}

// The first occurrence of needle (at least 2 bytes) in s at or after from, or npos. With
// AVX2 it tests 32 positions at once by the needle's first and last byte (W. Muła's
// SIMD-friendly substring search): a decimal time that the text does not hold costs a
// few vector compares, not a memchr and memcmp per matching first digit.
inline size_t find_text(std::string_view s, std::string_view needle, size_t from) noexcept {
    const size_t k = needle.size();
    if (s.size() < k || from > s.size() - k) return std::string_view::npos;
#if defined(__AVX2__)
    const __m256i first = _mm256_set1_epi8(needle[0]);
    const __m256i last = _mm256_set1_epi8(needle[k - 1]);
    size_t i = from;
    for (; i + k - 1 + 32 <= s.size(); i += 32) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.data() + i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.data() + i + k - 1));
        for (uint32_t m = uint32_t(_mm256_movemask_epi8(
                 _mm256_and_si256(_mm256_cmpeq_epi8(a, first), _mm256_cmpeq_epi8(b, last))));
             m != 0; m &= m - 1) {
            const size_t p = i + size_t(std::countr_zero(m));
            if (std::memcmp(s.data() + p + 1, needle.data() + 1, k - 2) == 0) return p;
        }
    }
    from = i;
#endif
    return s.find(needle, from);
}

struct cut {
    uint32_t pos;
    uint32_t len;
    uint8_t marker;
};

// a[0..n) == b[0..n), inline: the lengths here are short and a call per gap would cost
// more than the compare.
inline bool same_bytes(const char* a, const char* b, size_t n) noexcept {
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (get<uint64_t>(reinterpret_cast<const uint8_t*>(a + i)) !=
                get<uint64_t>(reinterpret_cast<const uint8_t*>(b + i)))
                return false;
        return get<uint64_t>(reinterpret_cast<const uint8_t*>(a + n - 8)) ==
               get<uint64_t>(reinterpret_cast<const uint8_t*>(b + n - 8));
    }
    if (n >= 4)
        return get<uint32_t>(reinterpret_cast<const uint8_t*>(a)) ==
                   get<uint32_t>(reinterpret_cast<const uint8_t*>(b)) &&
               get<uint32_t>(reinterpret_cast<const uint8_t*>(a + n - 4)) ==
                   get<uint32_t>(reinterpret_cast<const uint8_t*>(b + n - 4));
    for (size_t i = 0; i < n; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

inline size_t write_skeleton(std::string_view s, const cut* cuts, uint32_t found, bool escape,
                             uint8_t* out) noexcept;

// Finds the cuts of one row and writes its skeleton.
class row_cutter {
  public:
    row_cutter(const column_batch& batch, const std::vector<ref>& refs, uint32_t row,
               std::string_view s, rfc3339_renderer& rfc) noexcept
        : _refs(refs), _s(s) {
        // What each reference looks for in this row: a string an equal gap between two
        // quotes; a time rendering a quoted gap that starts with it; a decimal time its
        // first occurrence anywhere (searched after the quotes).
        for (uint32_t m = 0; m < refs.size(); ++m) {
            const ref& rf = refs[m];
            if (batch.is_null(rf.col, row)) continue;
            if (rf.how == rendering::le64) {
                // Only a value with marker bytes can hold it (search_bytes).
                _text[m] = ref_text(batch, rf.col, rf.how, row, _buf[m], rfc);
                _le64 |= 1u << m;
                continue;
            }
            if (rf.how != rendering::as_is) {
                // A time's two renderings (listed one after the other) share one text:
                // the seconds are its first 19 bytes.
                const size_t len = rf.how == rendering::rfc3339_millis ? rfc3339_millis_len
                                                                        : rfc3339_seconds_len;
                if (m > 0 && refs[m - 1].col == rf.col && refs[m - 1].how != rendering::as_is) {
                    if (_text[m - 1].empty()) continue; // not renderable
                    _text[m] = {_text[m - 1].data(), len};
                } else if (rfc.render(batch.i64_at(rf.col, row), _buf[m])) {
                    _text[m] = {_buf[m], len};
                } else {
                    continue;
                }
                _prefix |= 1u << m;
                continue;
            }
            if (batch.col(rf.col).type == column_type::i64) {
                _text[m] = ref_text(batch, rf.col, rf.how, row, _buf[m], rfc);
                if (_text[m].size() < ref_value_bytes_min) continue;
                _decimal |= 1u << m;
                continue;
            }
            _text[m] = batch.string_at(rf.col, row);
            if (_text[m].size() < ref_value_bytes_min) continue;
            _quoted |= 1u << m;
            _lengths |= uint64_t(1) << std::min<size_t>(_text[m].size(), 63);
        }
    }

    // Called for each '"' of the value, in order; false once no reference looks in
    // quoted text any more.
    bool on_quote(size_t q) noexcept {
        // Most gaps are keys: no reference has their length and they are too short for a
        // timestamp. Only the others take the call.
        const size_t len = q - _prev;
        if ((_quotes & 1) != 0 &&
            ((_lengths >> std::min<size_t>(len, 63) & 1) != 0 ||
             (_prefix != 0 && len >= rfc3339_seconds_len)))
            inside(_prev, len);
        ++_quotes;
        _prev = q + 1;
        return (_quoted | _prefix) != 0;
    }

    // A value holding marker bytes (a binary event's canonical raw: its strings are not
    // quoted): the references the quotes did not find are searched as bytes, the longer
    // texts first (a time's 8 bytes or its millisecond rendering before its seconds).
    [[gnu::noinline]] void search_bytes() noexcept {
        uint32_t seconds = 0;
        for (uint32_t q = _quoted | _prefix | _le64; q != 0; q &= q - 1) {
            const uint32_t m = uint32_t(std::countr_zero(q));
            if (_refs[m].how == rendering::rfc3339_seconds) seconds |= 1u << m;
            else take_first(m);
        }
        for (uint32_t q = seconds & _prefix; q != 0; q &= q - 1)
            take_first(uint32_t(std::countr_zero(q)));
        _le64 = 0;
    }

    // After the quotes: decimal times, then the skeleton at out (escaping the literal
    // marker bytes when the value holds some).
    size_t finish(bool escape, uint8_t* out) noexcept {
        for (uint32_t q = _decimal; q != 0; q &= q - 1)
            take_first(uint32_t(std::countr_zero(q)));
        // Cuts by position (at most refs_max: insertion sort), then the skeleton.
        for (uint32_t i = 1; i < _found; ++i)
            for (uint32_t j = i; j > 0 && _cuts[j - 1].pos > _cuts[j].pos; --j)
                std::swap(_cuts[j - 1], _cuts[j]);
        return write_skeleton(_s, _cuts, _found, escape, out);
    }

  private:
    void take(uint32_t m, size_t pos, size_t len) noexcept {
        _cuts[_found++] = {uint32_t(pos), uint32_t(len), uint8_t(m + 1)};
        _quoted &= ~(1u << m);
        _prefix &= ~(1u << m);
    }

    // Cuts reference m's text at its first occurrence that overlaps no cut, if any.
    void take_first(uint32_t m) noexcept {
        const std::string_view t = _text[m];
        const size_t len = t.size();
        if (len < ref_value_bytes_min) return;
        for (size_t pos = find_text(_s, t, 0); pos != std::string_view::npos;
             pos = find_text(_s, t, pos + 1)) {
            bool overlaps = false;
            for (uint32_t i = 0; i < _found; ++i)
                overlaps |= pos < _cuts[i].pos + _cuts[i].len && _cuts[i].pos < pos + len;
            if (!overlaps) {
                take(m, pos, len);
                return;
            }
        }
    }

    // A gap between two quotes: a string value (or a key).
    [[gnu::noinline]] void inside(size_t a, size_t len) noexcept {
        if ((_lengths >> std::min<size_t>(len, 63) & 1) != 0) {
            for (uint32_t q = _quoted; q != 0; q &= q - 1) {
                const uint32_t m = uint32_t(std::countr_zero(q));
                if (_text[m].size() == len && same_bytes(_s.data() + a, _text[m].data(), len)) {
                    take(m, a, len);
                    return;
                }
            }
        }
        if (_prefix == 0 || len < rfc3339_seconds_len) return;
        // A timestamp: the millisecond rendering first (the longer cut when both fit).
        // Renderings are at least 19 bytes: their first 8 reject most gaps at once.
        const uint64_t head = get<uint64_t>(reinterpret_cast<const uint8_t*>(_s.data() + a));
        int seconds = -1;
        for (uint32_t q = _prefix; q != 0; q &= q - 1) {
            const uint32_t m = uint32_t(std::countr_zero(q));
            const std::string_view t = _text[m];
            if (head != get<uint64_t>(reinterpret_cast<const uint8_t*>(t.data())) ||
                t.size() > len || !same_bytes(_s.data() + a, t.data(), t.size()))
                continue;
            if (_refs[m].how == rendering::rfc3339_millis) {
                take(m, a, t.size());
                return;
            }
            seconds = int(m);
        }
        if (seconds >= 0) take(uint32_t(seconds), a, rfc3339_seconds_len);
    }

    const std::vector<ref>& _refs;
    const std::string_view _s;
    std::string_view _text[refs_max];
    char _buf[refs_max][24];
    uint32_t _quoted = 0, _prefix = 0, _decimal = 0, _le64 = 0; // bit m: reference m still looks
    uint64_t _lengths = 0; // bit min(len, 63): a quoted string reference has that length
    cut _cuts[refs_max];
    uint32_t _found = 0;
    size_t _prev = 0;     // start of the current gap
    uint32_t _quotes = 0; // quotes before it: odd = inside a string
};

// Whether s holds a byte in 0..refs_max (a marker: the skeleton escapes it).
inline bool has_marker(const char* s, size_t n) noexcept {
#if defined(__AVX2__)
    if (n >= 32) {
        const __m256i top = _mm256_set1_epi8(char(refs_max));
        __m256i low = _mm256_setzero_si256();
        auto add = [&](const char* at) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at));
            low = _mm256_or_si256(low, _mm256_cmpeq_epi8(_mm256_min_epu8(x, top), x));
        };
        for (size_t i = 0; i + 32 <= n; i += 32) add(s + i);
        add(s + n - 32); // the tail, overlapping
        return !_mm256_testz_si256(low, low);
    }
#endif
    bool low = false;
    for (size_t i = 0; i < n; ++i) low |= uint8_t(s[i]) <= refs_max;
    return low;
}

// How many bytes of s are in 0..refs_max: what escaping them adds at most.
inline size_t count_markers(const char* s, size_t n) noexcept {
    size_t count = 0, i = 0;
#if defined(__AVX2__)
    const __m256i top = _mm256_set1_epi8(char(refs_max));
    for (; i + 32 <= n; i += 32) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
        count += size_t(std::popcount(
            uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(x, top), x)))));
    }
#endif
    for (; i < n; ++i) count += uint8_t(s[i]) <= refs_max;
    return count;
}

// Copies s[0..n) to out with each byte in 0..refs_max escaped; returns the bytes written.
// Short spans (a binary raw's header between its cuts) byte by byte, longer ones (its
// metadata) from marker to marker with the vector search.
inline size_t copy_escaped(const char* s, size_t n, uint8_t* out) noexcept {
    const auto* u = reinterpret_cast<const uint8_t*>(s);
    size_t w = 0, from = 0;
    if (n < 32) {
        for (size_t i = 0; i < n; ++i) {
            out[w] = skeleton_escape;
            w += u[i] <= refs_max;
            out[w++] = u[i];
        }
        return w;
    }
    for (size_t i = next_marker(u, 0, n); i < n; i = next_marker(u, from, n)) {
        std::memcpy(out + w, s + from, i - from);
        w += i - from;
        out[w++] = skeleton_escape;
        out[w++] = u[i];
        from = i + 1;
    }
    std::memcpy(out + w, s + from, n - from);
    return w + n - from;
}

// Writes the skeleton of s with the given cuts (at most refs_max, sorted by position,
// none overlapping) at out; returns its length. escape: s holds marker bytes, which the
// literal spans escape (without, no span holds one).
inline size_t write_skeleton(std::string_view s, const cut* cuts, uint32_t found, bool escape,
                             uint8_t* out) noexcept {
    size_t n = 0, from = 0;
    if (escape) {
        for (uint32_t i = 0; i < found; ++i) {
            n += copy_escaped(s.data() + from, cuts[i].pos - from, out + n);
            out[n++] = cuts[i].marker;
            from = cuts[i].pos + cuts[i].len;
        }
        return n + copy_escaped(s.data() + from, s.size() - from, out + n);
    }
    for (uint32_t i = 0; i < found; ++i) {
        std::memcpy(out + n, s.data() + from, cuts[i].pos - from);
        n += cuts[i].pos - from;
        out[n++] = cuts[i].marker;
        from = cuts[i].pos + cuts[i].len;
    }
    std::memcpy(out + n, s.data() + from, s.size() - from);
    return n + s.size() - from;
}

// A row appended with the positions of its references' texts (push_string_at): each
// position is checked — the reference's text must be the bytes there — instead of
// searched for. A time reference cuts, in a value with marker bytes (a binary canonical
// raw), its 8 little-endian bytes there when they are the bytes there; else its
// millisecond RFC 3339 rendering when the bytes start with it, else the one to the
// second, else its decimal form. A position that holds none of these, or a cut
// overlapping an earlier one, is dropped: the value still rebuilds exactly, only less of
// it is cut. markers: s holds marker bytes (has_marker).
size_t cut_at_positions(const column_batch& batch, uint32_t row, std::string_view s, bool markers,
                        const uint16_t* at, const std::vector<ref>& refs,
                        const renderings_of& plan, rfc3339_renderer& rfc, uint8_t* out) noexcept {
    cut cuts[refs_max];
    uint32_t found = 0;
    char buf[24];
    for (uint32_t j = 0; j < plan.schema_refs; ++j) {
        const size_t p = at[j];
        if (p == column_batch::no_position || p >= s.size()) continue;
        const int rc = refs[j].col;
        if (batch.is_null(rc, row)) continue;
        const char* here = s.data() + p;
        const size_t room = s.size() - p;
        if (batch.col(rc).type != column_type::i64) {
            const std::string_view t = batch.string_at(rc, row);
            if (t.size() >= ref_value_bytes_min && t.size() <= room &&
                same_bytes(here, t.data(), t.size()))
                cuts[found++] = {uint32_t(p), uint32_t(t.size()), uint8_t(j + 1)};
            continue;
        }
        const int64_t v = batch.i64_at(rc, row);
        if (markers && plan.le64[j] >= 0 && room >= sizeof v &&
            get<int64_t>(reinterpret_cast<const uint8_t*>(here)) == v) {
            cuts[found++] = {uint32_t(p), uint32_t(sizeof v), uint8_t(plan.le64[j] + 1)};
            continue;
        }
        const int millis = plan.millis[j], seconds = plan.seconds[j];
        if ((millis >= 0 || seconds >= 0) && room >= rfc3339_seconds_len && rfc.render(v, buf)) {
            if (millis >= 0 && room >= rfc3339_millis_len && same_bytes(here, buf, rfc3339_millis_len)) {
                cuts[found++] = {uint32_t(p), uint32_t(rfc3339_millis_len), uint8_t(millis + 1)};
                continue;
            }
            if (seconds >= 0 && same_bytes(here, buf, rfc3339_seconds_len)) {
                cuts[found++] = {uint32_t(p), uint32_t(rfc3339_seconds_len), uint8_t(seconds + 1)};
                continue;
            }
        }
        const size_t len = size_t(std::to_chars(buf, buf + 20, v).ptr - buf);
        if (len >= ref_value_bytes_min && len <= room && same_bytes(here, buf, len))
            cuts[found++] = {uint32_t(p), uint32_t(len), uint8_t(j + 1)};
    }
    // By position (insertion sort: at most refs_max, mostly in order already), dropping a
    // cut that overlaps the one before it.
    for (uint32_t i = 1; i < found; ++i)
        for (uint32_t k = i; k > 0 && cuts[k - 1].pos > cuts[k].pos; --k)
            std::swap(cuts[k - 1], cuts[k]);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < found; ++i)
        if (kept == 0 || cuts[i].pos >= cuts[kept - 1].pos + cuts[kept - 1].len)
            cuts[kept++] = cuts[i];
    return write_skeleton(s, cuts, kept, markers, out);
}

} // namespace

skeleton_writer::skeleton_writer(uint32_t rows_max) : _lengths(rows_max) {
    _refs.reserve(refs_max);
}

void skeleton_writer::plan_refs(const column_batch& batch, const std::vector<int>& refs) noexcept {
    _refs.clear();
    _renderings.schema_refs = uint32_t(refs.size());
    for (uint32_t j = 0; j < refs.size(); ++j) {
        _refs.push_back({refs[j], rendering::as_is});
        _renderings.seconds[j] = _renderings.millis[j] = _renderings.le64[j] = -1;
    }
    for (uint32_t j = 0; j < refs.size(); ++j) {
        if (batch.col(refs[j]).type != column_type::i64) continue;
        for (rendering how : {rendering::rfc3339_seconds, rendering::rfc3339_millis, rendering::le64})
            if (_refs.size() < refs_max) {
                int8_t* slot = how == rendering::rfc3339_seconds ? _renderings.seconds
                               : how == rendering::rfc3339_millis ? _renderings.millis
                                                                  : _renderings.le64;
                slot[j] = int8_t(_refs.size());
                _refs.push_back({refs[j], how});
            }
    }
}

size_t skeleton_writer::encode(const column_batch& batch, int col, const std::vector<int>& refs,
                               uint8_t* out, size_t room) noexcept {
    plan_refs(batch, refs);
    // The header and the packed lengths; a row's skeleton then takes at most its value's
    // bytes plus one per marker byte (escaped), cuts only shrink it.
    const size_t fixed = 1 + 3 * refs_max + 4 + bitpack::bytes_max(batch.rows());
    if (room < fixed) return not_written;
    room -= fixed;
    size_t n = 0;
    out[n++] = uint8_t(_refs.size());
    for (const auto& r : _refs) {
        put<uint16_t>(out + n, uint16_t(r.col));
        out[n + 2] = uint8_t(r.how);
        n += 3;
    }
    uint8_t* total_at = out + n;
    n += 4;
    const size_t bytes_start = n;
    const auto& c = batch.col(col);
    rfc3339_renderer rfc;
    for (uint32_t r = 0; r < batch.rows(); ++r) {
        const std::string_view s = value_at(c, r);
        // Escapes at most double a value: the markers are counted only when that could
        // overflow the room.
        const bool tight = n - bytes_start + 2 * s.size() > room;
        if (const uint16_t* at = batch.positions_at(col, r)) {
            const bool markers = has_marker(s.data(), s.size());
            if (tight &&
                n - bytes_start + s.size() + (markers ? count_markers(s.data(), s.size()) : 0) > room)
                return not_written;
            const size_t len =
                cut_at_positions(batch, r, s, markers, at, _refs, _renderings, rfc, out + n);
            n += len;
            _lengths[r] = uint32_t(len);
            continue;
        }
        row_cutter cutter(batch, _refs, r, s, rfc);
        const bool markers =
            scan_quotes(s.data(), s.size(), [&cutter](size_t q) { return cutter.on_quote(q); });
        if (tight && n - bytes_start + s.size() + (markers ? count_markers(s.data(), s.size()) : 0) > room)
            return not_written;
        if (markers) cutter.search_bytes();
        const size_t len = cutter.finish(markers, out + n);
        n += len;
        _lengths[r] = uint32_t(len);
    }
    put<uint32_t>(total_at, uint32_t(n - bytes_start));
    const uint32_t* len = _lengths.data();
    return n + bitpack::pack(batch.rows(), [len](size_t i) { return uint64_t(len[i]); }, out + n);
}

namespace {

struct decode_ref {
    int col;
    rendering how;
};

// The header: k, then k references (column, rendering up to `last`), each to an earlier
// column.
const char* read_refs(decode_args& a, rendering last, decode_ref* refs, uint32_t& nrefs) {
    if (a.p >= a.end) return "ref header truncated";
    nrefs = *a.p++;
    if (nrefs == 0 || nrefs > refs_max || uint64_t(a.end - a.p) < 3 * nrefs)
        return "ref header out of range";
    for (uint32_t k = 0; k < nrefs; ++k, a.p += 3) {
        const uint16_t rc = get<uint16_t>(a.p);
        const uint8_t how = a.p[2];
        if (rc >= a.col || !ref_type_ok(a.batch.col(rc).type)) return "ref to a later column";
        if (how > uint8_t(last)) return "unknown rendering";
        if (how != 0 && a.batch.col(rc).type != column_type::i64)
            return "time rendering of a column that is not i64";
        refs[k] = {rc, rendering(how)};
    }
    return nullptr;
}

// Appends the text of reference marker m (1..nrefs) of row r.
inline const char* append_ref(decode_args& a, const decode_ref* refs, uint32_t nrefs, uint8_t m,
                              uint32_t r, char* numbuf, rfc3339_renderer& rfc, string_sink& out) {
    if (m == 0 || m > nrefs) return "bad marker in skeleton";
    const decode_ref& rf = refs[m - 1];
    if (a.batch.is_null(rf.col, r)) return "skeleton refers to a null";
    std::string_view t = ref_text(a.batch, rf.col, rf.how, r, numbuf, rfc);
    if (t.empty() && rf.how != rendering::as_is) return "time out of range for its rendering";
    return out.append(t.data(), t.size()) ? nullptr : too_long;
}

// Format 3: appends row r's value, rebuilt from its skeleton s of n bytes (a leading 0:
// the value verbatim).
const char* expand(decode_args& a, const decode_ref* refs, uint32_t nrefs, uint32_t r,
                   const uint8_t* s, size_t n, rfc3339_renderer& rfc, string_sink& out) {
    if (n > 0 && s[0] == 0) return out.append(s + 1, n - 1) ? nullptr : too_long;
    char numbuf[32];
    size_t from = 0;
    for (size_t i = next_marker(s, 0, n); i < n; i = next_marker(s, from, n)) {
        if (!out.append(s + from, i - from)) return too_long;
        if (const char* bad = append_ref(a, refs, nrefs, s[i], r, numbuf, rfc, out)) return bad;
        from = i + 1;
    }
    return out.append(s + from, n - from) ? nullptr : too_long;
}

// Format 4: the same with escapes (the escape byte, then the literal byte 0..refs_max).
const char* expand_escaped(decode_args& a, const decode_ref* refs, uint32_t nrefs, uint32_t r,
                           const uint8_t* s, size_t n, rfc3339_renderer& rfc, string_sink& out) {
    char numbuf[32];
    size_t from = 0;
    for (size_t i = next_marker(s, 0, n); i < n; i = next_marker(s, from, n)) {
        if (!out.append(s + from, i - from)) return too_long;
        if (s[i] == skeleton_escape) {
            if (i + 1 >= n || s[i + 1] > refs_max) return "bad escape in skeleton";
            if (!out.append(s + i + 1, 1)) return too_long;
            from = i + 2;
            continue;
        }
        if (const char* bad = append_ref(a, refs, nrefs, s[i], r, numbuf, rfc, out)) return bad;
        from = i + 1;
    }
    return out.append(s + from, n - from) ? nullptr : too_long;
}

template <bool escaped> const char* decode_skeletons(decode_args& a) {
    decode_ref refs[refs_max];
    uint32_t nrefs;
    if (const char* bad = read_refs(a, escaped ? rendering::le64 : rendering::rfc3339_millis,
                                    refs, nrefs))
        return bad;
    if (a.end - a.p < 4) return "skeleton section truncated";
    const uint32_t total = get<uint32_t>(a.p);
    a.p += 4;
    if (uint64_t(a.end - a.p) < total) return "skeleton section truncated";
    const uint8_t* s = a.p;
    const uint8_t* const bytes_end = a.p + total;
    // The lengths, unpacked into the column's fixed slots (unused by a string column).
    auto& c = a.batch.col(a.col);
    uint64_t* lengths = fixed_values(c, a.rows);
    const uint8_t* lp = bytes_end;
    if (const char* bad = bitpack::unpack(lp, a.end, lengths, a.rows)) return bad;
    string_sink out(c, a.rows, total);
    rfc3339_renderer rfc;
    for (uint32_t r = 0; r < a.rows; ++r) {
        const uint64_t n = lengths[r];
        if (uint64_t(bytes_end - s) < n) return "skeleton truncated";
        const char* bad = escaped ? expand_escaped(a, refs, nrefs, r, s, n, rfc, out)
                                  : expand(a, refs, nrefs, r, s, n, rfc, out);
        if (bad) return bad;
        s += n;
        out.end_row(r);
    }
    if (s != bytes_end) return "skeleton section length mismatch";
    a.p = lp;
    return out.finish();
}

} // namespace

const char* decode(decode_args& a) {
    return decode_skeletons<false>(a);
}

const char* decode_escaped(decode_args& a) {
    return decode_skeletons<true>(a);
}

} // namespace sluice::storage::format::ref_packed_string
