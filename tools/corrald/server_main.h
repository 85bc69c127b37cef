// corrald's start-up and shutdown sequence, separate from argument parsing.
#pragma once

#include "config/config.h"

namespace corral::tools {

// Loads the plugins, recovers, serves until SIGTERM/SIGINT. Returns the process exit code;
// a start-up failure prints one line "corrald: <reason>".
int runServer(const kernel::ServerConfig& config);

}  // namespace corral::tools
