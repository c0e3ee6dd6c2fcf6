#pragma once
// `sluicectl export TABLE --format jsonl|csv|parquet --out FILE [--from T] [--to T]
// [--data-dir DIR] [--progress|--no-progress]`: writes a table's rows to a file. The export
// runs in sluicectl itself, reading the data dir through the storage export API
// (storage/export.h), so it needs read access to the data dir and works with or without a
// running sluiced; the data dir comes from --data-dir or the daemon's `status` reply.
#include <string>

namespace CLI {
class App;
}

namespace sluice::control {

// Declares the subcommand on `app`. The references must outlive app.parse(): the global
// --socket and --timeout-ms values are read when the command runs, and `exit_code` gets
// its outcome (0 ok, 1 failed with one line on stderr, 2 usage).
void add_export_command(CLI::App& app, const std::string& socket_path, const int& timeout_ms,
                        int& exit_code);

} // namespace sluice::control
