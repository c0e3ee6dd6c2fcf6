#include "processing/query_runtime.h"

#include <algorithm>

#include "processing/window_state.h"

namespace sluice::processing {

std::vector<std::string_view> split_key(const compiled_query& q, std::string_view key) {
    std::vector<std::string_view> out;
    if (q.group.size() == 1) {
        out.push_back(key);
        return out;
    }
    size_t off = 0;
    for (size_t i = 0; i < q.group.size(); ++i) {
        uint32_t len = 0;
        if (off + 4 > key.size()) break;
        std::memcpy(&len, key.data() + off, 4);
        out.push_back(key.substr(off + 4, len));
        off += 4 + len;
    }
    out.resize(q.group.size());
    return out;
}

std::string encode_key(const compiled_query& q, const std::vector<std::string_view>& values) {
    if (q.group.size() == 1) return std::string(values.at(0));
    std::string out;
    for (std::string_view v : values) {
        uint32_t len = uint32_t(v.size());
        out.append(reinterpret_cast<const char*>(&len), 4);
        out.append(v);
    }
    return out;
}

namespace {

result<field_accessor> resolve(std::string_view path, field_catalog& catalog) {
    if (path == "page") return field_accessor{field_source::page, 0};
    if (path == "user_id") return field_accessor{field_source::user_id, 0};
    if (path == "event_type") return field_accessor{field_source::event_type, 0};
    if (path == "event_id") return field_accessor{field_source::event_id, 0};
    auto i = catalog.reserve(path);
    if (!i) return std::move(i).err();
    return field_accessor{field_source::extra, uint8_t(*i)};
}

} // namespace

result<std::shared_ptr<compiled_query>> compile(const query_def& def, field_catalog& catalog,
                                                uint32_t uid, uint32_t start_generation,
                                                uint32_t event_bytes_max) {
    SLUICE_TRY(validate(def));
    auto q = std::make_shared<compiled_query>();
    q->def = def;
    q->uid = uid;
    q->start_generation = start_generation;
    for (const auto& g : def.group_by) {
        auto a = resolve(g, catalog);
        if (!a) return std::move(a).err();
        q->group.push_back(*a);
    }
    std::vector<std::string> value_paths;
    std::vector<uint32_t> inputs;
    for (const auto& a : def.aggregates) {
        if (a.kind == agg_kind::count) {
            inputs.push_back(0); // unused
            continue;
        }
        auto it = std::find(value_paths.begin(), value_paths.end(), a.field);
        if (it == value_paths.end()) {
            auto acc = resolve(a.field, catalog);
            if (!acc) return std::move(acc).err();
            q->values.push_back(*acc);
            value_paths.push_back(a.field);
            it = value_paths.end() - 1;
        }
        inputs.push_back(uint32_t(it - value_paths.begin()));
    }
    if (def.filter) {
        auto a = resolve(def.filter->field, catalog);
        if (!a) return std::move(a).err();
        q->has_filter = true;
        q->filter_field = *a;
        q->filter_value = def.filter->value;
        q->filter_negate = def.filter->negate;
    }
    q->aggs = agg_layout(def.aggregates, inputs);
    if (q->aggs.blob_bytes() > limits::aggregate_state_bytes_max)
        return make_error(errc::invalid_argument,
                          "query \"" + def.name + "\": its aggregates need " +
                              std::to_string(q->aggs.blob_bytes()) + " bytes per window cell, more than " +
                              std::to_string(limits::aggregate_state_bytes_max) +
                              " (lower a HyperLogLog precision or drop an aggregate)");
    // A group key is at most the event's bytes plus a length word per field.
    q->key_bytes_max = event_bytes_max + 4 * uint32_t(def.group_by.size());
    uint64_t key_arena = std::min<uint64_t>(std::max<uint64_t>(def.memory_bytes / 8, 256u << 10), 1ull << 31);
    uint64_t per_cell = window_state::bytes_per_cell(q->aggs.blob_bytes());
    uint64_t cells = (def.memory_bytes - std::min(def.memory_bytes, key_arena)) / per_cell;
    if (cells < 16)
        return make_error(errc::invalid_argument,
                          "query \"" + def.name + "\": memory " + std::to_string(def.memory_bytes >> 20) +
                              " MiB holds fewer than 16 window cells of " +
                              std::to_string(per_cell) + " bytes (raise its memory)");
    q->cells_max = uint32_t(std::min<uint64_t>(cells, 1u << 24));
    q->key_arena_bytes = key_arena;
    q->group_columns = group_column_names(def);
    for (const auto& a : def.aggregates)
        for (auto& c : aggregate_column_names(a)) q->value_columns.push_back(std::move(c));
    return q;
}

} // namespace sluice::processing
