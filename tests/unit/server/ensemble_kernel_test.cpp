// Three server kernels wired together in memory (network, disks, clock all simulated): what
// a client sees of an ensemble — writes through any server, sessions that move between
// servers and expire on the leader's clock, sync on a lagging follower, failover.
#include <corral/codec.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>

#include "server/kernel.h"

namespace corral::kernel {
namespace {

class Cluster;

class NodeOutput : public KernelOutput {
 public:
  NodeOutput(Cluster* cluster, int64_t id) : cluster_(cluster), id_(id) {}
  void send(uint64_t conn, std::string frame) override;
  void close(uint64_t conn) override { closed.insert(conn); }
  bool append(int64_t zxid, std::string_view record, std::string*) override {
    log_records.emplace_back(zxid, std::string(record));
    return true;
  }
  void requestSync() override { sync_wanted = true; }
  void truncateAfter(int64_t zxid) override {
    while (!log_records.empty() && log_records.back().first > zxid) log_records.pop_back();
  }
  void snapshotDue(int64_t) override {}
  void log(corral_log_level, const std::string& m) override { logs.push_back(m); }
  void sendPeer(int64_t peer, std::string message) override;
  bool saveHardState(const zab::HardState& state) override {
    hard_state = state;
    return true;
  }
  bool truncateLog(int64_t zxid, std::string*) override {
    truncateAfter(zxid);
    return true;
  }
  bool installSnapshot(int64_t zxid, std::string_view data, std::string*) override {
    snapshot = {zxid, std::string(data)};
    log_records.clear();
    return true;
  }

  std::vector<std::pair<int64_t, std::string>> log_records;
  std::pair<int64_t, std::string> snapshot{0, ""};
  zab::HardState hard_state;
  bool sync_wanted = false;
  std::set<uint64_t> closed;
  std::vector<std::string> logs;

 private:
  Cluster* cluster_;
  int64_t id_;
};

class Cluster {
 public:
  explicit Cluster(int voters, int64_t max_counter = 0xfffffffeLL) : max_counter_(max_counter) {
    for (int i = 1; i <= voters; ++i) ids_.push_back(i);
    for (int64_t id : ids_) boot(id);
  }

  void boot(int64_t id) {
    auto& out = outputs_[id];
    if (!out) out = std::make_unique<NodeOutput>(this, id);
    KernelOptions o;
    o.server_id = id;
    o.min_session_timeout_ms = 200;
    o.max_session_timeout_ms = 10000;
    o.seed = static_cast<uint64_t>(id);
    zab::ZabOptions z;
    z.self_id = id;
    z.voters = ids_;
    z.tick_ms = 50;
    z.init_limit = 10;
    z.sync_limit = 4;
    z.finalize_wait_ms = 10;
    z.max_counter = max_counter_;
    o.ensemble = z;
    kernels_[id] = std::make_unique<Kernel>(o, nullptr, out.get());
    Kernel& k = *kernels_[id];
    std::string error;
    if (!out->snapshot.second.empty()) {
      EXPECT_TRUE(k.restoreSnapshot(out->snapshot.second, &error));
    }
    k.restoreHardState(out->hard_state);
    for (const auto& [zxid, rec] : out->log_records) EXPECT_TRUE(k.replay(zxid, rec, &error));
    k.start(now_);
    up_.insert(id);
    for (int64_t other : up_)
      if (other != id) {
        kernels_[other]->onPeerUp(id, now_);
        k.onPeerUp(other, now_);
      }
  }

  void crash(int64_t id) {
    up_.erase(id);
    kernels_.erase(id);
    for (auto& [link, q] : links_)
      if (link.first == id || link.second == id) q.clear();
    for (int64_t other : up_) kernels_[other]->onPeerDown(id, now_);
  }

  void deliverPeer(int64_t from, int64_t to, std::string message) {
    if (up_.count(from) && up_.count(to)) links_[{from, to}].push_back(std::move(message));
  }

  void deliverClient(int64_t server, uint64_t conn, std::string frame) {
    Frame f;
    std::string error;
    ASSERT_TRUE(decodeFrame(frame, &f, &error)) << error;
    client_frames_[conn].push_back(f);
    (void)server;
  }

  // One step: every queued message, every owed durable report, timers every 5 ms.
  void step() {
    for (auto& [link, q] : links_) {
      if (held_.count(link.second)) continue;
      while (!q.empty()) {
        std::string m = std::move(q.front());
        q.pop_front();
        if (up_.count(link.second)) kernels_[link.second]->onPeerMessage(link.first, m, now_);
      }
    }
    for (int64_t id : up_) {
      auto& out = *outputs_[id];
      if (out.sync_wanted) {
        out.sync_wanted = false;
        int64_t last = out.log_records.empty() ? 0 : out.log_records.back().first;
        kernels_[id]->onDurable(last, true, "", now_);
      }
    }
    now_ += 5;
    for (int64_t id : up_) {
      kernels_[id]->onTimer(now_);
      if (now_ % 50 == 0) kernels_[id]->onTick(now_);
    }
  }

