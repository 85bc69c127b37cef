// The native codec: every frame kind round-trips, and no input, however broken, crashes the
// decoder or gets through as a valid frame by accident.
#include <corral/codec.h>
#include <gtest/gtest.h>

#include <random>

namespace corral {
namespace {

Frame roundTrip(const std::string& bytes) {
  Frame f;
  std::string error;
  EXPECT_TRUE(decodeFrame(bytes, &f, &error)) << error;
  return f;
}

Op fullOp() {
  Op op;
  op.op = OpCode::kCreateTtl;
  op.path = "/a/b";
  op.data = std::string("bin\0\xff", 5);
  op.acl = {Acl{kPermAll, Id{"world", "anyone"}}, Acl{kPermRead, Id{"digest", "u:h="}}};
  op.version = 7;
  op.mode = CreateMode::kPersistentSequentialWithTtl;
  op.ttl_ms = 123456789012;
  op.watch = true;
  op.watch_mode = AddWatchMode::kPersistentRecursive;
  op.watcher_type = WatcherType::kData;
  op.scheme = "digest";
  op.auth = "u:p";
  op.relative_zxid = 99;
  op.data_watches = {"/d"};
  op.exist_watches = {"/e1", "/e2"};
  op.child_watches = {"/c"};
  op.persistent_watches = {"/p"};
  op.persistent_recursive_watches = {"/r"};
  return op;
}

void expectSameOp(const Op& a, const Op& b) {
  EXPECT_EQ(a.op, b.op);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.acl, b.acl);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.ttl_ms, b.ttl_ms);
  EXPECT_EQ(a.watch, b.watch);
  EXPECT_EQ(a.watch_mode, b.watch_mode);
  EXPECT_EQ(a.watcher_type, b.watcher_type);
  EXPECT_EQ(a.scheme, b.scheme);
  EXPECT_EQ(a.auth, b.auth);
  EXPECT_EQ(a.relative_zxid, b.relative_zxid);
  EXPECT_EQ(a.data_watches, b.data_watches);
  EXPECT_EQ(a.exist_watches, b.exist_watches);
  EXPECT_EQ(a.child_watches, b.child_watches);
  EXPECT_EQ(a.persistent_watches, b.persistent_watches);
  EXPECT_EQ(a.persistent_recursive_watches, b.persistent_recursive_watches);
}

TEST(Codec, ConnectFramesRoundTrip) {
  ConnectRequest c{0, 42, 30000, 0x0100000000000007, std::string(16, '\x01'), true};
  Frame f = roundTrip(encodeConnect(c));
  ASSERT_EQ(f.kind, FrameKind::kConnect);
  EXPECT_EQ(f.connect.last_zxid_seen, 42);
  EXPECT_EQ(f.connect.timeout_ms, 30000);
  EXPECT_EQ(f.connect.session_id, 0x0100000000000007);
  EXPECT_EQ(f.connect.password, c.password);
  EXPECT_TRUE(f.connect.read_only);

  ConnectResponse r{ZkError::kSessionExpired, 0, 4000, 5, "pw", false};
  f = roundTrip(encodeConnectResponse(r));
  ASSERT_EQ(f.kind, FrameKind::kConnectResponse);
  EXPECT_EQ(f.connected.err, ZkError::kSessionExpired);
  EXPECT_EQ(f.connected.timeout_ms, 4000);
  EXPECT_EQ(f.connected.password, "pw");
}

TEST(Codec, RequestsWithEveryFieldAndMultiRoundTrip) {
  Request req;
  req.xid = -8;
  req.op = fullOp();
  Frame f = roundTrip(encodeRequest(req));
  ASSERT_EQ(f.kind, FrameKind::kRequest);
  EXPECT_EQ(f.request.xid, -8);
  expectSameOp(f.request.op, req.op);

  Request m;
  m.xid = 3;
  m.op.op = OpCode::kMulti;
  m.ops = {fullOp(), Op{}};
  m.ops[1].op = OpCode::kDelete;
  m.ops[1].path = "/x";
  f = roundTrip(encodeRequest(m));
  ASSERT_EQ(f.request.ops.size(), 2u);
  expectSameOp(f.request.ops[0], m.ops[0]);
  expectSameOp(f.request.ops[1], m.ops[1]);
}

