#pragma once

#include "servers/common/server_context.h"

namespace switchyard {

// One OS thread per connection with blocking I/O (--stack-kb sets each thread's stack). Serves
// `listen_fd` until SIGINT/SIGTERM; returns the exit code.
int RunThreadPerConnServer(ServerContext& context, int listen_fd, int signal_fd);

}  // namespace switchyard
