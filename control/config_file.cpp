// The configuration file (config.h): each TOML section read into its struct, checked
// key by key. The command-line overrides, the checks across sections and what a reload
// cannot apply are config.cpp's.
#include "control/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <sstream>
#include <type_traits>

#include "base/limits.h"
#include "base/log.h"
#include "control/query_config.h"
#include "processing/dedup_filter.h"

namespace sluice::control {

namespace {

// The integer a key holds: an integer as written (5, 5_000), or a float that is a whole
// number inside int64's range (5.0). toml++'s own value<int64_t>() converts any whole
// float with a static_cast, undefined behaviour beyond int64 (`= 3e64`: found by
// fuzz_config, bug 14); such a value is no integer here, and its key is refused as one
// of the wrong type.
std::optional<int64_t> int_value(const toml::node& n) {
    if (auto i = n.as_integer()) return i->get();
    if (auto f = n.as_floating_point()) {
        const double d = f->get();
        if (std::isfinite(d) && d >= -0x1p63 && d < 0x1p63 && std::trunc(d) == d)
            return int64_t(d);
    }
    return std::nullopt;
}

// What a value is, for a message: its type, and a scalar's value as written
// ("the string \"two\"", "an integer (5)", "an array").
std::string describe(const toml::node& n) {
    std::ostringstream s;
    n.visit([&](const auto& v) {
        using V = std::remove_cvref_t<decltype(v)>;
        if constexpr (std::is_same_v<V, toml::table>) {
            s << "a table";
        } else if constexpr (std::is_same_v<V, toml::array>) {
            s << "an array";
        } else {
            std::string text;
            if constexpr (std::is_same_v<V, toml::value<std::string>>) {
                text = v.get();
            } else {
                std::ostringstream value;
                value << v;
                text = value.str();
            }
            if (text.size() > 40) text = text.substr(0, 37) + "...";
            for (char& ch : text) // one line, whatever the string holds
                if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';
            switch (n.type()) {
            case toml::node_type::string: s << "the string \"" << text << '"'; return;
            case toml::node_type::integer: s << "an integer"; break;
            case toml::node_type::floating_point: s << "a float"; break;
            case toml::node_type::boolean: s << "a boolean"; break;
            case toml::node_type::date: s << "a date"; break;
            case toml::node_type::time: s << "a time"; break;
            default: s << "a date-time"; break;
            }
            s << " (" << text << ")";
        }
    });
    return s.str();
}

std::string range_text(int64_t min, int64_t max) {
    if (max == std::numeric_limits<int64_t>::max()) return ">= " + std::to_string(min);
    return "within " + std::to_string(min) + ".." + std::to_string(max);
}

// One table of the file ([kafka], a [[kafka.topic]], the top level), read key by key.
// Every key of the file goes through one of these accessors: a key given with the wrong
// type, or an integer out of its range, is refused with one message naming the key by
// its table path (kafka.listen), what it must be and what it is, where it is and an
// example; finish() refuses a key none of them read (a misspelling), listing the keys
// the table has, as [[query]] tables do (control/query_config.cpp). A key that is not
// given keeps its default.
class section {
  public:
    section(const std::string& file, const toml::table* table, std::string path)
        : _file(&file), _table(table), _path(std::move(path)) {}

    std::string name(std::string_view key) const {
        return _path.empty() ? std::string(key) : _path + "." + std::string(key);
    }
    // The value of `key`, nullptr when not given; `key` is now one this table knows.
    // For the keys that take more than one shape (a count or a list, say).
    const toml::node* node(std::string_view key) {
        if (std::find(_known.begin(), _known.end(), key) == _known.end())
            _known.emplace_back(key);
        return _table != nullptr ? _table->get(key) : nullptr;
    }
    // `what` (a key or a list element: lcores.rx[1]) must be `expected`, not what `n`
    // is; `example` is a value it could take.
    error wrong_type(const std::string& what, const toml::node& n, const std::string& expected,
                     const std::string& example) const {
        const std::string key = what.substr(what.rfind('.') + 1);
        return make_error(errc::bad_config,
                          what + " must be " + expected + ", not " + describe(n) + " (" +
                              where(n) + "; e.g. " + key.substr(0, key.find('[')) + " = " +
                              example + ")");
    }
    static error out_of_range(const std::string& what, int64_t min, int64_t max,
                              const char* note) {
        return make_error(errc::bad_config, what + " must be " + range_text(min, max) +
                                                (note != nullptr ? std::string(" (") + note + ")"
                                                                 : std::string()));
    }

