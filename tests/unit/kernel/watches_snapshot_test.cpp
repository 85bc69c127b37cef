// Watch triggering rules, txn encoding and snapshots.
#include <random>

#include "state/txn.h"
#include "state_test_support.h"

namespace corral::kernel::testing {
namespace {

std::vector<std::pair<EventType, std::string>> eventsFor(const Applied& a, int64_t session) {
  std::vector<std::pair<EventType, std::string>> out;
  for (const auto& [s, e] : a.events)
    if (s == session) out.emplace_back(e.type, e.path);
  return out;
}

TEST_F(StateTest, OneShotWatchesFireOnceWithZooKeepersRules) {
  ASSERT_EQ(err(write(kA, create("/w", "1"))), ZkError::kOk);
  ASSERT_EQ(err(read(kB, watchOp(OpCode::kGetData, "/w"))), ZkError::kOk);
  ASSERT_EQ(err(read(kB, watchOp(OpCode::kExists, "/w/new"))), ZkError::kNoNode);
  ASSERT_EQ(err(read(kB, watchOp(OpCode::kGetChildren, "/w"))), ZkError::kOk);
  EXPECT_EQ(sm_.watchCount(), 3u);

  Applied a = write(kA, setData("/w", "2"));
  EXPECT_EQ(eventsFor(a, kB),
            (std::vector<std::pair<EventType, std::string>>{{EventType::kNodeDataChanged, "/w"}}));
  EXPECT_EQ(a.events[0].second.zxid, zxid_);
  a = write(kA, setData("/w", "3"));
  EXPECT_TRUE(eventsFor(a, kB).empty());  // one-shot

  a = write(kA, create("/w/new"));
  EXPECT_EQ(eventsFor(a, kB),
            (std::vector<std::pair<EventType, std::string>>{
                {EventType::kNodeCreated, "/w/new"}, {EventType::kNodeChildrenChanged, "/w"}}));
  EXPECT_EQ(sm_.watchCount(), 0u);

  // delete: data and child watches on the node, child watch on the parent.
  ASSERT_EQ(err(read(kB, watchOp(OpCode::kGetData, "/w/new"))), ZkError::kOk);
  ASSERT_EQ(err(read(kB, watchOp(OpCode::kGetChildren, "/w/new"))), ZkError::kOk);
  ASSERT_EQ(err(read(kB, watchOp(OpCode::kGetChildren, "/w"))), ZkError::kOk);
  a = write(kA, pathOp(OpCode::kDelete, "/w/new"));
  EXPECT_EQ(eventsFor(a, kB), (std::vector<std::pair<EventType, std::string>>{
                                  {EventType::kNodeDeleted, "/w/new"},  // one event, two watches
                                  {EventType::kNodeChildrenChanged, "/w"}}));
}

TEST_F(StateTest, PersistentAndRecursiveWatchesStay) {
  ASSERT_EQ(err(write(kA, create("/p"))), ZkError::kOk);
  Op persistent = pathOp(OpCode::kAddWatch, "/p");
  persistent.watch_mode = AddWatchMode::kPersistent;
  Op recursive = pathOp(OpCode::kAddWatch, "/p");
  recursive.watch_mode = AddWatchMode::kPersistentRecursive;
  ASSERT_EQ(err(read(kA, persistent)), ZkError::kOk);
  ASSERT_EQ(err(read(kB, recursive)), ZkError::kOk);

  Applied a = write(kA, create("/p/c"));
  EXPECT_EQ(
      eventsFor(a, kA),
      (std::vector<std::pair<EventType, std::string>>{{EventType::kNodeChildrenChanged, "/p"}}));
  EXPECT_EQ(eventsFor(a, kB),
            (std::vector<std::pair<EventType, std::string>>{{EventType::kNodeCreated, "/p/c"}}));
  a = write(kA, setData("/p/c", "x"));
  EXPECT_TRUE(eventsFor(a, kA).empty());
  EXPECT_EQ(
      eventsFor(a, kB),
      (std::vector<std::pair<EventType, std::string>>{{EventType::kNodeDataChanged, "/p/c"}}));
  a = write(kA, setData("/p", "y"));
  EXPECT_EQ(eventsFor(a, kA).size(), 1u);
  EXPECT_EQ(eventsFor(a, kB).size(), 1u);
  a = write(kA, setData("/p", "z"));  // still there
  EXPECT_EQ(eventsFor(a, kA).size(), 1u);

  Op remove = pathOp(OpCode::kRemoveWatches, "/p");
  remove.watcher_type = WatcherType::kAny;
  EXPECT_EQ(err(read(kB, remove)), ZkError::kOk);
  EXPECT_EQ(err(read(kB, remove)), ZkError::kNoWatcher);
  a = write(kA, setData("/p/c", "again"));
  EXPECT_TRUE(eventsFor(a, kB).empty());
}

TEST_F(StateTest, SetWatchesFiresWhatChangedWhileAway) {
  ASSERT_EQ(err(write(kA, create("/a", "1"))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, create("/b", "1"))), ZkError::kOk);
  int64_t seen = zxid_;
  ASSERT_EQ(err(write(kA, setData("/a", "2"))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, pathOp(OpCode::kDelete, "/b"))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, create("/c"))), ZkError::kOk);
  Op op = pathOp(OpCode::kSetWatches2, "");
  op.relative_zxid = seen;
  op.data_watches = {"/a", "/b"};
  op.exist_watches = {"/c", "/d"};
  op.child_watches = {"/"};
  Applied a = read(kB, op);
  auto events = eventsFor(a, kB);
  EXPECT_EQ(events, (std::vector<std::pair<EventType, std::string>>{
                        {EventType::kNodeDataChanged, "/a"},
                        {EventType::kNodeDeleted, "/b"},
                        {EventType::kNodeCreated, "/c"},
                        {EventType::kNodeChildrenChanged, "/"}}));
  EXPECT_EQ(sm_.watchCount(), 1u);  // only the exist watch on /d was re-armed
  a = write(kA, create("/d"));
  EXPECT_EQ(eventsFor(a, kB).size(), 1u);
}

