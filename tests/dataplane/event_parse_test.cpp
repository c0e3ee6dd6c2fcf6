#include "dataplane/event_parse.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "processing/identity.h"

using namespace sluice::dataplane;
using namespace sluice::processing;

namespace {

constexpr int64_t now_ms = 1764000000000; // 2025-11-24

struct parsed {
    std::unique_ptr<char[]> mem;
    event_slot* slot;
};

parsed parse(std::string_view line, uint32_t max = 4096) {
    static event_parser* parser = nullptr;
    static uint32_t parser_max = 0;
    if (parser == nullptr || parser_max != max) {
        delete parser;
        parser = new event_parser(parse_config{max, 5 * 60 * 1000});
        parser_max = max;
    }
    parsed p;
    p.mem.reset(new char[slot_bytes(max)]);
    p.slot = new (p.mem.get()) event_slot{};
    parser->parse(line, now_ms, *p.slot);
    return p;
}

dead_letter_reason reason_of(std::string_view line) {
    auto p = parse(line);
    EXPECT_EQ(p.slot->kind, slot_kind::dead_letter) << line;
    return p.slot->reason;
}

} // namespace

TEST(EventParse, ParsesSeedShapedEvent) {
    std::string line =
        R"({"user_id":"12345","event_type":"page_view","timestamp":"2025-02-28T15:22:31Z",)"
        R"("page":"/products/1234","metadata":{"user_agent":"Mozilla/5.0","referrer":"https://www.google.com"}})";
    auto p = parse(line);
    const event_slot& s = *p.slot;
    ASSERT_EQ(s.kind, slot_kind::event);
    EXPECT_EQ(s.event_time_ms, 1740756151000);
    EXPECT_EQ(s.field(s.user_id), "12345");
    EXPECT_EQ(s.field(s.event_type), "page_view");
    EXPECT_EQ(s.field(s.page), "/products/1234");
    EXPECT_EQ(s.raw(), line);
    EXPECT_FALSE(s.has_event_id);
    EXPECT_EQ(s.id, identity_of_bytes(line)); // no event_id: hash of the exact bytes
}

TEST(EventParse, EventIdIsTheIdentity) {
    auto a = parse(R"({"event_id":"e-7","timestamp":1740756151000,"page":"/a"})");
    auto b = parse(R"({"page":"/b","event_id":"e-7","timestamp":1740756152000})");
    ASSERT_EQ(a.slot->kind, slot_kind::event);
    ASSERT_EQ(b.slot->kind, slot_kind::event);
    EXPECT_EQ(a.slot->id, b.slot->id);
    EXPECT_EQ(a.slot->id, identity_of_event_id("e-7"));
    EXPECT_EQ(a.slot->event_time_ms, 1740756151000); // epoch milliseconds
}

TEST(EventParse, UnescapesFields) {
    auto p = parse(R"({"timestamp":0,"page":"\/a\"b\u00e9","event_id":"x\ny"})");
    ASSERT_EQ(p.slot->kind, slot_kind::event);
    EXPECT_EQ(p.slot->field(p.slot->page), "/a\"b\xc3\xa9");
    EXPECT_EQ(p.slot->id, identity_of_event_id("x\ny"));
}

TEST(EventParse, DeadLetterReasons) {
    EXPECT_EQ(reason_of("not json"), dead_letter_reason::parse_error);
    EXPECT_EQ(reason_of(R"({"timestamp":0,"page":"/a")"), dead_letter_reason::parse_error);
    EXPECT_EQ(reason_of(R"([{"timestamp":0}])"), dead_letter_reason::parse_error);
    EXPECT_EQ(reason_of("42"), dead_letter_reason::parse_error);
    EXPECT_EQ(reason_of(R"({"timestamp":0} x)"), dead_letter_reason::parse_error);
    EXPECT_EQ(reason_of(R"({"timestamp":0}{"timestamp":0})"), dead_letter_reason::parse_error);
    EXPECT_EQ(reason_of(R"({"timestamp":0,"page":12})"), dead_letter_reason::schema_mismatch);
    EXPECT_EQ(reason_of(R"({"timestamp":0,"user_id":{"a":1}})"), dead_letter_reason::schema_mismatch);
    EXPECT_EQ(reason_of(R"({"timestamp":0,"event_id":7})"), dead_letter_reason::schema_mismatch);
    EXPECT_EQ(reason_of(R"({"page":"/a"})"), dead_letter_reason::missing_timestamp);
    EXPECT_EQ(reason_of(R"({"timestamp":"yesterday"})"), dead_letter_reason::bad_timestamp);
    EXPECT_EQ(reason_of(R"({"timestamp":true})"), dead_letter_reason::bad_timestamp);
    EXPECT_EQ(reason_of(R"({"timestamp":1.5e12})"), dead_letter_reason::bad_timestamp);
    EXPECT_EQ(reason_of(R"({"timestamp":"2099-01-01T00:00:00Z"})"),
              dead_letter_reason::future_timestamp);
    // A parse error anywhere wins over the other reasons.
    EXPECT_EQ(reason_of(R"({"page":12,"metadata":{"a":})"), dead_letter_reason::parse_error);
}

