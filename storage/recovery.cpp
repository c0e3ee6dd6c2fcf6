#include "storage/recovery.h"

#include <fcntl.h>
#include <unistd.h>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/assert.h"
#include "base/limits.h"
#include "base/log.h"
#include "storage/fault_injection.h"
#include "storage/segment_files.h"
#include "storage/segment_reader.h"

namespace sluice::storage {
namespace {

// Is there a valid block past the damage that a crash cannot explain? A crash tears at
// most the blocks that were in flight (limits::writes_in_flight_max), so a valid footer,
// or a valid block further on than that, means the damage is in the middle.
bool damage_is_in_the_middle(int fd, uint64_t damage_offset, uint64_t file_size,
                             uint64_t expected_index) {
    uint8_t raw[format::block_header_bytes];
    for (uint64_t off = damage_offset + format::page_bytes;
         off + format::block_header_bytes <= file_size; off += format::page_bytes) {
        if (::pread(fd, raw, sizeof raw, off_t(off)) != ssize_t(sizeof raw)) return false;
        format::block_header h;
        if (!format::read_block_header(raw, h)) continue;
        if (h.kind == format::block_kind::footer) return true;
        if (h.block_index > expected_index + limits::writes_in_flight_max) return true;
    }
    return false;
}

result<void> sync_dir(const std::string& dir) {
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || ::fsync(dfd) != 0) {
        int e = errno;
        if (dfd >= 0) ::close(dfd);
        return make_error(errc::io_error, "cannot sync " + dir + ": " + std::strerror(e));
    }
    ::close(dfd);
    return ok_result();
}

result<void> move_aside(segment_recovery& s, const std::string& reason) {
    std::string to = s.path + ".corrupt";
    if (fault::fails(fault::op::rename) || ::rename(s.path.c_str(), to.c_str()) != 0)
        return make_error(errc::io_error, "cannot rename corrupt segment " + s.path + ": " +
                                              std::strerror(errno));
    SLUICE_LOG_WARN("corrupt segment %s (%s): moved aside to %s, none of its rows are served",
                    s.path.c_str(), reason.c_str(), to.c_str());
    s.what = segment_recovery::action::moved_aside;
    s.reason = reason;
    s.rows = 0;
    s.blocks = 0;
    s.path = std::move(to);
    return sync_dir(std::filesystem::path(s.path).parent_path().string());
}

result<void> truncate_tail(segment_recovery& s, uint64_t offset, uint64_t size,
                           const std::string& reason) {
    int fd = fault::fails(fault::op::open) ? -1 : ::open(s.path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, off_t(offset)) != 0 || ::fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) ::close(fd);
        return make_error(errc::io_error, "cannot truncate torn segment " + s.path + ": " +
                                              std::strerror(e));
    }
    ::close(fd);
    SLUICE_LOG_WARN("torn tail in %s (%s): truncated %llu bytes after offset %llu",
                    s.path.c_str(), reason.c_str(), static_cast<unsigned long long>(size - offset),
                    static_cast<unsigned long long>(offset));
    s.what = segment_recovery::action::truncated;
    s.reason = reason;
    s.bytes_truncated = size - offset;
    return ok_result();
}

// A segment whose creation a crash interrupted: no whole file header and nothing after
// it (the writer syncs the header before its first block), so no rows. Removed, so that
// a crash during rotation is not reported as corruption.
result<void> remove_unborn(segment_recovery& s, const std::string& reason) {
    if (fault::fails(fault::op::unlink) || ::unlink(s.path.c_str()) != 0)
        return make_error(errc::io_error, "cannot remove unborn segment " + s.path + ": " +
                                              std::strerror(errno));
    SLUICE_LOG_WARN("segment %s was being created when the writer stopped (%s): removed, it "
                    "held no rows",
                    s.path.c_str(), reason.c_str());
    s.what = segment_recovery::action::removed_unborn;
    s.reason = reason;
    return sync_dir(std::filesystem::path(s.path).parent_path().string());
}

