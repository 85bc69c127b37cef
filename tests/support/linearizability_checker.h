// A linearizability checker for histories of ZooKeeper-style operations on znodes: create,
// version-checked setData (compare-and-set), getData (after sync) and version-checked delete.
//
// A history is what clients saw: each operation's call and return times and its outcome.
// An outcome may be unknown (a timeout or connection loss: the write may or may not have
// happened); such an operation may take effect at any moment after its call, or never.
//
// The check is P-compositional (each path is checked on its own) and, per path, the
// Wing & Gong search with Lowe's refinements as in Porcupine: linearize a pending operation
// whose call precedes every pending return, backtrack on a return that cannot be reached,
// and remember (linearized set, state) pairs already explored.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace corral::testing {

enum class LinOp { kCreate, kCas, kRead, kRemove };
enum class LinResult { kOk, kNodeExists, kBadVersion, kNoNode, kUnknown };

struct LinOperation {
  int client = 0;
  int64_t call = 0;                                   // any monotonic unit
  int64_t ret = std::numeric_limits<int64_t>::max();  // unknown outcome: never returned
  std::string path;
  LinOp op = LinOp::kRead;
  std::string value;             // create / cas: the value written; read: the value seen
  int32_t expected_version = 0;  // cas / remove (-1: any version for remove)
  int32_t version = 0;           // cas Ok: the new version; read Ok: the version seen
  LinResult result = LinResult::kOk;
};

struct LinCheck {
  bool linearizable = false;
  bool timed_out = false;  // inconclusive
  std::string explanation;
};

LinCheck checkLinearizable(const std::vector<LinOperation>& history,
                           std::chrono::milliseconds budget = std::chrono::seconds(10));

std::string describe(const LinOperation& op);

}  // namespace corral::testing
