#include "loadgen/sweep.h"

#include <algorithm>
#include <map>
#include <vector>

#include "loadgen/result.h"

namespace switchyard::loadgen {

double ObservedAtObjective(const pb::LoadResult& run, double percentile) {
  return static_cast<double>(FromProto(run.histogram()).ValueAtPercentile(percentile)) / 1e9;
}

namespace {

class Sweeper {
 public:
  Sweeper(const SweepPlan& plan, double peak, const RunAtRate& run, const OnRun& on_run,
          const ShouldStop& should_stop)
      : plan_(plan), peak_(peak), run_(run), on_run_(on_run), should_stop_(should_stop) {}

  pb::SweepResult Run() {
    result_.set_peak_throughput(peak_);
    result_.set_runs_per_step(plan_.runs_per_step);
    result_.set_precision(plan_.precision);
    const unsigned runs = std::max(1u, plan_.runs_per_step);

    // The climb. A rate that met once is taken as met while climbing: only the last of them
    // decides the knee, and it is confirmed below. A miss is confirmed before it ends the climb.
    double met = 0, missed = 0, limited = 0, lowest = 0;
    for (unsigned step = 1; step <= plan_.steps && !Stopped(); ++step) {
      const double rate = peak_ * step / plan_.steps;
      if (rate < 1) break;
      if (lowest == 0) lowest = rate;
      std::string verdict = Decide(rate, 1, "climb");
      if (verdict == "missed") verdict = Decide(rate, runs, "climb");
      if (verdict == "met") {
        met = rate;
        continue;
      }
      (verdict == "missed" ? missed : limited) = rate;
      break;
    }
    // The last rate that met, confirmed by its own median; if it does not hold, the one below it
    // (every rate below it met once while climbing) is the next candidate.
    while (met > 0 && runs > 1 && !Stopped()) {
      if (Decide(met, runs, decisions_[met].phase()) == "met") break;
      missed = met;
      met = HighestMetBelow(met);
    }
    // Where the search stops looking upward: the lowest rate that missed, or at which the load
    // generator stayed the limit (the server's figure there is unknown, so nothing above counts).
    const auto ceiling = [&] {
      return limited > 0 && (missed == 0 || limited < missed) ? limited : missed;
    };
    const auto record = [&](double rate, const std::string& verdict) {
      if (verdict == "met") met = rate;
      if (verdict == "missed") missed = rate;
      if (verdict == "client-limited") limited = rate;
    };
    // Not even the lowest step met the objective: the knee lies below it (on a busy machine a
    // server's p99 can miss 1 ms at an eighth of its peak), so halve the rate a few times.
    for (unsigned halving = 1;
         met == 0 && halving <= plan_.max_halvings && lowest / 2 >= 1 && !Stopped(); ++halving) {
      lowest /= 2;
      record(lowest, Decide(lowest, runs, "halving"));
    }
    // Bisection between the highest rate that met and the ceiling: the knee itself when a rate
    // missed, else a tighter lower bound below the rate the load generator could not drive.
    for (int round = 0; round < 16 && met > 0 && ceiling() > met &&
                        ceiling() - met > plan_.precision * peak_ && !Stopped();
         ++round) {
      const double middle = (met + ceiling()) / 2;
      record(middle, Decide(middle, runs, "bisection"));
    }
    if (missed > 0 && missed < limited) limited = 0;  // the knee was found below it

    // The knee's own runs in full, for the spread the report gives beside it.
    if (met > 0 && !Stopped()) Decide(met, runs, decisions_[met].phase(), /*all=*/true);
    result_.set_highest_rate_meeting_slo(met);
    result_.set_lowest_rate_missing_slo(limited == 0 && missed > met ? missed : 0);
    char note[200] = "";
    if (limited > 0 && met > 0) {
      std::snprintf(note, sizeof note,
                    "the load generator stayed the limit at %.0f/s after %u re-runs: the knee is "
                    "at least %.0f/s",
                    limited, plan_.retries, met);
    } else if (limited > 0) {
      std::snprintf(note, sizeof note,
                    "the load generator stayed the limit at %.0f/s after %u re-runs, and no "
                    "lower rate met the objective",
                    limited, plan_.retries);
    } else if (met > 0 && missed == 0) {
      std::snprintf(note, sizeof note,
                    "every rate up to the closed-loop peak met the objective: the knee is at "
                    "least %.0f/s",
                    met);
    }
    result_.set_knee_is_lower_bound(note[0] != '\0');
    result_.set_knee_note(note);
    for (const double rate : order_) *result_.add_decisions() = decisions_[rate];
    std::stable_sort(runs_.begin(), runs_.end(), [](const auto& a, const auto& b) {
      return a.target_rate() < b.target_rate();
    });
    for (auto& run : runs_) *result_.add_steps() = std::move(run);
    return std::move(result_);
  }

