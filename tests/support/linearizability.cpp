#include "linearizability.h"

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace corral::testing::lin {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser: cheap, well-distributed hashes
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string quoted(const std::string& value) {
  // Long values would drown the explanation; the start is enough to recognise one.
  constexpr size_t kMaxShown = 40;
  std::string shown = value.size() <= kMaxShown ? value : value.substr(0, kMaxShown) + "...";
  return "\"" + shown + "\"";
}

std::string versionText(int64_t version) {
  return version == kAnyVersion ? "any" : std::to_string(version);
}

bool outcomeAllowed(OpKind kind, Outcome outcome) {
  if (outcome == Outcome::kUnknown || outcome == Outcome::kOk) return true;
  switch (kind) {
    case OpKind::kCreate:
      return outcome == Outcome::kNodeExists;
    case OpKind::kCas:
    case OpKind::kRemove:
      return outcome == Outcome::kBadVersion || outcome == Outcome::kNoNode;
    case OpKind::kRead:
      return outcome == Outcome::kNoNode;
  }
  return false;
}

void validate(const Operation& op, size_t index) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("history[" + std::to_string(index) + "] " + describe(op) +
                                ": " + why);
  };
  if (op.ret != kNever && op.ret < op.call) fail("returns before it is called");
  if (!outcomeAllowed(op.kind, op.outcome)) fail("this kind of operation cannot have that outcome");
  if (op.expected_version < kAnyVersion) fail("negative expected version");
  if (op.outcome == Outcome::kOk && op.kind == OpKind::kCas && op.version < 1) {
    fail("a successful cas must report the node's new version (>= 1)");
  }
  if (op.outcome == Outcome::kOk && op.kind == OpKind::kRead && op.version < 0) {
    fail("negative version");
  }
}

// The znode at one path. Values are interned per path so states compare and hash cheaply.
struct NodeState {
  bool exists = false;
  int32_t value = -1;   // interned; -1 when absent
  int64_t version = 0;  // 0 when absent, so equal absent states compare equal

  bool operator==(const NodeState&) const = default;
  uint64_t hash() const {
    return mix64((static_cast<uint64_t>(version) << 33) ^
                 (static_cast<uint64_t>(static_cast<uint32_t>(value)) << 1) ^ (exists ? 1 : 0));
  }
};

// An operation as the search sees it.
struct PathOp {
  const Operation* source;
  bool unknown;
  int32_t value;  // interned value written (create/cas) or returned (read)
};

bool versionMatches(int64_t expected, const NodeState& state) {
  return expected == kAnyVersion || expected == state.version;
}

// The state after `op` takes effect in `state` with the outcome the client saw, or nullopt
// if that outcome is impossible in `state`. For an Unknown operation only the successful
// effect is offered: an Unknown operation that failed or never ran changes nothing, which
// the search already covers by leaving the operation out.
std::optional<NodeState> step(const PathOp& op, const NodeState& state) {
  const Operation& o = *op.source;
  if (op.unknown) {
    switch (o.kind) {
      case OpKind::kCreate:
        if (!state.exists) return NodeState{true, op.value, 0};
        return std::nullopt;
      case OpKind::kCas:
        if (state.exists && versionMatches(o.expected_version, state)) {
          return NodeState{true, op.value, state.version + 1};
        }
        return std::nullopt;
      case OpKind::kRemove:
        if (state.exists && versionMatches(o.expected_version, state)) return NodeState{};
        return std::nullopt;
      case OpKind::kRead:
        return std::nullopt;  // dropped before the search; never offered
    }
    return std::nullopt;
  }
  if (o.outcome == Outcome::kNoNode) {
    return state.exists ? std::nullopt : std::optional<NodeState>(state);
  }
  switch (o.kind) {
    case OpKind::kCreate:
      if (o.outcome == Outcome::kOk) {
        if (!state.exists) return NodeState{true, op.value, 0};
        return std::nullopt;
      }
      return state.exists ? std::optional<NodeState>(state) : std::nullopt;  // NodeExists
    case OpKind::kCas:
      if (!state.exists) return std::nullopt;
      if (o.outcome == Outcome::kOk) {
        if (versionMatches(o.expected_version, state) && o.version == state.version + 1) {
          return NodeState{true, op.value, state.version + 1};
        }
        return std::nullopt;
      }
      // BadVersion
      return versionMatches(o.expected_version, state) ? std::nullopt
                                                        : std::optional<NodeState>(state);
    case OpKind::kRead:  // Ok
      if (state.exists && state.value == op.value && state.version == o.version) return state;
      return std::nullopt;
    case OpKind::kRemove:
      if (!state.exists) return std::nullopt;
      if (o.outcome == Outcome::kOk) {
        return versionMatches(o.expected_version, state) ? std::optional<NodeState>(NodeState{})
                                                          : std::nullopt;
      }
      // BadVersion
      return versionMatches(o.expected_version, state) ? std::nullopt
                                                        : std::optional<NodeState>(state);
  }
  return std::nullopt;
}

