#pragma once

#include "servers/common/server_context.h"

namespace switchyard {

// The gRPC baseline: kv.proto's Kv service on gRPC's C++ callback API, against the same store,
// plus gRPC's standard health service. It accepts connections on `listen_fd` itself and hands
// each one to gRPC, which runs every call on its own threads. Serves until SIGINT/SIGTERM, then
// lets the calls in flight finish; returns the exit code.
int RunGrpcServer(ServerContext& context, int listen_fd, int signal_fd);

}  // namespace switchyard
