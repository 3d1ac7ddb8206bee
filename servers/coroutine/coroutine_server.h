#pragma once

#include "servers/common/server_context.h"

namespace switchyard {

// C++20 stackless coroutines on Asio: one io_context per thread (--threads), one coroutine per
// connection. Serves `listen_fd` until SIGINT/SIGTERM; returns the exit code.
int RunCoroutineServer(ServerContext& context, int listen_fd, int signal_fd);

}  // namespace switchyard