TEST_F(StateTest, TxnEncodingRoundTripsAndRejectsGarbage) {
  Txn t = prepare(kA, create("/txn", std::string("bin\0ary", 7)));
  std::string bytes = encodeTxn(t);
  Txn back;
  std::string error;
  ASSERT_TRUE(decodeTxn(bytes, &back, &error)) << error;
  EXPECT_EQ(back.zxid, t.zxid);
  EXPECT_EQ(back.time_ms, t.time_ms);
  EXPECT_EQ(back.session_id, t.session_id);
  EXPECT_EQ(back.type, t.type);
  EXPECT_EQ(back.fields, t.fields);
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(decodeTxn(bytes.substr(0, n), &back, &error)) << n;
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    decodeTxn(junk, &back, &error);  // must not crash
  }
}

TEST_F(StateTest, SnapshotRestoresTheWholeState) {
  ASSERT_EQ(err(write(kA, create("/s", "root"))), ZkError::kOk);
  ASSERT_EQ(err(write(kA, create("/s/e", "x", CreateMode::kEphemeral))), ZkError::kOk);
  Op c = create("/s/box", "", CreateMode::kContainer);
  c.op = OpCode::kCreateContainer;
  ASSERT_EQ(err(write(kA, c)), ZkError::kOk);
  ids_[kA].push_back(Id{"digest", "a:b!"});
  Op acl = create("/s/acl");
  acl.acl = {Acl{kPermRead, Id{"digest", "a:b!"}}};
  ASSERT_EQ(err(write(kA, acl)), ZkError::kOk);
  ASSERT_EQ(err(write(kA, setData("/s", "v2"))), ZkError::kOk);

  std::string snap = sm_.snapshot();
  StateMachine copy(&auth_, StateLimits{1024});
  std::string error;
  ASSERT_TRUE(copy.restore(snap, &error)) << error;
  EXPECT_EQ(copy.lastZxid(), sm_.lastZxid());
  EXPECT_EQ(copy.nodeCount(), sm_.nodeCount());
  ASSERT_NE(copy.session(kA), nullptr);
  EXPECT_EQ(copy.session(kA)->password, sm_.session(kA)->password);
  Request r;
  r.op = pathOp(OpCode::kGetData, "/s");
  Applied got = copy.read(who(kA), r);
  EXPECT_EQ(got.response.result.data, "v2");
  EXPECT_EQ(got.response.result.stat, stat("/s"));
  r.op = pathOp(OpCode::kGetAcl, "/s/acl");
  EXPECT_EQ(copy.read(who(kA), r).response.result.acl, acl.acl);
  // Ephemerals still belong to their session: closing it in the copy deletes them.
  copy.apply(copy.prepareCloseSession(kA, zxid_ + 1, now_));
  r.op = pathOp(OpCode::kExists, "/s/e");
  EXPECT_EQ(copy.read(who(kB), r).response.err, ZkError::kNoNode);
  // Sequence numbers resume from the restored cversion.
  Request seq;
  seq.op = create("/s/n-", "", CreateMode::kPersistentSequential);
  Applied a = copy.apply(copy.prepare(who(kB), seq, zxid_ + 2, now_));
  EXPECT_EQ(a.response.result.path, "/s/n-0000000004");  // e, box, acl, close of e

  EXPECT_FALSE(copy.restore(snap.substr(0, snap.size() / 2), &error));
  EXPECT_FALSE(copy.restore("garbage", &error));
  EXPECT_EQ(copy.lastZxid(), zxid_ + 2);  // a failed restore leaves the state alone
}

