// The two ways corral-bench talks to a server. Each sets up its sessions and nodes, runs
// the timed part (measured with CpuMeter), cleans up, and fills *result. A failure before
// or during the timed part (no connection, setup refused, connection lost) prints one line
// "corral-bench: <reason>" and returns false; error replies only count in result->errors.
#pragma once

#include "options.h"
#include "report.h"

namespace corral::bench {

// The official C client (libzookeeper-mt, async API): what applications use, but it burns
// more CPU per request than the servers do.
bool runCClientDriver(const Options& options, RunResult* result);

// The wire protocol over plain sockets, pipelined, from --threads epoll loops: cheap enough
// that the server stays the bottleneck (raw_driver.cpp).
bool runRawDriver(const Options& options, RunResult* result);

}  // namespace corral::bench
