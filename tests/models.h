// The RESP models every suite runs against (conformance, faults). A new model joins every suite by
// being added here, once.
#pragma once

#include <string>
#include <vector>

namespace switchyard::testing {

inline const std::vector<std::string> kModels = {"coroutine", "thread_per_conn", "fiber"};

}  // namespace switchyard::testing
