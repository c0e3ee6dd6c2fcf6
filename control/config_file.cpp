// The configuration file (config.h): each TOML section read into its struct, checked
// key by key. The command-line overrides, the checks across sections and what a reload
// cannot apply are config.cpp's.
#include "control/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <type_traits>

#include "base/limits.h"
#include "base/log.h"
#include "control/query_config.h"

namespace sluice::control {

namespace {

// The integer a key holds: an integer as written (5, 5_000), or a float that is a whole
// number inside int64's range (5.0). toml++'s own value<int64_t>() converts any whole
// float with a static_cast, undefined behaviour beyond int64 (`= 3e64`: found by
// fuzz_config, bug 14); such a value is no integer here, so the key keeps its default or
// its own check names it.
std::optional<int64_t> int_value(toml::node_view<const toml::node> n) {
    if (auto i = n.as_integer()) return i->get();
    if (auto f = n.as_floating_point()) {
        const double d = f->get();
        if (std::isfinite(d) && d >= -0x1p63 && d < 0x1p63 && std::trunc(d) == d)
            return int64_t(d);
    }
    return std::nullopt;
}
std::optional<int64_t> int_value(const toml::node& n) {
    return int_value(toml::node_view<const toml::node>(&n));
}

template <typename T> void get(const toml::table& t, const char* section, const char* key, T& out) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        if (auto v = int_value(t[section][key])) out = T(*v);
    } else {
        if (auto v = t[section][key].value<T>()) out = *v;
    }
}

result<void> lcores_key(const toml::table& t, const char* key, uint32_t& count,
                        std::vector<unsigned>& list) {
    auto node = t["lcores"][key];
    if (!node) return ok_result();
    if (auto v = int_value(node)) {
        if (*v < 0 || *v > 1024)
            return make_error(errc::bad_config, std::string("lcores.") + key +
                                                    " must be a count (0..1024) or a "
                                                    "list of lcore ids");
        count = uint32_t(*v);
        return ok_result();
    }
    if (auto a = node.as_array()) {
        list.clear();
        for (auto& e : *a) {
            auto v = int_value(e);
            if (!v || *v < 0 || *v >= 1024)
                return make_error(errc::bad_config, std::string("lcores.") + key +
                                                        " lists something that is not an lcore "
                                                        "id (0..1023)");
            list.push_back(unsigned(*v));
        }
        return ok_result();
    }
    return make_error(errc::bad_config, std::string("lcores.") + key +
                                            " must be a count or a list of lcore ids, e.g. " + key +
                                            " = 2 or " + key + " = [1, 2]");
}

// [storage]: group commit by time and size, segment size, O_DIRECT, compression.
result<void> apply_storage_toml(const toml::table& t, storage::writer_options& c) {
    auto bad = [](std::string what) { return make_error(errc::bad_config, std::move(what)); };
    const toml::node_view<const toml::node> s = t["storage"];
    if (auto v = int_value(s["flush_interval_ms"])) c.flush_interval_ms = uint32_t(*v);
    if (auto v = s["direct_io"].value<bool>()) c.direct_io = *v;
    if (auto v = int_value(s["sync_bytes"])) {
        if (*v <= 0) return bad("storage.sync_bytes must be > 0");
        c.sync_bytes = uint64_t(*v);
    }
    if (auto v = int_value(s["segment_bytes_max"])) {
        if (*v < (1 << 20) || uint64_t(*v) > limits::segment_bytes_max)
            return bad("storage.segment_bytes_max must be within 1 MiB..256 MiB");
        c.segment_bytes_max = uint64_t(*v);
    }
    if (auto v = s["compression"].value<std::string>()) {
        if (*v == "zstd") {
            c.compression = {storage::format::codec::zstd, 1};
        } else if (*v == "lz4") {
            c.compression = {storage::format::codec::lz4, 1};
        } else if (*v == "none") {
            c.compression = {storage::format::codec::none, 0};
        } else {
            return bad("storage.compression must be \"zstd\", \"lz4\" or \"none\", not \"" + *v +
                       "\"");
        }
    }
    if (auto v = int_value(s["compression_level"])) c.compression.level = int(*v);
    return ok_result();
}

