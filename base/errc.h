#pragma once
#include <cstdint>
#include <string_view>

namespace sluice {

enum class errc : uint8_t {
    internal,
    invalid_argument,
    bad_config,
    not_found,
    io_error,
    no_space,
    permission_denied,
    corrupt,
    unsupported,
    busy,
};

constexpr std::string_view errc_name(errc e) {
    switch (e) {
    case errc::internal: return "internal";
    case errc::invalid_argument: return "invalid_argument";
    case errc::bad_config: return "bad_config";
    case errc::not_found: return "not_found";
    case errc::io_error: return "io_error";
    case errc::no_space: return "no_space";
    case errc::permission_denied: return "permission_denied";
    case errc::corrupt: return "corrupt";
    case errc::unsupported: return "unsupported";
    case errc::busy: return "busy";
    }
    return "unknown";
}

} // namespace sluice
