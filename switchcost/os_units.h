// Processes and threads: the units the kernel schedules. Their switch, its indirect cost, their
// creation and their memory.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "switchcost/measure.h"

namespace switchyard::switchcost {

// Ping-pong between two processes and between two threads, by futex and by pipe, on one CPU
// and across two (when the process may use two).
std::vector<Figure> MeasureOsSwitches(const Budget& budget);

// The same futex ping-pong on one CPU while each side touches its own working set of each size
// between switches (Li, Ding and Shen, 2007): what cache and TLB refill add to a switch. Each
// figure is one switch plus one pass; its note gives the difference from the pass alone.
std::vector<Figure> MeasureOsIndirect(const Budget& budget,
                                      const std::vector<std::size_t>& working_set_bytes);

// What each side of a ping-pong does between switches: the maker runs on that side after the
// fork, so that a child process touches memory of its own; what it returns runs once a round trip.
using PassMaker = std::function<std::function<void()>()>;

// Seconds that `round_trips` round trips of the pinned futex ping-pong of MeasureOsSwitches take
// between two processes (or two threads) on `cpu`, each side running its pass between switches,
// after a warm-up; timed as the pinned figures are (CPU time of both sides). A round trip is two
// switches and two passes.
double TimePinnedFutexPingPong(bool processes, int cpu, const PassMaker& make_pass,
                               std::uint64_t round_trips);

// fork + _exit + waitpid, and pthread_create + pthread_join.
std::vector<Figure> MeasureOsCreation(const Budget& budget);

// PSS and kernel memory (kernel stacks + page tables) per process and per thread with `alive`
// of them alive at once, each count measured `runs` times in a fresh child process.
std::vector<Figure> MeasureOsMemory(const std::vector<int>& alive, int runs);

// Runs `measure` in a forked child, so that what it allocates and frees cannot lower the next
// measurement's figures, and returns what it returned. Throws if the child fails.
std::vector<double> RunInChild(const std::function<std::vector<double>()>& measure);

}  // namespace switchyard::switchcost