  bool runUntil(const std::function<bool()>& pred, int64_t ms = 5000) {
    int64_t end = now_ + ms;
    while (now_ < end) {
      if (pred()) return true;
      step();
    }
    return pred();
  }
  void run(int64_t ms) {
    int64_t end = now_ + ms;
    while (now_ < end) step();
  }

  int64_t leader() {
    for (int64_t id : up_) {
      auto st = kernels_[id]->ensembleStatus();
      if (st && st->role == zab::Role::kLeading && st->serving) return id;
    }
    return 0;
  }
  bool allServing() {
    for (int64_t id : up_)
      if (!kernels_[id]->ensembleStatus()->serving) return false;
    return true;
  }
  int64_t follower(int64_t not_this = 0) {
    for (int64_t id : up_)
      if (id != leader() && id != not_this) return id;
    return 0;
  }

  // --- clients (native protocol frames) ---
  uint64_t open(int64_t server) {
    uint64_t conn = next_conn_++;
    conn_server_[conn] = server;
    kernels_[server]->onOpen(conn, "127.0.0.1:1", now_);
    return conn;
  }
  // Returns the connect response (kind kConnectResponse) or nullopt when the server closed.
  std::optional<ConnectResponse> handshake(uint64_t conn, int64_t session = 0,
                                           const std::string& password = "",
                                           int32_t timeout = 1000) {
    ConnectRequest c;
    c.timeout_ms = timeout;
    c.session_id = session;
    c.password = password;
    kernel(conn).onFrame(conn, encodeConnect(c), now_);
    std::optional<ConnectResponse> got;
    runUntil(
        [&] {
          for (auto& f : client_frames_[conn])
            if (f.kind == FrameKind::kConnectResponse) got = f.connected;
          return got.has_value() || outputs_[conn_server_[conn]]->closed.count(conn);
        },
        2000);
    client_frames_[conn].clear();
    return got;
  }
  // Sends a request and waits for its response.
  std::optional<Response> call(uint64_t conn, Op op, int64_t wait_ms = 2000) {
    Request r;
    r.xid = ++xid_;
    r.op = std::move(op);
    kernel(conn).onFrame(conn, encodeRequest(r), now_);
    std::optional<Response> got;
    runUntil(
        [&] {
          auto& frames = client_frames_[conn];
          for (auto it = frames.begin(); it != frames.end(); ++it)
            if (it->kind == FrameKind::kResponse && it->response.xid == r.xid) {
              got = it->response;
              frames.erase(it);
              return true;
            }
          return outputs_[conn_server_[conn]]->closed.count(conn) != 0;
        },
        wait_ms);
    return got;
  }
  void disconnect(uint64_t conn) { kernel(conn).onClose(conn, now_); }
  std::deque<Frame>& frames(uint64_t conn) { return client_frames_[conn]; }
  bool closed(uint64_t conn) { return outputs_[conn_server_[conn]]->closed.count(conn) != 0; }
  Kernel& kernel(uint64_t conn) { return *kernels_[conn_server_[conn]]; }
  Kernel& server(int64_t id) { return *kernels_[id]; }
  void hold(int64_t id) { held_.insert(id); }
  void release(int64_t id) { held_.erase(id); }
  int64_t now() const { return now_; }
  const std::vector<int64_t>& ids() const { return ids_; }

 private:
  int64_t max_counter_;
  std::vector<int64_t> ids_;
  std::map<int64_t, std::unique_ptr<NodeOutput>> outputs_;
  std::map<int64_t, std::unique_ptr<Kernel>> kernels_;
  std::set<int64_t> up_;
  std::set<int64_t> held_;  // servers whose incoming peer messages wait
  std::map<std::pair<int64_t, int64_t>, std::deque<std::string>> links_;
  std::map<uint64_t, std::deque<Frame>> client_frames_;
  std::map<uint64_t, int64_t> conn_server_;
  uint64_t next_conn_ = 1;
  int32_t xid_ = 0;
  int64_t now_ = 1000000;
};

void NodeOutput::send(uint64_t conn, std::string frame) {
  cluster_->deliverClient(id_, conn, std::move(frame));
}
void NodeOutput::sendPeer(int64_t peer, std::string message) {
  cluster_->deliverPeer(id_, peer, std::move(message));
}

Op createOp(const std::string& path, CreateMode mode = CreateMode::kPersistent,
            const std::string& data = "") {
  Op op;
  op.op = OpCode::kCreate;
  op.path = path;
  op.mode = mode;
  op.data = data;
  op.acl = {Acl{kPermAll, Id{"world", "anyone"}}};
  return op;
}
Op pathOp(OpCode code, const std::string& path) {
  Op o;
  o.op = code;
  o.path = path;
  return o;
}

class EnsembleKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.runUntil([&] { return cluster_.leader() != 0 && cluster_.allServing(); }));
    base_ = cluster_.server(cluster_.leader()).state().nodeCount();  // "/" and /zookeeper/...
  }
  Cluster cluster_{3};
  size_t base_ = 0;
};

