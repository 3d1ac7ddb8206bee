// How `switchyard serve` runs a peer, a server written in another runtime (docs/peers.md): the
// registry's start_processes and run for every peer model.
#pragma once

#include "servers/common/server_context.h"

namespace switchyard {

// Starts the peer of the model being served (context.config.model) with the listening socket, a
// readiness pipe and the metrics slot as inherited descriptors, and returns once it serves.
// Throws std::runtime_error with a one-line reason when its program is missing (naming the Debian
// package) or it exits or stays silent instead of getting ready.
void StartPeer(ServerContext& context, int listen_fd);

// Supervises the peer until the shutdown signal, which it passes on; returns its exit status.
int RunPeer(ServerContext& context, int listen_fd, int signal_fd);

}  // namespace switchyard
