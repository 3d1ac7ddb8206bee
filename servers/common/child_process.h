// A server process that another one supervises: prefork's supervisor under `switchyard serve`, a
// peer (docs/peers.md) under `switchyard serve`. What starting, watching and stopping such a child
// shares.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace switchyard {

// In the child, right after fork: it dies (SIGKILL) with `parent`, so a parent killed outright
// takes its descendants with it rather than leaving them serving.
void DieWithParent(pid_t parent);

// "exited with status N" or "was killed by SIGKILL", for a log line.
std::string HowItEnded(int status);

// The parent's whole job once the child serves: waits for the shutdown signal (`signal_fd`,
// shutdown_signal.h) or the child's exit, whichever comes first. On the signal it sends the child
// SIGTERM (the child drains, bounded by its --shutdown-timeout) and returns the child's exit
// status. A child that exits unasked is logged as "switchyard: the <what> <how it ended>;
// stopping" and gives 1. A second signal ends the parent at once (shutdown_signal.cc), and the
// child with it (DieWithParent).
int SuperviseChild(pid_t child, int signal_fd, std::string_view what);

}  // namespace switchyard
