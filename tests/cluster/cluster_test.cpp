// Real ensembles of corrald processes on 127.0.0.1 (LMDB with fsync), driven by the C++
// client: a leader killed under write load, minority and majority loss, a partitioned old
// leader, the whole ensemble killed, five voters with an observer. Every acknowledged write
// must survive all of it.
#include <corral/client.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "ensemble.h"

namespace corral::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::unique_ptr<Client> connectTo(const std::vector<std::string>& servers,
                                  int32_t timeout_ms = 4000) {
  ClientOptions o;
  o.servers = servers;
  o.session_timeout_ms = timeout_ms;
  o.connect_timeout = std::chrono::milliseconds(20000);  // a loaded CI machine is slow
  o.request_timeout = std::chrono::milliseconds(5000);
  auto c = std::make_unique<Client>(o);
  if (c->connect() != ZkError::kOk) return nullptr;
  return c;
}

// Retries an operation through connection loss until it gets a definite answer or the
// deadline passes.
template <typename Fn>
ZkError retry(Fn fn, std::chrono::milliseconds within = std::chrono::milliseconds(15000)) {
  auto end = Clock::now() + within;
  ZkError e = ZkError::kConnectionLoss;
  while (Clock::now() < end) {
    e = fn();
    if (e != ZkError::kConnectionLoss && e != ZkError::kOperationTimeout &&
        e != ZkError::kSessionMoved)
      return e;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return e;
}

// The other two voters of a 3-voter ensemble, lower id first.
std::pair<int, int> followersOf(int leader) {
  int f1 = leader == 1 ? 2 : 1;
  return {f1, 6 - leader - f1};
}

// A create that rides out connection loss: NodeExists after a lost answer means an earlier
// attempt went through.
ZkError createRiding(Client& c, const std::string& path) {
  bool lost = false;
  ZkError e = retry([&] {
    ZkError r = c.create(path, "", CreateMode::kPersistent);
    if (r == ZkError::kConnectionLoss || r == ZkError::kOperationTimeout) lost = true;
    return r;
  });
  return lost && e == ZkError::kNodeExists ? ZkError::kOk : e;
}

// Checks, through server `id` alone, that every path exists (after a sync).
void expectAllPresent(Ensemble& e, int id, const std::set<std::string>& paths) {
  auto c = connectTo({e.nativeAddress(id)});
  ASSERT_NE(c, nullptr) << "server " << id;
  // A loaded machine may see an election meanwhile: the client rides it out.
  ASSERT_EQ(retry([&] { return c->sync("/"); }), ZkError::kOk);
  size_t missing = 0;
  for (const std::string& p : paths)
    if (retry([&] { return c->exists(p); }) != ZkError::kOk) {
      if (++missing < 5) ADD_FAILURE() << "server " << id << " lost acknowledged " << p;
    }
  EXPECT_EQ(missing, 0u) << "of " << paths.size() << " acknowledged writes";
}

// Writers creating sequential paths through any server, recording what was acknowledged.
class WriteLoad {
 public:
  WriteLoad(Ensemble& e, int writers) {
    for (int w = 0; w < writers; ++w)
      threads_.emplace_back([this, &e, w] {
        std::vector<int> all = e.ids();
        auto c = connectTo(e.nativeAddresses(all));
        if (!c) return;
        for (int n = 0; !stop_; ++n) {
          std::string path = "/load-" + std::to_string(w) + "-" + std::to_string(n);
          ZkError r = c->create(path, "v", CreateMode::kPersistent);
          std::lock_guard<std::mutex> lock(mu_);
          if (r == ZkError::kOk) {
            acked_.insert(path);
          } else {
            ++failed_;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }
      });
  }
  ~WriteLoad() { finish(); }
  void finish() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  size_t ackedCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  std::set<std::string> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::set<std::string> acked_;
  size_t failed_ = 0;
};

bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds within) {
  auto end = Clock::now() + within;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

class ClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) printServerLogTails(dir_);
  }
  TempDir dir_{"corral-cluster"};
};

TEST_F(ClusterTest, WritesThroughAnyServerAreReadEverywhere) {
  Ensemble e(dir_, EnsembleOptions{});
  e.startAll();
  int leader = e.waitLeader();
  ASSERT_NE(leader, 0);
  for (int id : e.ids()) {
    auto c = connectTo({e.nativeAddress(id)});
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->create("/from-" + std::to_string(id), "x", CreateMode::kPersistent), ZkError::kOk);
  }
  for (int id : e.ids()) expectAllPresent(e, id, {"/from-1", "/from-2", "/from-3"});
  // Status: one leader with two synced followers.
  std::string mntr = e.mntr(leader);
  EXPECT_NE(mntr.find("zk_server_state\tleader"), std::string::npos) << mntr;
  EXPECT_NE(mntr.find("zk_synced_followers\t2"), std::string::npos) << mntr;
}