result<segment_recovery> recover_segment(const std::string& path, int64_t& max_time_ms) {
    segment_recovery s;
    s.path = path;
    auto rd = segment_reader::open(path);
    if (!rd) {
        if (rd.err().code != errc::corrupt) return std::move(rd).err();
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        if (!ec && size <= format::file_header_bytes) {
            SLUICE_TRY(remove_unborn(s, "incomplete file header: " + rd.err().message));
            return s;
        }
        SLUICE_TRY(move_aside(s, "bad file header: " + rd.err().message));
        return s;
    }
    auto& r = **rd;
    while (r.next_block()) {
        if (!r.verify_block()) break;
        ++s.blocks;
        s.rows += r.block().rows;
        if (r.schema().time_column >= 0 && r.block().rows > 0)
            max_time_ms = std::max(max_time_ms, r.block().max_time_ms);
    }
    switch (r.end()) {
    case segment_reader::end_state::footer: s.what = segment_recovery::action::clean; break;
    case segment_reader::end_state::eof: s.what = segment_recovery::action::unclosed; break;
    case segment_reader::end_state::damaged: {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return make_error(errc::io_error, "cannot open " + path);
        bool middle = damage_is_in_the_middle(fd, r.damage_offset(), r.file_size(), s.blocks);
        ::close(fd);
        if (middle) {
            SLUICE_TRY(move_aside(s, r.damage()));
        } else {
            SLUICE_TRY(truncate_tail(s, r.damage_offset(), r.file_size(), r.damage()));
        }
        break;
    }
    case segment_reader::end_state::reading: SLUICE_ASSERT(false);
    }
    return s;
}

void merge(recovery_report& into, const recovery_report& from) {
    into.segments += from.segments;
    into.clean += from.clean;
    into.unclosed += from.unclosed;
    into.truncated += from.truncated;
    into.moved_aside += from.moved_aside;
    into.removed_unborn += from.removed_unborn;
    into.rows += from.rows;
    into.blocks += from.blocks;
    into.max_time_ms = std::max(into.max_time_ms, from.max_time_ms);
    into.segments_detail.insert(into.segments_detail.end(), from.segments_detail.begin(),
                                from.segments_detail.end());
}

} // namespace

result<recovery_report> recover_table_dir(const std::string& table_dir) {
    recovery_report rep;
    auto files = list_segments(table_dir);
    if (!files) {
        if (files.err().code == errc::not_found) return rep;
        return std::move(files).err();
    }
    const size_t n = files->size();
    std::vector<std::optional<result<segment_recovery>>> results(n);
    std::vector<int64_t> max_times(n, INT64_MIN);
    tbb::parallel_for(size_t(0), n, [&](size_t i) {
        results[i].emplace(recover_segment((*files)[i].path, max_times[i]));
    });
    for (size_t i = 0; i < n; ++i) {
        auto& r = *results[i];
        if (!r) return std::move(r).err();
        const segment_recovery& s = r.value();
        ++rep.segments;
        switch (s.what) {
        case segment_recovery::action::clean: ++rep.clean; break;
        case segment_recovery::action::unclosed: ++rep.unclosed; break;
        case segment_recovery::action::truncated: ++rep.truncated; break;
        case segment_recovery::action::moved_aside: ++rep.moved_aside; break;
        case segment_recovery::action::removed_unborn: ++rep.removed_unborn; break;
        }
        rep.rows += s.rows;
        rep.blocks += s.blocks;
        if (s.what == segment_recovery::action::clean ||
            s.what == segment_recovery::action::unclosed ||
            s.what == segment_recovery::action::truncated)
            rep.max_time_ms = std::max(rep.max_time_ms, max_times[i]);
        rep.segments_detail.push_back(s);
    }
    return rep;
}

result<recovery_report> recover_data_dir(const std::string& data_dir) {
    recovery_report rep;
    auto tables = list_tables(data_dir);
    if (!tables) {
        if (tables.err().code == errc::not_found) return rep;
        return std::move(tables).err();
    }
    for (const auto& t : *tables) {
        auto r = recover_table_dir(data_dir + "/" + t);
        if (!r) return std::move(r).err();
        merge(rep, *r);
    }
    return rep;
}

} // namespace sluice::storage
