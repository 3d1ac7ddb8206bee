// `switchyard serve`: builds what every model shares (store, metrics, listening socket) and hands
// it to the chosen model.
#pragma once

#include "servers/common/config.h"

namespace switchyard {

// Returns the process exit code. Errors (bad flag, port in use, a model not built) are one line
// on stderr and a non-zero code.
int Serve(ServerConfig config);

}  // namespace switchyard