// [retention] (max_age_ms, max_bytes, interval_ms) and [retention.tables.X].
result<void> apply_retention_toml(const toml::table& t, retention_config& c) {
    auto bad = [](std::string what) { return make_error(errc::bad_config, std::move(what)); };
    auto policy = [&](const toml::node_view<const toml::node>& n, storage::retention_policy& p,
                      const std::string& where) -> result<void> {
        if (auto v = int_value(n["max_age_ms"])) {
            if (*v < 0) return bad(where + ".max_age_ms must be >= 0 (0: no age limit)");
            p.max_age_ms = *v;
        }
        if (auto v = int_value(n["max_bytes"])) {
            if (*v < 0) return bad(where + ".max_bytes must be >= 0 (0: no size limit)");
            p.max_bytes = uint64_t(*v);
        }
        return ok_result();
    };
    const toml::node_view<const toml::node> r = t["retention"];
    SLUICE_TRY(policy(r, c.defaults, "retention"));
    if (auto v = int_value(r["interval_ms"])) {
        if (*v <= 0) return bad("retention.interval_ms must be > 0");
        c.interval_ms = uint32_t(*v);
    }
    if (auto tables = r["tables"].as_table()) {
        for (const auto& [name, node] : *tables) {
            storage::retention_policy p;
            std::string key(name.str());
            SLUICE_TRY(
                policy(toml::node_view<const toml::node>(node), p, "retention.tables." + key));
            c.tables[key] = p;
        }
    }
    return ok_result();
}

// [kafka] listen, advertised, auto_create_topics, connections_max, request_bytes_max,
// lcore; [[kafka.topic]] name, partitions.
result<void> apply_kafka_toml(const toml::table& t, kafka_config& c) {
    auto bad = [](std::string what) { return make_error(errc::bad_config, std::move(what)); };
    const toml::node_view<const toml::node> k = t["kafka"];
    if (!k) return ok_result();
    if (auto node = k["listen"]; node) {
        c.listen.clear();
        if (auto v = node.value<std::string>()) {
            c.listen.push_back(*v);
        } else if (auto a = node.as_array()) {
            for (auto& e : *a) {
                auto v = e.value<std::string>();
                if (!v)
                    return bad(
                        "kafka.listen must list \"HOST:PORT\" strings, e.g. [\"127.0.0.1:9092\"]");
                c.listen.push_back(*v);
            }
        } else {
            return bad("kafka.listen must be \"HOST:PORT\" or a list of them");
        }
    }
    if (auto v = k["advertised"].value<std::string>()) c.advertised = *v;
    if (auto v = k["auto_create_topics"].value<bool>()) c.auto_create_topics = *v;
    if (auto v = int_value(k["connections_max"])) {
        if (*v < 1 || *v > int64_t(limits::kafka_connections_max))
            return bad("kafka.connections_max must be within 1.." +
                       std::to_string(limits::kafka_connections_max));
        c.connections_max = uint32_t(*v);
    }
    if (auto v = int_value(k["request_bytes_max"])) {
        if (*v < 1024 || *v > int64_t(limits::kafka_request_bytes_max))
            return bad("kafka.request_bytes_max must be within 1024.." +
                       std::to_string(limits::kafka_request_bytes_max));
        c.request_bytes_max = uint32_t(*v);
    }
    if (auto v = int_value(k["lcore"])) c.lcore = *v;
    if (auto v = int_value(k["idle_timeout_ms"])) {
        if (*v < 0 || *v > int64_t(UINT32_MAX))
            return bad("kafka.idle_timeout_ms must be >= 0 (0: never)");
        c.idle_timeout_ms = uint32_t(*v);
    }
    if (auto a = k["topic"].as_array()) {
        c.topics.clear();
        for (auto& e : *a) {
            auto tab = e.as_table();
            if (tab == nullptr)
                return bad("kafka.topic must be a list of tables ([[kafka.topic]])");
            kafka_topic_def d;
            if (auto n = (*tab)["name"].value<std::string>()) d.name = *n;
            if (d.name.empty())
                return bad("a [[kafka.topic]] has no name (name = \"events-topic\")");
            if (auto p = int_value((*tab)["partitions"])) {
                if (*p < 0 || *p > int64_t(limits::kafka_partitions_max))
                    return bad("kafka.topic " + d.name + ": partitions must be within 0.." +
                               std::to_string(limits::kafka_partitions_max) +
                               " (0: one per worker)");
                d.partitions = int32_t(*p);
            }
            c.topics.push_back(d);
        }
    }
    return ok_result();
}

