#include "linearizability_checker.h"

#include <algorithm>
#include <map>
#include <unordered_set>

namespace corral::testing {
namespace {

struct State {
  bool exists = false;
  std::string value;
  int32_t version = 0;
};

// Applies op to s if the outcome it reports is possible from s. An operation with an unknown
// outcome is placed only where it takes effect: where it would have failed, leaving it out
// is the same history, and leaving it out is always allowed.
bool step(const State& s, const LinOperation& op, State* next) {
  *next = s;
  bool unknown = op.result == LinResult::kUnknown;
  switch (op.op) {
    case LinOp::kCreate:
      if (unknown || op.result == LinResult::kOk) {
        if (s.exists) return false;
        *next = State{true, op.value, 0};
        return true;
      }
      return op.result == LinResult::kNodeExists && s.exists;
    case LinOp::kCas:
      if (unknown) {
        if (!s.exists || s.version != op.expected_version) return false;
        *next = State{true, op.value, s.version + 1};
        return true;
      }
      if (op.result == LinResult::kOk) {
        if (!s.exists || s.version != op.expected_version || op.version != op.expected_version + 1)
          return false;
        *next = State{true, op.value, s.version + 1};
        return true;
      }
      if (op.result == LinResult::kBadVersion) return s.exists && s.version != op.expected_version;
      return op.result == LinResult::kNoNode && !s.exists;
    case LinOp::kRead:
      if (unknown) return true;
      if (op.result == LinResult::kOk)
        return s.exists && s.value == op.value && s.version == op.version;
      return op.result == LinResult::kNoNode && !s.exists;
    case LinOp::kRemove: {
      bool matches = s.exists && (op.expected_version == -1 || s.version == op.expected_version);
      if (unknown || op.result == LinResult::kOk) {
        if (!matches) return false;
        *next = State{};
        return true;
      }
      if (op.result == LinResult::kBadVersion)
        return s.exists && op.expected_version != -1 && s.version != op.expected_version;
      return op.result == LinResult::kNoNode && !s.exists;
    }
  }
  return false;
}

// The doubly linked list of call and return events of Lowe's algorithm.
struct Event {
  bool is_call;
  size_t op;
  int64_t time;
  Event* match = nullptr;  // call <-> return
  Event* prev = nullptr;
  Event* next = nullptr;
};

void lift(Event* call) {
  call->prev->next = call->next;
  if (call->next != nullptr) call->next->prev = call->prev;
  Event* ret = call->match;
  if (ret == nullptr) return;
  ret->prev->next = ret->next;
  if (ret->next != nullptr) ret->next->prev = ret->prev;
}

void unlift(Event* call) {
  if (Event* ret = call->match) {
    ret->prev->next = ret;
    if (ret->next != nullptr) ret->next->prev = ret;
  }
  call->prev->next = call;
  if (call->next != nullptr) call->next->prev = call;
}

std::string cacheKey(const std::vector<uint64_t>& bits, const State& s) {
  std::string k(reinterpret_cast<const char*>(bits.data()), bits.size() * sizeof(uint64_t));
  k.push_back(s.exists ? '1' : '0');
  k.append(reinterpret_cast<const char*>(&s.version), sizeof(s.version));
  k.append(s.value);
  return k;
}

using Clock = std::chrono::steady_clock;

LinCheck checkPath(const std::string& path, const std::vector<LinOperation>& ops,
                   Clock::time_point deadline) {
  LinCheck out;
  const size_t n = ops.size();
  std::vector<Event> events;
  events.reserve(2 * n + 1);
  size_t known = 0;
  for (size_t i = 0; i < n; ++i) {
    events.push_back(Event{true, i, ops[i].call});
    if (ops[i].result != LinResult::kUnknown) {
      events.push_back(Event{false, i, ops[i].ret});
      ++known;
    }
  }
  // Calls before returns at equal times: touching intervals overlap.
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.time != b.time) return a.time < b.time;
    return a.is_call && !b.is_call;
  });
  std::vector<Event*> call_of(n, nullptr), ret_of(n, nullptr);
  for (Event& e : events) (e.is_call ? call_of : ret_of)[e.op] = &e;
  for (size_t i = 0; i < n; ++i) {
    call_of[i]->match = ret_of[i];
    if (ret_of[i] != nullptr) ret_of[i]->match = call_of[i];
  }
  Event head{true, SIZE_MAX, 0};
  Event* prev = &head;
  for (Event& e : events) {
    prev->next = &e;
    e.prev = prev;
    prev = &e;
  }

  std::vector<uint64_t> linearized((n + 63) / 64, 0);
  std::unordered_set<std::string> seen;
  struct Frame {
    Event* call;
    State state;
  };
  std::vector<Frame> stack;
  State state;
  size_t best = 0;
  size_t stuck_at = SIZE_MAX;
  Event* entry = head.next;
  uint64_t iterations = 0;
  // Done when every operation with a known outcome is placed; the unknown ones left over
  // simply never took effect.
  while (known > 0) {
    if (++iterations % 4096 == 0 && Clock::now() > deadline) {
      out.timed_out = true;
      out.explanation = "path " + path + ": search budget exhausted after " +
                        std::to_string(iterations) + " steps";
      return out;
    }
    if (entry != nullptr && entry->is_call) {
      State next;
      size_t op = entry->op;
      if (step(state, ops[op], &next)) {
        linearized[op / 64] |= uint64_t{1} << (op % 64);
        if (seen.insert(cacheKey(linearized, next)).second) {
          stack.push_back(Frame{entry, state});
          state = next;
          lift(entry);
          if (entry->match != nullptr) --known;
          best = std::max(best, stack.size());
          entry = head.next;
          continue;
        }
        linearized[op / 64] &= ~(uint64_t{1} << (op % 64));
      }
      entry = entry->next;
      continue;
    }
    // A return whose operation could not be placed before it: undo the last choice.
    if (entry != nullptr && stack.size() >= best) stuck_at = entry->op;
    if (stack.empty()) {
      out.linearizable = false;
      const LinOperation& op = ops[stuck_at == SIZE_MAX ? 0 : stuck_at];
      out.explanation = "path " + path + ": not linearizable; at most " + std::to_string(best) +
                        " of " + std::to_string(n) + " operations could be ordered, then " +
                        describe(op) + " fits no order";
      return out;
    }
    Frame f = stack.back();
    stack.pop_back();
    state = f.state;
    size_t op = f.call->op;
    linearized[op / 64] &= ~(uint64_t{1} << (op % 64));
    unlift(f.call);
    if (f.call->match != nullptr) ++known;
    entry = f.call->next;
  }
  out.linearizable = true;
  return out;
}

