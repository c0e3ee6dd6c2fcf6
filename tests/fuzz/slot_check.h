#pragma once
// What every parsed slot must satisfy, whatever the input (event and binary targets).
#include <memory>

#include "processing/event.h"
#include "processing/field_catalog.h"
#include "tests/fuzz/fuzz_target.h"

namespace sluice::fuzz {

// A slot in its own allocation of exactly slot_bytes(max): ASan sees any write past it.
struct owned_slot {
    explicit owned_slot(uint32_t max)
        : mem(new char[processing::slot_bytes(max)]), slot(new (mem.get()) processing::event_slot{}) {}
    std::unique_ptr<char[]> mem;
    processing::event_slot* slot;
};

// A catalog like the one continuous queries fill: top-level and nested paths.
inline const processing::field_catalog& query_fields() {
    static processing::field_catalog* c = [] {
        auto* cat = new processing::field_catalog;
        for (const char* p : {"region", "metadata.referrer", "metadata.latency_ms", "obj",
                              "a.b", "n", "user_id"})
            (void)cat->reserve(p);
        cat->publish();
        return cat;
    }();
    return *c;
}

inline void check_slot(const processing::event_slot& s, uint32_t max) {
    using processing::slot_kind;
    SLUICE_FUZZ_CHECK(s.kind == slot_kind::event || s.kind == slot_kind::dead_letter);
    SLUICE_FUZZ_CHECK(s.raw_len <= max);
    SLUICE_FUZZ_CHECK(s.raw_len <= s.raw_len_orig);
    if (s.kind != slot_kind::event) return;
    SLUICE_FUZZ_CHECK(s.data_used <= processing::slot_data_bytes(max));
    auto in = [&](processing::field_ref f) { return uint64_t(f.off) + f.len <= s.data_used; };
    SLUICE_FUZZ_CHECK(in(s.event_id) && in(s.user_id) && in(s.event_type) && in(s.page));
    for (uint32_t i = 0; i < s.fields_parsed; ++i)
        if (s.extra_kind[i] != processing::field_kind::absent) SLUICE_FUZZ_CHECK(in(s.extra[i]));
}

} // namespace sluice::fuzz
