// RunLoad: the one place that picks a transport by protocol name.
#include "loadgen/load.h"

#include "loadgen/grpc_transport.h"
#include "loadgen/resp_transport.h"

namespace switchyard::loadgen {

std::atomic<bool> g_stop_requested{false};

pb::LoadResult RunLoad(const LoadConfig& config, LiveStats* live) {
  return config.protocol == "grpc" ? RunGrpcLoad(config, live) : RunRespLoad(config, live);
}

}  // namespace switchyard::loadgen