// The configurations (set of operations linearized so far, node state) already explored.
// Reaching one again cannot succeed where the first visit failed, since what remains to be
// linearized and the state it starts from are the same - this is what keeps the search
// from being exponential in the concurrency. Bitsets live in one flat array to avoid an
// allocation per configuration.
class ConfigurationCache {
 public:
  explicit ConfigurationCache(size_t words_per_set) : words_per_set_(words_per_set) {}

  // Adds the configuration; false if it was already there.
  bool insert(uint64_t hash, const std::vector<uint64_t>& linearized, const NodeState& state) {
    auto [first, last] = slots_by_hash_.equal_range(hash);
    for (auto it = first; it != last; ++it) {
      uint32_t slot = it->second;
      if (states_[slot] == state &&
          std::equal(linearized.begin(), linearized.end(),
                     bitsets_.begin() + static_cast<ptrdiff_t>(slot * words_per_set_))) {
        return false;
      }
    }
    uint32_t slot = static_cast<uint32_t>(states_.size());
    states_.push_back(state);
    bitsets_.insert(bitsets_.end(), linearized.begin(), linearized.end());
    slots_by_hash_.emplace(hash, slot);
    return true;
  }

 private:
  size_t words_per_set_;
  std::vector<NodeState> states_;
  std::vector<uint64_t> bitsets_;
  std::unordered_multimap<uint64_t, uint32_t> slots_by_hash_;
};

enum class Verdict { kLinearizable, kNotLinearizable, kTimedOut };

// Checks the operations on one path.
//
// The history becomes a doubly-linked list of call and return events in time order
// (Lowe's formulation). An operation may be linearized next iff its call comes before the
// first return still in the list: every operation returning earlier has already been
// linearized, so real-time order holds. Linearizing an operation unlinks its two events;
// backtracking relinks them (dancing links), so each step costs O(1) plus a scan of the
// head of the list, whose length is bounded by the concurrency. Unknown operations have
// no return event, so they never force anything and can stay out of the linearization;
// the search succeeds once every operation with a known outcome is linearized.
class PathSearch {
 public:
  PathSearch(std::string path, const std::vector<const Operation*>& ops,
             Clock::time_point deadline)
      : path_(std::move(path)), deadline_(deadline) {
    std::unordered_map<std::string, int32_t> interned;
    auto intern = [&](const std::string& v) {
      return interned.try_emplace(v, static_cast<int32_t>(interned.size())).first->second;
    };
    for (const Operation* op : ops) {
      if (op->unknown() && op->kind == OpKind::kRead) continue;  // constrains nothing
      ops_.push_back(PathOp{op, op->unknown(), intern(op->value)});
      if (op->unknown()) has_unknown_ops_ = true;
    }
    buildEventList();
    linearized_.assign((ops_.size() + 63) / 64, 0);
    zobrist_.resize(ops_.size());
    for (size_t i = 0; i < ops_.size(); ++i) zobrist_[i] = mix64(i * 0x2545f4914f6cdd1dULL + 1);
  }