const char* opName(LinOp op) {
  switch (op) {
    case LinOp::kCreate:
      return "create";
    case LinOp::kCas:
      return "cas";
    case LinOp::kRead:
      return "read";
    case LinOp::kRemove:
      return "remove";
  }
  return "?";
}

const char* resultName(LinResult r) {
  switch (r) {
    case LinResult::kOk:
      return "ok";
    case LinResult::kNodeExists:
      return "NodeExists";
    case LinResult::kBadVersion:
      return "BadVersion";
    case LinResult::kNoNode:
      return "NoNode";
    case LinResult::kUnknown:
      return "unknown";
  }
  return "?";
}

}  // namespace

std::string describe(const LinOperation& op) {
  std::string s = std::string(opName(op.op)) + " by client " + std::to_string(op.client) + " [" +
                  std::to_string(op.call) + ", " +
                  (op.ret == std::numeric_limits<int64_t>::max() ? std::string("never")
                                                                 : std::to_string(op.ret)) +
                  "] -> " + resultName(op.result);
  if (op.op == LinOp::kCas || op.op == LinOp::kRemove)
    s += " (expected version " + std::to_string(op.expected_version) + ")";
  if (op.result == LinResult::kOk && (op.op == LinOp::kRead || op.op == LinOp::kCas))
    s += " value \"" + op.value + "\" version " + std::to_string(op.version);
  return s;
}

LinCheck checkLinearizable(const std::vector<LinOperation>& history,
                           std::chrono::milliseconds budget) {
  auto deadline = Clock::now() + budget;
  std::map<std::string, std::vector<LinOperation>> by_path;
  for (const LinOperation& op : history) {
    // A read with no answer constrains nothing.
    if (op.op == LinOp::kRead && op.result == LinResult::kUnknown) continue;
    by_path[op.path].push_back(op);
  }
  for (const auto& [path, ops] : by_path) {
    LinCheck c = checkPath(path, ops, deadline);
    if (!c.linearizable) return c;
  }
  LinCheck ok;
  ok.linearizable = true;
  ok.explanation = std::to_string(history.size()) + " operations on " +
                   std::to_string(by_path.size()) + " paths are linearizable";
  return ok;
}

}  // namespace corral::testing
