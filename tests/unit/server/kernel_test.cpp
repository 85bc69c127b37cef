// The server kernel driven directly with a simulated clock, a fake transport and a fake
// storage whose durability the test decides: handshake, ordering, watches, expiry, resume,
// bad input and storage failure, deterministically.
#include <corral/codec.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "server/kernel.h"

namespace corral::kernel {
namespace {

class FakeOutput : public KernelOutput {
 public:
  void send(uint64_t conn, std::string frame) override {
    Frame f;
    std::string error;
    ASSERT_TRUE(decodeFrame(frame, &f, &error)) << error;
    frames[conn].push_back(f);
  }
  void close(uint64_t conn) override { closed.push_back(conn); }
  bool append(int64_t zxid, std::string_view record, std::string* error) override {
    if (refuse_appends) {
      *error = "disk full";
      return false;
    }
    records.emplace_back(zxid, std::string(record));
    return true;
  }
  void requestSync() override { ++syncs; }
  void snapshotDue(int64_t zxid) override {
    if (kernel != nullptr) snapshots.emplace_back(zxid, kernel->state().snapshot());
  }
  void truncateAfter(int64_t zxid) override {
    while (!records.empty() && records.back().first > zxid) records.pop_back();
  }
  void log(corral_log_level, const std::string& m) override { logs.push_back(m); }

  // Takes the frames sent to conn so far.
  std::deque<Frame> take(uint64_t conn) {
    std::deque<Frame> out;
    out.swap(frames[conn]);
    return out;
  }

  std::map<uint64_t, std::deque<Frame>> frames;
  std::vector<uint64_t> closed;
  std::vector<std::pair<int64_t, std::string>> records;
  std::vector<std::string> logs;
  std::vector<std::pair<int64_t, std::string>> snapshots;
  const Kernel* kernel = nullptr;  // whose state snapshotDue() takes
  int syncs = 0;
  bool refuse_appends = false;
};

class KernelTest : public ::testing::Test {
 protected:
  KernelTest() { kernel_.start(now_); }

  KernelOptions options() {
    KernelOptions o;
    o.min_session_timeout_ms = 1000;
    o.max_session_timeout_ms = 10000;
    o.max_request_bytes = 4096;
    o.seed = 42;
    return o;
  }

  // Makes everything appended so far durable.
  void flush() {
    if (!out_.records.empty()) kernel_.onDurable(out_.records.back().first, true, "", now_);
  }

  // Opens a connection and completes a new session's handshake.
  int64_t connect(uint64_t conn, int32_t timeout_ms = 5000) {
    kernel_.onOpen(conn, "127.0.0.1:5000", now_);
    ConnectRequest c;
    c.timeout_ms = timeout_ms;
    kernel_.onFrame(conn, encodeConnect(c), now_);
    EXPECT_TRUE(out_.frames[conn].empty());  // not before the session is durable
    flush();
    auto frames = out_.take(conn);
    EXPECT_EQ(frames.size(), 1u);
    if (frames.empty()) return 0;
    EXPECT_EQ(frames[0].kind, FrameKind::kConnectResponse);
    password_[conn] = frames[0].connected.password;
    return frames[0].connected.session_id;
  }

  void request(uint64_t conn, int32_t xid, const Op& op) {
    Request r;
    r.xid = xid;
    r.op = op;
    kernel_.onFrame(conn, encodeRequest(r), now_);
  }

  static Op create(const std::string& path, CreateMode mode = CreateMode::kPersistent) {
    Op op;
    op.op = OpCode::kCreate;
    op.path = path;
    op.mode = mode;
    op.acl = {Acl{kPermAll, Id{"world", "anyone"}}};
    return op;
  }
  static Op op(OpCode code, const std::string& path, bool watch = false) {
    Op o;
    o.op = code;
    o.path = path;
    o.watch = watch;
    return o;
  }
  static Op setData(const std::string& path, const std::string& data) {
    Op o = op(OpCode::kSetData, path);
    o.data = data;
    return o;
  }

