// A run's result (proto/loadgen.proto's LoadResult): built from a run's totals, merged across
// processes, read and written as protobuf JSON, printed as a table.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "loadgen/histogram.h"
#include "loadgen/load.h"
#include "loadgen/run.h"
#include "proto/loadgen.pb.h"

namespace switchyard::loadgen {

// Above this share of the CPU it may use, the load generator flags a run client-limited: it is out
// of CPU at that rate (the sweep does not run such a rate again).
inline constexpr double kClientBusyLimit = 0.9;

// The result of a run: its spec, figures and histograms, and whether the client was the limit.
pb::LoadResult MakeResult(const LoadConfig& config, const RunTotals& run);

pb::LoadResult ReadResultFile(const std::string& path);
void WriteJsonFile(const std::string& path, const google::protobuf::Message& message);

// The table a person reads: the run, its latencies, throughput, the client's CPU, and any flag
// (connections lost, a delayed-ACK stall, the client as the limit).
void PrintResult(std::ostream& out, const pb::LoadResult& result);
// "45.2us", "1.23ms", "1.50s": three significant digits, the histogram's precision.
std::string FormatSeconds(double seconds);
// An instant as RFC 3339 in UTC, to the nanosecond it carries: "2026-12-07T12:00:00.25Z".
std::string FormatUtc(std::int64_t unix_ns);

// Conversions between histograms and their result-file form (exact: FromProto(ToProto(h)) == h).
void FillLatency(const Histogram& histogram, pb::Latency* latency);
void ToProto(const Histogram& histogram, pb::Histogram* message);
Histogram FromProto(const pb::Histogram& message);
// A result's four histograms, each as percentiles and whole: the one place that lists them.
void SetHistograms(const Histogram& latency, const Histogram& uncorrected,
                   const Histogram& schedule_lag, const Histogram& reply_pickup,
                   pb::LoadResult* result);
// The delayed-ACK stall signature of a result's latency histogram (stall_signature.h): set by a
// run and recomputed by a merge.
void SetDelayedAckStall(const Histogram& latency, pb::LoadResult* result);

}  // namespace switchyard::loadgen
