// The merge of one run's workers (merge.h): first the checks that they are one run and all of it,
// then the sums.
#include "loadgen/merge.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <functional>
#include <map>
#include <stdexcept>

#include "loadgen/histogram.h"
#include "loadgen/result.h"

namespace switchyard::loadgen {
namespace {

// What every worker of a run was asked alike: the spec without what each process chose for
// itself (its threads, the spin window its machine's sleeps taught it).
pb::LoadSpec SharedSpec(const pb::LoadSpec& spec) {
  pb::LoadSpec shared = spec;
  shared.clear_threads();
  shared.clear_spin_seconds();
  return shared;
}

// A result written before workers existed is its run's only worker.
unsigned WorkersOf(const pb::LoadResult& result) { return std::max(1u, result.workers()); }

void CheckOneRun(const std::vector<pb::LoadResult>& results,
                 const std::function<std::string(std::size_t)>& name) {
  const pb::LoadResult& first = results[0];
  const unsigned workers = WorkersOf(first);
  std::map<unsigned, std::size_t> seen;  // worker index -> which result
  for (std::size_t i = 0; i < results.size(); ++i) {
    const pb::LoadResult& result = results[i];
    const auto refuse = [&](const std::string& why) {
      throw std::invalid_argument(name(i) + " " + why);
    };
    if (result.processes() > 1) refuse("is a merged result already: merge the workers' own");
    if (result.histogram_layout() != first.histogram_layout()) {
      refuse("has histograms of another geometry (" + result.histogram_layout() + ") than " +
             name(0) + " (" + first.histogram_layout() + "): they do not add bucket for bucket");
    }
    if (result.run_id() != first.run_id()) {
      refuse("is of run '" + result.run_id() + "', " + name(0) + " of run '" + first.run_id() +
             "': results of different runs do not merge");
    }
    if (WorkersOf(result) != workers) {
      refuse("says its run had " + std::to_string(WorkersOf(result)) + " workers, " + name(0) +
             " says " + std::to_string(workers));
    }
    if (result.start_at() != first.start_at()) {
      refuse("started at '" + result.start_at() + "', " + name(0) + " at '" + first.start_at() +
             "': the workers of one run start together");
    }
    std::string difference;
    google::protobuf::util::MessageDifferencer differencer;
    differencer.ReportDifferencesToString(&difference);
    if (!differencer.Compare(SharedSpec(first.spec()), SharedSpec(result.spec()))) {
      refuse("was asked for another load than " + name(0) + ": " + difference);
    }
    const unsigned index = result.worker_index();
    if (index >= workers) {
      refuse("is worker " + std::to_string(index) + ", beyond the run's " +
             std::to_string(workers));
    }
    if (const auto other = seen.find(index); other != seen.end()) {
      refuse("is worker " + std::to_string(index) + " again (" + name(other->second) +
             " is too): each worker's result counts once");
    }
    seen[index] = i;
  }
  for (unsigned index = 0; index < workers; ++index) {
    if (!seen.contains(index)) {
      throw std::invalid_argument("worker " + std::to_string(index) + " of the run's " +
                                  std::to_string(workers) +
                                  " is missing: a merge of part of a run would report part of "
                                  "its load as all of it");
    }
  }
}

}  // namespace

pb::LoadResult MergeResults(const std::vector<pb::LoadResult>& results,
                            const std::vector<std::string>& names) {
  if (results.empty()) throw std::invalid_argument("nothing to merge");
  CheckOneRun(results, [&](std::size_t i) {
    return i < names.size() ? names[i] : "result " + std::to_string(i + 1);
  });
  pb::LoadResult merged;
  *merged.mutable_spec() = results[0].spec();
  merged.mutable_spec()->set_threads(0);
  merged.set_run_id(results[0].run_id());
  merged.set_workers(WorkersOf(results[0]));
  merged.set_start_at(results[0].start_at());
  merged.set_histogram_layout(results[0].histogram_layout());
  Histogram latency, uncorrected, lag, pickup;
  std::string reasons;
  std::vector<const pb::LoadResult*> by_index(results.size());
  for (const pb::LoadResult& result : results) by_index[result.worker_index()] = &result;
  for (const pb::LoadResult* part : by_index) {
    const pb::LoadResult& result = *part;
    pb::LoadSpec* spec = merged.mutable_spec();
    spec->set_threads(spec->threads() + result.spec().threads());
    spec->set_spin_seconds(std::max(spec->spin_seconds(), result.spec().spin_seconds()));
    // The workers ran side by side: rates and counts add up, the span is the longest.
    merged.set_target_rate(merged.target_rate() + result.target_rate());
    merged.set_throughput(merged.throughput() + result.throughput());
    merged.set_sent_rate(merged.sent_rate() + result.sent_rate());
    merged.set_requests(merged.requests() + result.requests());
    merged.set_errors(merged.errors() + result.errors());
    merged.set_failed(merged.failed() + result.failed());
    merged.set_client_cpu_seconds(merged.client_cpu_seconds() + result.client_cpu_seconds());
    merged.set_client_spin_seconds(merged.client_spin_seconds() + result.client_spin_seconds());
    merged.set_client_run_queue_wait_seconds(merged.client_run_queue_wait_seconds() +
                                             result.client_run_queue_wait_seconds());
    merged.set_machine_steal_fraction(
        std::max(merged.machine_steal_fraction(), result.machine_steal_fraction()));
    // On different machines each busy fraction is of its own CPUs: the busiest says most.
    merged.set_client_busy_fraction(
        std::max(merged.client_busy_fraction(), result.client_busy_fraction()));
    merged.set_duration_seconds(std::max(merged.duration_seconds(), result.duration_seconds()));
    if (merged.connections_lost() == 0) merged.set_first_loss(result.first_loss());
    merged.set_connections_lost(merged.connections_lost() + result.connections_lost());
    if (result.client_limited()) {
      merged.set_client_limited(true);
      reasons +=
          (reasons.empty() ? "" : "; ") + ("worker " + std::to_string(result.worker_index()) +
                                           ": " + result.client_limited_reason());
    }
    latency.Merge(FromProto(result.histogram()));
    uncorrected.Merge(FromProto(result.histogram_uncorrected()));
    lag.Merge(FromProto(result.histogram_schedule_lag()));
    pickup.Merge(FromProto(result.histogram_reply_pickup()));
    pb::WorkerPart* own = merged.add_parts();
    own->set_worker_index(result.worker_index());
    own->set_seed(result.seed());
    own->set_connections(result.worker_connections());
    own->set_target_rate(result.target_rate());
    own->set_requests(result.requests());
    own->set_throughput(result.throughput());
    own->set_client_limited(result.client_limited());
  }
  merged.set_processes(static_cast<unsigned>(results.size()));  // one a worker, as checked
  merged.set_client_limited_reason(reasons);
  SetHistograms(latency, uncorrected, lag, pickup, &merged);
  SetDelayedAckStall(latency, &merged);
  return merged;
}

}  // namespace switchyard::loadgen
