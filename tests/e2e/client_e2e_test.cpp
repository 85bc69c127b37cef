// The C++ client against a real corrald over the real ZeroMQ transport: every operation,
// watches, sessions (ephemerals, expiry, resume) and the server's ordering guarantees.
#include <corral/client.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "child_process.h"
#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

using std::chrono::milliseconds;

// Collects watch events and session states delivered on the client's thread.
class Recorder {
 public:
  WatchCallback watcher() {
    return [this](const WatchEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
      cv_.notify_all();
    };
  }
  SessionCallback sessionListener() {
    return [this](KeeperState s) {
      std::lock_guard<std::mutex> lock(mu_);
      states_.push_back(s);
      cv_.notify_all();
    };
  }
  bool waitEvents(size_t n, milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
  }
  bool waitState(KeeperState s, milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      for (KeeperState x : states_)
        if (x == s) return true;
      return false;
    });
  }
  std::vector<WatchEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchEvent> events_;
  std::vector<KeeperState> states_;
};

class ClientE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CorraldOptions options;
    options.min_session_timeout_ms = 300;
    server_ = std::make_unique<CorraldProcess>(dir_, options);
    address_ = server_->waitServing();
    ASSERT_FALSE(address_.empty()) << server_->process().output();
  }

  std::unique_ptr<Client> connect(int32_t timeout_ms = 10000, int64_t session_id = 0,
                                  std::string password = "") {
    ClientOptions o;
    o.servers = {address_};
    o.session_timeout_ms = timeout_ms;
    o.session_id = session_id;
    o.session_password = std::move(password);
    auto c = std::make_unique<Client>(o);
    EXPECT_EQ(c->connect(), ZkError::kOk) << server_->process().output();
    return c;
  }

  TempDir dir_{"corral-e2e-client"};
  std::unique_ptr<CorraldProcess> server_;
  std::string address_;
};

TEST_F(ClientE2eTest, CrudWithVersionsAndStat) {
  auto c = connect();
  std::string created;
  Stat stat;
  ASSERT_EQ(c->create("/app", "v0", CreateMode::kPersistent, &created, &stat), ZkError::kOk);
  EXPECT_EQ(created, "/app");
  EXPECT_EQ(stat.version, 0);
  EXPECT_EQ(stat.data_length, 2);
  EXPECT_GT(stat.czxid, 0);
  EXPECT_EQ(stat.czxid, stat.mzxid);

  EXPECT_EQ(c->create("/app", "again", CreateMode::kPersistent), ZkError::kNodeExists);
  EXPECT_EQ(c->create("/missing/child", "", CreateMode::kPersistent), ZkError::kNoNode);

  ASSERT_EQ(c->setData("/app", "v1", 0, &stat), ZkError::kOk);
  EXPECT_EQ(stat.version, 1);
  EXPECT_EQ(c->setData("/app", "v2", 0), ZkError::kBadVersion);

  std::string data;
  ASSERT_EQ(c->getData("/app", &data, &stat), ZkError::kOk);
  EXPECT_EQ(data, "v1");
  EXPECT_EQ(stat.version, 1);
  EXPECT_GT(stat.mzxid, stat.czxid);

  ASSERT_EQ(c->create("/app/a", "", CreateMode::kPersistent), ZkError::kOk);
  ASSERT_EQ(c->create("/app/b", "", CreateMode::kPersistent), ZkError::kOk);
  std::vector<std::string> children;
  ASSERT_EQ(c->getChildren("/app", &children, &stat), ZkError::kOk);
  std::sort(children.begin(), children.end());
  EXPECT_EQ(children, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(stat.num_children, 2);
  EXPECT_EQ(stat.cversion, 2);
  int32_t count = 0;
  ASSERT_EQ(c->getAllChildrenNumber("/app", &count), ZkError::kOk);
  EXPECT_EQ(count, 2);

  EXPECT_EQ(c->remove("/app"), ZkError::kNotEmpty);
  EXPECT_EQ(c->remove("/app/a", 5), ZkError::kBadVersion);
  EXPECT_EQ(c->remove("/app/a", 0), ZkError::kOk);
  EXPECT_EQ(c->remove("/app/b"), ZkError::kOk);
  EXPECT_EQ(c->remove("/app"), ZkError::kOk);
  EXPECT_EQ(c->exists("/app"), ZkError::kNoNode);
  EXPECT_EQ(c->sync("/"), ZkError::kOk);
}

TEST_F(ClientE2eTest, InvalidPathsAndOversizeDataAreRejected) {
  auto c = connect();
  for (const char* bad : {"", "relative", "/trailing/", "//double", "/a/./b", "/a/../b"}) {
    EXPECT_EQ(c->create(bad, "", CreateMode::kPersistent), ZkError::kBadArguments) << bad;
  }
  std::string big(2 * 1024 * 1024, 'x');  // over max_request_bytes: the server refuses it
  ClientOptions o;
  o.servers = {address_};
  o.request_timeout = milliseconds(3000);
  Client sender(o);
  ASSERT_EQ(sender.connect(), ZkError::kOk);
  ZkError e = sender.create("/big", big, CreateMode::kPersistent);
  EXPECT_NE(e, ZkError::kOk);
  // Whatever happened to that connection, the server still serves (the client reconnects).
  auto c2 = connect();
  EXPECT_EQ(c2->create("/after", "ok", CreateMode::kPersistent), ZkError::kOk);
  EXPECT_EQ(c2->exists("/big"), ZkError::kNoNode);
}

TEST_F(ClientE2eTest, SequentialAndEphemeralNodes) {
  auto a = connect();
  ASSERT_EQ(a->create("/q", "", CreateMode::kPersistent), ZkError::kOk);
  std::string p0, p1;
  ASSERT_EQ(a->create("/q/item-", "", CreateMode::kPersistentSequential, &p0), ZkError::kOk);
  ASSERT_EQ(a->create("/q/item-", "", CreateMode::kEphemeralSequential, &p1), ZkError::kOk);
  EXPECT_EQ(p0, "/q/item-0000000000");
  EXPECT_EQ(p1, "/q/item-0000000001");

  Stat stat;
  ASSERT_EQ(a->exists(p1, &stat), ZkError::kOk);
  EXPECT_EQ(stat.ephemeral_owner, a->sessionId());
  EXPECT_EQ(a->create(p1 + "/child", "", CreateMode::kPersistent),
            ZkError::kNoChildrenForEphemerals);
  std::vector<std::string> eph;
  ASSERT_EQ(a->getEphemerals("/", &eph), ZkError::kOk);
  EXPECT_EQ(eph, std::vector<std::string>{p1});

  auto b = connect();
  ASSERT_EQ(a->close(), ZkError::kOk);
  EXPECT_EQ(b->exists(p1), ZkError::kNoNode);
  EXPECT_EQ(b->exists(p0), ZkError::kOk);
}

TEST_F(ClientE2eTest, MultiIsAllOrNothing) {
  auto c = connect();
  Op create;
  create.op = OpCode::kCreate;
  create.path = "/m";
  create.acl = Client::openAclUnsafe();
  Op check;
  check.op = OpCode::kCheck;
  check.path = "/m";
  check.version = 7;  // fails: the node will have version 0
  std::vector<OpResult> results;
  EXPECT_EQ(c->multi({create, check}, &results), ZkError::kBadVersion);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].err, ZkError::kBadVersion);
  EXPECT_EQ(c->exists("/m"), ZkError::kNoNode);

  check.version = 0;
  ASSERT_EQ(c->multi({create, check}, &results), ZkError::kOk);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].path, "/m");
  EXPECT_EQ(c->exists("/m"), ZkError::kOk);
}