TEST(EventParse, FutureSkewBoundary) {
    auto at = [](int64_t t) { return parse(R"({"timestamp":)" + std::to_string(t) + "}"); };
    EXPECT_EQ(at(now_ms + 5 * 60 * 1000).slot->kind, slot_kind::event);
    EXPECT_EQ(at(now_ms + 5 * 60 * 1000 + 1).slot->reason, dead_letter_reason::future_timestamp);
}

TEST(EventParse, OversizeKeepsPrefixAndLength) {
    std::string line = R"({"timestamp":0,"metadata":")" + std::string(200, 'x') + "\"}";
    auto p = parse(line, 100);
    ASSERT_EQ(p.slot->kind, slot_kind::dead_letter);
    EXPECT_EQ(p.slot->reason, dead_letter_reason::oversize);
    EXPECT_EQ(p.slot->raw_len, 100u);
    EXPECT_EQ(p.slot->raw_len_orig, line.size());
    EXPECT_EQ(p.slot->raw(), std::string_view(line).substr(0, 100));
    // Exactly at the limit is fine.
    std::string exact = R"({"timestamp":0,"m":")" + std::string(100 - 22, 'y') + "\"}";
    ASSERT_EQ(exact.size(), 100u);
    EXPECT_EQ(parse(exact, 100).slot->kind, slot_kind::event);
}

// Fields continuous queries ask for (field_catalog) are extracted into the slot.
TEST(EventParse, ExtractsCatalogFieldsTopLevelAndNested) {
    field_catalog catalog;
    ASSERT_TRUE(catalog.reserve("region"));
    ASSERT_TRUE(catalog.reserve("metadata.referrer"));
    ASSERT_TRUE(catalog.reserve("metadata.latency_ms"));
    ASSERT_TRUE(catalog.reserve("metadata.beta"));
    ASSERT_TRUE(catalog.reserve("metadata.missing"));
    ASSERT_TRUE(catalog.reserve("obj"));
    uint32_t g = catalog.publish();
    event_parser parser(parse_config{4096, 5 * 60 * 1000, &catalog});
    std::unique_ptr<char[]> mem(new char[slot_bytes(4096)]);
    auto* s = new (mem.get()) event_slot{};
    std::string line = R"({"timestamp":1,"region":"e\u0075","page":"/p","metadata":{"referrer":"https://x\/y",)"
                       R"("latency_ms": 12.25 ,"beta":true,"nested":{"referrer":"no"}},"obj":{"a":1}})";
    parser.parse(line, now_ms, *s);
    ASSERT_EQ(s->kind, slot_kind::event);
    EXPECT_EQ(s->generation, g);
    ASSERT_EQ(s->fields_parsed, 6);
    EXPECT_EQ(s->extra_kind[0], field_kind::string);
    EXPECT_EQ(s->field(s->extra[0]), "eu"); // unescaped
    EXPECT_EQ(s->field(s->extra[1]), "https://x/y");
    EXPECT_EQ(s->extra_kind[2], field_kind::number);
    EXPECT_EQ(s->field(s->extra[2]), "12.25"); // the token, without its whitespace
    EXPECT_EQ(s->extra_kind[3], field_kind::boolean);
    EXPECT_EQ(s->field(s->extra[3]), "true");
    EXPECT_EQ(s->extra_kind[4], field_kind::absent);
    EXPECT_EQ(s->extra_kind[5], field_kind::absent); // objects are not values
    EXPECT_EQ(s->field(s->page), "/p");
    EXPECT_LE(s->data_used, slot_data_bytes(4096));

    // Fields missing from an event are absent, and a structural error in metadata is
    // still a parse error.
    parser.parse(R"({"timestamp":1})", now_ms, *s);
    ASSERT_EQ(s->kind, slot_kind::event);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(s->extra_kind[i], field_kind::absent);
    parser.parse(R"({"timestamp":1,"metadata":{"referrer":}})", now_ms, *s);
    EXPECT_EQ(s->kind, slot_kind::dead_letter);
    EXPECT_EQ(s->reason, dead_letter_reason::parse_error);

    // A field added later is extracted from the next event on, under a new generation.
    ASSERT_TRUE(catalog.reserve("user_agent"));
    uint32_t g2 = catalog.publish();
    parser.parse(R"({"timestamp":1,"user_agent":"curl"})", now_ms, *s);
    EXPECT_EQ(s->generation, g2);
    ASSERT_EQ(s->fields_parsed, 7);
    EXPECT_EQ(s->field(s->extra[6]), "curl");
}

