#pragma once

#include "servers/common/server_context.h"

namespace switchyard {

// Stackful fibers (Boost.Context) on Asio event loops: one io_context per thread (--threads), one
// fiber per connection, stacks of --stack-kb (default kDefaultFiberStackKb). Serves `listen_fd`
// until SIGINT/SIGTERM; returns the exit code.
int RunFiberServer(ServerContext& context, int listen_fd, int signal_fd);

inline constexpr std::size_t kDefaultFiberStackKb = 128;  // Boost.Context's own default

}  // namespace switchyard
