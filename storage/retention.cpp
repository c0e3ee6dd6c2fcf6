#include "storage/retention.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/log.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"

namespace sluice::storage {
namespace {

bool plain_table_name(const std::string& t) {
    return !t.empty() && t != "." && t != ".." && t.find('/') == std::string::npos &&
           t.size() <= 255;
}

} // namespace

retention_manager::retention_manager(std::string data_dir, retention_policy default_policy,
                                     std::map<std::string, retention_policy> table_policies,
                                     std::function<int64_t()> now_ms)
    : _data_dir(std::move(data_dir)), _now_ms(std::move(now_ms)), _default(default_policy),
      _policies(std::move(table_policies)) {}

retention_manager::~retention_manager() { stop(); }

void retention_manager::start(uint32_t interval_ms) {
    if (_thread.joinable()) return;
    _thread = std::thread([this, interval_ms] {
        for (;;) {
            {
                std::unique_lock lk(_mutex);
                _wake.wait_for(lk, std::chrono::milliseconds(interval_ms),
                               [this] { return _stopping || _wake_requested; });
                if (_stopping) return;
                _wake_requested = false;
            }
            auto r = run_once();
            if (!r) SLUICE_LOG_WARN("retention: %s", r.err().message.c_str());
        }
    });
    pthread_setname_np(_thread.native_handle(), "sluice-retention");
}

void retention_manager::stop() {
    {
        std::lock_guard lk(_mutex);
        _stopping = true;
    }
    _wake.notify_all();
    if (_thread.joinable()) _thread.join();
}

result<void> retention_manager::set_policy(const std::string& table,
                                           const retention_policy& policy) {
    if (table != "*" && !plain_table_name(table))
        return make_error(errc::invalid_argument,
                          "bad table name '" + table + "' (a table of the data dir, or \"*\" "
                          "for the default)");
    if (policy.max_age_ms < 0)
        return make_error(errc::invalid_argument, "max_age_ms must be >= 0 (0: no age limit)");
    {
        std::lock_guard lk(_mutex);
        if (table == "*") {
            _default = policy;
        } else {
            _policies[table] = policy;
        }
        _wake_requested = true;
    }
    _wake.notify_all();
    return ok_result();
}

void retention_manager::clear_policy(const std::string& table) {
    {
        std::lock_guard lk(_mutex);
        _policies.erase(table);
        _wake_requested = true;
    }
    _wake.notify_all();
}

retention_policy retention_manager::policy_of(const std::string& table) const {
    auto it = _policies.find(table);
    return it == _policies.end() ? _default : it->second;
}

retention_status retention_manager::status() const {
    std::lock_guard lk(_mutex);
    retention_status s = _status;
    s.default_policy = _default;
    std::map<std::string, table_retention> tables = _tables;
    for (const auto& [name, p] : _policies) tables[name].table = name;
    for (auto& [name, t] : tables) {
        t.policy = policy_of(name);
        t.policy_is_default = !_policies.contains(name);
        s.tables.push_back(t);
    }
    return s;
}

retention_manager::segment_facts retention_manager::facts_of(const std::string& path,
                                                              uint64_t size) {
    auto it = _facts.find(path);
    if (it != _facts.end() && it->second.size == size) return it->second;
    segment_facts f;
    f.size = size;
    auto rd = segment_reader::open(path);
    if (rd) {
        auto& r = **rd;
        f.readable = true;
        f.timed = r.schema().time_column >= 0;
        format::footer footer;
        if (r.peek_footer(footer)) {
            f.closed = true;
            f.rows = footer.rows;
            if (footer.rows) f.max_time_ms = footer.max_time_ms;
        } else {
            // Unclosed (being written, or left by a crash): the block headers say.
            while (r.next_block()) {
                f.rows += r.block().rows;
                if (r.block().rows) f.max_time_ms = std::max(f.max_time_ms, r.block().max_time_ms);
            }
        }
    }
    _facts[path] = f;
    return f;
}

result<void> retention_manager::pass_table(const std::string& table, int64_t now_ms) {
    const std::string dir = _data_dir + "/" + table;
    auto files = list_segments(dir);
    if (!files) return files.err().code == errc::not_found ? ok_result() : result<void>(files.err());
    retention_policy policy;
    {
        std::lock_guard lk(_mutex);
        policy = policy_of(table);
    }
    struct seg {
        const segment_file* file;
        segment_facts facts;
        bool live = false;
    };
    std::vector<seg> segs;
    uint64_t total = 0;
    for (const auto& f : *files) {
        struct stat st;
        if (::stat(f.path.c_str(), &st) != 0) continue; // gone meanwhile
        segs.push_back({&f, facts_of(f.path, uint64_t(st.st_size))});
        total += uint64_t(st.st_size);
    }
    // The newest segment of each writer, when it has no footer, is being written.
    for (size_t i = 0; i < segs.size(); ++i) {
        bool newest = i + 1 == segs.size() || segs[i + 1].file->writer != segs[i].file->writer;
        segs[i].live = newest && !segs[i].facts.closed;
    }
    std::vector<seg*> victims; // deletable, oldest first
    for (auto& s : segs)
        if (!s.live && s.facts.readable) victims.push_back(&s);
    std::stable_sort(victims.begin(), victims.end(), [](const seg* a, const seg* b) {
        return a->facts.max_time_ms < b->facts.max_time_ms;
    });
    table_retention deleted;
    auto remove = [&](seg& s, const char* why) -> result<void> {
        if (::unlink(s.file->path.c_str()) != 0 && errno != ENOENT)
            return make_error(errc::io_error, "cannot delete " + s.file->path + ": " +
                                                  std::strerror(errno));
        SLUICE_LOG_INFO("retention: deleted %s (%s; %llu rows, %llu bytes)", s.file->path.c_str(),
                        why, static_cast<unsigned long long>(s.facts.rows),
                        static_cast<unsigned long long>(s.facts.size));
        _facts.erase(s.file->path);
        ++deleted.segments_deleted;
        deleted.bytes_deleted += s.facts.size;
        deleted.rows_deleted += s.facts.rows;
        total -= s.facts.size;
        s.file = nullptr;
        return ok_result();
    };
    std::vector<seg*> kept;
    for (seg* s : victims) {
        // Age: the segment's newest row is older than the limit; empty segments (a
        // header left by a crash) go too. Segments without a time column have no age.
        bool too_old = policy.max_age_ms > 0 &&
                       (s->facts.rows == 0 ||
                        (s->facts.timed && s->facts.max_time_ms < now_ms - policy.max_age_ms));
        if (too_old) {
            SLUICE_TRY(remove(*s, "older than max_age_ms"));
        } else {
            kept.push_back(s);
        }
    }
    for (seg* s : kept) {
        if (policy.max_bytes == 0 || total <= policy.max_bytes) break;
        SLUICE_TRY(remove(*s, "table larger than max_bytes"));
    }
    if (deleted.segments_deleted > 0) {
        int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
    std::lock_guard lk(_mutex);
    table_retention& t = _tables[table];
    t.table = table;
    t.segments = 0;
    t.bytes = 0;
    t.rows = 0;
    t.oldest_time_ms = INT64_MIN;
    for (const auto& s : segs) {
        if (!s.file) continue;
        ++t.segments;
        t.bytes += s.facts.size;
        t.rows += s.facts.rows;
        if (s.facts.timed && s.facts.rows &&
            (t.oldest_time_ms == INT64_MIN || s.facts.max_time_ms < t.oldest_time_ms))
            t.oldest_time_ms = s.facts.max_time_ms;
    }
    t.segments_deleted += deleted.segments_deleted;
    t.bytes_deleted += deleted.bytes_deleted;
    t.rows_deleted += deleted.rows_deleted;
    return ok_result();
}

result<void> retention_manager::run_once() {
    std::lock_guard pass(_pass_mutex);
    const int64_t now = _now_ms();
    auto tables = list_tables(_data_dir);
    result<void> r = ok_result();
    if (!tables) {
        if (tables.err().code != errc::not_found) r = tables.err();
    } else {
        for (const auto& t : *tables) {
            auto one = pass_table(t, now);
            if (!one && r) r = one;
        }
    }
    // Forget cached facts of files that are gone.
    for (auto it = _facts.begin(); it != _facts.end();) {
        struct stat st;
        it = ::stat(it->first.c_str(), &st) == 0 ? std::next(it) : _facts.erase(it);
    }
    std::lock_guard lk(_mutex);
    ++_status.passes;
    _status.last_pass_ms = now;
    _status.last_error = r ? "" : r.err().message;
    return r;
}

} // namespace sluice::storage
