// `switchyard serve`: builds what every model shares (store, metrics, listening socket) and hands
// it to the chosen model, found in the registry (servers/models.h).
#pragma once

#include "servers/common/config.h"

namespace CLI {
class App;
}

namespace switchyard {

// Adds serve's flags to `serve` (a CLI11 subcommand): the server flags, with --model checked
// against the registry, and --list-models [--format table|tsv|json], which prints the registry and
// exits 0 without serving.
void AddServeFlags(CLI::App& serve, ServerConfig& config);

// Returns the process exit code. Errors (bad flag, port in use) are one line on stderr and a
// non-zero code.
int Serve(ServerConfig config);

}  // namespace switchyard
