#pragma once

#include "servers/common/server_context.h"

namespace switchyard {

// Apache's prefork MPM: a pool of --workers processes (default 256), each serving one connection
// at a time with blocking I/O. Two steps, because forking must happen while this process still
// has a single thread (see prefork_server.cc):
//
// Forks the pool's supervisor, which forks the workers. Call before anything starts a thread
// (before Metrics::Serve). Throws std::runtime_error if it cannot fork.
void StartPreforkPool(ServerContext& context, int listen_fd);

// Waits for SIGINT/SIGTERM, then has the supervisor drain and stop the pool; returns the exit
// code.
int RunPreforkServer(ServerContext& context, int listen_fd, int signal_fd);

}  // namespace switchyard
