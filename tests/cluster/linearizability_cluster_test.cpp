// A 3-voter ensemble under faults (leader killed and restarted, leader hung and resumed,
// a follower cut off, the leader cut off) while clients on every server do creates, compare-and-set
// setData and sync+getData on a few znodes; the recorded history must be linearizable.
#include <corral/client.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "ensemble.h"
#include "linearizability_checker.h"

namespace corral::testing {
namespace {

using Clock = std::chrono::steady_clock;

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

LinResult outcome(ZkError e) {
  switch (e) {
    case ZkError::kOk:
      return LinResult::kOk;
    case ZkError::kNodeExists:
      return LinResult::kNodeExists;
    case ZkError::kBadVersion:
      return LinResult::kBadVersion;
    case ZkError::kNoNode:
      return LinResult::kNoNode;
    default:
      return LinResult::kUnknown;  // connection loss, timeout: it may or may not have happened
  }
}

class History {
 public:
  void add(LinOperation op) {
    if (op.result == LinResult::kUnknown) op.ret = std::numeric_limits<int64_t>::max();
    std::lock_guard<std::mutex> lock(mu_);
    ops_.push_back(std::move(op));
  }
  std::vector<LinOperation> ops() {
    std::lock_guard<std::mutex> lock(mu_);
    return ops_;
  }

 private:
  std::mutex mu_;
  std::vector<LinOperation> ops_;
};

void clientLoop(Ensemble& e, int client, int home, std::atomic<bool>& stop, History& h) {
  std::mt19937_64 rng(static_cast<uint64_t>(client) * 7919);
  // Each client prefers its home server but may fail over to the others.
  std::vector<int> order = {home};
  for (int id : e.ids())
    if (id != home) order.push_back(id);
  std::unique_ptr<Client> c;
  int counter = 0;
  while (!stop) {
    if (!c || c->state() == KeeperState::kExpired) {
      ClientOptions o;
      o.servers = e.nativeAddresses(order);
      o.session_timeout_ms = 4000;
      o.connect_timeout = std::chrono::milliseconds(3000);
      o.request_timeout = std::chrono::milliseconds(1500);
      c = std::make_unique<Client>(o);
      if (c->connect() != ZkError::kOk) {
        c.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
    }
    LinOperation op;
    op.client = client;
    op.path = "/lin-" + std::to_string(rng() % 3);
    int kind = static_cast<int>(rng() % 10);
    if (kind == 0) {
      op.op = LinOp::kCreate;
      op.value = "c" + std::to_string(client) + "-" + std::to_string(counter++);
      op.call = nowNs();
      ZkError r = c->create(op.path, op.value, CreateMode::kPersistent);
      op.ret = nowNs();
      op.result = outcome(r);
    } else if (kind < 6) {
      // Compare-and-set against the version last read (or a guess).
      Stat st;
      std::string data;
      if (c->getData(op.path, &data, &st) != ZkError::kOk) continue;
      op.op = LinOp::kCas;
      op.expected_version = st.version;
      op.value = "s" + std::to_string(client) + "-" + std::to_string(counter++);
      op.call = nowNs();
      Stat out;
      ZkError r = c->setData(op.path, op.value, st.version, &out);
      op.ret = nowNs();
      op.result = outcome(r);
      op.version = r == ZkError::kOk ? out.version : 0;
    } else {
      op.op = LinOp::kRead;
      op.call = nowNs();
      ZkError r = c->sync(op.path);
      Stat st;
      std::string data;
      if (r == ZkError::kOk) r = c->getData(op.path, &data, &st);
      op.ret = nowNs();
      op.result = outcome(r);
      op.value = data;
      op.version = st.version;
    }
    bool unknown = op.result == LinResult::kUnknown;
    h.add(op);
    // While its server is down the client fails fast; do not flood the history meanwhile.
    if (unknown) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(ClusterLinearizability, HistoryUnderFaultsIsLinearizable) {
  TempDir dir("corral-lin");
  struct LogsOnFailure {
    const TempDir& dir;
    ~LogsOnFailure() {
      if (::testing::Test::HasFailure()) printServerLogTails(dir);
    }
  } logs_on_failure{dir};
  EnsembleOptions o;
  o.tick_ms = 50;
  o.sync_limit = 4;
  Ensemble e(dir, o);
  e.startAll();
  ASSERT_NE(e.waitLeader(), 0);
  std::atomic<bool> stop{false};
  History h;
  std::vector<std::thread> clients;
  for (int c = 0; c < 6; ++c)
    clients.emplace_back([&, c] { clientLoop(e, c, 1 + c % 3, stop, h); });
  auto pauseFor = [](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  pauseFor(1500);
  // 1: the leader dies and comes back.
  int leader = e.waitLeader();
  ASSERT_NE(leader, 0);
  e.kill(leader);
  pauseFor(1500);
  e.start(leader);
  ASSERT_NE(e.waitLeader(), 0);
  pauseFor(1000);
  // 2: the leader hangs long enough to be replaced, then resumes.
  leader = e.waitLeader();
  ASSERT_NE(leader, 0);
  e.pause(leader);
  pauseFor(1500);
  e.resume(leader);
  ASSERT_NE(e.waitLeader(), 0);
  pauseFor(1000);
  // 3: a follower is cut off from everyone, then healed.
  leader = e.waitLeader();
  int follower = leader == 1 ? 2 : 1;
  e.isolate(follower);
  pauseFor(1500);
  e.healAll();
  ASSERT_NE(e.waitLeader(), 0);
  pauseFor(1000);
  // 4: the leader is cut off (it keeps running, believing it leads for a while), then healed.
  leader = e.waitLeader();
  ASSERT_NE(leader, 0);
  e.isolate(leader);
  pauseFor(1500);
  e.healAll();
  ASSERT_NE(e.waitLeader(), 0);
  pauseFor(1000);
  stop = true;
  for (auto& t : clients) t.join();

  std::vector<LinOperation> history = h.ops();
  size_t ok = 0;
  for (const auto& op : history) ok += op.result != LinResult::kUnknown;
  EXPECT_GT(ok, 300u) << "too few operations completed to say much";
  LinCheck check = checkLinearizable(history, std::chrono::seconds(60));
  ASSERT_FALSE(check.timed_out) << check.explanation;
  EXPECT_TRUE(check.linearizable) << check.explanation;
  std::printf("%zu operations (%zu with a known outcome): %s\n", history.size(), ok,
              check.explanation.c_str());
}

}  // namespace
}  // namespace corral::testing