// [sluice], [lcores]: where the data lives, the control socket, the lcore map, idling.
result<void> apply_sluice_toml(const toml::table& t, daemon_config& c) {
    get(t, "sluice", "data_dir", c.sluice.data_dir);
    get(t, "sluice", "control_socket", c.sluice.control_socket);
    if (auto v = int_value(t["sluice"]["workers"])) c.lcores.worker_count = uint32_t(*v);
    // [lcores] rx / workers: an integer is a count, an array the explicit EAL lcore ids.
    SLUICE_TRY(lcores_key(t, "rx", c.lcores.rx_count, c.lcores.rx));
    SLUICE_TRY(lcores_key(t, "workers", c.lcores.worker_count, c.lcores.workers));
    if (auto v = t["lcores"]["idle"].value<std::string>()) {
        auto mode = parse_idle_mode(*v);
        if (!mode)
            return make_error(errc::bad_config,
                              "lcores.idle must be \"wait\" or \"poll\", not \"" + *v + "\"");
        c.lcores.idle = *mode;
    }
    return ok_result();
}

// [control]: the access policy, rates and the socket's mode.
void apply_control_toml(const toml::table& t, control_config& c) {
    const toml::node_view<const toml::node> k = t["control"];
    if (auto a = k["allow_uids"].as_array())
        for (auto& e : *a)
            if (auto v = int_value(e)) c.allow_uids.push_back(uint32_t(*v));
    if (auto a = k["allow_gids"].as_array())
        for (auto& e : *a)
            if (auto v = int_value(e)) c.allow_gids.push_back(uint32_t(*v));
    get(t, "control", "socket_group_gid", c.socket_group_gid);
    if (auto v = k["socket_mode"].value<std::string>()) {
        c.socket_mode = uint32_t(std::strtoul(v->c_str(), nullptr, 8));
    } else if (auto n = int_value(k["socket_mode"])) {
        c.socket_mode = uint32_t(*n);
    }
    if (auto v = int_value(k["requests_per_s"])) c.requests_per_s = uint32_t(*v);
    if (auto v = int_value(k["connection_requests_per_s"]))
        c.connection_requests_per_s = uint32_t(*v);
    if (auto v = int_value(k["idle_timeout_ms"])) c.idle_timeout_ms = uint32_t(*v);
}

// [input]
result<void> apply_input_toml(const toml::table& t, input_config& c) {
    const toml::node_view<const toml::node> k = t["input"];
    if (auto v = k["mode"].value<std::string>()) {
        auto mode = parse_input_mode(*v);
        if (!mode)
            return make_error(errc::bad_config, "input.mode must be \"dpdk\", \"kernel_udp\" or "
                                                "\"kafka\", not \"" +
                                                    *v + "\"");
        c.mode = *mode;
        c.mode_set = true;
    }
    if (auto v = int_value(k["port_id"])) c.port_id = uint16_t(*v);
    if (auto a = k["udp_ports"].as_array()) {
        c.udp_ports.clear();
        for (auto& e : *a)
            if (auto v = int_value(e)) c.udp_ports.push_back(uint16_t(*v));
    }
    get(t, "input", "kernel_bind", c.kernel_bind);
    if (auto v = int_value(k["kernel_rcvbuf_bytes"]))
        c.kernel_rcvbuf_bytes = uint32_t(std::clamp<int64_t>(*v, 4096, 1ll << 30));
    if (auto v = int_value(k["event_bytes_max"])) c.event_bytes_max = uint32_t(*v);
    get(t, "input", "max_future_skew_ms", c.max_future_skew_ms);
    if (auto v = int_value(k["slots"])) c.slots = uint32_t(*v);
    if (auto v = int_value(k["rx_queues"])) c.rx_queues = uint32_t(*v);
    if (auto v = int_value(k["mbufs"])) c.mbufs = uint32_t(*v);
    return ok_result();
}

