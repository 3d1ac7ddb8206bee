// The peers' units (docs/peers.md), measured by programs in their own runtimes: goroutines
// (switchcost/go/), asyncio tasks, greenlets and Python threads (switchcost/python/). Each prints
// the same figures as the C++ rows, by the same method (measure.h), as JSON; this runs them.
#pragma once

#include <vector>

#include "switchcost/measure.h"
#include "switchcost/switchcost.h"

namespace switchyard::switchcost {

// Every figure the peers' programs give, with the budget and units alive of `options`. A program
// that cannot run (its runtime is not installed) is left out with one line on stderr that names
// the Debian package; its rows then show "-". A sanitizer build runs none of them.
std::vector<Figure> MeasurePeerUnits(const Options& options);

}  // namespace switchyard::switchcost
