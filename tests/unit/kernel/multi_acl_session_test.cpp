// Multi's all-or-nothing rule, the prepare overlay, ACLs and sessions.
#include <cstdio>

#include "state_test_support.h"

namespace corral::kernel::testing {
namespace {

TEST_F(StateTest, MultiAppliesAllOrNothing) {
  ASSERT_EQ(err(write(kA, create("/m"))), ZkError::kOk);
  int64_t before = stat("/m").cversion;
  Applied a =
      multi(kA, {create("/m/a"), create("/m/b"), pathOp(OpCode::kCheck, "/m", 5), create("/m/c")});
  EXPECT_EQ(err(a), ZkError::kBadVersion);
  ASSERT_EQ(a.response.results.size(), 4u);
  EXPECT_EQ(a.response.results[0].err, ZkError::kOk);
  EXPECT_EQ(a.response.results[1].err, ZkError::kOk);
  EXPECT_EQ(a.response.results[2].err, ZkError::kBadVersion);
  EXPECT_EQ(a.response.results[3].err, ZkError::kRuntimeInconsistency);
  EXPECT_FALSE(exists("/m/a"));
  EXPECT_FALSE(exists("/m/b"));
  EXPECT_EQ(stat("/m").cversion, before);
  EXPECT_TRUE(a.events.empty());

  a = multi(kA, {create("/m/a", "1"), setData("/m/a", "2", 0), pathOp(OpCode::kCheck, "/m/a", 1),
                 create("/m/a/x"), pathOp(OpCode::kDelete, "/m/a/x")});
  ASSERT_EQ(err(a), ZkError::kOk);
  ASSERT_EQ(a.response.results.size(), 5u);
  EXPECT_EQ(a.response.results[0].path, "/m/a");
  EXPECT_EQ(a.response.results[1].stat.version, 1);
  Applied r = read(kA, pathOp(OpCode::kGetData, "/m/a"));
  EXPECT_EQ(r.response.result.data, "2");
  EXPECT_EQ(r.response.result.stat.mzxid, zxid_);  // one txn, one zxid
  EXPECT_FALSE(exists("/m/a/x"));
}

TEST_F(StateTest, MultiReadAnswersEachOpOnItsOwn) {
  ASSERT_EQ(err(write(kA, create("/r", "data"))), ZkError::kOk);
  Request req;
  req.op.op = OpCode::kMultiRead;
  req.ops = {pathOp(OpCode::kGetData, "/r"), pathOp(OpCode::kGetData, "/nope"),
             pathOp(OpCode::kGetChildren, "/r")};
  Applied a = sm_.read(who(kA), req);
  EXPECT_EQ(err(a), ZkError::kOk);
  ASSERT_EQ(a.response.results.size(), 3u);
  EXPECT_EQ(a.response.results[0].data, "data");
  EXPECT_EQ(a.response.results[1].err, ZkError::kNoNode);
  EXPECT_EQ(a.response.results[2].err, ZkError::kOk);
}

TEST_F(StateTest, PreparedButUnappliedTxnsAreSeenByLaterPrepares) {
  Txn first = prepare(kA, create("/p"));
  Txn second = prepare(kB, create("/p"));
  EXPECT_EQ(first.type, OpCode::kCreate2);
  EXPECT_EQ(second.type, OpCode::kError);
  EXPECT_EQ(second.err, ZkError::kNodeExists);
  Txn child = prepare(kA, create("/p/c", "", CreateMode::kPersistentSequential));
  Txn del = prepare(kA, pathOp(OpCode::kDelete, "/p"));
  EXPECT_EQ(del.err, ZkError::kNotEmpty);
  EXPECT_EQ(err(sm_.apply(first)), ZkError::kOk);
  EXPECT_EQ(err(sm_.apply(second)), ZkError::kNodeExists);
  Applied c = sm_.apply(child);
  EXPECT_EQ(c.response.result.path, "/p/c0000000000");
  sm_.apply(del);
  EXPECT_TRUE(exists("/p/c0000000000"));
  // Applying an old zxid again is refused, never a double apply.
  EXPECT_NE(err(sm_.apply(first)), ZkError::kOk);
}

TEST_F(StateTest, DiscardPendingForgetsTheOverlay) {
  Txn t = prepare(kA, create("/gone"));
  ASSERT_NE(t.type, OpCode::kError);
  sm_.discardPending();
  Txn again = prepare(kB, create("/gone"));
  EXPECT_NE(again.type, OpCode::kError);
}

TEST_F(StateTest, OverlayRecordReplacedByALaterTxnOutlivesTheEarlierOnesApply) {
  ASSERT_EQ(err(write(kA, create("/n"))), ZkError::kOk);
  Txn first = prepare(kA, setData("/n", "1"));
  Txn second = prepare(kA, setData("/n", "2"));
  ASSERT_EQ(err(sm_.apply(first)), ZkError::kOk);
  // `second` is still in flight: the overlay must show its version (2), not the tree's (1).
  Txn third = prepare(kA, setData("/n", "3", 2));
  EXPECT_EQ(third.err, ZkError::kOk);
  ASSERT_EQ(err(sm_.apply(second)), ZkError::kOk);
  ASSERT_EQ(err(sm_.apply(third)), ZkError::kOk);
  EXPECT_EQ(prepare(kA, setData("/n", "4", 3)).err, ZkError::kOk);
}

TEST_F(StateTest, ThousandsOfWritesInFlightApplyInOrder) {
  ASSERT_EQ(err(write(kA, create("/q"))), ZkError::kOk);
  std::vector<Txn> txns;
  for (int i = 0; i < 5000; ++i)
    txns.push_back(prepare(kA, create("/q/c", "", CreateMode::kPersistentSequential)));
  txns.push_back(prepare(kA, pathOp(OpCode::kDelete, "/q")));
  EXPECT_EQ(txns.back().err, ZkError::kNotEmpty);
  txns.pop_back();
  for (size_t i = 0; i < txns.size(); ++i) {
    Applied a = sm_.apply(txns[i]);
    ASSERT_EQ(err(a), ZkError::kOk) << i;
    char name[32];
    std::snprintf(name, sizeof(name), "/q/c%010zu", i);
    EXPECT_EQ(a.response.result.path, name);
  }
  // Everything applied: the next sequence number comes from the tree alone.
  Applied next = write(kA, create("/q/c", "", CreateMode::kPersistentSequential));
  EXPECT_EQ(next.response.result.path, "/q/c0000005000");
}

TEST_F(StateTest, AclsDenyWithoutTheRightId) {
  ids_[kA].push_back(Id{"digest", "alice:pw!"});
  Op secret = create("/secret", "s");
  secret.acl = {Acl{kPermRead | kPermWrite | kPermCreate | kPermDelete, Id{"digest", "alice:pw!"}}};
  ASSERT_EQ(err(write(kA, secret)), ZkError::kOk);

  EXPECT_EQ(err(read(kB, pathOp(OpCode::kGetData, "/secret"))), ZkError::kNoAuth);
  EXPECT_EQ(err(read(kB, pathOp(OpCode::kGetChildren, "/secret"))), ZkError::kNoAuth);
  EXPECT_EQ(err(read(kB, pathOp(OpCode::kGetAcl, "/secret"))), ZkError::kNoAuth);
  EXPECT_EQ(err(read(kB, pathOp(OpCode::kExists, "/secret"))), ZkError::kOk);  // needs none
  EXPECT_EQ(err(write(kB, setData("/secret", "x"))), ZkError::kNoAuth);
  EXPECT_EQ(err(write(kB, create("/secret/child"))), ZkError::kNoAuth);
  EXPECT_EQ(err(write(kB, pathOp(OpCode::kCheck, "/secret"))), ZkError::kNoAuth);
  Op set_acl = pathOp(OpCode::kSetAcl, "/secret");
  set_acl.acl = {Acl{kPermAll, Id{"world", "anyone"}}};
  EXPECT_EQ(err(write(kA, set_acl)), ZkError::kNoAuth);  // alice lacks ADMIN

  EXPECT_EQ(err(read(kA, pathOp(OpCode::kGetData, "/secret"))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, create("/secret/child"))), ZkError::kOk);
  EXPECT_EQ(err(write(kB, pathOp(OpCode::kDelete, "/secret/child"))), ZkError::kNoAuth);
  EXPECT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/secret/child"))), ZkError::kOk);

