#include "processing/state_dir.h"

#include <nlohmann/json.hpp>

#include "base/log.h"

namespace sluice::processing {

using json = nlohmann::json;

namespace {

json floors_json(const floor_history& f) {
    json epochs = json::array();
    for (const auto& e : f.epochs)
        epochs.push_back(json{{"first_segment", e.first_segment}, {"floor_ms", e.floor_ms}});
    return json{{"base_floor_ms", f.base_floor_ms}, {"epochs", epochs}};
}

std::optional<floor_history> floors_from_json(const json& j) {
    auto integer = [](const json& o, const char* k) {
        return o.contains(k) && o.at(k).is_number_integer();
    };
    if (!j.is_object() || !integer(j, "base_floor_ms") || !j.contains("epochs") ||
        !j.at("epochs").is_array())
        return std::nullopt;
    floor_history f;
    f.base_floor_ms = j.at("base_floor_ms").get<int64_t>();
    for (const auto& e : j.at("epochs")) {
        if (!e.is_object() || !integer(e, "floor_ms") || !e.contains("first_segment") ||
            !e.at("first_segment").is_object())
            return std::nullopt;
        floor_epoch epoch;
        epoch.floor_ms = e.at("floor_ms").get<int64_t>();
        for (const auto& [writer, seq] : e.at("first_segment").items()) {
            if (!seq.is_number_unsigned()) return std::nullopt;
            epoch.first_segment[writer] = seq.get<uint64_t>();
        }
        f.epochs.push_back(std::move(epoch));
    }
    return f;
}

} // namespace

std::string processing_dir(const std::string& data_dir) {
    return data_dir + "/_processing";
}

std::string checkpoint_path(const std::string& data_dir, const std::string& query) {
    return processing_dir(data_dir) + "/checkpoints/" + query + ".json";
}

std::string registry_path(const std::string& data_dir) {
    return processing_dir(data_dir) + "/queries.json";
}

std::string run_path(const std::string& data_dir) {
    return processing_dir(data_dir) + "/run";
}

result<void> create_state_dir(const std::string& data_dir) {
    return storage::create_state_folder(processing_dir(data_dir) + "/checkpoints");
}

result<void> write_checkpoint(const std::string& data_dir, const std::string& query, int64_t from,
                              int64_t closed, const floor_history& floors) {
    json j{{"query", query},
           {"rebuild_from_ms", from},
           {"closed_until_ms", closed},
           {"floors", floors_json(floors)}};
    return write_file_atomically(checkpoint_path(data_dir, query), j.dump() + "\n");
}

std::optional<query_checkpoint> read_checkpoint(const std::string& data_dir,
                                                const std::string& query) {
    const std::string path = checkpoint_path(data_dir, query);
    auto text = read_small_file(path);
    if (!text) return std::nullopt;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j["rebuild_from_ms"].is_number_integer() ||
        !j["closed_until_ms"].is_number_integer()) {
        // Unusable: rebuild from everything stored (slow, but never wrong).
        SLUICE_LOG_WARN("%s is not a valid checkpoint; rebuilding from the whole store",
                        path.c_str());
        return query_checkpoint{};
    }
    query_checkpoint ck{
        j["rebuild_from_ms"].get<int64_t>(), j["closed_until_ms"].get<int64_t>(), {}};
    if (j.contains("floors")) ck.floors = floors_from_json(j["floors"]);
    return ck;
}

void remove_checkpoint(const std::string& data_dir, const std::string& query) {
    storage::remove_state_file(checkpoint_path(data_dir, query));
}

} // namespace sluice::processing
