// sluiced's TOML configuration (control/config): any file gives a config or one error
// message, never a crash or an exception.
#include "control/config.h"
#include "tests/fuzz/fuzz_target.h"

namespace sluice::fuzz {

void fuzz_config(const uint8_t* data, size_t size) {
    static const std::string path = scratch_dir() + "/sluiced.toml";
    if (!write_file(path, std::string_view(reinterpret_cast<const char*>(data), size))) return;
    std::string arg0 = "sluiced", arg1 = "--config", arg2 = path;
    char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
    auto c = control::load_config(3, argv);
    if (c.ok()) {
        (void)control::restart_required(control::daemon_config{}, c.value());
    } else {
        SLUICE_FUZZ_CHECK(!c.err().message.empty());
    }
}

} // namespace sluice::fuzz
