// A run's result, as proto/loadgen.proto's LoadResult: built from what the threads measured
// (MakeResult, which also judges whether the load generator rather than the server was the limit),
// merged exactly across processes and machines (MergeResults: counts add, histograms merge bucket
// by bucket, percentiles are recomputed), and written: protobuf JSON for other tools, a table for
// a person.
#include "loadgen/result.h"

#include <google/protobuf/util/json_util.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "loadgen/stall_signature.h"

namespace switchyard::loadgen {
namespace {

// CPUs this process may run on (taskset limits it): the ceiling of its own CPU use.
unsigned UsableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return std::thread::hardware_concurrency();
  return static_cast<unsigned>(CPU_COUNT(&set));
}

void PrintLatencyRow(std::ostream& out, const char* name, const pb::Latency& latency) {
  char line[256];
  std::snprintf(line, sizeof line, "%-14s %9s %9s %9s %9s %9s %9s %9s\n", name,
                FormatSeconds(latency.p50()).c_str(), FormatSeconds(latency.p90()).c_str(),
                FormatSeconds(latency.p99()).c_str(), FormatSeconds(latency.p999()).c_str(),
                FormatSeconds(latency.p9999()).c_str(), FormatSeconds(latency.max()).c_str(),
                FormatSeconds(latency.mean()).c_str());
  out << line;
}

}  // namespace

void FillLatency(const Histogram& histogram, pb::Latency* latency) {
  const auto seconds = [&](double percentile) {
    return static_cast<double>(histogram.ValueAtPercentile(percentile)) / 1e9;
  };
  latency->set_p50(seconds(50));
  latency->set_p90(seconds(90));
  latency->set_p99(seconds(99));
  latency->set_p999(seconds(99.9));
  latency->set_p9999(seconds(99.99));
  latency->set_max(static_cast<double>(histogram.max()) / 1e9);
  latency->set_mean(histogram.mean() / 1e9);
}

void SetHistograms(const Histogram& latency, const Histogram& uncorrected,
                   const Histogram& schedule_lag, const Histogram& reply_pickup,
                   pb::LoadResult* result) {
  FillLatency(latency, result->mutable_latency());
  FillLatency(uncorrected, result->mutable_latency_uncorrected());
  FillLatency(schedule_lag, result->mutable_schedule_lag());
  FillLatency(reply_pickup, result->mutable_reply_pickup());
  ToProto(latency, result->mutable_histogram());
  ToProto(uncorrected, result->mutable_histogram_uncorrected());
  ToProto(schedule_lag, result->mutable_histogram_schedule_lag());
  ToProto(reply_pickup, result->mutable_histogram_reply_pickup());
}

void SetDelayedAckStall(const Histogram& latency, pb::LoadResult* result) {
  const StallSignature stall = DelayedAckStall(latency);
  result->set_delayed_ack_stall(stall.fired);
  result->set_delayed_ack_stall_fraction(stall.fraction);
  result->set_delayed_ack_stall_message(stall.message);
}

void ToProto(const Histogram& histogram, pb::Histogram* message) {
  message->set_total(histogram.total());
  message->set_min_ns(histogram.min());
  message->set_max_ns(histogram.max());
  message->set_sum_ns(histogram.sum());
  for (const auto& [value, count] : histogram.Buckets()) {
    auto* bucket = message->add_buckets();
    bucket->set_value_ns(value);
    bucket->set_count(count);
  }
}

Histogram FromProto(const pb::Histogram& message) {
  Histogram histogram;
  for (const auto& bucket : message.buckets())
    histogram.RecordCount(bucket.value_ns(), bucket.count());
  if (histogram.total() != message.total()) {
    throw std::runtime_error("histogram buckets add up to " + std::to_string(histogram.total()) +
                             " samples, not the " + std::to_string(message.total()) + " declared");
  }
  histogram.SetExtremes(message.min_ns(), message.max_ns(), message.sum_ns());
  return histogram;
}

