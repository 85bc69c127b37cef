// Znode operations, their Stat bookkeeping and every error code they can answer.
#include <cstdio>
#include <set>

#include "state_test_support.h"

namespace corral::kernel::testing {
namespace {

TEST_F(StateTest, CreateSetGetDeleteKeepStatExact) {
  Applied a = write(kA, create("/app", "v0"));
  ASSERT_EQ(err(a), ZkError::kOk);
  const Stat& created = a.response.result.stat;
  int64_t czxid = zxid_;
  EXPECT_EQ(a.response.result.path, "/app");
  EXPECT_EQ(created.czxid, czxid);
  EXPECT_EQ(created.mzxid, czxid);
  EXPECT_EQ(created.pzxid, czxid);
  EXPECT_EQ(created.ctime, now_);
  EXPECT_EQ(created.mtime, now_);
  EXPECT_EQ(created.version, 0);
  EXPECT_EQ(created.data_length, 2);
  EXPECT_EQ(created.ephemeral_owner, 0);

  now_ += 5;
  a = write(kA, setData("/app", "value-1", 0));
  ASSERT_EQ(err(a), ZkError::kOk);
  EXPECT_EQ(a.response.result.stat.version, 1);
  EXPECT_EQ(a.response.result.stat.mzxid, zxid_);
  EXPECT_EQ(a.response.result.stat.mtime, now_);
  EXPECT_EQ(a.response.result.stat.ctime, now_ - 5);
  EXPECT_EQ(a.response.result.stat.data_length, 7);

  Applied r = read(kB, pathOp(OpCode::kGetData, "/app"));
  ASSERT_EQ(err(r), ZkError::kOk);
  EXPECT_EQ(r.response.result.data, "value-1");
  EXPECT_EQ(r.response.zxid, zxid_);

  ASSERT_EQ(err(write(kA, create("/app/c1"))), ZkError::kOk);
  int64_t child_zxid = zxid_;
  Stat parent = stat("/app");
  EXPECT_EQ(parent.cversion, 1);
  EXPECT_EQ(parent.num_children, 1);
  EXPECT_EQ(parent.pzxid, child_zxid);
  EXPECT_EQ(parent.version, 1);  // children do not change the parent's data version

  ASSERT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/app/c1", 0))), ZkError::kOk);
  parent = stat("/app");
  EXPECT_EQ(parent.cversion, 2);
  EXPECT_EQ(parent.num_children, 0);
  EXPECT_EQ(parent.pzxid, zxid_);
  EXPECT_FALSE(exists("/app/c1"));
}

TEST_F(StateTest, ErrorCodesFollowZooKeeper) {
  ASSERT_EQ(err(write(kA, create("/a", "x"))), ZkError::kOk);
  EXPECT_EQ(err(write(kA, create("/a"))), ZkError::kNodeExists);
  EXPECT_EQ(err(write(kA, create("/missing/child"))), ZkError::kNoNode);
  EXPECT_EQ(err(write(kA, setData("/a", "y", 5))), ZkError::kBadVersion);
  EXPECT_EQ(err(write(kA, setData("/nope", "y"))), ZkError::kNoNode);
  EXPECT_EQ(err(write(kA, pathOp(OpCode::kCheck, "/a", 3))), ZkError::kBadVersion);
  EXPECT_EQ(err(write(kA, pathOp(OpCode::kCheck, "/a", 0))), ZkError::kOk);
  EXPECT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/a", 9))), ZkError::kBadVersion);
  EXPECT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/nope"))), ZkError::kNoNode);
  ASSERT_EQ(err(write(kA, create("/a/b"))), ZkError::kOk);
  EXPECT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/a"))), ZkError::kNotEmpty);
  EXPECT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/"))), ZkError::kBadArguments);
  EXPECT_EQ(err(read(kA, pathOp(OpCode::kGetData, "/nope"))), ZkError::kNoNode);
  EXPECT_EQ(err(read(kA, pathOp(OpCode::kGetChildren, "/nope"))), ZkError::kNoNode);

  ASSERT_EQ(err(write(kA, create("/eph", "", CreateMode::kEphemeral))), ZkError::kOk);
  EXPECT_EQ(err(write(kA, create("/eph/child"))), ZkError::kNoChildrenForEphemerals);
}

TEST_F(StateTest, InvalidPathsAndOversizeDataAreBadArguments) {
  for (const char* bad : {"", "a", "/a/", "//", "/a//b", "/a/./b", "/a/../b", "/.", "/a/.."}) {
    EXPECT_EQ(err(write(kA, create(bad))), ZkError::kBadArguments) << bad;
    EXPECT_EQ(err(read(kA, pathOp(OpCode::kGetData, bad))), ZkError::kBadArguments) << bad;
  }
  EXPECT_EQ(err(write(kA, create(std::string("/nul\0x", 6)))), ZkError::kBadArguments);
  EXPECT_EQ(err(write(kA, create("/ctl\x01"))), ZkError::kBadArguments);
  EXPECT_EQ(err(write(kA, create("/big", std::string(1025, 'x')))), ZkError::kBadArguments);
  EXPECT_EQ(err(write(kA, create("/fits", std::string(1024, 'x')))), ZkError::kOk);
  EXPECT_EQ(err(write(kA, setData("/fits", std::string(1025, 'x')))), ZkError::kBadArguments);
  EXPECT_EQ(err(write(kA, create("/unicode-\xc3\xa9"))), ZkError::kOk);
}

TEST_F(StateTest, SequentialNamesComeFromTheParentCversion) {
  ASSERT_EQ(err(write(kA, create("/q"))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, create("/q/other"))), ZkError::kOk);  // cversion 1
  Applied a = write(kA, create("/q/n-", "", CreateMode::kPersistentSequential));
  EXPECT_EQ(a.response.result.path, "/q/n-0000000001");
  ASSERT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/q/other"))), ZkError::kOk);  // cversion 3
  a = write(kA, create("/q/n-", "", CreateMode::kEphemeralSequential));
  EXPECT_EQ(a.response.result.path, "/q/n-0000000003");
  EXPECT_EQ(a.response.result.stat.ephemeral_owner, kA);
  // A trailing slash is allowed for sequential nodes: the name is the counter alone.
  a = write(kA, create("/q/", "", CreateMode::kPersistentSequential));
  EXPECT_EQ(a.response.result.path, "/q/0000000004");
}

TEST_F(StateTest, ChildrenListAndCountsAndEphemerals) {
  ASSERT_EQ(err(write(kA, create("/t"))), ZkError::kOk);
  for (const char* p : {"/t/b", "/t/a", "/t/a/x", "/t/a/y"})
    ASSERT_EQ(err(write(kA, create(p))), ZkError::kOk);
  Applied r = read(kA, pathOp(OpCode::kGetChildren2, "/t"));
  EXPECT_EQ(r.response.result.children, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.response.result.stat.num_children, 2);
  r = read(kA, pathOp(OpCode::kGetAllChildrenNumber, "/t"));
  EXPECT_EQ(r.response.result.count, 4);

  ASSERT_EQ(err(write(kA, create("/t/e1", "", CreateMode::kEphemeral))), ZkError::kOk);
  ASSERT_EQ(err(write(kB, create("/e2", "", CreateMode::kEphemeral))), ZkError::kOk);
  r = read(kA, pathOp(OpCode::kGetEphemerals, "/"));
  EXPECT_EQ(r.response.result.children, std::vector<std::string>{"/t/e1"});
  r = read(kA, pathOp(OpCode::kGetEphemerals, "/x"));
  EXPECT_TRUE(r.response.result.children.empty());
  r = read(kB, pathOp(OpCode::kGetEphemerals, "/"));
  EXPECT_EQ(r.response.result.children, std::vector<std::string>{"/e2"});

  // The tree every ZooKeeper client expects.
  r = read(kA, pathOp(OpCode::kGetChildren, "/"));
  EXPECT_NE(
      std::find(r.response.result.children.begin(), r.response.result.children.end(), "zookeeper"),
      r.response.result.children.end());
}

TEST_F(StateTest, ContainersGoWhenTheirLastChildGoes) {
  Op c = create("/lock", "", CreateMode::kContainer);
  c.op = OpCode::kCreateContainer;
  Applied a = write(kA, c);
  ASSERT_EQ(err(a), ZkError::kOk);
  EXPECT_EQ(a.response.result.stat.ephemeral_owner, static_cast<int64_t>(0x8000000000000000ULL));
  EXPECT_TRUE(sm_.cleanupCandidates(now_).empty());  // never had a child: kept
  ASSERT_EQ(err(write(kA, create("/lock/n"))), ZkError::kOk);
  EXPECT_TRUE(sm_.cleanupCandidates(now_).empty());
  ASSERT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/lock/n"))), ZkError::kOk);
  EXPECT_EQ(sm_.cleanupCandidates(now_), std::vector<std::string>{"/lock"});
  Applied d = sm_.apply(sm_.prepareDeleteContainer("/lock", ++zxid_, now_));
  EXPECT_EQ(err(d), ZkError::kOk);
  EXPECT_FALSE(exists("/lock"));
  // Plain nodes are never cleaned up.
  ASSERT_EQ(err(write(kA, create("/plain"))), ZkError::kOk);
  EXPECT_EQ(sm_.prepareDeleteContainer("/plain", ++zxid_, now_).type, OpCode::kError);
}

TEST_F(StateTest, TtlNodesExpireOnlyWhenChildless) {
  Op t = create("/ttl", "", CreateMode::kPersistentWithTtl);
  t.op = OpCode::kCreateTtl;
  t.ttl_ms = 1000;
  Applied a = write(kA, t);
  ASSERT_EQ(err(a), ZkError::kOk);
  EXPECT_EQ(a.response.result.stat.ephemeral_owner, static_cast<int64_t>(0xFF000000000003E8ULL));
  EXPECT_TRUE(sm_.cleanupCandidates(now_ + 1000).empty());
  EXPECT_EQ(sm_.cleanupCandidates(now_ + 1001), std::vector<std::string>{"/ttl"});
  ASSERT_EQ(err(write(kA, create("/ttl/child"))), ZkError::kOk);
  EXPECT_TRUE(sm_.cleanupCandidates(now_ + 5000).empty());

  Op bad = t;
  bad.path = "/ttl2";
  bad.ttl_ms = 0;
  EXPECT_EQ(err(write(kA, bad)), ZkError::kBadArguments);
  bad.ttl_ms = 10;
  bad.op = OpCode::kCreate;  // TTL modes need createTtl
  EXPECT_EQ(err(write(kA, bad)), ZkError::kBadArguments);
}

// A queue's pattern (children created at the end, removed from the front) mixed with
// removals and inserts in the middle: getChildren always lists exactly the live children,
// sorted, and numChildren agrees, through the list's compactions.
TEST_F(StateTest, ChildListsStayExactUnderQueueChurn) {
  ASSERT_EQ(err(write(kA, create("/q"))), ZkError::kOk);
  std::set<std::string> model;
  auto name = [](int i) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "n%06d", i);
    return std::string(buf);
  };
  auto check = [&] {
    Applied r = read(kB, pathOp(OpCode::kGetChildren, "/q"));
    ASSERT_EQ(err(r), ZkError::kOk);
    EXPECT_EQ(r.response.result.children, std::vector<std::string>(model.begin(), model.end()));
    EXPECT_EQ(stat("/q").num_children, static_cast<int32_t>(model.size()));
  };
  int next = 0;
  for (int round = 0; round < 6; ++round) {
    for (int k = 0; k < 150; ++k, ++next) {
      ASSERT_EQ(err(write(kA, create("/q/" + name(next * 2)))), ZkError::kOk);
      model.insert(name(next * 2));
    }
    for (int k = 0; k < 120; ++k) {  // from the front
      std::string first = *model.begin();
      ASSERT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/q/" + first, -1))), ZkError::kOk);
      model.erase(first);
    }
    // One from the middle, and one slotted between two others.
    int oldest = std::stoi(model.begin()->substr(1)) / 2;
    int mid = oldest + (next - oldest) / 2;
    ASSERT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/q/" + name(mid * 2), -1))), ZkError::kOk);
    model.erase(name(mid * 2));
    ASSERT_EQ(err(write(kA, create("/q/" + name(mid * 2 + 1)))), ZkError::kOk);
    model.insert(name(mid * 2 + 1));
    check();
  }
  while (!model.empty()) {
    ASSERT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/q/" + *model.begin(), -1))), ZkError::kOk);
    model.erase(model.begin());
  }
  check();
  // The last child gone, the parent is a leaf again: it can be deleted.
  EXPECT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/q", -1))), ZkError::kOk);
}

}  // namespace
}  // namespace corral::kernel::testing