    // An integer within min..max (`note` says what it means, e.g. "0: no limit").
    template <typename T>
    result<void> integer(std::string_view key, T& out, int64_t min, int64_t max,
                         const char* note = nullptr) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_result();
        SLUICE_TRY(check_integer(name(key), *n, min, max, note, std::to_string(out)));
        out = T(*int_value(*n));
        return ok_result();
    }
    result<void> boolean(std::string_view key, bool& out) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_result();
        auto v = n->value_exact<bool>();
        if (!v) return wrong_type(name(key), *n, "true or false", out ? "true" : "false");
        out = *v;
        return ok_result();
    }
    result<void> string(std::string_view key, std::string& out) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_result();
        auto v = n->value_exact<std::string>();
        if (!v) return wrong_type(name(key), *n, "a string", "\"" + out + "\"");
        out = *v;
        return ok_result();
    }
    // An array of integers, each within min..max.
    template <typename T>
    result<void> integers(std::string_view key, std::vector<T>& out, int64_t min, int64_t max,
                          const std::string& example, const char* expected = nullptr) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_result();
        const toml::array* a = n->as_array();
        if (a == nullptr)
            return wrong_type(name(key), *n, expected ? expected : "an array of integers",
                              example);
        std::vector<T> got;
        for (size_t i = 0; i < a->size(); ++i) {
            const std::string what = name(key) + "[" + std::to_string(i) + "]";
            SLUICE_TRY(check_integer(what, (*a)[i], min, max, nullptr, std::to_string(min)));
            got.push_back(T(*int_value((*a)[i])));
        }
        out = std::move(got);
        return ok_result();
    }
    // An array of strings.
    result<void> strings(std::string_view key, std::vector<std::string>& out,
                         const std::string& example, const char* expected = nullptr) {
        const toml::node* n = node(key);
        if (n == nullptr) return ok_result();
        const toml::array* a = n->as_array();
        if (a == nullptr)
            return wrong_type(name(key), *n, expected ? expected : "an array of strings",
                              example);
        std::vector<std::string> got;
        for (size_t i = 0; i < a->size(); ++i) {
            auto v = (*a)[i].value_exact<std::string>();
            if (!v)
                return wrong_type(name(key) + "[" + std::to_string(i) + "]", (*a)[i],
                                  "a string", example);
            got.push_back(*v);
        }
        out = std::move(got);
        return ok_result();
    }
    // The table `key` ([kafka] under the top level): empty when not given.
    result<section> table(std::string_view key) {
        const toml::node* n = node(key);
        if (n != nullptr && !n->is_table())
            return make_error(errc::bad_config,
                              name(key) + " must be a table, not " + describe(*n) + " (" +
                                  where(*n) + "; e.g. [" + name(key) + "] on a line of its own, "
                                  "its keys below it)");
        return section(*_file, n != nullptr ? n->as_table() : nullptr, name(key));
    }
    // A table inside this one that is read on its own ([[kafka.topic]]'s elements).
    section child(const toml::table* table, std::string path) const {
        return section(*_file, table, std::move(path));
    }
    // Refuses a key of this table that no accessor read.
    result<void> finish() const {
        if (_table == nullptr) return ok_result();
        for (const auto& [k, v] : *_table) {
            if (std::find(_known.begin(), _known.end(), k.str()) != _known.end()) continue;
            std::vector<std::string> known = _known;
            std::sort(known.begin(), known.end());
            std::string list;
            for (const auto& s : known) list += (list.empty() ? "" : ", ") + s;
            return make_error(errc::bad_config,
                              "unknown key " + name(k.str()) + " (" + where(v) +
                                  "): remove it or fix its name; " +
                                  (_path.empty() ? std::string("the tables are: ")
                                                 : "[" + _path + "] has: ") +
                                  list);
        }
        return ok_result();
    }
    std::string where(const toml::node& n) const {
        return "line " + std::to_string(n.source().begin.line) + " of " + *_file;
    }

  private:
    result<void> check_integer(const std::string& what, const toml::node& n, int64_t min,
                               int64_t max, const char* note, const std::string& example) const {
        auto v = int_value(n);
        if (!v)
            return wrong_type(what, n, "an integer " + range_text(min, max), example);
        if (*v < min || *v > max) return out_of_range(what, min, max, note);
        return ok_result();
    }

    const std::string* _file;
    const toml::table* _table;
    std::string _path;
    std::vector<std::string> _known;
};