  Verdict run() {
    ConfigurationCache cache(linearized_.size());
    size_t definite_remaining = 0;
    for (const PathOp& op : ops_) definite_remaining += op.unknown ? 0 : 1;
    // Each search node first tries the operations with known outcomes, then the Unknown
    // ones: an Unknown write is usually not needed until some read observes it, and
    // trying it eagerly would send the search down wrong branches first.
    enum class Phase { kKnownOutcome, kUnknownOutcome };
    struct Frame {
      int call_event;
      NodeState state_before;
      Phase phase;
    };
    std::vector<Frame> stack;
    NodeState state;
    uint64_t linearized_hash = 0;
    Phase phase = Phase::kKnownOutcome;
    int cursor = next_[kHead];
    uint64_t iterations = 0;

    while (true) {
      if (definite_remaining == 0) return Verdict::kLinearizable;
      if ((++iterations & 1023) == 0 && Clock::now() >= deadline_) {
        timed_out_state_ = state;
        return Verdict::kTimedOut;
      }
      if (cursor != kEnd && events_[cursor].is_call) {
        const int op_index = events_[cursor].op;
        const PathOp& op = ops_[op_index];
        if (op.unknown == (phase == Phase::kUnknownOutcome)) {
          if (std::optional<NodeState> after = step(op, state)) {
            toggleLinearized(op_index, &linearized_hash);
            if (cache.insert(linearized_hash ^ after->hash(), linearized_, *after)) {
              ++configurations_explored_;
              stack.push_back(Frame{cursor, state, phase});
              state = *after;
              lift(cursor);
              if (!op.unknown) --definite_remaining;
              phase = Phase::kKnownOutcome;
              cursor = next_[kHead];
              continue;
            }
            toggleLinearized(op_index, &linearized_hash);
          }
        }
        cursor = next_[cursor];
        continue;
      }
      // Reached the first pending return: no further operation may go next in this phase.
      if (phase == Phase::kKnownOutcome && has_unknown_ops_) {
        phase = Phase::kUnknownOutcome;
        cursor = next_[kHead];
        continue;
      }
      noteDeadEnd(stack.size(), state, [&] {
        std::vector<int> ops;
        for (const Frame& f : stack) ops.push_back(events_[f.call_event].op);
        return ops;
      });
      if (stack.empty()) return Verdict::kNotLinearizable;
      Frame frame = stack.back();
      stack.pop_back();
      const int op_index = events_[frame.call_event].op;
      unlift(frame.call_event);
      toggleLinearized(op_index, &linearized_hash);
      if (!ops_[op_index].unknown) ++definite_remaining;
      state = frame.state_before;
      phase = frame.phase;
      cursor = next_[frame.call_event];
    }
  }

  uint64_t configurationsExplored() const { return configurations_explored_; }

  std::string explainFailure() const {
    std::ostringstream out;
    out << "path " << path_ << ": no linearization of its " << ops_.size() << " operations; "
        << deepest_.prefix_length << " can be linearized, after which the node is "
        << stateText(deepest_.state) << ". Stuck at " << describe(*deepest_.blocking->source)
        << ": it must take effect before it returns, but none of the operations that may "
           "go next (";
    for (size_t i = 0; i < deepest_.candidates.size(); ++i) {
      if (i > 0) out << "; ";
      out << describe(*ops_[deepest_.candidates[i]].source);
    }
    out << ") fits that state.";
    if (!deepest_.prefix_tail.empty()) {
      out << " Last linearized: ";
      for (size_t i = 0; i < deepest_.prefix_tail.size(); ++i) {
        if (i > 0) out << "; ";
        out << describe(*ops_[deepest_.prefix_tail[i]].source);
      }
      out << ".";
    }
    return out.str();
  }

  std::string explainTimeout() const {
    std::ostringstream out;
    out << "path " << path_ << ": budget ran out after exploring " << configurations_explored_
        << " configurations of its " << ops_.size() << " operations";
    if (deepest_.blocking != nullptr) {
      out << " (longest linearizable prefix so far: " << deepest_.prefix_length
          << " operations, stuck at " << describe(*deepest_.blocking->source) << ")";
    }
    return out.str();
  }

 private:
  static constexpr int kHead = 0;
  static constexpr int kEnd = -1;
  // How many operations of the linearized prefix and of the possible next ones to name.
  static constexpr size_t kOpsShown = 4;

  struct Event {
    int op;
    bool is_call;
    Time time;
    int return_event;  // for a call: its return event, or kEnd for an Unknown operation
  };

  struct DeadEnd {
    size_t prefix_length = 0;
    NodeState state;
    const PathOp* blocking = nullptr;
    std::vector<int> candidates;
    std::vector<int> prefix_tail;
  };

