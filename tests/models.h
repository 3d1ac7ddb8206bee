// The models the suites run against, read from the registry (servers/models.cc) through the binary
// under test, `switchyard serve --list-models --format=tsv`: a model joins every suite by its entry
// there, and the suites test exactly what the binary serves.
#pragma once

#include <string>
#include <vector>

namespace switchyard::testing {

struct ListedModel {
  std::string name;
  std::string protocol;      // "resp" or "grpc"
  std::string scheduled_by;  // "kernel" or "user-space"
  std::string runtime;       // "c++", or a peer's ("go", "python"): a program of its own
};

// Every model, in the registry's order. Exits the test program with a message if the binary cannot
// list them, so that a broken listing never passes as a suite with no models.
const std::vector<ListedModel>& ListedModels();

// The names of every model that speaks `protocol` ("resp": the conformance, commands and fault
// suites); or of every model, for an empty `protocol`.
std::vector<std::string> ModelNames(const std::string& protocol = "");

// Whether the kernel decides which of `model`'s connections runs next (no user-space switches).
bool KernelScheduled(const std::string& model);

// Whether `model` is a peer (docs/peers.md): a program of its own that `switchyard serve` starts
// as its child, so the process that accepts and serves is that child, not the one started.
bool IsPeer(const std::string& model);

}  // namespace switchyard::testing