TEST_F(EnsembleKernelTest, WritesThroughAFollowerAreSeenEverywhere) {
  int64_t f = cluster_.follower();
  uint64_t c = cluster_.open(f);
  auto hs = cluster_.handshake(c);
  ASSERT_TRUE(hs.has_value());
  EXPECT_EQ(hs->err, ZkError::kOk);
  EXPECT_EQ(hs->session_id >> 56, f);  // the id carries the server that created it
  auto r = cluster_.call(c, createOp("/a", CreateMode::kPersistent, "x"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ZkError::kOk);
  EXPECT_EQ(r->result.path, "/a");
  // A duplicate create fails with the leader's verdict, answered through the follower.
  r = cluster_.call(c, createOp("/a"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->err, ZkError::kNodeExists);
  cluster_.run(100);
  for (int64_t id : cluster_.ids())
    EXPECT_EQ(cluster_.server(id).state().nodeCount(), base_ + 1) << "server " << id;
}

TEST_F(EnsembleKernelTest, SyncMakesALaggingFollowerCatchUpBeforeAnswering) {
  int64_t leader = cluster_.leader();
  int64_t f = cluster_.follower();
  uint64_t writer = cluster_.open(leader);
  ASSERT_TRUE(cluster_.handshake(writer));
  uint64_t reader = cluster_.open(f);
  ASSERT_TRUE(cluster_.handshake(reader));
  cluster_.hold(f);  // f hears nothing from its peers for now
  auto r = cluster_.call(writer, createOp("/fresh"));
  ASSERT_TRUE(r.has_value());  // committed by the leader and the other follower
  auto stale = cluster_.call(reader, pathOp(OpCode::kExists, "/fresh"));
  ASSERT_TRUE(stale.has_value());
  EXPECT_EQ(stale->err, ZkError::kNoNode);  // a plain read is local, and f lags
  Request sync;
  Op s = pathOp(OpCode::kSync, "/");
  Op e = pathOp(OpCode::kExists, "/fresh");
  // sync then exists, pipelined: exists must wait for the sync.
  cluster_.kernel(reader).onFrame(reader, encodeRequest(Request{9001, s, {}}), cluster_.now());
  cluster_.kernel(reader).onFrame(reader, encodeRequest(Request{9002, e, {}}), cluster_.now());
  cluster_.run(20);
  EXPECT_TRUE(cluster_.frames(reader).empty());
  cluster_.release(f);
  ASSERT_TRUE(cluster_.runUntil([&] { return cluster_.frames(reader).size() >= 2; }));
  auto& frames = cluster_.frames(reader);
  EXPECT_EQ(frames[0].response.xid, 9001);
  EXPECT_EQ(frames[1].response.xid, 9002);
  EXPECT_EQ(frames[1].response.err, ZkError::kOk);
}

TEST_F(EnsembleKernelTest, SessionMovesToAnotherServerWithItsEphemerals) {
  int64_t f1 = cluster_.follower();
  int64_t f2 = cluster_.follower(f1);
  uint64_t c1 = cluster_.open(f1);
  auto hs = cluster_.handshake(c1, 0, "", 2000);
  ASSERT_TRUE(hs && hs->err == ZkError::kOk);
  auto r = cluster_.call(c1, createOp("/eph", CreateMode::kEphemeral));
  ASSERT_TRUE(r && r->err == ZkError::kOk);
  cluster_.disconnect(c1);
  cluster_.run(500);  // less than the 2 s timeout
  uint64_t c2 = cluster_.open(f2);
  auto again = cluster_.handshake(c2, hs->session_id, hs->password);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->err, ZkError::kOk);
  EXPECT_EQ(again->session_id, hs->session_id);
  // Kept alive from f2 by pings that f2 reports to the leader: well past the timeout.
  for (int i = 0; i < 10; ++i) {
    auto ping = cluster_.call(c2, pathOp(OpCode::kPing, ""));
    ASSERT_TRUE(ping.has_value());
    cluster_.run(400);
  }
  auto e = cluster_.call(c2, pathOp(OpCode::kExists, "/eph"));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->err, ZkError::kOk);
  // A wrong password is refused, never a silent new session.
  uint64_t c3 = cluster_.open(f1);
  auto bad = cluster_.handshake(c3, hs->session_id, "wrong-password-16");
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->err, ZkError::kSessionExpired);
  // Closing the session deletes its ephemerals everywhere.
  auto closed = cluster_.call(c2, pathOp(OpCode::kCloseSession, ""));
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->err, ZkError::kOk);
  cluster_.run(100);
  for (int64_t id : cluster_.ids()) EXPECT_EQ(cluster_.server(id).state().nodeCount(), base_);
}

