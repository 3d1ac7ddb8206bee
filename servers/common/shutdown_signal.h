// SIGINT/SIGTERM handling every model shares: the first signal asks for a graceful stop (finish
// the replies owed, then exit), a second one exits at once.
#pragma once

namespace switchyard {

// Installs the handlers and returns a descriptor that becomes readable on the first signal (a
// self-pipe), so a model can wait for it with poll, epoll or Asio beside its sockets.
int InstallShutdownSignal();

}  // namespace switchyard