// [processing]
void apply_processing_toml(const toml::table& t, processing_config& c) {
    get(t, "processing", "watermark_delay_ms", c.watermark_delay_ms);
    get(t, "processing", "dedup_horizon_ms", c.dedup_horizon_ms);
    if (auto v = int_value(t["processing"]["dedup_memory_mb"]))
        c.dedup_memory_mb = uint64_t(*v);
}

// [[query]] tables, or one [query] table (the slice's form: name, window_size_ms,
// group_by). A query without its own delay takes processing.watermark_delay_ms.
result<void> apply_queries_toml(const toml::table& t, const std::string& path, daemon_config& c) {
    std::vector<json> queries;
    c.queries_configured = t.contains("query");
    if (auto a = t["query"].as_array()) {
        for (auto& e : *a) {
            auto tab = e.as_table();
            if (tab == nullptr)
                return make_error(errc::bad_config,
                                  "config " + path +
                                      ": query must be a list of tables ([[query]])");
            queries.push_back(toml_to_json(*tab));
        }
    } else if (auto tab = t["query"].as_table()) {
        json j = toml_to_json(*tab);
        if (!j.contains("name")) j["name"] = processing::reference_query().name;
        queries.push_back(j);
    }
    c.queries.clear();
    for (const auto& j : queries) {
        auto q = query_from_json(j, c.processing.watermark_delay_ms);
        if (!q)
            return make_error(errc::bad_config, "config " + path + ": " + q.err().message +
                                                    " (fix the [[query]] table)");
        for (const auto& other : c.queries)
            if (other.name == q->name)
                return make_error(errc::bad_config, "config " + path +
                                                        ": two queries are named \"" + q->name +
                                                        "\" (names must be unique)");
        c.queries.push_back(std::move(q.value()));
    }
    return ok_result();
}

// [metrics], [log], [testing]
result<void> apply_observability_toml(const toml::table& t, daemon_config& c) {
    get(t, "metrics", "listen", c.metrics.listen);
    if (auto v = t["log"]["format"].value<std::string>())
        SLUICE_TRY(parse_log_format_key(*v, c.log.format));
    if (auto v = int_value(t["log"]["rate_limit_burst"])) {
        if (*v < 0 || *v > 1'000'000)
            return make_error(errc::bad_config, "log.rate_limit_burst must be within 0..1000000 "
                                                "(0: no limit)");
        c.log.rate_limit.burst = uint32_t(*v);
    }
    if (auto v = int_value(t["log"]["rate_limit_interval_ms"])) {
        if (*v < 1 || *v > 3'600'000)
            return make_error(errc::bad_config,
                              "log.rate_limit_interval_ms must be within 1..3600000");
        c.log.rate_limit.interval_ms = uint32_t(*v);
    }
    if (auto v = int_value(t["testing"]["slow_worker_us"]))
        c.testing.slow_worker_us = uint32_t(*v);
    return ok_result();
}

} // namespace

result<void> apply_config_file(const std::string& path, daemon_config& c) {
    toml::table t;
    try {
        t = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return make_error(errc::bad_config, "cannot read config " + path + ": " +
                                                std::string(e.description()) + " at line " +
                                                std::to_string(e.source().begin.line) +
                                                " (fix the file or pass another --config)");
    }
    SLUICE_TRY(apply_sluice_toml(t, c));
    apply_control_toml(t, c.control);
    SLUICE_TRY(apply_input_toml(t, c.input));
    SLUICE_TRY(apply_kafka_toml(t, c.kafka));
    apply_processing_toml(t, c.processing);
    SLUICE_TRY(apply_queries_toml(t, path, c));
    SLUICE_TRY(apply_observability_toml(t, c));
    SLUICE_TRY(apply_storage_toml(t, c.storage));
    SLUICE_TRY(apply_retention_toml(t, c.retention));
    return ok_result();
}

result<void> parse_log_format_key(const std::string& name, log_format& out) {
    if (!parse_log_format(name.c_str(), &out))
        return make_error(errc::bad_config,
                          "log.format must be \"text\" or \"json\", not \"" + name + "\"");
    return ok_result();
}

} // namespace sluice::control