  FakeOutput out_;
  int64_t now_ = 1'700'000'000'000;
  Kernel kernel_{options(), nullptr, &out_};
  std::map<uint64_t, std::string> password_;
};

TEST_F(KernelTest, HandshakeCreatesADurableSessionWithANegotiatedTimeout) {
  kernel_.onOpen(1, "127.0.0.1:1", now_);
  ConnectRequest c;
  c.timeout_ms = 999999;
  kernel_.onFrame(1, encodeConnect(c), now_);
  EXPECT_EQ(out_.records.size(), 1u);
  EXPECT_GE(out_.syncs, 1);
  EXPECT_TRUE(out_.frames[1].empty());
  flush();
  auto f = out_.take(1);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].connected.err, ZkError::kOk);
  EXPECT_EQ(f[0].connected.timeout_ms, 10000);  // clamped to the maximum
  EXPECT_EQ(f[0].connected.password.size(), 16u);
  EXPECT_NE(f[0].connected.session_id, 0);
  EXPECT_EQ(f[0].connected.session_id >> 56, 1);  // the server id in the top byte
  EXPECT_EQ(kernel_.sessionCount(), 1u);
  int64_t other = connect(2, 1);
  EXPECT_NE(other, f[0].connected.session_id);
}

TEST_F(KernelTest, WritesAnswerOnlyWhenDurableAndReadsKeepTheSessionsOrder) {
  connect(1);
  request(1, 1, create("/a"));
  request(1, 2, op(OpCode::kExists, "/a"));  // must wait for the create
  EXPECT_TRUE(out_.frames[1].empty());
  flush();
  auto f = out_.take(1);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].response.xid, 1);
  EXPECT_EQ(f[0].response.err, ZkError::kOk);
  EXPECT_EQ(f[1].response.xid, 2);
  EXPECT_EQ(f[1].response.err, ZkError::kOk);  // it sees its own write
  EXPECT_EQ(f[1].response.zxid, f[0].response.zxid);

  // Another session's read is not held back by this session's writes.
  connect(2);
  request(1, 3, setData("/a", "x"));
  request(2, 1, op(OpCode::kGetData, "/a"));
  auto g = out_.take(2);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].response.result.data, "");
  flush();
  EXPECT_EQ(out_.take(1).size(), 1u);
}

TEST_F(KernelTest, WatchEventsGoOutBeforeTheWriteIsAnswered) {
  connect(1);
  connect(2);
  request(1, 1, create("/w"));
  flush();
  out_.take(1);
  request(2, 1, op(OpCode::kGetData, "/w", true));
  request(1, 2, op(OpCode::kGetData, "/w", true));
  out_.take(1);
  out_.take(2);
  request(1, 3, setData("/w", "new"));
  flush();
  auto mine = out_.take(1);
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].kind, FrameKind::kEvent);
  EXPECT_EQ(mine[0].event.type, EventType::kNodeDataChanged);
  EXPECT_EQ(mine[1].kind, FrameKind::kResponse);
  auto theirs = out_.take(2);
  ASSERT_EQ(theirs.size(), 1u);
  EXPECT_EQ(theirs[0].event.path, "/w");
  EXPECT_EQ(theirs[0].event.zxid, mine[1].response.zxid);
}

TEST_F(KernelTest, SilentSessionsExpireAndTheirEphemeralsGo) {
  int64_t a = connect(1, 2000);
  connect(2, 10000);
  request(1, 1, create("/lease", CreateMode::kEphemeral));
  flush();
  out_.take(1);
  request(2, 1, op(OpCode::kExists, "/lease", true));
  out_.take(2);

  // Pings keep session 1 alive past its timeout...
  for (int i = 0; i < 5; ++i) {
    now_ += 1000;
    request(1, -2, op(OpCode::kPing, ""));
    kernel_.onTick(now_);
  }
  EXPECT_EQ(kernel_.sessionCount(), 2u);
  EXPECT_EQ(out_.take(1).size(), 5u);  // five ping answers
  // ...silence does not.
  now_ += 2001;
  kernel_.onTick(now_);
  flush();
  auto f = out_.take(1);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, FrameKind::kEvent);
  EXPECT_EQ(f[0].event.state, KeeperState::kExpired);
  EXPECT_NE(std::find(out_.closed.begin(), out_.closed.end(), 1u), out_.closed.end());
  EXPECT_EQ(kernel_.state().session(a), nullptr);
  auto g = out_.take(2);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].event.type, EventType::kNodeDeleted);
  EXPECT_EQ(g[0].event.path, "/lease");
}