constexpr int64_t u32_max = std::numeric_limits<uint32_t>::max();
constexpr int64_t i64_max = std::numeric_limits<int64_t>::max();

// [lcores] rx / workers: an integer is a count, an array the explicit EAL lcore ids.
result<void> lcores_key(section& s, const char* key, uint32_t& count,
                        std::vector<unsigned>& list) {
    const toml::node* n = s.node(key);
    if (n == nullptr) return ok_result();
    if (n->is_array()) return s.integers(key, list, 0, 1023, "[1, 2]");
    if (!int_value(*n))
        return s.wrong_type(s.name(key), *n, "a count (0..1024) or a list of lcore ids",
                            std::string("2, or ") + key + " = [1, 2]");
    return s.integer(key, count, 0, 1024, "0: derived from the lcores EAL was given");
}

// [sluice], [lcores]: where the data lives, the control socket, the lcore map, idling.
result<void> apply_sluice_toml(section& top, daemon_config& c) {
    auto s = top.table("sluice");
    if (!s) return std::move(s).err();
    SLUICE_TRY(s->string("data_dir", c.sluice.data_dir));
    SLUICE_TRY(s->string("control_socket", c.sluice.control_socket));
    SLUICE_TRY(s->integer("workers", c.lcores.worker_count, 0, 1024,
                          "0: every lcore beyond the main and the RX lcores"));
    SLUICE_TRY(s->finish());
    auto l = top.table("lcores");
    if (!l) return std::move(l).err();
    SLUICE_TRY(lcores_key(*l, "rx", c.lcores.rx_count, c.lcores.rx));
    SLUICE_TRY(lcores_key(*l, "workers", c.lcores.worker_count, c.lcores.workers));
    std::string idle = idle_mode_name(c.lcores.idle);
    SLUICE_TRY(l->string("idle", idle));
    auto mode = parse_idle_mode(idle);
    if (!mode)
        return make_error(errc::bad_config,
                          "lcores.idle must be \"wait\" or \"poll\", not \"" + idle + "\"");
    c.lcores.idle = *mode;
    return l->finish();
}