  // The superuser passes every check.
  ids_[kB].push_back(Id{"digest", "super:pw!"});
  EXPECT_EQ(err(read(kB, pathOp(OpCode::kGetData, "/secret"))), ZkError::kOk);
  Applied a = write(kB, set_acl);
  EXPECT_EQ(err(a), ZkError::kOk);
  EXPECT_EQ(a.response.result.stat.aversion, 1);
}

TEST_F(StateTest, AclValidationAndTheAuthScheme) {
  Op op = create("/x");
  op.acl = {};
  EXPECT_EQ(err(write(kA, op)), ZkError::kInvalidAcl);
  op.acl = {Acl{kPermAll, Id{"nosuch", "id"}}};
  EXPECT_EQ(err(write(kA, op)), ZkError::kInvalidAcl);
  op.acl = {Acl{kPermAll, Id{"world", "someone"}}};
  EXPECT_EQ(err(write(kA, op)), ZkError::kInvalidAcl);
  op.acl = {Acl{kPermAll, Id{"auth", ""}}};
  EXPECT_EQ(err(write(kA, op)), ZkError::kInvalidAcl);  // no authenticated id yet

  ids_[kA].push_back(Id{"digest", "bob:pw!"});
  ASSERT_EQ(err(write(kA, op)), ZkError::kOk);
  Applied r = read(kA, pathOp(OpCode::kGetAcl, "/x"));
  ASSERT_EQ(r.response.result.acl.size(), 1u);
  EXPECT_EQ(r.response.result.acl[0], (Acl{kPermAll, Id{"digest", "bob:pw!"}}));

  Op set = pathOp(OpCode::kSetAcl, "/x", 3);
  set.acl = {Acl{kPermRead, Id{"world", "anyone"}}};
  EXPECT_EQ(err(write(kA, set)), ZkError::kBadVersion);
  set.version = 0;
  EXPECT_EQ(err(write(kA, set)), ZkError::kOk);
}

TEST_F(StateTest, ClosingASessionDeletesItsEphemeralsAtomically) {
  ASSERT_EQ(err(write(kA, create("/dir"))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, create("/dir/e1", "", CreateMode::kEphemeral))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, create("/dir/e2", "", CreateMode::kEphemeralSequential))), ZkError::kOk);
  ASSERT_EQ(err(read(kB, watchOp(OpCode::kExists, "/dir/e1"))), ZkError::kOk);
  ASSERT_EQ(err(read(kB, watchOp(OpCode::kGetChildren, "/dir"))), ZkError::kOk);

  Applied a = closeSession(kA);
  int64_t close_zxid = zxid_;
  EXPECT_FALSE(exists("/dir/e1"));
  EXPECT_FALSE(exists("/dir/e20000000001"));
  EXPECT_EQ(stat("/dir").pzxid, close_zxid);
  EXPECT_EQ(sm_.session(kA), nullptr);
  bool deleted = false, children = false;
  for (const auto& [session, e] : a.events) {
    EXPECT_EQ(session, kB);
    EXPECT_EQ(e.zxid, close_zxid);
    deleted |= e.type == EventType::kNodeDeleted && e.path == "/dir/e1";
    children |= e.type == EventType::kNodeChildrenChanged && e.path == "/dir";
  }
  EXPECT_TRUE(deleted);
  EXPECT_TRUE(children);
  EXPECT_EQ(err(write(kA, create("/late"))), ZkError::kSessionExpired);
}

TEST_F(StateTest, PendingCloseIsSeenBySequentialCreates) {
  ASSERT_EQ(err(write(kA, create("/s"))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, create("/s/e", "", CreateMode::kEphemeral))), ZkError::kOk);  // cv 1
  Txn close = sm_.prepareCloseSession(kA, ++zxid_, now_);                               // cv 2
  Txn seq = prepare(kB, create("/s/n-", "", CreateMode::kPersistentSequential));
  sm_.apply(close);
  Applied a = sm_.apply(seq);
  EXPECT_EQ(a.response.result.path, "/s/n-0000000002");
}

}  // namespace
}  // namespace corral::kernel::testing
