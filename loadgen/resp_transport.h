// The RESP transport, the load generator's default (`switchyard load`): T threads, each with its
// own io_context and its share of the connections, each connection a TCP socket writing RESP
// requests and matching the replies, which come back in order, against what it sent.
#pragma once

#include "loadgen/load.h"

namespace switchyard::loadgen {

// Runs one load against a RESP server (RunLoad's RESP half). Closed loop keeps --pipeline
// requests in flight on each connection; open loop writes each request at its intended time.
// Throws std::runtime_error with a one-line message when a connection cannot be made.
pb::LoadResult RunRespLoad(const LoadConfig& config, LiveStats* live);

}  // namespace switchyard::loadgen
