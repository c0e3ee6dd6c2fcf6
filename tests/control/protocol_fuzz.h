#pragma once
// One fuzz input through everything that reads untrusted control-plane bytes: the request
// parser (what the server does with a line from a client), the reply encoder, and the
// renderers and Prometheus exporter sluicectl/sluiced run on any JSON object (a reply
// from a different or broken sluiced). None may crash or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/observability.h"
#include "control/protocol.h"

namespace sluice::control::fuzz {

inline void one_input(const uint8_t* data, size_t size) {
    std::string_view line(reinterpret_cast<const char*>(data), size);
    auto req = parse_request(line);
    if (req.ok()) (void)encode_reply(req.value());
    (void)encode_error(line);
    json any = json::parse(line, nullptr, false);
    if (any.is_discarded() || !any.is_object()) return;
    (void)encode_reply(any);
    (void)render_stats(any);
    (void)render_watch(any, 0);
    (void)render_fields(any);
    exposition e;
    kafka_metrics(e, any.value("kafka", json()));
    (void)e.text();
}

} // namespace sluice::control::fuzz
