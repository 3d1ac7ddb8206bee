// Fork and copy-on-write: what fork costs as the parent's resident memory grows, what starting a
// program by fork+exec, posix_spawn and vfork costs, and what the page faults that fork leaves
// behind cost beside a plain first touch and a plain copy.
#pragma once

#include <vector>

#include "switchcost/measure.h"

namespace switchyard::switchcost {

// Every figure of the fork part (unit "process"): operation "fork" (fork+exit+wait from parents
// of growing resident size; fork+exec, posix_spawn and vfork from a 64 MiB parent), "page-fault",
// "copy" and "cow-fault" per 4 KiB page (and per 2 MiB huge page where transparent huge pages can
// be had), and "memory" (PSS of parent and child before and after the child unshares 64 MiB).
// Each is measured in a helper process that grows itself, so this process stays small. `quick`
// picks the smaller largest parent when the full one would take too long. Throws
// std::runtime_error if a fork, an mmap or a helper process fails.
std::vector<Figure> MeasureFork(const Budget& budget, bool quick);

}  // namespace switchyard::switchcost
