// The load generator's gRPC mode (`switchyard load --protocol grpc`): the same workload, flags and
// result as the RESP engine (load.h), sent as proto/kv.proto calls to the grpc model.
// Kept apart from load.cc so that gRPC's slow headers stay out of the RESP engine.
#pragma once

#include "loadgen/load.h"

namespace switchyard::loadgen {

// Runs one load against a kv.proto server and returns its result, like RunLoad. Each connection
// is a gRPC channel with a TCP connection of its own; closed loop keeps --pipeline calls (HTTP/2
// streams) in flight on it, open loop starts each call at its intended time. Throws
// std::runtime_error with a one-line message when a channel cannot get ready.
pb::LoadResult RunGrpcLoad(const LoadConfig& config, LiveStats* live);

}  // namespace switchyard::loadgen
