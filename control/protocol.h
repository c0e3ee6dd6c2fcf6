#pragma once
// The control protocol: newline-delimited JSON over a local Unix stream socket.
// A request is one JSON object on one line, `{"v":1,"cmd":"stats"}`; the reply is one
// JSON object on one line with `ok` first and, when `ok` is false, `error`.
// See docs/CONTROL.md for every command and its fields.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/limits.h"
#include "base/result.h"

namespace sluice::control {

using json = nlohmann::json;

/// The protocol version this build speaks; requests may omit `v` (it then means this).
inline constexpr int protocol_version = 1;

/// Where sluiced listens unless told otherwise; sluicectl also reads $SLUICE_SOCKET.
inline constexpr std::string_view default_socket_path = limits::control_socket_default;

/// How long sluicectl waits for a reply unless told otherwise.
inline constexpr int request_timeout_ms_default = 10'000;

/// Serializes a reply body as one line (no trailing newline): `ok` first (true unless
/// the body sets it), then `error` if present, then the other keys. A body that is not
/// an object is carried under `result`; null is an empty body. Invalid UTF-8 in strings
/// is replaced rather than thrown on, so any handler output can be sent.
std::string encode_reply(const json& body);

/// `{"ok":false,"error":MESSAGE}` as one line, the shape of every failure reply.
std::string encode_error(std::string_view message);

/// Parses and validates one request line: a JSON object with a string `cmd` and, if
/// present, `v` equal to protocol_version. The error message is the one to send back.
result<json> parse_request(std::string_view line);

/// Blocking client: connects to `socket_path`, sends `req` (adding `v` if absent) as one
/// line, and returns the parsed reply object, whether its `ok` is true or false. Fails
/// (with a message naming the cause and the fix) when the socket cannot be reached, the
/// reply does not arrive within `timeout_ms`, or the reply is not a JSON object.
result<json> request(const std::string& socket_path, const json& req, int timeout_ms);

/// Renders a `stats` reply as readable text: the headline (uptime, watermark, its delay
/// and lag), the totals, the rates, the latency table, a per-core table per role with
/// whatever numeric keys each core reports, the ring occupancy table, lag and control. Unknown or malformed parts are skipped or shown
/// generically; it never throws on a well-formed JSON object.
std::string render_stats(const json& reply);

/// The `sluicectl watch` frame of a `stats` reply: rates over all cores, dead letters
/// per reason per second, latency percentiles, and per core events/s, bytes/s and ring
/// lag; `now_ms` is the wall clock shown in the title. Never throws on a JSON object.
std::string render_watch(const json& reply, int64_t now_ms);

/// Renders any other reply (status, flush, shutdown) as `key: value` lines, nested
/// objects flattened with dots; `ok` and `v` are left out.
std::string render_fields(const json& reply);

} // namespace sluice::control