// Keys and string values without escapes are read in place (the parser skips simdjson's
// unescape for them); an escape anywhere sends them through simdjson, with the same result.
TEST(EventParse, EscapedKeysNameTheSameFields) {
    auto p = parse(R"({"pag\u0065":"/x","time\u0073tamp":1740756151000,"user\u005fid":"u",)"
                   R"("event_\u0069d":"e","ev\u0065nt_type":"t"})");
    const event_slot& s = *p.slot;
    ASSERT_EQ(s.kind, slot_kind::event);
    EXPECT_EQ(s.field(s.page), "/x");
    EXPECT_EQ(s.field(s.user_id), "u");
    EXPECT_EQ(s.field(s.event_type), "t");
    EXPECT_EQ(s.event_time_ms, 1740756151000);
    EXPECT_EQ(s.id, identity_of_event_id("e"));
    EXPECT_EQ(reason_of(R"({"timestamp":0,"pag\u0065":12})"), dead_letter_reason::schema_mismatch);
    EXPECT_EQ(reason_of(R"({"page":"/a"})"), dead_letter_reason::missing_timestamp);
    // Bad escapes stay parse errors, in a key or in a value the parser reads.
    EXPECT_EQ(reason_of(R"({"timestamp":0,"a\x":1})"), dead_letter_reason::parse_error);
    EXPECT_EQ(reason_of(R"({"timestamp":0,"page":"\x"})"), dead_letter_reason::parse_error);
    EXPECT_EQ(reason_of(R"({"timestamp":"2025-02-28T15:22:31\u005"})"),
              dead_letter_reason::parse_error);
}

TEST(EventParse, StringsOfEveryLengthAndEscapePosition) {
    // Lengths around the 16-byte steps of the in-place scan, with an escape (or a quote)
    // at every position.
    for (size_t n = 0; n <= 40; ++n) {
        std::string plain(n, 'a');
        for (size_t i = 0; i < n; ++i)
            plain[i] = char('a' + i % 26);
        auto p = parse(R"({"timestamp":0,"page":")" + plain + R"("})");
        ASSERT_EQ(p.slot->kind, slot_kind::event) << n;
        EXPECT_EQ(p.slot->field(p.slot->page), plain) << n;
        for (size_t k = 0; k <= n; ++k) {
            std::string json = plain.substr(0, k) + "\\\"" + plain.substr(k);
            std::string value = plain.substr(0, k) + "\"" + plain.substr(k);
            auto q = parse(R"({"timestamp":0,"user_id":")" + json + R"(","page":"/p"})");
            ASSERT_EQ(q.slot->kind, slot_kind::event) << n << " " << k;
            EXPECT_EQ(q.slot->field(q.slot->user_id), value) << n << " " << k;
            EXPECT_EQ(q.slot->field(q.slot->page), "/p");
        }
    }
    // An escaped timestamp, and one longer than a scan step, read as the plain ones.
    EXPECT_EQ(parse(R"({"timestamp":"2025-02-28T15:22:31\u005a"})").slot->event_time_ms,
              1740756151000);
    EXPECT_EQ(parse(R"({"timestamp":"2025-02-28T15:22:31.123456789+00:00"})").slot->event_time_ms,
              1740756151123);
    // UTF-8 without escapes is kept as sent.
    auto u = parse("{\"timestamp\":0,\"page\":\"/caf\xc3\xa9\"}");
    EXPECT_EQ(u.slot->field(u.slot->page), "/caf\xc3\xa9");
}