TEST_F(ClientE2eTest, WatchFiresInAnotherSessionBeforeTheNewDataIsVisible) {
  auto watcher = connect();
  auto writer = connect();
  ASSERT_EQ(writer->create("/cfg", "1", CreateMode::kPersistent), ZkError::kOk);

  Recorder rec;
  std::string data;
  ASSERT_EQ(watcher->getData("/cfg", &data, nullptr, rec.watcher()), ZkError::kOk);
  std::vector<std::string> children;
  ASSERT_EQ(watcher->getChildren("/cfg", &children, nullptr, rec.watcher()), ZkError::kOk);
  ASSERT_EQ(watcher->exists("/cfg/new", nullptr, rec.watcher()), ZkError::kNoNode);

  ASSERT_EQ(writer->setData("/cfg", "2"), ZkError::kOk);
  ASSERT_TRUE(rec.waitEvents(1));
  ASSERT_EQ(writer->create("/cfg/new", "", CreateMode::kPersistent), ZkError::kOk);
  ASSERT_TRUE(rec.waitEvents(3));
  auto events = rec.events();
  EXPECT_EQ(events[0].type, EventType::kNodeDataChanged);
  EXPECT_EQ(events[0].path, "/cfg");
  // One-shot watches fire once: the second setData brings nothing new.
  ASSERT_EQ(writer->setData("/cfg", "3"), ZkError::kOk);
  ASSERT_EQ(watcher->sync("/"), ZkError::kOk);
  bool created = false, child_changed = false;
  for (size_t i = 1; i < events.size(); ++i) {
    created |= events[i].type == EventType::kNodeCreated && events[i].path == "/cfg/new";
    child_changed |= events[i].type == EventType::kNodeChildrenChanged && events[i].path == "/cfg";
  }
  EXPECT_TRUE(created);
  EXPECT_TRUE(child_changed);
  EXPECT_EQ(rec.events().size(), 3u);
}