// [control]: the access policy, rates and the socket's mode.
result<void> apply_control_toml(section& top, control_config& c) {
    auto k = top.table("control");
    if (!k) return std::move(k).err();
    constexpr int64_t id_max = u32_max - 1; // (uid_t)-1 is no one
    SLUICE_TRY(k->integers("allow_uids", c.allow_uids, 0, id_max, "[1000]"));
    SLUICE_TRY(k->integers("allow_gids", c.allow_gids, 0, id_max, "[1000]"));
    SLUICE_TRY(k->integer("socket_group_gid", c.socket_group_gid, -1, id_max, "-1: none"));
    // An octal string ("0660"), or an integer (0o660); config.cpp checks the bits.
    if (const toml::node* n = k->node("socket_mode"); n != nullptr && n->is_string()) {
        const std::string v = *n->value_exact<std::string>();
        c.socket_mode = uint32_t(std::strtoul(v.c_str(), nullptr, 8));
    } else if (n != nullptr && !int_value(*n)) {
        return k->wrong_type(k->name("socket_mode"), *n, "an octal mode as a string",
                             "\"0660\"");
    } else {
        SLUICE_TRY(k->integer("socket_mode", c.socket_mode, 0, u32_max));
    }
    SLUICE_TRY(k->integer("requests_per_s", c.requests_per_s, 0, u32_max, "0: no limit"));
    SLUICE_TRY(k->integer("connection_requests_per_s", c.connection_requests_per_s, 0, u32_max,
                          "0: no limit"));
    SLUICE_TRY(k->integer("idle_timeout_ms", c.idle_timeout_ms, 0, u32_max, "0: never"));
    return k->finish();
}

// [input]
result<void> apply_input_toml(section& top, input_config& c) {
    auto k = top.table("input");
    if (!k) return std::move(k).err();
    std::string mode = input_mode_name(c.mode);
    c.mode_set = k->node("mode") != nullptr;
    SLUICE_TRY(k->string("mode", mode));
    auto parsed = parse_input_mode(mode);
    if (!parsed)
        return make_error(errc::bad_config, "input.mode must be \"dpdk\", \"kernel_udp\" or "
                                            "\"kafka\", not \"" +
                                                mode + "\"");
    c.mode = *parsed;
    SLUICE_TRY(k->integer("port_id", c.port_id, 0, 65535));
    SLUICE_TRY(k->integers("udp_ports", c.udp_ports, 1, 65535, "[9000]"));
    SLUICE_TRY(k->string("kernel_bind", c.kernel_bind));
    SLUICE_TRY(k->integer("kernel_rcvbuf_bytes", c.kernel_rcvbuf_bytes, 4096, 1ll << 30,
                          "4 KiB..1 GiB"));
    SLUICE_TRY(k->integer("event_bytes_max", c.event_bytes_max, 64, limits::event_bytes_max));
    // At most 1000 years: now + the skew stays inside int64.
    SLUICE_TRY(k->integer("max_future_skew_ms", c.max_future_skew_ms, 0, 31'536'000'000'000,
                          "0..1000 years"));
    SLUICE_TRY(k->integer("slots", c.slots, 0, u32_max, "0: derived from the lcore map"));
    SLUICE_TRY(k->integer("rx_queues", c.rx_queues, 0, u32_max, "0: one per RX lcore"));
    SLUICE_TRY(k->integer("mbufs", c.mbufs, 512, u32_max));
    return k->finish();
}

// [kafka] listen, advertised, auto_create_topics, connections_max, request_bytes_max,
// idle_timeout_ms, lcore; [[kafka.topic]] name, partitions.
result<void> apply_kafka_toml(section& top, kafka_config& c) {
    auto k = top.table("kafka");
    if (!k) return std::move(k).err();
    // "HOST:PORT", or a list of them.
    if (const toml::node* n = k->node("listen"); n != nullptr && n->is_string()) {
        std::string v;
        SLUICE_TRY(k->string("listen", v));
        c.listen = {v};
    } else {
        SLUICE_TRY(k->strings("listen", c.listen, "[\"127.0.0.1:9092\"]",
                              "\"HOST:PORT\" or an array of them"));
    }
    SLUICE_TRY(k->string("advertised", c.advertised));
    SLUICE_TRY(k->boolean("auto_create_topics", c.auto_create_topics));
    SLUICE_TRY(
        k->integer("connections_max", c.connections_max, 1, limits::kafka_connections_max));
    SLUICE_TRY(k->integer("request_bytes_max", c.request_bytes_max, 1024,
                          limits::kafka_request_bytes_max));
    SLUICE_TRY(k->integer("lcore", c.lcore, -1, 1023, "-1: the first free lcore"));
    SLUICE_TRY(k->integer("idle_timeout_ms", c.idle_timeout_ms, 0, u32_max, "0: never"));
    if (const toml::node* n = k->node("topic"); n != nullptr) {
        const toml::array* a = n->as_array();
        if (a == nullptr || (!a->empty() && !a->is_array_of_tables()))
            return k->wrong_type(k->name("topic"), *n,
                                 "an array of tables ([[kafka.topic]] on a line of its own)",
                                 "[{ name = \"events-topic\" }]");
        c.topics.clear();
        for (size_t i = 0; i < a->size(); ++i) {
            section t = k->child((*a)[i].as_table(), "kafka.topic[" + std::to_string(i) + "]");
            kafka_topic_def d;
            SLUICE_TRY(t.string("name", d.name));
            SLUICE_TRY(t.integer("partitions", d.partitions, 0, limits::kafka_partitions_max,
                                 "0: one per worker"));
            SLUICE_TRY(t.finish());
            if (d.name.empty())
                return make_error(errc::bad_config, "a [[kafka.topic]] has no name (" +
                                                        t.where((*a)[i]) +
                                                        "; e.g. name = \"events-topic\")");
            c.topics.push_back(d);
        }
    }
    return k->finish();
}

