// `switchyard load merge`: the results of one run's workers (`load --workers N --worker-index I`),
// made into the result of the run, exactly. Only results that belong together merge: the same run
// id, load, start and histogram geometry, and every worker of the run once.
#pragma once

#include <string>
#include <vector>

#include "proto/loadgen.pb.h"

namespace switchyard::loadgen {

// Merges the workers' results: requests, errors and rates add up; histograms add bucket for bucket
// and the percentiles are recomputed from them (each worker corrected its latencies for
// coordinated omission against its own schedule, so the sum is corrected too). `names` (file
// names, or empty) say in an error which result does not fit. Throws std::invalid_argument when
// the results are not the whole of one run.
pb::LoadResult MergeResults(const std::vector<pb::LoadResult>& results,
                            const std::vector<std::string>& names = {});

}  // namespace switchyard::loadgen