pb::LoadResult MakeResult(const LoadConfig& config, const RunTotals& run) {
  const ThreadStats& total = run.merged;
  const std::int64_t warm_end_ns = run.warm_end_ns;
  pb::LoadResult result;
  pb::LoadSpec* spec = result.mutable_spec();
  spec->set_protocol(config.protocol);
  spec->set_host(config.host);
  spec->set_port(config.port);
  spec->set_connections(config.connections);
  spec->set_threads(run.threads);
  spec->set_pipeline(config.rate > 0 ? 0 : config.pipeline);
  spec->set_rate(config.rate);
  spec->set_arrival(config.arrival == Schedule::Arrival::kUniform ? "uniform" : "poisson");
  spec->set_duration_seconds(config.requests != 0 ? 0 : config.duration_seconds);
  spec->set_warmup_seconds(config.warmup_seconds);
  spec->set_requests(config.requests);
  spec->set_mix(config.mix);
  spec->set_keys(config.keys);
  spec->set_key_dist(config.key_dist);
  spec->set_value_size(config.value_size);
  spec->set_busy_poll(config.busy_poll);
  spec->set_spin_seconds(static_cast<double>(run.spin_window_ns) / 1e9);

  const std::uint64_t answered = total.ok + total.errors;
  // The measured span: from the end of the warm-up to the last reply counted.
  const double measured_seconds =
      static_cast<double>(std::max(total.last_reply_ns, warm_end_ns + 1) - warm_end_ns) / 1e9;
  // Stopped early by Ctrl-C, or run by count: the span actually sent over.
  const double sending_seconds =
      config.requests == 0 && !g_stop_requested
          ? config.duration_seconds
          : static_cast<double>(std::max(total.last_send_ns, warm_end_ns + 1) - warm_end_ns) / 1e9;
  const double own_rate = OwnRate(config);
  result.set_target_rate(own_rate);
  result.set_run_id(config.run_id);
  result.set_worker_index(config.worker_index);
  result.set_workers(config.workers);
  result.set_worker_connections(OwnConnections(config));
  if (config.start_at_unix_ns != 0) result.set_start_at(FormatUtc(config.start_at_unix_ns));
  result.set_seed(config.seed);
  result.set_histogram_layout(Histogram::kLayout);
  result.set_requests(answered);
  result.set_errors(total.errors);
  result.set_failed(total.failed);
  result.set_duration_seconds(measured_seconds);
  result.set_throughput(answered / measured_seconds);
  result.set_sent_rate(sending_seconds > 0 ? total.sent / sending_seconds : 0);
  result.set_client_cpu_seconds(run.cpu_seconds);
  // Spinning is wall time on a CPU; a preempted spinner can count more than the CPU it got.
  const double spin_seconds = std::min(run.cpu_seconds, static_cast<double>(total.spin_ns) / 1e9);
  result.set_client_spin_seconds(spin_seconds);
  result.set_processes(1);
  result.set_connections_lost(total.connections_lost);
  result.set_first_loss(total.first_loss);
  SetHistograms(total.latency, total.uncorrected, total.schedule_lag, total.reply_pickup, &result);
  SetDelayedAckStall(total.latency, &result);

  // Was the load generator the limit? Its CPU near the ceiling it may use, or (open loop) sending
  // late against its own schedule or short of the rate asked for. gRPC runs I/O on threads of its
  // own besides ours; the process's CPU counts them, and the ceiling stays what our threads may
  // use, so a busy gRPC client is flagged rather than excused.
  const double wall_seconds = static_cast<double>(run.end_ns - warm_end_ns) / 1e9;
  result.set_machine_steal_fraction(StealFraction(run.steal_start, run.steal_end, wall_seconds));
  const double run_queue_wait = static_cast<double>(total.run_queue_wait_ns) / 1e9;
  result.set_client_run_queue_wait_seconds(run_queue_wait);
  const double cpu_ceiling = std::min<double>(run.threads, UsableCpus());
  const double busy = (run.cpu_seconds - spin_seconds) / (wall_seconds * cpu_ceiling);
  result.set_client_busy_fraction(busy);
  std::string reason;
  char text[160];
  // A busy-polling client uses all its CPU by design; only its lag can tell.
  if (busy > kClientBusyLimit && !config.busy_poll) {
    std::snprintf(text, sizeof text, "client CPU at %.0f%% of the %.0f CPU(s) it may use",
                  busy * 100, cpu_ceiling);
    reason = text;
  }
  if (config.rate > 0 && total.schedule_lag.total() > 0) {
    const double lag_p99 = static_cast<double>(total.schedule_lag.ValueAtPercentile(99)) / 1e9;
    if (lag_p99 > 0.001) {
      std::snprintf(text, sizeof text, "%sp99 schedule lag %.2f ms", reason.empty() ? "" : "; ",
                    lag_p99 * 1e3);
      reason += text;
    }
    if (!g_stop_requested && result.sent_rate() < 0.99 * own_rate) {
      std::snprintf(text, sizeof text, "%ssent %.0f/s of the %.0f/s asked",
                    reason.empty() ? "" : "; ", result.sent_rate(), own_rate);
      reason += text;
    }
  }
  // Say so when the client lagged because other work held its CPU: the machine, not the code.
  if (!reason.empty() && run_queue_wait >= 0.001) {
    std::snprintf(text, sizeof text,
                  "; its threads waited %.0f ms in all for a CPU held by other work (run queue)",
                  run_queue_wait * 1e3);
    reason += text;
  }
  result.set_client_limited(!reason.empty());
  result.set_client_limited_reason(reason);
  return result;
}

pb::LoadResult ReadResultFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  pb::LoadResult result;
  google::protobuf::util::JsonParseOptions options;
  const auto status = google::protobuf::util::JsonStringToMessage(text.str(), &result, options);
  if (!status.ok()) {
    throw std::runtime_error(path + " is not a load result: " + std::string(status.message()));
  }
  if (result.processes() == 0) throw std::runtime_error(path + " is not a load result");
  return result;
}

void WriteJsonFile(const std::string& path, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  const auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) throw std::runtime_error("cannot encode the result: " + status.ToString());
  std::ofstream file(path);
  file << text;
  file.close();
  if (!file) throw std::runtime_error("cannot write " + path);
}

