// The linearizability checker itself: it must accept what a linearizable store can produce
// and reject broken histories (stale reads, lost updates, phantom values), including
// deliberately corrupted versions of generated histories.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "linearizability_checker.h"

namespace corral::testing {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Register {
  bool exists = false;
  std::string value;
  int32_t version = 0;
};

LinOperation create(int client, int64_t call, int64_t ret, const std::string& value,
                    LinResult r = LinResult::kOk) {
  return LinOperation{client, call, ret, "/k", LinOp::kCreate, value, 0, 0, r};
}
LinOperation cas(int client, int64_t call, int64_t ret, int32_t expected, const std::string& value,
                 LinResult r = LinResult::kOk) {
  return LinOperation{client, call, ret, "/k", LinOp::kCas, value, expected, expected + 1, r};
}
LinOperation read(int client, int64_t call, int64_t ret, const std::string& value, int32_t version,
                  LinResult r = LinResult::kOk) {
  return LinOperation{client, call, ret, "/k", LinOp::kRead, value, 0, version, r};
}

bool linearizable(const std::vector<LinOperation>& h) {
  LinCheck c = checkLinearizable(h);
  EXPECT_FALSE(c.timed_out);
  return c.linearizable;
}

TEST(Linearizability, SequentialHistory) {
  EXPECT_TRUE(linearizable({read(1, 0, 1, "", 0, LinResult::kNoNode), create(1, 2, 3, "a"),
                            read(1, 4, 5, "a", 0), cas(1, 6, 7, 0, "b"), read(2, 8, 9, "b", 1)}));
}

TEST(Linearizability, ConcurrentWritesEitherOrder) {
  std::vector<LinOperation> base = {create(1, 0, 1, "a"), cas(1, 2, 10, 0, "b"),
                                    cas(2, 3, 9, 0, "c", LinResult::kBadVersion)};
  auto h = base;
  h.push_back(read(3, 4, 5, "a", 0));  // before either
  EXPECT_TRUE(linearizable(h));
  h = base;
  h.push_back(read(3, 4, 5, "b", 1));
  EXPECT_TRUE(linearizable(h));
}

TEST(Linearizability, StaleReadAfterCompletedWriteIsCaught) {
  auto h =
      std::vector<LinOperation>{create(1, 0, 1, "a"), cas(1, 2, 3, 0, "b"), read(2, 4, 5, "a", 0)};
  LinCheck c = checkLinearizable(h);
  EXPECT_FALSE(c.linearizable);
  EXPECT_NE(c.explanation.find("path /k"), std::string::npos) << c.explanation;
}

TEST(Linearizability, TwoSuccessfulCasOnOneVersionIsCaught) {
  EXPECT_FALSE(linearizable({create(1, 0, 1, "a"), cas(1, 2, 5, 0, "b"), cas(2, 2, 5, 0, "c")}));
}

TEST(Linearizability, PhantomValuesAndWrongVersionsAreCaught) {
  EXPECT_FALSE(linearizable({create(1, 0, 1, "a"), read(2, 2, 3, "zzz", 0)}));
  EXPECT_FALSE(linearizable({create(1, 0, 1, "a"), read(2, 2, 3, "a", 4)}));
  auto bad_cas = cas(1, 2, 3, 0, "b");
  bad_cas.version = 7;
  EXPECT_FALSE(linearizable({create(1, 0, 1, "a"), bad_cas}));
  EXPECT_FALSE(linearizable({create(1, 0, 1, "a", LinResult::kNodeExists)}));
}

TEST(Linearizability, UnknownOutcomesMayOrMayNotHaveHappened) {
  // Observed later: it happened.
  EXPECT_TRUE(linearizable({create(1, 0, 1, "a"), cas(1, 2, kNever, 0, "b", LinResult::kUnknown),
                            read(2, 10, 11, "b", 1)}));
  // Never observed: it did not (or not yet).
  EXPECT_TRUE(linearizable({create(1, 0, 1, "a"), cas(1, 2, kNever, 0, "b", LinResult::kUnknown),
                            read(2, 10, 11, "a", 0)}));
  // Observed, then gone without another write: impossible.
  EXPECT_FALSE(linearizable({create(1, 0, 1, "a"), cas(1, 2, kNever, 0, "b", LinResult::kUnknown),
                             read(2, 10, 11, "b", 1), read(2, 12, 13, "a", 0)}));
}

// A linearizable register store with random concurrency: each op takes effect at a random
// instant of its interval; some writes end with an unknown outcome.
std::vector<LinOperation> generate(uint64_t seed, int clients, int ops_per_client, int paths) {
  std::mt19937_64 rng(seed);
  struct Pending {
    LinOperation op;
    int64_t effect;
  };
  std::vector<Pending> all;
  for (int c = 0; c < clients; ++c) {
    int64_t t = static_cast<int64_t>(rng() % 10);
    for (int i = 0; i < ops_per_client; ++i) {
      LinOperation op;
      op.client = c;
      op.call = t;
      op.ret = t + 1 + static_cast<int64_t>(rng() % 40);
      op.path = "/k" + std::to_string(rng() % paths);
      int kind = static_cast<int>(rng() % 10);
      op.op = kind < 1 ? LinOp::kCreate : kind < 6 ? LinOp::kCas : LinOp::kRead;
      op.value = "v" + std::to_string(c) + "-" + std::to_string(i);
      op.expected_version = static_cast<int32_t>(rng() % 6);
      int64_t effect = op.call + static_cast<int64_t>(rng() % (op.ret - op.call));
      all.push_back(Pending{op, effect});
      t = op.ret + static_cast<int64_t>(rng() % 5);
    }
  }
  std::sort(all.begin(), all.end(),
            [](const Pending& a, const Pending& b) { return a.effect < b.effect; });
  std::map<std::string, Register> store;
  std::vector<LinOperation> history;
  for (Pending& p : all) {
    LinOperation& op = p.op;
    Register& s = store[op.path];
    switch (op.op) {
      case LinOp::kCreate:
        op.result = s.exists ? LinResult::kNodeExists : LinResult::kOk;
        if (!s.exists) s = Register{true, op.value, 0};
        break;
      case LinOp::kCas:
        if (!s.exists) {
          op.result = LinResult::kNoNode;
        } else if (s.version != op.expected_version) {
          op.result = LinResult::kBadVersion;
        } else {
          op.result = LinResult::kOk;
          s.value = op.value;
          op.version = ++s.version;
        }
        break;
      case LinOp::kRead:
        op.result = s.exists ? LinResult::kOk : LinResult::kNoNode;
        op.value = s.value;
        op.version = s.version;
        break;
      default:
        break;
    }
    if (op.op != LinOp::kRead && rng() % 20 == 0) {
      op.result = LinResult::kUnknown;
      op.ret = kNever;
    }
    history.push_back(op);
  }
  return history;
}

TEST(Linearizability, GeneratedHistoriesPassAndCorruptedOnesFail) {
  int caught = 0, corrupted = 0;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    auto h = generate(seed, 6, 40, 2);
    LinCheck ok = checkLinearizable(h);
    ASSERT_TRUE(ok.linearizable) << "seed " << seed << ": " << ok.explanation;
    // Corrupt one successful read that follows a completed write of another value: make it
    // report a value that was never written.
    for (LinOperation& op : h) {
      if (op.op == LinOp::kRead && op.result == LinResult::kOk) {
        op.value = "never-written";
        ++corrupted;
        break;
      }
    }
    if (!checkLinearizable(h).linearizable) ++caught;
  }
  EXPECT_EQ(caught, corrupted);
  EXPECT_GT(corrupted, 100);
}

