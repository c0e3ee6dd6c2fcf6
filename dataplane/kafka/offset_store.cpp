#include "dataplane/kafka/offset_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dataplane/kafka/kafka_codec.h"
#include "storage/atomic_file.h"

namespace sluice::dataplane::kafka {
namespace {

constexpr uint8_t record_version = 1;
constexpr size_t record_header_bytes = 8; // payload size, CRC

template <typename T> void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// A bounds-checked little-endian cursor over one payload.
struct cursor {
    std::string_view s;
    bool ok = true;
    template <typename T> T get() {
        T v{};
        if (s.size() < sizeof v) {
            ok = false;
            return v;
        }
        std::memcpy(&v, s.data(), sizeof v);
        s.remove_prefix(sizeof v);
        return v;
    }
    std::string_view take(size_t n) {
        if (s.size() < n) {
            ok = false;
            return {};
        }
        std::string_view v = s.substr(0, n);
        s.remove_prefix(n);
        return v;
    }
};

bool decode_payload(std::string_view payload, offset_commit_entry& e) {
    cursor c{payload};
    if (c.get<uint8_t>() != record_version) return false;
    e.key.group = std::string(c.take(c.get<uint16_t>()));
    e.key.topic = std::string(c.take(c.get<uint16_t>()));
    e.key.partition = c.get<int32_t>();
    e.value.offset = c.get<int64_t>();
    e.value.leader_epoch = c.get<int32_t>();
    e.value.commit_time_ms = c.get<int64_t>();
    const int32_t meta = c.get<int32_t>();
    if (meta >= 0)
        e.value.metadata = std::string(c.take(size_t(meta)));
    else
        e.value.metadata.reset();
    return c.ok && c.s.empty() && meta >= -1;
}

result<void> io_failure(const std::string& what, const std::string& path) {
    return make_error(errc::io_error, "cannot " + what + " " + path + ": " + std::strerror(errno) +
                                          " (check the data dir's permissions and free space)");
}

} // namespace

std::string offset_log_path(const std::string& data_dir) {
    return data_dir + "/_processing/kafka_offsets";
}

void encode_offset_record(const offset_commit_entry& e, std::string& out) {
    std::string p;
    put<uint8_t>(p, record_version);
    const std::string_view group = std::string_view(e.key.group).substr(0, 0xffff);
    const std::string_view topic = std::string_view(e.key.topic).substr(0, 0xffff);
    put<uint16_t>(p, uint16_t(group.size()));
    p.append(group);
    put<uint16_t>(p, uint16_t(topic.size()));
    p.append(topic);
    put<int32_t>(p, e.key.partition);
    put<int64_t>(p, e.value.offset);
    put<int32_t>(p, e.value.leader_epoch);
    put<int64_t>(p, e.value.commit_time_ms);
    put<int32_t>(p, e.value.metadata ? int32_t(e.value.metadata->size()) : -1);
    if (e.value.metadata) p.append(*e.value.metadata);
    put<uint32_t>(out, uint32_t(p.size()));
    put<uint32_t>(out, crc32c(bytes_view(reinterpret_cast<const uint8_t*>(p.data()), p.size())));
    out.append(p);
}

uint64_t decode_offset_log(std::string_view bytes, std::vector<offset_commit_entry>& out) {
    uint64_t good = 0;
    while (bytes.size() >= record_header_bytes) {
        uint32_t size, crc;
        std::memcpy(&size, bytes.data(), 4);
        std::memcpy(&crc, bytes.data() + 4, 4);
        if (bytes.size() - record_header_bytes < size) break; // torn
        const std::string_view payload = bytes.substr(record_header_bytes, size);
        if (crc32c(bytes_view(reinterpret_cast<const uint8_t*>(payload.data()), size)) != crc)
            break;
        offset_commit_entry e;
        if (!decode_payload(payload, e)) break;
        out.push_back(std::move(e));
        good += record_header_bytes + size;
        bytes.remove_prefix(record_header_bytes + size);
    }
    return good;
}

result<offset_store> offset_store::open(const std::string& data_dir) {
    offset_store s;
    if (data_dir.empty()) return s;
    s._path = offset_log_path(data_dir);
    const std::optional<std::string> text = storage::read_small_file(s._path);
    if (text) {
        std::vector<offset_commit_entry> entries;
        const uint64_t good = decode_offset_log(*text, entries);
        s._torn_bytes = text->size() - good;
        s._restored = entries.size();
        for (auto& e : entries)
            s._offsets[std::move(e.key)] = std::move(e.value);
    }
    SLUICE_TRY(s.rewrite());
    return s;
}

offset_store::offset_store(offset_store&& o) noexcept {
    *this = std::move(o);
}

offset_store& offset_store::operator=(offset_store&& o) noexcept {
    if (this == &o) return *this;
    if (_fd >= 0) ::close(_fd);
    _path = std::move(o._path);
    _fd = o._fd;
    o._fd = -1;
    _offsets = std::move(o._offsets);
    _file_bytes = o._file_bytes;
    _live_bytes = o._live_bytes;
    _restored = o._restored;
    _torn_bytes = o._torn_bytes;
    _commits = o._commits;
    _compactions = o._compactions;
    return *this;
}

offset_store::~offset_store() {
    if (_fd >= 0) ::close(_fd);
}

// One record per key, replaced whole (temporary file, fdatasync, rename), then reopened
// for appending.
result<void> offset_store::rewrite() {
    if (_fd >= 0) {
        ::close(_fd);
        _fd = -1;
    }
    std::string text;
    for (const auto& [k, v] : _offsets)
        encode_offset_record({k, v}, text);
    SLUICE_TRY(storage::write_file_atomically(_path, text));
    _file_bytes = _live_bytes = text.size();
    _fd = ::open(_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (_fd < 0) return io_failure("open", _path);
    ++_compactions;
    return ok_result();
}

result<void> offset_store::commit(const std::vector<offset_commit_entry>& entries) {
    if (entries.empty()) return ok_result();
    if (!_path.empty()) {
        if (_fd < 0) SLUICE_TRY(rewrite()); // a failed write closed it: try afresh
        std::string text;
        for (const auto& e : entries)
            encode_offset_record(e, text);
        size_t done = 0;
        while (done < text.size()) {
            const ssize_t n = ::write(_fd, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            done += size_t(n);
        }
        if (done < text.size() || ::fdatasync(_fd) != 0) {
            auto err = io_failure("append to", _path);
            // A partial record may be on disk: it is a torn tail to the next reader, and
            // the next commit starts from a rewritten file.
            ::close(_fd);
            _fd = -1;
            return err;
        }
        _file_bytes += text.size();
    }
    for (const auto& e : entries) {
        _offsets[e.key] = e.value;
        ++_commits;
    }
    if (!_path.empty() && _file_bytes > 2 * _live_bytes + offset_log_slack_bytes) {
        std::string live;
        for (const auto& [k, v] : _offsets)
            encode_offset_record({k, v}, live);
        if (_file_bytes > 2 * live.size() + offset_log_slack_bytes)
            SLUICE_TRY(rewrite());
        else
            _live_bytes = live.size();
    }
    return ok_result();
}

const committed_offset* offset_store::find(const offset_key& k) const {
    auto it = _offsets.find(k);
    return it == _offsets.end() ? nullptr : &it->second;
}

} // namespace sluice::dataplane::kafka