// A random tree (depths 1-4, runs of siblings, runs of nodes sharing an ACL and nodes with
// their own) comes back whole: the copy's snapshot is the original's, byte for byte, and
// ACLs stay right when nodes sharing one are deleted in the copy (reference counts).
TEST_F(StateTest, SnapshotOfARandomTreeRestoresByteForByte) {
  std::mt19937 rng(7);
  const std::vector<std::vector<Acl>> acls = {
      {Acl{kPermAll, Id{"world", "anyone"}}},
      {Acl{kPermRead, Id{"world", "anyone"}}},
      {Acl{kPermAll, Id{"world", "anyone"}}, Acl{kPermRead, Id{"digest", "a:b!"}}},
  };
  std::vector<std::string> paths = {"/"};
  std::map<std::string, size_t> acl_of;
  for (int i = 0; i < 600; ++i) {
    // Mostly under one of the last few nodes, so runs of siblings and deep chains both occur.
    size_t back = rng() % std::min<size_t>(paths.size(), 6);
    std::string parent = paths[paths.size() - 1 - back];
    if (std::count(parent.begin(), parent.end(), '/') >= 4) parent = paths[rng() % paths.size()];
    if (std::count(parent.begin(), parent.end(), '/') >= 4) parent = "/";
    if (parent != "/" && acl_of[parent] == 1) parent = "/";  // read-only: no children
    std::string path = (parent == "/" ? "" : parent) + "/n" + std::to_string(i);
    Op op = create(path, std::string(rng() % 20, 'd'));
    size_t which = (i / 17) % 2 == 0 ? 0 : rng() % acls.size();
    op.acl = acls[which];
    ASSERT_EQ(err(write(kA, op)), ZkError::kOk) << path;
    paths.push_back(path);
    acl_of[path] = which;
  }
  std::string snap = sm_.snapshot();
  StateMachine copy(&auth_, StateLimits{1024});
  std::string error;
  ASSERT_TRUE(copy.restore(snap, &error)) << error;
  EXPECT_GT(copy.nodeCount(), 400u);
  EXPECT_EQ(copy.nodeCount(), sm_.nodeCount());
  EXPECT_EQ(copy.snapshot(), snap);

  // Delete leaves in the copy until few are left; the rest keep their ACLs.
  int64_t zxid = zxid_;
  for (size_t i = paths.size() - 1; i > 0 && i + 40 > paths.size() / 2; --i) {
    Request del;
    del.op = pathOp(OpCode::kDelete, paths[i]);
    Applied a = copy.apply(copy.prepare(who(kA), del, ++zxid, now_));
    if (a.response.err == ZkError::kOk) acl_of.erase(paths[i]);
  }
  for (const auto& [path, which] : acl_of) {
    Request r;
    r.op = pathOp(OpCode::kGetAcl, path);
    EXPECT_EQ(copy.read(who(kA), r).response.result.acl, acls[which]) << path;
  }
}

}  // namespace
}  // namespace corral::kernel::testing