TEST_F(EnsembleKernelTest, LeaderExpiresASessionWhoseClientVanished) {
  int64_t f = cluster_.follower();
  uint64_t c = cluster_.open(f);
  auto hs = cluster_.handshake(c, 0, "", 300);
  ASSERT_TRUE(hs && hs->err == ZkError::kOk);
  ASSERT_TRUE(cluster_.call(c, createOp("/gone", CreateMode::kEphemeral)));
  cluster_.disconnect(c);
  ASSERT_TRUE(cluster_.runUntil(
      [&] {
        for (int64_t id : cluster_.ids())
          if (cluster_.server(id).state().nodeCount() != base_) return false;
        return true;
      },
      3000));
  uint64_t back = cluster_.open(f);
  auto resumed = cluster_.handshake(back, hs->session_id, hs->password);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->err, ZkError::kSessionExpired);
}

TEST_F(EnsembleKernelTest, NewLeaderTakesOverAndSessionsSurvive) {
  int64_t old_leader = cluster_.leader();
  int64_t f = cluster_.follower();
  uint64_t c = cluster_.open(f);
  auto hs = cluster_.handshake(c, 0, "", 3000);
  ASSERT_TRUE(hs && hs->err == ZkError::kOk);
  ASSERT_TRUE(cluster_.call(c, createOp("/before", CreateMode::kEphemeral)));
  cluster_.crash(old_leader);
  // The follower lost its leader: it closes its clients and elects a new one.
  ASSERT_TRUE(cluster_.runUntil([&] { return cluster_.closed(c); }, 1000));
  ASSERT_TRUE(cluster_.runUntil(
      [&] { return cluster_.leader() != 0 && cluster_.leader() != old_leader; }, 3000));
  ASSERT_TRUE(cluster_.runUntil([&] { return cluster_.allServing(); }, 3000));
  uint64_t c2 = cluster_.open(f);
  auto again = cluster_.handshake(c2, hs->session_id, hs->password);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->err, ZkError::kOk);
  auto r = cluster_.call(c2, createOp("/after"));
  ASSERT_TRUE(r && r->err == ZkError::kOk);
  auto e = cluster_.call(c2, pathOp(OpCode::kExists, "/before"));
  ASSERT_TRUE(e && e->err == ZkError::kOk);
  // The old leader comes back as a follower and catches up.
  cluster_.boot(old_leader);
  ASSERT_TRUE(cluster_.runUntil([&] { return cluster_.allServing(); }, 3000));
  cluster_.run(100);
  EXPECT_EQ(cluster_.server(old_leader).state().nodeCount(), base_ + 2);
}

// The zxid counter running out moves the ensemble to a new epoch without an election;
// writes that arrive meanwhile wait and then go through, in order.
TEST(EnsembleKernelCounter, ExhaustedCounterMovesToNewEpochWithoutElection) {
  Cluster cluster(3, /*max_counter=*/4);
  ASSERT_TRUE(cluster.runUntil([&] { return cluster.leader() != 0 && cluster.allServing(); }));
  int64_t leader = cluster.leader();
  int64_t epoch = cluster.server(leader).ensembleStatus()->epoch;
  uint64_t c = cluster.open(cluster.follower());
  ASSERT_TRUE(cluster.handshake(c));
  for (int i = 0; i < 20; ++i) {
    auto r = cluster.call(c, createOp("/n" + std::to_string(i)));
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->err, ZkError::kOk) << i;
  }
  uint64_t on_leader = cluster.open(leader);
  ASSERT_TRUE(cluster.handshake(on_leader));
  for (int i = 0; i < 10; ++i) {
    auto r = cluster.call(on_leader, createOp("/l" + std::to_string(i)));
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->err, ZkError::kOk) << i;
  }
  EXPECT_EQ(cluster.leader(), leader);
  EXPECT_FALSE(cluster.closed(c));  // no election: the client never lost its server
  auto st = cluster.server(leader).ensembleStatus();
  EXPECT_GE(st->epoch, epoch + 4);
  EXPECT_LE(zab::counterOf(st->last_committed), 4);
}

}  // namespace
}  // namespace corral::kernel