TEST_F(KernelTest, ASessionResumesOnANewConnectionOnlyWithItsPassword) {
  int64_t id = connect(1, 3000);
  request(1, 1, create("/mine", CreateMode::kEphemeral));
  flush();
  out_.take(1);
  kernel_.onClose(1, now_);
  now_ += 2000;
  kernel_.onTick(now_);
  EXPECT_EQ(kernel_.sessionCount(), 1u);  // a closed connection does not end the session

  kernel_.onOpen(2, "127.0.0.1:2", now_);
  ConnectRequest c;
  c.session_id = id;
  c.password = std::string(16, 'x');
  kernel_.onFrame(2, encodeConnect(c), now_);
  auto f = out_.take(2);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].connected.err, ZkError::kSessionExpired);

  kernel_.onOpen(3, "127.0.0.1:3", now_);
  c.password = password_[1];
  kernel_.onFrame(3, encodeConnect(c), now_);
  f = out_.take(3);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].connected.err, ZkError::kOk);
  EXPECT_EQ(f[0].connected.session_id, id);
  request(3, 1, op(OpCode::kGetEphemerals, "/"));
  f = out_.take(3);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].response.result.children, std::vector<std::string>{"/mine"});
}

TEST_F(KernelTest, BadInputClosesOnlyTheOffendingConnection) {
  connect(1);
  kernel_.onOpen(2, "127.0.0.1:2", now_);
  kernel_.onFrame(2, "\x93\x01garbage", now_);  // malformed
  kernel_.onOpen(3, "127.0.0.1:3", now_);
  request(3, 1, create("/x"));  // before any handshake
  kernel_.onOpen(4, "127.0.0.1:4", now_);
  kernel_.onFrame(4, std::string(5000, 'z'), now_);  // over max_request_bytes
  int64_t s5 = connect(5);
  (void)s5;
  kernel_.onFrame(5, encodeConnect(ConnectRequest{}), now_);  // a second handshake
  for (uint64_t conn : {2u, 3u, 4u, 5u})
    EXPECT_NE(std::find(out_.closed.begin(), out_.closed.end(), conn), out_.closed.end()) << conn;
  EXPECT_GE(out_.logs.size(), 4u);

  request(1, 9, create("/still-serving"));
  flush();
  auto f = out_.take(1);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].response.err, ZkError::kOk);
}

TEST_F(KernelTest, UnsupportedOpsGetAnErrorAnswer) {
  connect(1);
  request(1, 1, op(OpCode::kReconfig, "/"));
  request(1, 2, op(OpCode::kSasl, "/"));
  auto f = out_.take(1);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].response.err, ZkError::kUnimplemented);
  EXPECT_EQ(f[1].response.err, ZkError::kUnimplemented);
}

TEST_F(KernelTest, AStorageFailureFailsTheWritesInFlightAndServingGoesOn) {
  connect(1);
  request(1, 1, create("/a"));
  request(1, 2, create("/b"));
  kernel_.onDurable(out_.records.back().first, false, "fsync: I/O error", now_);
  auto f = out_.take(1);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].response.err, ZkError::kSystemError);
  EXPECT_EQ(f[1].response.err, ZkError::kSystemError);
  EXPECT_EQ(kernel_.state().nodeCount(), 4u);  // "/", "/zookeeper" and its two children

  out_.refuse_appends = true;
  request(1, 3, create("/c"));
  f = out_.take(1);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].response.err, ZkError::kSystemError);

  out_.refuse_appends = false;
  request(1, 4, create("/a"));
  flush();
  f = out_.take(1);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].response.err, ZkError::kOk);  // /a never existed: nothing half-applied
}

