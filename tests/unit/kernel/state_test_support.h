// A StateMachine driven directly, as the server drives it: prepare -> apply, with a fake
// clock and small in-test auth providers (so these tests need no plugin).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "state/auth_registry.h"
#include "state/state_machine.h"

namespace corral::kernel::testing {

// "world": only "anyone".
class TestWorld : public AuthProvider {
 public:
  const char* scheme() const noexcept override { return "world"; }
  AuthCode authenticate(ByteView, TextBuf, ErrorBuf) noexcept override { return AuthCode::kFailed; }
  AuthCode idForConnection(ByteView, TextBuf out) noexcept override {
    out.set("anyone");
    return AuthCode::kOk;
  }
  bool matches(ByteView, ByteView acl) const noexcept override { return acl.str() == "anyone"; }
  bool isValid(ByteView acl) const noexcept override { return acl.str() == "anyone"; }
};

// A digest-like scheme without the hashing: "user:pw" proves id "user:pw!".
class TestDigest : public AuthProvider {
 public:
  const char* scheme() const noexcept override { return "digest"; }
  AuthCode authenticate(ByteView c, TextBuf out, ErrorBuf err) noexcept override {
    if (c.str().find(':') == std::string_view::npos) {
      err.write("need user:password");
      return AuthCode::kFailed;
    }
    out.set(std::string(c.str()) + "!");
    return AuthCode::kOk;
  }
  AuthCode idForConnection(ByteView, TextBuf) noexcept override { return AuthCode::kNoIdentity; }
  bool matches(ByteView id, ByteView acl) const noexcept override { return id.str() == acl.str(); }
  bool isValid(ByteView acl) const noexcept override {
    return acl.str().find(':') != std::string_view::npos;
  }
};

class StateTest : public ::testing::Test {
 protected:
  StateTest() {
    auth_.add(&world_);
    auth_.add(&digest_);
    auth_.setSuperDigest("super:pw!");
    openSession(kA);
    openSession(kB);
  }

  static constexpr int64_t kA = 0x0100000000000001;
  static constexpr int64_t kB = 0x0100000000000002;

  void openSession(int64_t id, int32_t timeout_ms = 10000) {
    ids_[id].push_back(Id{"world", "anyone"});
    sm_.apply(sm_.prepareCreateSession(id, timeout_ms, "password16bytes!", ++zxid_, now_));
  }
  Applied closeSession(int64_t id) { return sm_.apply(sm_.prepareCloseSession(id, ++zxid_, now_)); }
  SessionView who(int64_t session) {
    return SessionView{session, &ids_[session], auth_.isSuper(ids_[session])};
  }
  Txn prepare(int64_t session, const Op& op) {
    Request r;
    r.xid = 1;
    r.op = op;
    return sm_.prepare(who(session), r, ++zxid_, now_);
  }
  Applied write(int64_t session, const Op& op) { return sm_.apply(prepare(session, op)); }
  Applied multi(int64_t session, const std::vector<Op>& ops) {
    Request r;
    r.xid = 1;
    r.op.op = OpCode::kMulti;
    r.ops = ops;
    return sm_.apply(sm_.prepare(who(session), r, ++zxid_, now_));
  }
  Applied read(int64_t session, const Op& op) {
    Request r;
    r.xid = 1;
    r.op = op;
    return sm_.read(who(session), r);
  }

  static Op create(const std::string& path, const std::string& data = "",
                   CreateMode mode = CreateMode::kPersistent) {
    Op op;
    op.op = OpCode::kCreate2;
    op.path = path;
    op.data = data;
    op.mode = mode;
    op.acl = {Acl{kPermAll, Id{"world", "anyone"}}};
    return op;
  }
  static Op pathOp(OpCode code, const std::string& path, int32_t version = -1) {
    Op op;
    op.op = code;
    op.path = path;
    op.version = version;
    return op;
  }
  static Op setData(const std::string& path, const std::string& data, int32_t version = -1) {
    Op op = pathOp(OpCode::kSetData, path, version);
    op.data = data;
    return op;
  }
  static Op watchOp(OpCode code, const std::string& path) {
    Op op = pathOp(code, path);
    op.watch = true;
    return op;
  }
  ZkError err(const Applied& a) { return a.response.err; }
  Stat stat(const std::string& path) {
    return read(kA, pathOp(OpCode::kExists, path)).response.result.stat;
  }
  bool exists(const std::string& path) {
    return read(kA, pathOp(OpCode::kExists, path)).response.err == ZkError::kOk;
  }

  TestWorld world_;
  TestDigest digest_;
  AuthRegistry auth_;
  StateMachine sm_{&auth_, StateLimits{1024}};
  std::map<int64_t, std::vector<Id>> ids_;
  int64_t zxid_ = 0;
  int64_t now_ = 1'700'000'000'000;
};

}  // namespace corral::kernel::testing