TEST_F(ClientE2eTest, PersistentRecursiveWatchReportsTheChangedNode) {
  auto watcher = connect();
  auto writer = connect();
  ASSERT_EQ(writer->create("/tree", "", CreateMode::kPersistent), ZkError::kOk);
  Recorder rec;
  ASSERT_EQ(watcher->addWatch("/tree", AddWatchMode::kPersistentRecursive, rec.watcher()),
            ZkError::kOk);
  ASSERT_EQ(writer->create("/tree/a", "", CreateMode::kPersistent), ZkError::kOk);
  ASSERT_EQ(writer->create("/tree/a/b", "", CreateMode::kPersistent), ZkError::kOk);
  ASSERT_EQ(writer->setData("/tree/a/b", "x"), ZkError::kOk);
  ASSERT_TRUE(rec.waitEvents(3));
  auto events = rec.events();
  EXPECT_EQ(events[0].type, EventType::kNodeCreated);
  EXPECT_EQ(events[0].path, "/tree/a");
  EXPECT_EQ(events[1].type, EventType::kNodeCreated);
  EXPECT_EQ(events[1].path, "/tree/a/b");
  EXPECT_EQ(events[2].type, EventType::kNodeDataChanged);
  EXPECT_EQ(events[2].path, "/tree/a/b");
  EXPECT_LT(events[0].zxid, events[1].zxid);
  EXPECT_LT(events[1].zxid, events[2].zxid);
}

TEST_F(ClientE2eTest, AclsWithDigestAuth) {
  auto owner = connect();
  ASSERT_EQ(owner->addAuth("digest", "alice:secret"), ZkError::kOk);
  std::vector<Acl> only_creator = {Acl{kPermAll, Id{"auth", ""}}};
  ASSERT_EQ(
      owner->create("/private", "s3cret", CreateMode::kPersistent, nullptr, nullptr, only_creator),
      ZkError::kOk);
  std::vector<Acl> acl;
  ASSERT_EQ(owner->getAcl("/private", &acl), ZkError::kOk);
  ASSERT_EQ(acl.size(), 1u);
  EXPECT_EQ(acl[0].id.scheme, "digest");
  EXPECT_EQ(acl[0].id.id.rfind("alice:", 0), 0u);

  auto stranger = connect();
  std::string data;
  EXPECT_EQ(stranger->getData("/private", &data), ZkError::kNoAuth);
  EXPECT_EQ(stranger->setData("/private", "x"), ZkError::kNoAuth);
  EXPECT_EQ(stranger->create("/bad", "", CreateMode::kPersistent, nullptr, nullptr,
                             {Acl{kPermAll, Id{"nosuchscheme", "x"}}}),
            ZkError::kInvalidAcl);
  ASSERT_EQ(stranger->addAuth("digest", "alice:secret"), ZkError::kOk);
  EXPECT_EQ(stranger->getData("/private", &data), ZkError::kOk);
  EXPECT_EQ(data, "s3cret");
  std::vector<Id> ids;
  ASSERT_EQ(stranger->whoAmI(&ids), ZkError::kOk);
  bool has_digest = false;
  for (const Id& id : ids) has_digest |= id.scheme == "digest";
  EXPECT_TRUE(has_digest);
}

TEST_F(ClientE2eTest, SessionResumesWithItsPasswordAndExpiresWithoutIt) {
  auto first = connect(2000);
  ASSERT_EQ(first->create("/mine", "", CreateMode::kEphemeral), ZkError::kOk);
  int64_t id = first->sessionId();
  std::string password = first->sessionPassword();

  // A second client resumes the same session: its ephemeral is still its own.
  auto resumed = connect(2000, id, password);
  EXPECT_EQ(resumed->sessionId(), id);
  Stat stat;
  ASSERT_EQ(resumed->exists("/mine", &stat), ZkError::kOk);
  EXPECT_EQ(stat.ephemeral_owner, id);

  // The wrong password is refused, never a silent new session.
  ClientOptions o;
  o.servers = {address_};
  o.session_id = id;
  o.session_password = std::string(password.size(), '\x55');
  Client wrong(o);
  EXPECT_EQ(wrong.connect(), ZkError::kSessionExpired);
}

TEST_F(ClientE2eTest, SessionExpiresWhenItsClientGoesSilent) {
  auto observer = connect();
  // A CLI shell owns the ephemeral; SIGSTOP makes it a silent (hung) client.
  ChildProcess shell({CorraldProcess::binDir() + "/corral", "-s", address_, "-t", "600"},
                     dir_.path() + "/silent-shell.log");
  shell.writeStdin("create -e /lease held\n");
  ASSERT_TRUE(shell.waitForOutput("Created /lease", milliseconds(10000)).has_value())
      << shell.output();
  ASSERT_EQ(observer->exists("/lease"), ZkError::kOk);

  Recorder rec;
  ASSERT_EQ(observer->exists("/lease", nullptr, rec.watcher()), ZkError::kOk);
  shell.signal(SIGSTOP);
  ASSERT_TRUE(rec.waitEvents(1, milliseconds(15000)));  // expiry deleted it
  EXPECT_EQ(rec.events()[0].type, EventType::kNodeDeleted);
  EXPECT_EQ(observer->exists("/lease"), ZkError::kNoNode);
  shell.signal(SIGKILL);
}

}  // namespace
}  // namespace corral::testing