// The leader SIGKILLed under write load: writes resume on a new leader and every
// acknowledged one is on every server, the old leader too once it is back.
void killLeaderUnderWriteLoad(const TempDir& dir, const std::string& peer) {
  EnsembleOptions options;
  options.peer = peer;
  Ensemble e(dir, options);
  e.startAll();
  int leader = e.waitLeader();
  ASSERT_NE(leader, 0);
  WriteLoad load(e, 4);
  ASSERT_TRUE(waitFor([&] { return load.ackedCount() > 200; }, std::chrono::seconds(20)));
  e.kill(leader);
  int next = e.waitLeader(std::chrono::seconds(20));
  ASSERT_NE(next, 0);
  ASSERT_NE(next, leader);
  size_t at_failover = load.ackedCount();
  ASSERT_TRUE(
      waitFor([&] { return load.ackedCount() > at_failover + 200; }, std::chrono::seconds(20)))
      << "writes did not resume after the failover";
  load.finish();
  std::set<std::string> acked = load.acked();
  for (int id : e.ids())
    if (id != leader) expectAllPresent(e, id, acked);
  e.start(leader);
  ASSERT_TRUE(e.waitServing(leader));
  expectAllPresent(e, leader, acked);
}

TEST_F(ClusterTest, KilledLeaderUnderWriteLoadLosesNoAcknowledgedWrite) {
  killLeaderUnderWriteLoad(dir_, "tcp");
}

// The same over the other peer transport, which stays selectable.
TEST_F(ClusterTest, KilledLeaderUnderWriteLoadOverTheZmqPeerTransport) {
  killLeaderUnderWriteLoad(dir_, "zmq");
}

TEST_F(ClusterTest, MinorityLossKeepsWritingMajorityLossStopsUntilItReturns) {
  Ensemble e(dir_, EnsembleOptions{});
  e.startAll();
  int leader = e.waitLeader();
  ASSERT_NE(leader, 0);
  auto [f1, f2] = followersOf(leader);
  e.kill(f1);
  auto c = connectTo(e.nativeAddresses({leader}));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->create("/minority-down", "", CreateMode::kPersistent), ZkError::kOk);
  e.kill(f2);
  // Without a quorum the leader steps down: writes fail and the server stops serving.
  ASSERT_TRUE(waitFor([&] { return e.role(leader).empty(); }, std::chrono::seconds(10)));
  EXPECT_NE(c->create("/no-quorum", "", CreateMode::kPersistent), ZkError::kOk);
  e.start(f2);
  int back = e.waitLeader(std::chrono::seconds(20));
  ASSERT_NE(back, 0);
  auto c2 = connectTo(e.nativeAddresses({leader, f2}));
  ASSERT_NE(c2, nullptr);
  EXPECT_EQ(retry([&] { return c2->create("/quorum-back", "", CreateMode::kPersistent); }),
            ZkError::kOk);
  expectAllPresent(e, f2, {"/minority-down", "/quorum-back"});
}

TEST_F(ClusterTest, PartitionedLeaderCannotCommitAndRejoinsWithoutItsStrayWrite) {
  Ensemble e(dir_, EnsembleOptions{});
  e.startAll();
  int old_leader = e.waitLeader();
  ASSERT_NE(old_leader, 0);
  auto on_old = connectTo({e.nativeAddress(old_leader)});
  ASSERT_NE(on_old, nullptr);
  ASSERT_EQ(on_old->create("/before", "", CreateMode::kPersistent), ZkError::kOk);
  e.isolate(old_leader);
  // The old leader proposes but cannot commit: the client never gets an OK.
  EXPECT_NE(on_old->create("/stray", "", CreateMode::kPersistent), ZkError::kOk);
  // The others elect a new leader and go on.
  std::vector<int> rest;
  for (int id : e.ids())
    if (id != old_leader) rest.push_back(id);
  ASSERT_TRUE(waitFor([&] { return e.role(rest[0]) == "leader" || e.role(rest[1]) == "leader"; },
                      std::chrono::seconds(20)));
  EXPECT_TRUE(waitFor([&] { return e.role(old_leader).empty(); }, std::chrono::seconds(10)))
      << "the partitioned leader still claims to serve";
  auto on_new = connectTo(e.nativeAddresses(rest));
  ASSERT_NE(on_new, nullptr);
  EXPECT_EQ(retry([&] { return on_new->create("/after", "", CreateMode::kPersistent); }),
            ZkError::kOk);
  e.healAll();
  ASSERT_TRUE(waitFor([&] { return e.role(old_leader) == "follower"; }, std::chrono::seconds(20)));
  for (int id : e.ids()) {
    auto c = connectTo({e.nativeAddress(id)});
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->sync("/"), ZkError::kOk);
    EXPECT_EQ(c->exists("/before"), ZkError::kOk) << "server " << id;
    EXPECT_EQ(c->exists("/after"), ZkError::kOk) << "server " << id;
    EXPECT_EQ(c->exists("/stray"), ZkError::kNoNode) << "server " << id;
  }
  // What it took from the leader (a snapshot, its log emptied) is durable: it restarts from it.
  e.kill(old_leader);
  e.start(old_leader);
  ASSERT_TRUE(e.waitServing(old_leader));
  expectAllPresent(e, old_leader, {"/before", "/after"});
}

