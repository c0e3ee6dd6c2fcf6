#include "control/query_registry.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "control/query_config.h"
#include "processing/state_dir.h"

namespace sluice::control {

using processing::query_def;

result<void> query_registry::load_and_apply(std::vector<query_def>& queries) {
    std::lock_guard lock(_mutex);
    const std::string path = processing::registry_path(_data_dir);
    auto text = processing::read_small_file(path);
    if (!text) return ok_result();
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return make_error(errc::corrupt, path +
                                             " is not valid JSON (fix or remove it; it lists the "
                                             "queries added and removed at run time)");
    for (const auto& n : j.value("removed", json::array()))
        if (n.is_string()) _removed.push_back(n.get<std::string>());
    for (const auto& d : j.value("added", json::array())) {
        auto q = query_from_json(d, _default_delay_ms);
        if (!q) return make_error(errc::corrupt, path + ": " + q.err().message);
        _added.push_back(q.value());
    }
    std::erase_if(queries, [&](const query_def& q) {
        return std::find(_removed.begin(), _removed.end(), q.name) != _removed.end();
    });
    for (const auto& a : _added) {
        std::erase_if(queries, [&](const query_def& q) { return q.name == a.name; });
        queries.push_back(a);
    }
    return ok_result();
}

result<void> query_registry::added(const query_def& def) {
    std::lock_guard lock(_mutex);
    std::erase_if(_removed, [&](const std::string& n) { return n == def.name; });
    _added.push_back(def);
    return save();
}

result<void> query_registry::removed(const std::string& name) {
    std::lock_guard lock(_mutex);
    std::erase_if(_added, [&](const query_def& q) { return q.name == name; });
    if (std::find(_removed.begin(), _removed.end(), name) == _removed.end())
        _removed.push_back(name);
    return save();
}

result<void> query_registry::save() {
    json added = json::array();
    for (const auto& a : _added)
        added.push_back(query_to_json(a));
    json j{{"version", 1}, {"added", added}, {"removed", _removed}};
    return processing::write_file_atomically(processing::registry_path(_data_dir),
                                             j.dump(2) + "\n");
}

} // namespace sluice::control