  void buildEventList() {
    std::vector<Event> sorted;
    for (size_t i = 0; i < ops_.size(); ++i) {
      const Operation& o = *ops_[i].source;
      sorted.push_back(Event{static_cast<int>(i), true, o.call, kEnd});
      if (!ops_[i].unknown) sorted.push_back(Event{static_cast<int>(i), false, o.ret, kEnd});
    }
    // At equal times calls sort before returns: operations that touch at an instant are
    // treated as concurrent, so a coarse clock cannot produce a false alarm.
    std::stable_sort(sorted.begin(), sorted.end(), [](const Event& a, const Event& b) {
      if (a.time != b.time) return a.time < b.time;
      return a.is_call && !b.is_call;
    });
    events_.assign(1, Event{-1, false, 0, kEnd});  // index 0 is the list head
    events_.insert(events_.end(), sorted.begin(), sorted.end());
    std::vector<int> call_event_of(ops_.size(), kEnd);
    for (int e = 1; e < static_cast<int>(events_.size()); ++e) {
      if (events_[e].is_call) {
        call_event_of[events_[e].op] = e;
      } else {
        events_[call_event_of[events_[e].op]].return_event = e;
      }
    }
    const int n = static_cast<int>(events_.size());
    next_.resize(n);
    prev_.resize(n);
    for (int e = 0; e < n; ++e) {
      next_[e] = e + 1 < n ? e + 1 : kEnd;
      prev_[e] = e - 1;
    }
  }

  void unlink(int e) {
    next_[prev_[e]] = next_[e];
    if (next_[e] != kEnd) prev_[next_[e]] = prev_[e];
  }
  void relink(int e) {
    next_[prev_[e]] = e;
    if (next_[e] != kEnd) prev_[next_[e]] = e;
  }
  void lift(int call_event) {
    unlink(call_event);
    if (events_[call_event].return_event != kEnd) unlink(events_[call_event].return_event);
  }
  void unlift(int call_event) {  // exactly the reverse of lift
    if (events_[call_event].return_event != kEnd) relink(events_[call_event].return_event);
    relink(call_event);
  }

  // The linearized set's hash is the XOR of random per-operation keys (Zobrist hashing),
  // kept up to date in O(1) instead of rehashing the bitset at every step.
  void toggleLinearized(int op_index, uint64_t* hash) {
    linearized_[op_index / 64] ^= uint64_t{1} << (op_index % 64);
    *hash ^= zobrist_[op_index];
  }

  // Remembers the deepest point the search got stuck at, for the explanation. Only the
  // first visit to a new depth copies anything, so this stays cheap.
  template <typename PrefixFn>
  void noteDeadEnd(size_t prefix_length, const NodeState& state, PrefixFn prefix) {
    if (deepest_.blocking != nullptr && prefix_length <= deepest_.prefix_length) return;
    deepest_.prefix_length = prefix_length;
    deepest_.state = state;
    deepest_.candidates.clear();
    int e = next_[kHead];
    for (; e != kEnd && events_[e].is_call; e = next_[e]) {
      if (deepest_.candidates.size() < kOpsShown) deepest_.candidates.push_back(events_[e].op);
    }
    // A dead end with operations left always has a pending return; it is the operation that
    // could not be fitted in before returning.
    deepest_.blocking = &ops_[e != kEnd ? events_[e].op : deepest_.candidates.front()];
    std::vector<int> ops = prefix();
    size_t shown = std::min(ops.size(), kOpsShown);
    deepest_.prefix_tail.assign(ops.end() - static_cast<ptrdiff_t>(shown), ops.end());
  }

  std::string stateText(const NodeState& state) const {
    if (!state.exists) return "absent";
    std::string value = "?";
    for (const PathOp& op : ops_) {
      if (op.value == state.value) {
        value = quoted(op.source->value);
        break;
      }
    }
    return "value=" + value + " version=" + std::to_string(state.version);
  }

  std::string path_;
  Clock::time_point deadline_;
  std::vector<PathOp> ops_;
  bool has_unknown_ops_ = false;
  std::vector<Event> events_;
  std::vector<int> next_;
  std::vector<int> prev_;
  std::vector<uint64_t> linearized_;
  std::vector<uint64_t> zobrist_;
  uint64_t configurations_explored_ = 0;
  DeadEnd deepest_;
  NodeState timed_out_state_;
};

}  // namespace

Operation Operation::create(int client, Time call, Time ret, std::string path, std::string value,
                            Outcome outcome) {
  Operation op;
  op.client = client;
  op.call = call;
  op.ret = ret;
  op.kind = OpKind::kCreate;
  op.path = std::move(path);
  op.value = std::move(value);
  op.outcome = outcome;
  return op;
}