TEST(EventParse, PlainStringsAreReadInPlace) {
    std::string line = R"({"timestamp":0,"page":"/products/1234","user_id":"a\/b"})";
    auto p = parse(line);
    const event_slot& s = *p.slot;
    ASSERT_EQ(s.kind, slot_kind::event);
    // The plain value is the raw bytes themselves: nothing copied behind them.
    EXPECT_LE(s.page.off + s.page.len, s.raw_len);
    EXPECT_EQ(s.page.off, line.find("/products/1234"));
    // The escaped one is unescaped behind the raw bytes and their padding.
    EXPECT_GE(s.user_id.off, s.raw_len + slot_parse_padding);
    EXPECT_EQ(s.field(s.user_id), "a/b");
    EXPECT_EQ(s.data_used, s.raw_len + slot_parse_padding + 3);
    EXPECT_EQ(s.raw(), line);
}

TEST(EventParse, NotesWhereTheTimestampTextStarts) {
    // The worker hands it to the store, which cuts the time out of raw there. One slot
    // for all, so each parse must set it (an escaped string has no place in raw).
    event_parser parser(parse_config{4096, 5 * 60 * 1000});
    std::unique_ptr<char[]> mem(new char[slot_bytes(4096)]);
    event_slot& s = *new (mem.get()) event_slot{};
    const std::string text = R"({"page":"/a","timestamp":"2025-02-28T15:22:31.250Z"})";
    parser.parse(text, now_ms, s);
    ASSERT_EQ(s.kind, slot_kind::event);
    EXPECT_EQ(s.time_off, text.find("2025-"));
    const std::string number = R"({"timestamp":  1740756151000 ,"page":"/a"})";
    parser.parse(number, now_ms, s);
    ASSERT_EQ(s.kind, slot_kind::event);
    EXPECT_EQ(s.time_off, number.find("1740756151000"));
    const std::string escaped = R"({"timestamp":"2025\u002d02-28T15:22:31Z","page":"/a"})";
    parser.parse(escaped, now_ms, s);
    ASSERT_EQ(s.kind, slot_kind::event);
    EXPECT_EQ(s.event_time_ms, 1740756151000);
    EXPECT_EQ(s.time_off, no_offset);
    parser.parse(text, now_ms, s);
    parser.parse(R"({"page":"/a"})", now_ms, s); // no timestamp: a dead letter, no place
    EXPECT_EQ(s.kind, slot_kind::dead_letter);
    EXPECT_EQ(s.time_off, no_offset);
}

TEST(EventParse, CatalogFieldsWithEscapedKeysAndPlainValues) {
    field_catalog catalog;
    ASSERT_TRUE(catalog.reserve("metadata.referrer"));
    ASSERT_TRUE(catalog.reserve("region"));
    catalog.publish();
    event_parser parser(parse_config{4096, 5 * 60 * 1000, &catalog});
    std::unique_ptr<char[]> mem(new char[slot_bytes(4096)]);
    auto* s = new (mem.get()) event_slot{};
    std::string line = R"({"timestamp":1,"m\u0065tadata":{"r\u0065ferrer":"https://a"},"region":"eu"})";
    parser.parse(line, now_ms, *s);
    ASSERT_EQ(s->kind, slot_kind::event);
    EXPECT_EQ(s->extra_kind[0], field_kind::string);
    EXPECT_EQ(s->field(s->extra[0]), "https://a");
    EXPECT_EQ(s->field(s->extra[1]), "eu");
    EXPECT_LE(s->extra[1].off + s->extra[1].len, s->raw_len); // in place
}