TEST_F(KernelTest, RecoveryReplaysTheLogIntoTheSameState) {
  int64_t id = connect(1);
  request(1, 1, create("/r"));
  request(1, 2, create("/r/e", CreateMode::kEphemeral));
  request(1, 3, setData("/r", "v"));
  flush();

  FakeOutput out2;
  Kernel restarted(options(), nullptr, &out2);
  std::string error;
  for (const auto& [zxid, record] : out_.records)
    ASSERT_TRUE(restarted.replay(zxid, record, &error)) << error;
  restarted.start(now_);
  EXPECT_EQ(restarted.state().lastZxid(), kernel_.state().lastZxid());
  EXPECT_EQ(restarted.state().nodeCount(), kernel_.state().nodeCount());
  ASSERT_NE(restarted.state().session(id), nullptr);
  EXPECT_EQ(restarted.sessionCount(), 1u);
  // The recovered session gets a full timeout from the restart, then expires.
  now_ += 6000;
  restarted.onTick(now_);
  restarted.onDurable(out2.records.back().first, true, "", now_);
  EXPECT_EQ(restarted.state().session(id), nullptr);
  EXPECT_FALSE(restarted.replay(99, "junk", &error));
}

TEST_F(KernelTest, SnapshotsEveryNTxnsAndRecoversFromSnapshotPlusLog) {
  FakeOutput out;
  KernelOptions o = options();
  o.snapshot_every = 3;
  Kernel k(o, nullptr, &out);
  out.kernel = &k;
  k.start(now_);
  k.onOpen(1, "127.0.0.1:1", now_);
  ConnectRequest c;
  c.timeout_ms = 5000;
  k.onFrame(1, encodeConnect(c), now_);  // txn 1: the session
  for (int i = 0; i < 4; ++i) {          // txns 2..5
    Request r;
    r.xid = i + 1;
    r.op = create("/n" + std::to_string(i));
    if (i == 0) k.onDurable(out.records.back().first, true, "", now_);
    k.onFrame(1, encodeRequest(r), now_);
  }
  k.onDurable(out.records.back().first, true, "", now_);
  ASSERT_EQ(out.snapshots.size(), 1u);
  EXPECT_EQ(out.snapshots[0].first, 5);  // taken once 3+ txns applied, at the last applied

  Request r;
  r.xid = 9;
  r.op = create("/after");
  k.onFrame(1, encodeRequest(r), now_);
  k.onDurable(out.records.back().first, true, "", now_);

  FakeOutput out2;
  Kernel restarted(o, nullptr, &out2);
  std::string error;
  ASSERT_TRUE(restarted.restoreSnapshot(out.snapshots[0].second, &error)) << error;
  for (const auto& [zxid, record] : out.records)  // the log overlaps the snapshot: skipped
    ASSERT_TRUE(restarted.replay(zxid, record, &error)) << error;
  EXPECT_EQ(restarted.state().lastZxid(), k.state().lastZxid());
  EXPECT_EQ(restarted.state().nodeCount(), k.state().nodeCount());
  EXPECT_EQ(restarted.state().snapshot(), k.state().snapshot());
}

TEST_F(KernelTest, EmptyContainersAreCleanedUpByTicks) {
  connect(1);
  Op c = create("/box");
  c.op = OpCode::kCreateContainer;
  request(1, 1, c);
  request(1, 2, create("/box/item"));
  request(1, 3, op(OpCode::kDelete, "/box/item"));
  flush();
  out_.take(1);
  now_ += 100;
  kernel_.onTick(now_);
  flush();
  request(1, 4, op(OpCode::kExists, "/box"));
  auto f = out_.take(1);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].response.err, ZkError::kNoNode);
}

}  // namespace
}  // namespace corral::kernel