TEST(Linearizability, StaleReadInjectedIntoGeneratedHistoryIsCaught) {
  int caught = 0, tried = 0;
  for (uint64_t seed = 200; seed < 300; ++seed) {
    auto h = generate(seed, 4, 30, 1);
    // Find a cas that succeeded and completed, then add a read starting after it returned
    // that sees the state before it.
    for (size_t i = 0; i < h.size(); ++i) {
      const LinOperation& w = h[i];
      if (w.op != LinOp::kCas || w.result != LinResult::kOk || w.ret == kNever) continue;
      int64_t after = 0;
      for (const auto& o : h) after = std::max(after, o.ret == kNever ? o.call : o.ret);
      LinOperation stale{99, after + 1, after + 2,     w.path,        LinOp::kRead,
                         "", 0,         w.version - 1, LinResult::kOk};
      // the value before w: the write that produced version w.version - 1
      bool found = false;
      for (const auto& o : h)
        if (o.path == w.path && o.result == LinResult::kOk &&
            ((o.op == LinOp::kCas && o.version == w.version - 1) ||
             (o.op == LinOp::kCreate && w.version == 1))) {
          stale.value = o.value;
          found = true;
        }
      if (!found) continue;
      h.push_back(stale);
      ++tried;
      if (!checkLinearizable(h).linearizable) ++caught;
      break;
    }
  }
  EXPECT_GT(tried, 50);
  EXPECT_EQ(caught, tried);
}

TEST(Linearizability, LargeHistoryIsCheckedQuickly) {
  auto h = generate(7, 16, 1000, 8);  // 16000 ops, 8 paths, ~2000 per path
  auto t0 = std::chrono::steady_clock::now();
  LinCheck c = checkLinearizable(h, std::chrono::seconds(20));
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_TRUE(c.linearizable) << c.explanation;
  EXPECT_LT(ms, 5000);
}

}  // namespace
}  // namespace corral::testing
