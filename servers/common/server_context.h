// What every connection of every model shares: the configuration, the store and the metrics.
#pragma once

#include "servers/common/config.h"
#include "servers/common/metrics.h"
#include "servers/common/store.h"

namespace switchyard {

struct ServerContext {
  const ServerConfig& config;
  Store& store;
  Metrics& metrics;
};

}  // namespace switchyard