TEST_F(ClusterTest, WholeEnsembleKilledAndRestartedKeepsEveryAcknowledgedWrite) {
  Ensemble e(dir_, EnsembleOptions{});
  e.startAll();
  ASSERT_NE(e.waitLeader(), 0);
  std::set<std::string> acked;
  {
    WriteLoad load(e, 3);
    ASSERT_TRUE(waitFor([&] { return load.ackedCount() > 300; }, std::chrono::seconds(20)));
    for (int id : e.ids()) e.kill(id);
    load.finish();
    acked = load.acked();
  }
  e.startAll();
  ASSERT_NE(e.waitLeader(), 0);
  for (int id : e.ids()) expectAllPresent(e, id, acked);
}

TEST_F(ClusterTest, SessionAndWatchesMoveWithTheClientToAnotherServer) {
  Ensemble e(dir_, EnsembleOptions{});
  e.startAll();
  int leader = e.waitLeader();
  ASSERT_NE(leader, 0);
  auto [f1, f2] = followersOf(leader);
  auto c = connectTo(e.nativeAddresses({f1, f2}));  // on f1 first
  ASSERT_NE(c, nullptr);
  int64_t session = c->sessionId();
  ASSERT_EQ(c->create("/watched", "v0", CreateMode::kPersistent), ZkError::kOk);
  ASSERT_EQ(c->create("/mine", "", CreateMode::kEphemeral), ZkError::kOk);
  std::atomic<int> fired{0};
  std::string data;
  ASSERT_EQ(c->getData("/watched", &data, nullptr,
                       [&](const WatchEvent& ev) {
                         if (ev.type == EventType::kNodeDataChanged) ++fired;
                       }),
            ZkError::kOk);
  e.kill(f1);
  // The client resumes its session on f2 and re-arms its watch there.
  ASSERT_TRUE(
      waitFor([&] { return c->exists("/mine") == ZkError::kOk; }, std::chrono::seconds(10)));
  EXPECT_EQ(c->sessionId(), session);
  auto other = connectTo({e.nativeAddress(leader)});
  ASSERT_NE(other, nullptr);
  ASSERT_EQ(other->setData("/watched", "v1"), ZkError::kOk);
  EXPECT_TRUE(waitFor([&] { return fired.load() == 1; }, std::chrono::seconds(10)));
  // Its ephemeral lives as long as the session, wherever the client is.
  EXPECT_EQ(other->exists("/mine"), ZkError::kOk);
  c.reset();  // closes the session
  EXPECT_TRUE(waitFor([&] { return other->exists("/mine") == ZkError::kNoNode; },
                      std::chrono::seconds(10)));
}

TEST_F(ClusterTest, FiveVotersAndAnObserverSurviveTwoLostVoters) {
  EnsembleOptions o;
  o.voters = 5;
  o.observers = 1;
  Ensemble e(dir_, o);
  e.startAll();
  int leader = e.waitLeader();
  ASSERT_NE(leader, 0);
  ASSERT_TRUE(e.waitServing(6));
  EXPECT_EQ(e.role(6), "observer");
  auto via_observer = connectTo({e.nativeAddress(6)});
  ASSERT_NE(via_observer, nullptr);
  // On a loaded machine an election may happen at any time; the clients ride it out.
  EXPECT_EQ(createRiding(*via_observer, "/via-observer"), ZkError::kOk);
  std::vector<int> followers;
  for (int id = 1; id <= 5; ++id)
    if (id != leader) followers.push_back(id);
  e.kill(followers[0]);
  e.kill(followers[1]);
  auto c = connectTo(e.nativeAddresses({leader, followers[2], followers[3]}));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(createRiding(*c, "/two-down"), ZkError::kOk);
  expectAllPresent(e, 6, {"/via-observer", "/two-down"});
}

}  // namespace
}  // namespace corral::testing
