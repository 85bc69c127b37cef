// Linearizability checker for histories of ZooKeeper-style znode operations recorded by
// test clients (Wing & Gong's search with Lowe's and Porcupine's refinements).
//
// A history is what clients observed: for every operation, who issued it, when it was
// called, when (if ever) it returned, and what it returned. The checker decides whether
// some total order of the operations (a) respects real time, i.e. an operation that
// returned before another was called comes first, and (b) is a legal sequential run of
// the znode model below, with every operation returning what the client saw.
//
// The model, per path: the node is absent, or holds (value, version). create sets version
// 0; a successful setData ("cas") sets the value and increments the version; remove makes
// the node absent again (a later create starts over at version 0). An expected version of
// kAnyVersion matches any version, as -1 does in ZooKeeper. Parent/child relations,
// ephemeral and sequential nodes are not modelled: paths are independent registers, which
// is what lets the checker split a history by path (linearizability is compositional).
//
// Operations whose outcome the client never learned (timeout, connection loss, or still
// in flight when the run ended) have outcome kUnknown. Such an operation may have taken
// effect at any instant after its call - even after other operations of the same client -
// or not at all, so the checker may linearize it anywhere after its call or leave it out.
// An Unknown read constrains nothing and is ignored.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace corral::testing::lin {

// Any monotonic clock unit (the tests use nanoseconds or plain integers).
using Time = int64_t;
// Return time of an operation that never returned; such an operation's outcome is Unknown
// whatever its `outcome` field says.
inline constexpr Time kNever = std::numeric_limits<Time>::max();
inline constexpr int64_t kAnyVersion = -1;

enum class OpKind { kCreate, kCas, kRead, kRemove };

// Which outcomes each kind may have:
//   create: kOk, kNodeExists, kUnknown
//   cas:    kOk (with the new version), kBadVersion, kNoNode, kUnknown
//   read:   kOk (with value and version), kNoNode, kUnknown
//   remove: kOk, kBadVersion, kNoNode, kUnknown
enum class Outcome { kOk, kNodeExists, kBadVersion, kNoNode, kUnknown };

struct Operation {
  int client = 0;
  Time call = 0;
  Time ret = kNever;
  OpKind kind = OpKind::kRead;
  std::string path;
  // create/cas: the value written. read with kOk: the value returned.
  std::string value;
  // cas/remove: the version the client required (kAnyVersion for none).
  int64_t expected_version = kAnyVersion;
  Outcome outcome = Outcome::kUnknown;
  // cas with kOk: the version the node got (ZooKeeper's Stat.version after setData).
  // read with kOk: the version returned.
  int64_t version = 0;

  // An operation is Unknown if its outcome says so or if it never returned.
  bool unknown() const { return outcome == Outcome::kUnknown || ret == kNever; }

  static Operation create(int client, Time call, Time ret, std::string path, std::string value,
                          Outcome outcome);
  // `new_version` is only meaningful when outcome is kOk.
  static Operation cas(int client, Time call, Time ret, std::string path,
                       int64_t expected_version, std::string value, Outcome outcome,
                       int64_t new_version = 0);
  // `value` and `version` are only meaningful when outcome is kOk.
  static Operation read(int client, Time call, Time ret, std::string path, Outcome outcome,
                        std::string value = "", int64_t version = 0);
  static Operation remove(int client, Time call, Time ret, std::string path,
                          int64_t expected_version, Outcome outcome);
};

struct CheckResult {
  // True only when every path was proven linearizable.
  bool linearizable = false;
  // The budget ran out before a verdict: inconclusive, neither a pass nor a failure.
  // (A path proven non-linearizable before the budget ran out still yields
  // linearizable=false, timed_out=false.)
  bool timed_out = false;
  // Why: for a failure, the path, the longest prefix that could be linearized and the
  // operation that could not follow it.
  std::string explanation;
  size_t paths_checked = 0;
  // Search configurations visited, summed over paths (a measure of how hard it was).
  uint64_t configurations_explored = 0;
};

// Checks `history` (in any order) within `budget` of wall-clock time, shared by all paths.
// Throws std::invalid_argument for a malformed operation (return before call, an outcome
// the operation kind cannot have), since that is a bug in the recording, not in the system.
CheckResult checkHistory(const std::vector<Operation>& history, std::chrono::milliseconds budget);

// One line naming the operation, e.g.
// `cas(/k, expected=3, "v7") by client 4 [t=100..250] -> Ok version=4`.
std::string describe(const Operation& op);
const char* toString(OpKind kind);
const char* toString(Outcome outcome);

}  // namespace corral::testing::lin
