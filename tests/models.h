// The RESP models every suite runs against (conformance, faults). A new model joins every suite by
// being added here, once.
#pragma once

#include <string>
#include <vector>

namespace switchyard::testing {

inline const std::vector<std::string> kModels = {"prefork", "thread_per_conn", "thread_pool",
                                                 "fiber", "coroutine"};

}  // namespace switchyard::testing