// [processing]
result<void> apply_processing_toml(section& top, processing_config& c) {
    auto k = top.table("processing");
    if (!k) return std::move(k).err();
    SLUICE_TRY(k->integer("watermark_delay_ms", c.watermark_delay_ms, 0, i64_max));
    SLUICE_TRY(k->integer("dedup_horizon_ms", c.dedup_horizon_ms, 1,
                          processing::dedup_filter::horizon_ms_max,
                          "24.8 days: the dedup table keeps 32-bit time offsets"));
    SLUICE_TRY(k->integer("dedup_memory_mb", c.dedup_memory_mb, 1, 1 << 20,
                          "all workers together, at most 1 TiB"));
    return k->finish();
}

// [[query]] tables, or one [query] table (the slice's form: name, window_size_ms,
// group_by). A query without its own delay takes processing.watermark_delay_ms. Their
// keys are query_from_json()'s to check.
result<void> apply_queries_toml(section& top, const std::string& path, daemon_config& c) {
    std::vector<json> queries;
    const toml::node* n = top.node("query");
    c.queries_configured = n != nullptr;
    if (n == nullptr) {
    } else if (auto a = n->as_array()) {
        for (auto& e : *a) {
            auto tab = e.as_table();
            if (tab == nullptr)
                return top.wrong_type("query", e,
                                      "a table ([[query]] on a line of its own, its keys below)",
                                      "{ name = \"q\", size = \"1m\" }");
            queries.push_back(toml_to_json(*tab));
        }
    } else if (auto tab = n->as_table()) {
        json j = toml_to_json(*tab);
        if (!j.contains("name")) j["name"] = processing::reference_query().name;
        queries.push_back(j);
    } else {
        return top.wrong_type("query", *n,
                              "tables ([[query]] on a line of its own, its keys below), or [] "
                              "for none",
                              "[]");
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
result<void> apply_observability_toml(section& top, daemon_config& c) {
    auto m = top.table("metrics");
    if (!m) return std::move(m).err();
    SLUICE_TRY(m->string("listen", c.metrics.listen));
    SLUICE_TRY(m->finish());
    auto l = top.table("log");
    if (!l) return std::move(l).err();
    std::string format = c.log.format == log_format::json ? "json" : "text";
    const bool format_given = l->node("format") != nullptr;
    SLUICE_TRY(l->string("format", format));
    if (format_given) SLUICE_TRY(parse_log_format_key(format, c.log.format));
    SLUICE_TRY(
        l->integer("rate_limit_burst", c.log.rate_limit.burst, 0, 1'000'000, "0: no limit"));
    SLUICE_TRY(l->integer("rate_limit_interval_ms", c.log.rate_limit.interval_ms, 1, 3'600'000));
    SLUICE_TRY(l->finish());
    auto t = top.table("testing");
    if (!t) return std::move(t).err();
    SLUICE_TRY(t->integer("slow_worker_us", c.testing.slow_worker_us, 0, u32_max));
    return t->finish();
}

// [storage]: group commit by time and size, segment size, O_DIRECT, compression.
result<void> apply_storage_toml(section& top, storage::writer_options& c) {
    auto s = top.table("storage");
    if (!s) return std::move(s).err();
    SLUICE_TRY(s->integer("flush_interval_ms", c.flush_interval_ms, 0, u32_max));
    SLUICE_TRY(s->boolean("direct_io", c.direct_io));
    SLUICE_TRY(s->integer("sync_bytes", c.sync_bytes, 1, i64_max));
    SLUICE_TRY(s->integer("segment_bytes_max", c.segment_bytes_max, 1 << 20,
                          int64_t(limits::segment_bytes_max), "1 MiB..256 MiB"));
    const toml::node* codec = s->node("compression");
    std::string name;
    SLUICE_TRY(s->string("compression", name));
    if (codec != nullptr) {
        if (name == "zstd") {
            c.compression = {storage::format::codec::zstd, 1};
        } else if (name == "lz4") {
            c.compression = {storage::format::codec::lz4, 1};
        } else if (name == "none") {
            c.compression = {storage::format::codec::none, 0};
        } else {
            return make_error(errc::bad_config,
                              "storage.compression must be \"zstd\", \"lz4\" or \"none\", not \"" +
                                  name + "\"");
        }
    }
    SLUICE_TRY(s->integer("compression_level", c.compression.level, -7, 65537,
                          "zstd -7..19, lz4 acceleration 1..65537"));
    return s->finish();
}

// [retention] (max_age_ms, max_bytes, interval_ms) and [retention.tables.X].
result<void> apply_retention_toml(section& top, retention_config& c) {
    auto policy = [](section& s, storage::retention_policy& p) -> result<void> {
        SLUICE_TRY(s.integer("max_age_ms", p.max_age_ms, 0, i64_max, "0: no age limit"));
        SLUICE_TRY(s.integer("max_bytes", p.max_bytes, 0, i64_max, "0: no size limit"));
        return ok_result();
    };
    auto r = top.table("retention");
    if (!r) return std::move(r).err();
    SLUICE_TRY(policy(*r, c.defaults));
    SLUICE_TRY(r->integer("interval_ms", c.interval_ms, 1, u32_max));
    // Any table name, each a table of max_age_ms and max_bytes.
    auto tables = r->table("tables");
    if (!tables) return std::move(tables).err();
    if (const toml::node* n = r->node("tables"); n != nullptr) {
        for (const auto& [name, node] : *n->as_table()) {
            const std::string key(name.str());
            auto one = tables->table(key);
            if (!one) return std::move(one).err();
            storage::retention_policy p;
            SLUICE_TRY(policy(*one, p));
            SLUICE_TRY(one->finish());
            c.tables[key] = p;
        }
    }
    return r->finish();
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
    section top(path, &t, "");
    SLUICE_TRY(apply_sluice_toml(top, c));
    SLUICE_TRY(apply_control_toml(top, c.control));
    SLUICE_TRY(apply_input_toml(top, c.input));
    SLUICE_TRY(apply_kafka_toml(top, c.kafka));
    SLUICE_TRY(apply_processing_toml(top, c.processing));
    SLUICE_TRY(apply_queries_toml(top, path, c));
    SLUICE_TRY(apply_observability_toml(top, c));
    SLUICE_TRY(apply_storage_toml(top, c.storage));
    SLUICE_TRY(apply_retention_toml(top, c.retention));
    return top.finish();
}

result<void> parse_log_format_key(const std::string& name, log_format& out) {
    if (!parse_log_format(name.c_str(), &out))
        return make_error(errc::bad_config,
                          "log.format must be \"text\" or \"json\", not \"" + name + "\"");
    return ok_result();
}

} // namespace sluice::control
