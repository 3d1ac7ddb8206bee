#include "servers/serve.h"

#include <signal.h>

#include <iostream>
#include <stdexcept>

#include "servers/common/commands.h"
#include "servers/common/metrics.h"
#include "servers/common/net.h"
#include "servers/common/shutdown_signal.h"
#include "servers/common/store.h"
#include "servers/coroutine/coroutine_server.h"
#include "servers/fiber/fiber_server.h"
#include "servers/grpc/grpc_server.h"
#include "servers/prefork/prefork_server.h"
#include "servers/thread_per_conn/thread_per_conn_server.h"
#include "servers/thread_pool/thread_pool_server.h"

namespace switchyard {

int Serve(ServerConfig config) {
  using RunModel = int (*)(ServerContext&, int listen_fd, int signal_fd);
  RunModel run = nullptr;
  // A model with worker processes forks them before the metrics endpoint starts its threads: a
  // child forked while other threads run inherits the locks they held, with no one to release
  // them (see servers/prefork/prefork_server.cc).
  using StartProcesses = void (*)(ServerContext&, int listen_fd);
  StartProcesses start_processes = nullptr;
  if (config.model == "prefork") {
    run = RunPreforkServer;
    start_processes = StartPreforkPool;
  }
  if (config.model == "coroutine") run = RunCoroutineServer;
  if (config.model == "thread_per_conn") run = RunThreadPerConnServer;
  if (config.model == "fiber") run = RunFiberServer;
  if (config.model == "grpc") run = RunGrpcServer;
  if (config.model == "thread_pool") run = RunThreadPoolServer;
  try {
    ValidateServerConfig(config);
    if (run == nullptr)
      throw std::invalid_argument("model '" + config.model + "' is not built yet");
    // A client that hangs up mid-reply must cost us an EPIPE, never the process.
    signal(SIGPIPE, SIG_IGN);
    const int signal_fd = InstallShutdownSignal();
    // The store comes first: it is the shared mapping every thread or process will use.
    auto store = Store::Create(config.store_bytes);
    Metrics metrics(config.model, CommandLabels());
    const int listen_fd = ListenTcp(config.bind, config.port);
    ServerContext context{config, *store, metrics};
    if (start_processes != nullptr) start_processes(context, listen_fd);
    const std::uint16_t metrics_port = metrics.Serve(config.bind, config.metrics_port);
    AnnounceReady(config.model, LocalPort(listen_fd), metrics_port);
    return run(context, listen_fd, signal_fd);
  } catch (const std::invalid_argument& e) {
    std::cerr << "switchyard serve: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "switchyard serve: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace switchyard
