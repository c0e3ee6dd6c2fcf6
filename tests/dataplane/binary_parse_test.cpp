// binary_parse: docs/BINARY.md byte for byte — header and string-table checks, every
// record-level verdict in its order, the canonical form stored as raw, identities that
// match JSON's for an event_id and ignore the batch layout otherwise.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/binary_parse.h"
#include "tests/dataplane/binary_builder.h"
#include "processing/event.h"
#include "processing/identity.h"

namespace sluice::dataplane {
namespace {

using test::batch_builder;
using test::test_event;
using processing::dead_letter_reason;
using processing::event_slot;
using processing::slot_kind;

constexpr int64_t t0 = 1'740'754'800'000; // 2025-02-28T15:00:00Z
constexpr int64_t now_ms = t0 + 3'600'000;

// The canonical form, built from the spec.
std::string canonical(const test_event& e, uint16_t flags) {
    std::string out;
    out += char(0xB1);
    out += char(1);
    out.append(reinterpret_cast<const char*>(&flags), 2);
    int64_t ts = e.ts.value_or(0);
    out.append(reinterpret_cast<const char*>(&ts), 8);
    const std::optional<std::string>* f[5] = {&e.event_id, &e.user_id, &e.event_type, &e.page,
                                              &e.metadata};
    for (auto* s : f) {
        uint16_t len = *s ? uint16_t((*s)->size()) : 0xFFFF;
        out.append(reinterpret_cast<const char*>(&len), 2);
    }
    for (auto* s : f)
        if (*s) out += **s;
    return out;
}

class BinaryParse : public ::testing::Test {
  protected:
    parse_config config{};
    alignas(64) char mem[processing::slot_bytes(4096)];
    event_slot& slot = *new (mem) event_slot();

