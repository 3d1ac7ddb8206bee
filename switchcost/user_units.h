// The units user code switches itself: Boost.Context fibers, ucontext, C++20 coroutines; and the
// two baselines a switch is set beside: a function call and a system call.
#pragma once

#include <cstddef>
#include <vector>

#include "switchcost/measure.h"

namespace switchyard::switchcost {

// One switch of each, on one CPU; the call and the system call as baselines.
std::vector<Figure> MeasureUserSwitches(const Budget& budget);

// Fiber create + run to its end + destroy; coroutine create + run to its end + destroy.
std::vector<Figure> MeasureUserCreation(const Budget& budget);

// PSS per fiber (for each stack size) and per coroutine frame with `alive` of them suspended at
// once, each count measured `runs` times in a fresh child process.
std::vector<Figure> MeasureUserMemory(const std::vector<int>& alive, int runs);

}  // namespace switchyard::switchcost