 private:
  bool Stopped() const { return should_stop_ && should_stop_(); }

  // Runs `rate` until it has `wanted` runs that were the server's own, or fewer once a majority of
  // `wanted` agrees (unless `all`), or until the retries for runs the load generator limited are
  // spent; then decides: the majority of the runs counted, a tie a miss.
  std::string Decide(double rate, unsigned wanted, const std::string& phase, bool all = false) {
    auto [found, is_new] = decisions_.try_emplace(rate);
    pb::SweepDecision& decision = found->second;
    if (is_new) {
      decision.set_rate(rate);
      decision.set_phase(phase);
      order_.push_back(rate);
    }
    const unsigned majority = wanted / 2 + 1;
    bool saturated = false;
    while (!saturated && static_cast<unsigned>(decision.observed_seconds_size()) < wanted &&
           (all || std::max(met_runs_[rate], missed_runs_[rate]) < majority) &&
           decision.client_limited_runs() <= plan_.retries && !Stopped()) {
      pb::LoadResult run = run_(rate);
      const double observed = ObservedAtObjective(run, plan_.percentile);
      const bool met = run.failed() == 0 && observed <= plan_.slo_seconds;
      // A run in which the load generator was the limit (busy, or sending late) but that still
      // sent the whole rate and met the objective: a struggling client bunches its sends and
      // reads replies late, and both are charged to the latency, so it can only have made the
      // server look worse, and the met stands. Such a run is never read as a miss.
      const bool met_despite_the_client = met && run.sent_rate() >= 0.99 * run.target_rate();
      std::string verdict;
      if (run.client_limited() && !met_despite_the_client) {
        decision.set_client_limited_runs(decision.client_limited_runs() + 1);
        verdict = "client-limited";
        // Out of CPU at this rate rather than held up for a moment: another run would be too.
        if (run.client_busy_fraction() > kClientBusyLimit && !run.spec().busy_poll()) {
          saturated = true;
        }
      } else {
        decision.add_observed_seconds(observed);
        if (run.failed() > 0) decision.set_runs_with_failures(decision.runs_with_failures() + 1);
        verdict = met ? "met" : "missed";
        (verdict == "met" ? met_runs_ : missed_runs_)[rate] += 1;
      }
      if (on_run_) on_run_(run, verdict);
      runs_.push_back(std::move(run));
    }
    std::vector<double> observed(decision.observed_seconds().begin(),
                                 decision.observed_seconds().end());
    if (observed.empty()) {
      decision.set_verdict("client-limited");
      return decision.verdict();
    }
    std::sort(observed.begin(), observed.end());
    decision.set_median_seconds(observed[observed.size() / 2]);
    decision.set_verdict(met_runs_[rate] > missed_runs_[rate] ? "met" : "missed");
    return decision.verdict();
  }

  double HighestMetBelow(double rate) const {
    double best = 0;
    for (const auto& [other, decision] : decisions_) {
      if (other < rate && decision.verdict() == "met") best = other;
    }
    return best;
  }

  const SweepPlan& plan_;
  const double peak_;
  const RunAtRate& run_;
  const OnRun& on_run_;
  const ShouldStop& should_stop_;
  pb::SweepResult result_;
  std::map<double, pb::SweepDecision> decisions_;  // by rate
  std::map<double, unsigned> met_runs_, missed_runs_;
  std::vector<double> order_;  // rates in the order first decided
  std::vector<pb::LoadResult> runs_;
};

}  // namespace

pb::SweepResult Sweep(const SweepPlan& plan, double peak, const RunAtRate& run, const OnRun& on_run,
                      const ShouldStop& should_stop) {
  return Sweeper(plan, peak, run, on_run, should_stop).Run();
}

}  // namespace switchyard::loadgen