Operation Operation::cas(int client, Time call, Time ret, std::string path,
                         int64_t expected_version, std::string value, Outcome outcome,
                         int64_t new_version) {
  Operation op = create(client, call, ret, std::move(path), std::move(value), outcome);
  op.kind = OpKind::kCas;
  op.expected_version = expected_version;
  op.version = new_version;
  return op;
}

Operation Operation::read(int client, Time call, Time ret, std::string path, Outcome outcome,
                          std::string value, int64_t version) {
  Operation op = create(client, call, ret, std::move(path), std::move(value), outcome);
  op.kind = OpKind::kRead;
  op.version = version;
  return op;
}

Operation Operation::remove(int client, Time call, Time ret, std::string path,
                            int64_t expected_version, Outcome outcome) {
  Operation op = create(client, call, ret, std::move(path), "", outcome);
  op.kind = OpKind::kRemove;
  op.expected_version = expected_version;
  return op;
}

const char* toString(OpKind kind) {
  switch (kind) {
    case OpKind::kCreate:
      return "create";
    case OpKind::kCas:
      return "cas";
    case OpKind::kRead:
      return "read";
    case OpKind::kRemove:
      return "remove";
  }
  return "?";
}

const char* toString(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "Ok";
    case Outcome::kNodeExists:
      return "NodeExists";
    case Outcome::kBadVersion:
      return "BadVersion";
    case Outcome::kNoNode:
      return "NoNode";
    case Outcome::kUnknown:
      return "Unknown";
  }
  return "?";
}

std::string describe(const Operation& op) {
  std::ostringstream out;
  out << toString(op.kind) << "(" << op.path;
  switch (op.kind) {
    case OpKind::kCreate:
      out << ", " << quoted(op.value);
      break;
    case OpKind::kCas:
      out << ", expected=" << versionText(op.expected_version) << ", " << quoted(op.value);
      break;
    case OpKind::kRemove:
      out << ", expected=" << versionText(op.expected_version);
      break;
    case OpKind::kRead:
      break;
  }
  out << ") by client " << op.client << " [t=" << op.call << "..";
  if (op.ret == kNever) {
    out << "never";
  } else {
    out << op.ret;
  }
  out << "] -> " << toString(op.unknown() ? Outcome::kUnknown : op.outcome);
  if (!op.unknown() && op.outcome == Outcome::kOk) {
    if (op.kind == OpKind::kCas) out << " version=" << op.version;
    if (op.kind == OpKind::kRead) out << " " << quoted(op.value) << " version=" << op.version;
  }
  return out.str();
}

CheckResult checkHistory(const std::vector<Operation>& history,
                         std::chrono::milliseconds budget) {
  const Clock::time_point deadline = Clock::now() + budget;
  // std::map: paths are checked in a deterministic order, so a failure is reproducible.
  std::map<std::string, std::vector<const Operation*>> ops_by_path;
  for (size_t i = 0; i < history.size(); ++i) {
    validate(history[i], i);
    ops_by_path[history[i].path].push_back(&history[i]);
  }

  CheckResult result;
  std::string timeout_explanation;
  for (const auto& [path, ops] : ops_by_path) {
    PathSearch search(path, ops, deadline);
    Verdict verdict = search.run();
    ++result.paths_checked;
    result.configurations_explored += search.configurationsExplored();
    if (verdict == Verdict::kNotLinearizable) {
      // One counterexample is enough; a failure is definite even if another path timed out.
      result.linearizable = false;
      result.timed_out = false;
      result.explanation = search.explainFailure();
      return result;
    }
    // Keep checking after a timeout: a later path may still fail within its first few
    // steps (the clock is consulted only every 1024 steps), which is a definite answer.
    if (verdict == Verdict::kTimedOut && timeout_explanation.empty()) {
      timeout_explanation = search.explainTimeout();
    }
  }
  if (!timeout_explanation.empty()) {
    result.timed_out = true;
    result.explanation = "inconclusive: " + timeout_explanation;
    return result;
  }
  result.linearizable = true;
  result.explanation = "linearizable: " + std::to_string(history.size()) + " operations on " +
                       std::to_string(result.paths_checked) + " paths";
  return result;
}

}  // namespace corral::testing::lin