    // Parses record i of `payload`; asserts the header is fine.
    event_slot& parse(const std::string& payload, uint32_t i = 0) {
        binary_batch b;
        EXPECT_TRUE(b.open(payload));
        EXPECT_LT(i, b.events());
        b.parse_event(i, config, now_ms, slot);
        return slot;
    }
};

TEST_F(BinaryParse, EventsComeOutWithFieldsCanonicalRawAndIdentity) {
    batch_builder b;
    test_event a, c;
    a.event_id.emplace("e-7");
    c.page = "/caf\xc3\xa9";
    c.ts = t0 + 5;
    b.add(a);
    b.add(c);
    const std::string payload = b.build();
    binary_batch batch;
    ASSERT_TRUE(batch.open(payload));
    ASSERT_EQ(batch.events(), 2u);

    slot.time_off = 12; // left by an earlier event
    batch.parse_event(0, config, now_ms, slot);
    ASSERT_EQ(slot.kind, slot_kind::event);
    EXPECT_EQ(slot.event_time_ms, t0);
    // Where the canonical raw holds the 8-byte timestamp (the store cuts it there).
    ASSERT_EQ(slot.time_off, binary_canonical_time_offset);
    int64_t at_off;
    std::memcpy(&at_off, slot.raw().data() + slot.time_off, sizeof at_off);
    EXPECT_EQ(at_off, t0);
    EXPECT_EQ(slot.field(slot.event_id), "e-7");
    EXPECT_EQ(slot.field(slot.user_id), "u1");
    EXPECT_EQ(slot.field(slot.event_type), "page_view");
    EXPECT_EQ(slot.field(slot.page), "/home");
    EXPECT_EQ(slot.raw(), canonical(a, 1));
    EXPECT_EQ(slot.raw_len_orig, slot.raw_len);
    // The same identity as a JSON event with that event_id.
    EXPECT_TRUE(slot.has_event_id);
    EXPECT_EQ(slot.id, processing::identity_of_event_id("e-7"));

    batch.parse_event(1, config, now_ms, slot);
    ASSERT_EQ(slot.kind, slot_kind::event);
    EXPECT_EQ(slot.field(slot.page), "/caf\xc3\xa9");
    EXPECT_FALSE(slot.has_event_id);
    EXPECT_EQ(slot.raw(), canonical(c, 1));
    EXPECT_EQ(slot.id, processing::identity_of_bytes(canonical(c, 1)));
}

TEST_F(BinaryParse, IdentityIgnoresTheBatchLayout) {
    test_event e;
    e.page = "/products/1";
    batch_builder one, two;
    one.add(e);
    test_event other;
    other.user_id = "zz";
    other.metadata.reset();
    two.add(other); // different string table and record position
    two.add(e);
    auto first = parse(one.build(), 0).id;
    auto second = parse(two.build(), 1).id;
    EXPECT_EQ(first, second);
    EXPECT_EQ(slot.kind, slot_kind::event);
}

TEST_F(BinaryParse, AbsentFieldsAreAbsent) {
    test_event e;
    e.user_id.reset();
    e.page.reset();
    e.metadata.reset();
    batch_builder b;
    b.add(e);
    parse(b.build());
    ASSERT_EQ(slot.kind, slot_kind::event);
    EXPECT_EQ(slot.field(slot.page), "");
    EXPECT_EQ(slot.raw(), canonical(e, 1));
}

TEST_F(BinaryParse, BadHeadersRejectTheWholeBatch) {
    batch_builder b;
    b.add(test_event{});
    b.add(test_event{});
    const std::string good = b.build();
    binary_batch batch;
    ASSERT_TRUE(batch.open(good));
    auto broken = [&](auto&& mutate) {
        std::string p = good;
        mutate(p);
        binary_batch x;
        return !x.open(p);
    };
    EXPECT_TRUE(broken([](std::string& p) { p[4] = 2; }));           // version
    EXPECT_TRUE(broken([](std::string& p) { p[5] = 1; }));           // flags
    EXPECT_TRUE(broken([](std::string& p) { p[10] = 1; }));          // reserved
    EXPECT_TRUE(broken([](std::string& p) { p[1] = 'X'; }));         // magic
    EXPECT_TRUE(broken([](std::string& p) { p.pop_back(); }));       // length
    EXPECT_TRUE(broken([](std::string& p) { p += '\0'; }));          // length
    EXPECT_TRUE(broken([](std::string& p) { p[8] = 3; }));           // event count
    EXPECT_TRUE(broken([](std::string& p) { p[8] = 0, p[9] = 0; })); // no events
    EXPECT_TRUE(broken([](std::string& p) { p.resize(10); }));       // truncated header
    // A decreasing string_end: the second string ends before the first.
    EXPECT_TRUE(broken([](std::string& p) { p[20] = 0, p[21] = 0, p[22] = 0, p[23] = 0; }));

    std::string bad = good;
    bad[4] = 2;
    binary_batch::fill_invalid_batch(bad, config, slot);
    EXPECT_EQ(slot.kind, slot_kind::dead_letter);
    EXPECT_EQ(slot.reason, dead_letter_reason::parse_error);
    EXPECT_EQ(slot.raw(), bad);
    config.event_bytes_max = 64;
    std::string big = bad + std::string(200, 'x');
    binary_batch::fill_invalid_batch(big, config, slot);
    EXPECT_EQ(slot.raw(), big.substr(0, 64));
    EXPECT_EQ(slot.raw_len_orig, big.size());
}

TEST_F(BinaryParse, RecordVerdictsInOrder) {
    batch_builder b;
    test_event ok;
    b.add(ok);        // 0: event
    b.add(ok, 0, 99); // 1: page index out of range
    b.add(ok, 0x4);   // 2: unknown flag bit
    test_event no_ts;
    no_ts.ts.reset();
    b.add(no_ts); // 3: missing_timestamp
    test_event year_10000;
    year_10000.ts = binary_time_max_ms + 1;
    b.add(year_10000); // 4: bad_timestamp
    test_event future;
    future.ts = now_ms + config.max_future_skew_ms + 1;
    b.add(future); // 5: future_timestamp
    test_event bad_utf8;
    bad_utf8.user_id = std::string("\xff\xfe", 2);
    b.add(bad_utf8); // 6: invalid UTF-8
    test_event huge;
    huge.metadata = std::string(5000, 'm');
    huge.ts.reset(); // oversize comes before missing_timestamp
    b.add(huge);     // 7: oversize
    const std::string payload = b.build();

    parse(payload, 0);
    EXPECT_EQ(slot.kind, slot_kind::event);
    const std::pair<uint32_t, dead_letter_reason> want[] = {
        {1, dead_letter_reason::parse_error},       {2, dead_letter_reason::parse_error},
        {3, dead_letter_reason::missing_timestamp}, {4, dead_letter_reason::bad_timestamp},
        {5, dead_letter_reason::future_timestamp},  {6, dead_letter_reason::parse_error},
        {7, dead_letter_reason::oversize}};
    for (auto [i, why] : want) {
        parse(payload, i);
        EXPECT_EQ(slot.kind, slot_kind::dead_letter) << i;
        EXPECT_EQ(slot.reason, why) << i;
    }
    // A parse error keeps the record as received.
    parse(payload, 1);
    EXPECT_EQ(slot.raw_len, binary_record_bytes);
    EXPECT_EQ(0, std::memcmp(slot.raw().data(), payload.data() + payload.size() - 7 * 32, 32));
    // Oversize keeps the canonical prefix and the true length.
    parse(payload, 7);
    EXPECT_EQ(slot.raw_len, config.event_bytes_max);
    EXPECT_EQ(slot.raw_len_orig, canonical(huge, 0).size());
    EXPECT_EQ(slot.raw(), canonical(huge, 0).substr(0, config.event_bytes_max));
    // Missing timestamp: canonical raw.
    parse(payload, 3);
    EXPECT_EQ(slot.raw(), canonical(no_ts, 0));
}

TEST_F(BinaryParse, StringsSplittingACharacterAreParseErrors) {
    // The string area as a whole is valid UTF-8, but the table splits "é" in two.
    // By hand: strings "/caf\xc3" and "\xa9" — valid together, invalid apart.
    batch_builder split;
    split.strings = {"u1", "page_view", "/caf\xc3", "\xa9"};
    std::string r;
    int64_t ts = t0;
    r.append(reinterpret_cast<const char*>(&ts), 8);
    const uint32_t idx[5] = {binary_absent, 0, 1, 2, binary_absent};
    r.append(reinterpret_cast<const char*>(idx), sizeof idx);
    uint16_t flags = 1, zero = 0;
    r.append(reinterpret_cast<const char*>(&flags), 2);
    r.append(reinterpret_cast<const char*>(&zero), 2);
    split.records = {r};
    parse(split.build(), 0);
    EXPECT_EQ(slot.kind, slot_kind::dead_letter);
    EXPECT_EQ(slot.reason, dead_letter_reason::parse_error);
}

} // namespace
} // namespace sluice::dataplane
