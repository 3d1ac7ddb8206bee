// The switchyard binary: one entry point for every tool, chosen by subcommand.
#include <CLI/CLI.hpp>
#include <iostream>

#include "loadgen/load_command.h"
#include "servers/serve.h"
#include "switchcost/switchcost.h"

int main(int argc, char** argv) {
  CLI::App app{"Switchyard: what processes, threads, fibers and coroutines really cost"};
  app.set_version_flag("--version", SWITCHYARD_VERSION);
  app.require_subcommand(1);

  switchyard::ServerConfig config;
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Serve the Redis-protocol echo/KV service with one concurrency model.\n"
      "Prints 'switchyard ready: ...' once it accepts connections; SIGINT/SIGTERM stop it after\n"
      "the replies it owes (a second signal stops it at once).");
  switchyard::AddServeFlags(*serve, config);

  switchyard::loadgen::LoadCommandOptions load_options;
  CLI::App* load = switchyard::loadgen::AddLoadCommand(app, load_options);

  switchyard::switchcost::Options switchcost_options;
  CLI::App* switchcost = app.add_subcommand(
      "switchcost",
      "Measure what one switch, one creation and one unit alive cost for processes, threads,\n"
      "fibers, ucontext and coroutines, beside a call and a system call; print a table.");
  switchyard::switchcost::AddFlags(*switchcost, switchcost_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Bad flags exit 2, as the servers do for any configuration they cannot honour.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (serve->parsed()) return switchyard::Serve(config);
  if (load->parsed()) return switchyard::loadgen::RunLoadCommand(*load, load_options);
  if (switchcost->parsed()) return switchyard::switchcost::Run(switchcost_options);
  return 0;
}
