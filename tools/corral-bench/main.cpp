// corral-bench: a ZooKeeper-protocol load generator, so the same binary drives Corral
// (zkwire) and Apache ZooKeeper.
//
//   corral-bench --servers HOST:PORT[,...] [--driver c|raw] [--threads T] [--sessions N]
//                [--inflight K] [--op OP] [--size B] [--read-ratio R] [--seconds S] [--ops N]
//                [--json FILE] [--multi-ops K] [--server-pid PID[,PID...]]
//   OP: create, set, get, exists, delete, mixed (get/set by --read-ratio), multi (one
//       transaction of K setData on the session's node)
//
// Each session keeps K requests in flight on its own node; every completion issues the next
// request until the time or op bound is reached. Reports ops/s and latency p50/p99/p999;
// any error fails the cell (exit 1). With --server-pid it also reports the servers' CPU time
// (summed) next to the generator's, to show which side was the bottleneck.
//
// Two drivers: "c" (default) uses the official C client (libzookeeper-mt, async API), the
// client applications use, but it needs 2-4x the server's CPU, so on a shared machine its
// read cells measure the client. "raw" speaks the wire protocol itself: pipelined requests
// pre-encoded per session, one write and one read per connection per loop turn, on T epoll
// threads; it stays well below the server's CPU.
#include "drivers.h"
#include "options.h"
#include "report.h"

int main(int argc, char** argv) {
  using namespace corral::bench;
  Options options;
  if (!parseOptions(argc, argv, &options)) return 2;
  RunResult result;
  bool ok = options.driver == Driver::Raw ? runRawDriver(options, &result)
                                          : runCClientDriver(options, &result);
  if (!ok) return 1;
  writeReport(options, &result);
  return result.errors == 0 ? 0 : 1;
}
