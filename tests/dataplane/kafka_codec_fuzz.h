#pragma once
// One fuzz input through everything in kafka_codec (and fetch_codec) that reads untrusted
// bytes: the frame as a request of each supported kind (header, body parser, the answer
// written back),
// as a record set (batches, records, headers), as a record stream under a batch header
// whose CRC it cannot forge, and through every decompressor into a small capped buffer.
// None may crash, read out of bounds or write past the cap.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane/kafka/group_codec.h"
#include "dataplane/kafka/group_coordinator.h"
#include "dataplane/kafka/fetch_codec.h"
#include "dataplane/kafka/kafka_codec.h"

namespace sluice::dataplane::kafka::fuzz {

inline void walk_records(const record_batch& b, bytes_view records) {
    record_reader rr(b, records);
    record r;
    while (rr.next(r)) {
        auto hr = r.headers();
        record_header h;
        while (hr.next(h)) {
        }
    }
}

// A legacy message set, one level of wrappers decompressed into a small capped buffer.
inline parse_error walk_legacy(bytes_view set, bool inner = false) {
    static decompressor d;
    static std::vector<uint8_t> cap(4096);
    legacy_message_reader lr(set, inner);
    legacy_message m;
    while (lr.next(m)) {
        bytes_view nested;
        if (m.codec() != compression::none &&
            legacy_wrapper_records(m, d, cap, nested) == parse_error::none)
            (void)walk_legacy(nested, true);
    }
    return lr.error();
}

inline void as_group_request(const request_header& h, response_writer& w);

// An answer for each requested partition (fetch_codec.h's topic arrays), default fields.
template <typename Out, typename In>
std::vector<topic_of<Out>> answer_each(const std::vector<topic_of<In>>& in) {
    std::vector<topic_of<Out>> out;
    for (const auto& t : in) {
        auto& rt = out.emplace_back();
        rt.name = t.name;
        for (const auto& p : t.partitions) rt.partitions.emplace_back().partition = p.partition;
    }
    return out;
}

inline void as_request(bytes_view frame, std::vector<uint8_t>& out) {
    request_header h;
    if (parse_request_header(frame, h) != parse_error::none) return;
    response_writer w(out);
    switch (h.api_key) {
    case api_key::api_versions: {
        api_versions_request r;
        (void)parse_api_versions_request(h, r);
        write_api_versions_response(w, h, default_api_versions);
        break;
    }
    case api_key::metadata: {
        metadata_request r;
        if (parse_metadata_request(h, r) != parse_error::none) break;
        std::vector<metadata_topic> topics;
        metadata_request_topic t;
        while (r.next_topic(t))
            topics.push_back({t.name, t.name ? error_code::none : error_code::unknown_topic_id,
                              t.name ? 2 : 0, false, t.topic_id});
        write_metadata_response(w, h, {0, "127.0.0.1", 9092, std::nullopt, std::nullopt}, topics);
        break;
    }
    case api_key::init_producer_id: {
        init_producer_id_request r;
        if (parse_init_producer_id_request(h, r) == parse_error::none)
            write_init_producer_id_response(w, h, error_code::none, 1, 0);
        break;
    }
    case api_key::produce: {
        produce_request_reader pr;
        if (pr.open(h) != parse_error::none) break;
        produce_response_writer pw(w, h, pr.topic_count());
        produce_topic t;
        produce_partition p;
        while (pr.next_topic(t)) {
            pw.begin_topic(t.name, t.partition_count);
            while (pr.next_partition(p)) {
                if (h.api_version < 3 && is_legacy_message_set(p.records.value_or(bytes_view{}))) {
                    const parse_error e = walk_legacy(*p.records);
                    pw.partition({p.index, kafka_error_for(e), 0, -1, 0, std::nullopt});
                    continue;
                }
                record_batch_reader br(p.records.value_or(bytes_view{}));
                record_batch b;
                while (br.next(b))
                    walk_records(b, b.records);
                pw.partition({p.index, kafka_error_for(br.error()), 0, -1, 0, std::nullopt});
            }
        }
        (void)pw.finish();
        break;
    }
    // The consume side's requests (fetch_codec.h), each answered from what was parsed.
    case api_key::fetch: {
        fetch_request r;
        if (parse_fetch_request(h, r) != parse_error::none) break;
        write_fetch_response(w, h, answer_each<fetch_response_partition>(r.topics));
        break;
    }
    case api_key::list_offsets: {
        list_offsets_request r;
        if (parse_list_offsets_request(h, r) != parse_error::none) break;
        write_list_offsets_response(w, h, answer_each<list_offsets_result>(r.topics));
        break;
    }
    case api_key::offset_for_leader_epoch: {
        offset_for_leader_epoch_request r;
        if (parse_offset_for_leader_epoch_request(h, r) != parse_error::none) break;
        write_offset_for_leader_epoch_response(w, h, answer_each<leader_epoch_result>(r.topics));
        break;
    }
    case api_key::describe_configs: {
        describe_configs_request r;
        if (parse_describe_configs_request(h, r) != parse_error::none) break;
        std::vector<describe_configs_result> results;
        for (const auto& res : r.resources)
            results.push_back({error_code::none, std::nullopt, res.type, res.name,
                               {{"cleanup.policy", "delete"}}});
        write_describe_configs_response(w, h, r, results);
        break;
    }
    case api_key::find_coordinator: {
        find_coordinator_request r;
        if (parse_find_coordinator_request(h, r) == parse_error::none)
            write_find_coordinator_response(w, h, error_code::none, 0, "127.0.0.1", 9092);
        break;
    }
    default: as_group_request(h, w); break;
    }
}

// The consumer-group APIs: parsed, run through a fresh coordinator, answered.
inline void as_group_request(const request_header& h, response_writer& w) {
    group_coordinator c;
    switch (h.api_key) {
    case api_key::join_group: {
        join_group_request r;
        join_group_response out;
        if (parse_join_group_request(h, r) != parse_error::none) break;
        if (!c.join(r, "fuzz", h.api_version, 1, 0, out)) {
            auto answers = c.take_answers();
            if (!answers.empty()) out = answers.front().join;
        }
        write_join_group_response(w, h, out);
        break;
    }
    case api_key::sync_group: {
        sync_group_request r;
        int16_t error = 0;
        std::string assignment;
        if (parse_sync_group_request(h, r) != parse_error::none) break;
        (void)c.sync(r, 1, 0, error, assignment);
        write_sync_group_response(w, h, error, assignment);
        break;
    }
    case api_key::heartbeat: {
        heartbeat_request r;
        if (parse_heartbeat_request(h, r) == parse_error::none)
            write_error_only_response(w, h, c.heartbeat(r, 0));
        break;
    }
    case api_key::leave_group: {
        leave_group_request r;
        if (parse_leave_group_request(h, r) == parse_error::none)
            write_leave_group_response(w, h, c.leave(r.group_id, r.members, 0), r.members);
        break;
    }
    case api_key::offset_commit: {
        offset_commit_request r;
        if (parse_offset_commit_request(h, r) == parse_error::none)
            write_offset_commit_response(w, h, r.topics);
        break;
    }
    case api_key::offset_fetch: {
        offset_fetch_request r;
        if (parse_offset_fetch_request(h, r) != parse_error::none) break;
        std::vector<offset_fetch_result_topic> topics;
        for (const auto& t : r.topics.value_or(std::vector<offset_fetch_topic>{})) {
            auto& rt = topics.emplace_back();
            rt.name = t.name;
            for (int32_t p : t.partitions) rt.partitions.push_back({p});
        }
        write_offset_fetch_response(w, h, topics);
        break;
    }
    default: break;
    }
}

inline void one_input(const uint8_t* data, size_t size) {
    const bytes_view in(data, size);
    std::vector<uint8_t> out;
    as_request(in, out);

    record_batch_reader br(in);
    record_batch b;
    while (br.next(b))
        walk_records(b, b.records);
    (void)walk_legacy(in);
    (void)walk_legacy(in, true);

    // The same bytes as a record stream (the CRC would stop nearly every input above).
    if (size >= 1) {
        record_batch fake;
        fake.records_count = data[0];
        fake.base_timestamp = INT64_MAX;
        walk_records(fake, in.subspan(1));
    }

    static decompressor d;
    std::vector<uint8_t> cap(4096);
    for (int c = 1; c <= 4; c++) {
        size_t n = 0;
        if (d.decompress(compression(c), in, cap, n) == parse_error::none) {
            record_batch fake;
            fake.records_count = 1;
            walk_records(fake, bytes_view(cap.data(), n));
            (void)walk_legacy(bytes_view(cap.data(), n), true);
        }
    }
    size_t n = 0;
    (void)d.decompress_lz4_ignoring_header_checksum(in, cap, n);
}

} // namespace sluice::dataplane::kafka::fuzz