std::string FormatUtc(std::int64_t unix_ns) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  const std::int64_t nanos = unix_ns % 1'000'000'000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::size_t used = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  if (nanos != 0) {
    used +=
        std::snprintf(text + used, sizeof text - used, ".%09lld", static_cast<long long>(nanos));
    while (text[used - 1] == '0') --used;  // 12:00:00.25Z, not 12:00:00.250000000Z
  }
  std::snprintf(text + used, sizeof text - used, "Z");
  return text;
}

// "45.2us", "1.23ms", "1.50s": three significant digits, the histogram's precision.
std::string FormatSeconds(double seconds) {
  char text[32];
  if (seconds < 1e-3) {
    std::snprintf(text, sizeof text, "%.3gus", seconds * 1e6);
  } else if (seconds < 1) {
    std::snprintf(text, sizeof text, "%.3gms", seconds * 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.3gs", seconds);
  }
  return text;
}

void PrintResult(std::ostream& out, const pb::LoadResult& result) {
  const pb::LoadSpec& spec = result.spec();
  char line[512];
  if (result.processes() > 1) {
    std::snprintf(line, sizeof line, "run %s: merged from its %u load-generator processes\n",
                  result.run_id().c_str(), result.processes());
    out << line;
  } else if (result.workers() > 1) {
    std::snprintf(line, sizeof line, "run %s: worker %u of %u, seed %llu, started at %s\n",
                  result.run_id().c_str(), result.worker_index(), result.workers(),
                  static_cast<unsigned long long>(result.seed()), result.start_at().c_str());
    out << line;
  }
  // A worker's own connections, of the run's.
  const std::string connections = result.processes() == 1 && result.workers() > 1
                                      ? std::to_string(result.worker_connections()) +
                                            " of the run's " + std::to_string(spec.connections()) +
                                            " connections"
                                      : std::to_string(spec.connections()) + " connections";
  std::snprintf(line, sizeof line, "%s:%u%s  %s on %u thread%s  %s  mix %s\n", spec.host().c_str(),
                spec.port(), spec.protocol() == "grpc" ? " (gRPC)" : "", connections.c_str(),
                spec.threads(), spec.threads() == 1 ? "" : "s",
                result.target_rate() > 0
                    ? ("open loop at " + std::to_string(std::llround(result.target_rate())) +
                       "/s (" + spec.arrival() + ")")
                          .c_str()
                    : ("closed loop, pipeline " + std::to_string(spec.pipeline())).c_str(),
                spec.mix().c_str());
  out << line;
  std::snprintf(line, sizeof line, "%-14s %9s %9s %9s %9s %9s %9s %9s\n", "latency", "p50", "p90",
                "p99", "p99.9", "p99.99", "max", "mean");
  out << line;
  PrintLatencyRow(out, result.target_rate() > 0 ? "corrected" : "measured", result.latency());
  if (result.target_rate() > 0) {
    PrintLatencyRow(out, "uncorrected", result.latency_uncorrected());
    PrintLatencyRow(out, "schedule lag", result.schedule_lag());
    if (result.histogram_reply_pickup().total() > 0) {
      PrintLatencyRow(out, "reply pickup", result.reply_pickup());
    }
  }
  std::snprintf(line, sizeof line,
                "throughput %.1f/s over %.2f s: %llu requests, %llu errors, %llu failed\n",
                result.throughput(), result.duration_seconds(),
                static_cast<unsigned long long>(result.requests()),
                static_cast<unsigned long long>(result.errors()),
                static_cast<unsigned long long>(result.failed()));
  out << line;
  if (result.target_rate() > 0) {
    std::snprintf(line, sizeof line, "target %.1f/s, sent %.1f/s\n", result.target_rate(),
                  result.sent_rate());
    out << line;
  }
  const double per_cpu_second =
      result.client_cpu_seconds() > 0 ? result.requests() / result.client_cpu_seconds() : 0;
  std::snprintf(line, sizeof line, "client CPU %.3f s (%.0f requests per client CPU-second)",
                result.client_cpu_seconds(), per_cpu_second);
  out << line;
  if (result.client_spin_seconds() > 0) {
    std::snprintf(line, sizeof line, ", of which %.3f s spinning to send and read on time",
                  result.client_spin_seconds());
    out << line;
  }
  out << "\n";
  if (result.machine_steal_fraction() > 0) {
    std::snprintf(line, sizeof line,
                  "machine steal %.2f%%: the hypervisor gave that share of this machine's CPU "
                  "time to others, in stalls a tail can include\n",
                  result.machine_steal_fraction() * 100);
    out << line;
  }
  if (result.connections_lost() > 0) {
    out << "connections lost: " << result.connections_lost() << " (first: " << result.first_loss()
        << ")\n";
  }
  if (result.delayed_ack_stall()) {
    out << "DELAYED-ACK STALL: " << result.delayed_ack_stall_message() << "\n";
  }
  if (result.client_limited()) {
    out << "CLIENT-LIMITED: the load generator, not the server, was the limit ("
        << result.client_limited_reason() << "); these are not the server's figures\n";
  }
}

}  // namespace switchyard::loadgen
