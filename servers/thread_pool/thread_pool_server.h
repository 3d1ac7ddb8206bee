#pragma once

#include "servers/common/server_context.h"

namespace switchyard {

// Half-sync/half-async: one reactor thread (epoll) hands ready connections through a queue to a
// fixed pool of --workers threads (default 4 a core), which parse, run and reply, then give the
// connection back. Serves `listen_fd` until SIGINT/SIGTERM; returns the exit code.
int RunThreadPoolServer(ServerContext& context, int listen_fd, int signal_fd);

}  // namespace switchyard
