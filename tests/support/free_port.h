// Loopback ports for servers a test starts (corrald, peer transports).
#pragma once

namespace corral::testing {

// A port nobody listens on right now, below the kernel's ephemeral range, distinct from every
// port this process was handed before. Throws std::runtime_error if none is found.
int freeLoopbackPort();

}  // namespace corral::testing
