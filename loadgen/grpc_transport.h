// The gRPC transport (`switchyard load --protocol grpc`): the same workload, flags and result as
// the RESP transport, sent as proto/kv.proto calls to the grpc model. This header stays light;
// gRPC's slow headers are included only by the transport's own files (grpc_engine.h).
#pragma once

#include "loadgen/load.h"

namespace switchyard::loadgen {

// Runs one load against a kv.proto server (RunLoad's gRPC half). Each connection is a gRPC
// channel with a TCP connection of its own; closed loop keeps --pipeline calls (HTTP/2 streams)
// in flight on it, open loop starts each call at its intended time. Throws std::runtime_error
// with a one-line message when a channel cannot get ready.
pb::LoadResult RunGrpcLoad(const LoadConfig& config, LiveStats* live);

}  // namespace switchyard::loadgen
