#include "servers/serve.h"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "servers/common/commands.h"
#include "servers/common/metrics.h"
#include "servers/common/net.h"
#include "servers/common/shutdown_signal.h"
#include "servers/common/store.h"
#include "servers/models.h"

namespace switchyard {

void AddServeFlags(CLI::App& serve, ServerConfig& config) {
  AddServerFlags(serve, config, ModelNames());
  auto format = std::make_shared<std::string>("table");
  // --format comes before --list-models: CLI11 runs option callbacks in the order the options were
  // added, so --format's value is set when --list-models prints. Both run before CLI11 checks that
  // --model was given, so --list-models needs none.
  serve
      .add_option("--format", *format,
                  "With --list-models: table (for people), tsv (no header: name, protocol, "
                  "scheduled by, how it runs) or json (for scripts)")
      ->check(
          CLI::IsMember(std::vector<std::string>(std::begin(kListFormats), std::end(kListFormats))))
      ->capture_default_str();
  serve.add_flag_callback(
      "--list-models",
      [format] {
        PrintModels(std::cout, *format);
        throw CLI::Success();  // exits 0 without serving, as --help does
      },
      "Print every model --model accepts (the registry, servers/models.cc) and exit");
}

int Serve(ServerConfig config) {
  const Model* model = FindModel(config.model);
  try {
    // --model's check admits registered names only; this guards callers that bypass the flags.
    if (model == nullptr) {
      throw std::invalid_argument("unknown model '" + config.model + "' (see --list-models)");
    }
    ValidateServerConfig(config);
    // A client that hangs up mid-reply must cost us an EPIPE, never the process.
    signal(SIGPIPE, SIG_IGN);
    const int signal_fd = InstallShutdownSignal();
    // The store comes first: it is the shared mapping every thread or process will use.
    auto store = Store::Create(config.store_bytes);
    Metrics metrics(config.model, CommandLabels());
    if (model->protocol == Protocol::kResp && model->peer == nullptr) metrics.ExportIoBufferBytes();
    const int listen_fd = ListenTcp(config.bind, config.port);
    ServerContext context{config, *store, metrics};
    // A model with worker processes forks them before the metrics endpoint starts its threads: a
    // child forked while other threads run inherits the locks they held, with no one to release
    // them (see servers/prefork/prefork_server.cc).
    if (model->start_processes != nullptr) model->start_processes(context, listen_fd);
    const std::uint16_t metrics_port = metrics.Serve(config.bind, config.metrics_port);
    AnnounceReady(config.model, LocalPort(listen_fd), metrics_port);
    return model->run(context, listen_fd, signal_fd);
  } catch (const std::invalid_argument& e) {
    std::cerr << "switchyard serve: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "switchyard serve: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace switchyard