TEST(Codec, ResponsesAndEventsRoundTrip) {
  Response r;
  r.xid = 11;
  r.zxid = 0x500000003;
  r.err = ZkError::kOk;
  r.result.op = OpCode::kGetChildren2;
  r.result.path = "/p";
  r.result.data = "data";
  r.result.stat = Stat{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  r.result.has_stat = true;
  r.result.children = {"a", "b"};
  r.result.acl = {Acl{kPermRead, Id{"ip", "10.0.0.0/8"}}};
  r.result.count = 12;
  r.result.ids = {Id{"digest", "u:h"}};
  OpResult failed;
  failed.op = OpCode::kError;
  failed.err = ZkError::kRuntimeInconsistency;
  r.results = {failed};
  Frame f = roundTrip(encodeResponse(r));
  ASSERT_EQ(f.kind, FrameKind::kResponse);
  EXPECT_EQ(f.response.zxid, r.zxid);
  EXPECT_EQ(f.response.result.stat, r.result.stat);
  EXPECT_TRUE(f.response.result.has_stat);
  EXPECT_EQ(f.response.result.children, r.result.children);
  EXPECT_EQ(f.response.result.acl, r.result.acl);
  EXPECT_EQ(f.response.result.count, 12);
  EXPECT_EQ(f.response.result.ids, r.result.ids);
  ASSERT_EQ(f.response.results.size(), 1u);
  EXPECT_EQ(f.response.results[0].err, ZkError::kRuntimeInconsistency);
  EXPECT_EQ(f.response.results[0].op, OpCode::kError);

  WatchEvent e{EventType::kNodeChildrenChanged, KeeperState::kSyncConnected, "/w", 77};
  f = roundTrip(encodeEvent(e));
  ASSERT_EQ(f.kind, FrameKind::kEvent);
  EXPECT_EQ(f.event.type, EventType::kNodeChildrenChanged);
  EXPECT_EQ(f.event.path, "/w");
  EXPECT_EQ(f.event.zxid, 77);
}

TEST(Codec, TruncatedFramesAreRejectedAtEveryLength) {
  Request req;
  req.op = fullOp();
  for (const std::string& bytes :
       {encodeRequest(req), encodeConnect(ConnectRequest{}), encodeEvent(WatchEvent{})}) {
    for (size_t n = 0; n < bytes.size(); ++n) {
      Frame f;
      std::string error;
      EXPECT_FALSE(decodeFrame(bytes.substr(0, n), &f, &error)) << n;
      EXPECT_FALSE(error.empty());
    }
  }
}

TEST(Codec, MalformedFramesGetAReason) {
  Frame f;
  std::string error;
  EXPECT_FALSE(decodeFrame("\x93\x01garbage", &f, &error));
  EXPECT_FALSE(decodeFrame(std::string("\xc1", 1), &f, &error));
  EXPECT_FALSE(decodeFrame(std::string("\x91\x09", 2), &f, &error));  // unknown kind
  EXPECT_NE(error.find("unknown frame kind"), std::string::npos) << error;
  Request req;
  req.op.op = static_cast<OpCode>(999);
  EXPECT_FALSE(decodeFrame(encodeRequest(req), &f, &error));
  EXPECT_NE(error.find("unknown opcode 999"), std::string::npos) << error;
  req.op.op = OpCode::kCreate;
  req.op.mode = static_cast<CreateMode>(42);
  EXPECT_FALSE(decodeFrame(encodeRequest(req), &f, &error));
  EXPECT_NE(error.find("mode"), std::string::npos) << error;
  // A declared array of four billion elements in a few bytes.
  EXPECT_FALSE(decodeFrame(std::string("\xdd\xff\xff\xff\xff\x03", 6), &f, &error));
  // Trailing bytes after a valid frame.
  EXPECT_FALSE(decodeFrame(encodeEvent(WatchEvent{}) + "x", &f, &error));
}

TEST(Codec, RandomBytesNeverCrashTheDecoder) {
  std::mt19937 rng(1234);
  Request req;
  req.op = fullOp();
  const std::string valid = encodeRequest(req);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 128);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {  // mutations of a valid frame find the deeper paths
      bytes = valid;
      for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    Frame f;
    std::string error;
    decodeFrame(bytes, &f, &error);
  }
}

TEST(Codec, ErrorNamesAreZooKeepers) {
  EXPECT_STREQ(zkErrorName(ZkError::kNoNode), "NONODE");
  EXPECT_STREQ(zkErrorName(ZkError::kNodeExists), "NODEEXISTS");
  EXPECT_STREQ(zkErrorName(ZkError::kBadVersion), "BADVERSION");
  EXPECT_STREQ(zkErrorName(ZkError::kNotEmpty), "NOTEMPTY");
  EXPECT_STREQ(zkErrorName(ZkError::kSessionExpired), "SESSIONEXPIRED");
  EXPECT_TRUE(isWriteOp(OpCode::kMulti));
  EXPECT_TRUE(isWriteOp(OpCode::kCheck));
  EXPECT_FALSE(isWriteOp(OpCode::kMultiRead));
  EXPECT_FALSE(isWriteOp(OpCode::kSync));
}

}  // namespace
}  // namespace corral
