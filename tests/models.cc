#include "tests/models.h"

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "tests/server_process.h"

namespace switchyard::testing {

const std::vector<ListedModel>& ListedModels() {
  static const std::vector<ListedModel> models = [] {
    std::string output;
    const int code = RunBinary({"serve", "--list-models", "--format=tsv"}, &output);
    std::vector<ListedModel> listed;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      ListedModel model;
      if (std::getline(fields, model.name, '\t') && std::getline(fields, model.protocol, '\t') &&
          std::getline(fields, model.scheduled_by, '\t')) {
        std::string runs;  // how it runs, in words: for people
        std::getline(fields, runs, '\t');
        if (!std::getline(fields, model.runtime, '\t')) model.runtime = "c++";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
        // A sanitizer build tests our C++: a peer is a program in another runtime, left to the
        // release build's suites.
        if (model.runtime != "c++") continue;
#endif
        listed.push_back(model);
      }
    }
    if (code != 0 || listed.empty()) {
      std::cerr << "cannot read the models from `switchyard serve --list-models --format=tsv` "
                   "(exit code "
                << code << "): " << output << "\n";
      std::exit(1);
    }
    return listed;
  }();
  return models;
}

std::vector<std::string> ModelNames(const std::string& protocol) {
  std::vector<std::string> names;
  for (const ListedModel& model : ListedModels()) {
    if (protocol.empty() || model.protocol == protocol) names.push_back(model.name);
  }
  return names;
}

namespace {

const ListedModel& Listed(const std::string& model) {
  for (const ListedModel& listed : ListedModels()) {
    if (listed.name == model) return listed;
  }
  std::cerr << "no model '" << model << "' in the registry\n";
  std::exit(1);
}

}  // namespace

bool KernelScheduled(const std::string& model) { return Listed(model).scheduled_by == "kernel"; }

bool IsPeer(const std::string& model) { return Listed(model).runtime != "c++"; }

}  // namespace switchyard::testing
