// corral::Client: the C++ client of Corral's native protocol (ZeroMQ + msgpack frames,
// docs/protocol.md). Every operation has an async form (callback) and a sync form (blocks
// until the answer). Watches are callbacks; session state changes (connected,
// disconnected, expired) go to the session listener.
//
// Threading: one background I/O thread per Client. Callbacks (results, watch events,
// session events) run on that thread, in the order the server sent them; a callback must
// not call a sync method of the same Client (it would wait for itself). Every public
// method is thread-safe.
//
// Reconnect: when the connection is lost the client reports kDisconnected, keeps retrying
// the server list and resumes the same session (id + password). If the server says the
// session expired it reports kExpired; the Client is then unusable (make a new one).
// Requests issued while disconnected fail with kConnectionLoss.
//
// This header pulls in no third-party headers (no cppzmq, no msgpack).
#pragma once

#include <corral/proto.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace corral {

struct ClientOptions {
  // Native endpoints, e.g. {"tcp://127.0.0.1:2281"}; tried in order on (re)connect.
  std::vector<std::string> servers;
  int32_t session_timeout_ms = 10000;  // requested; the server negotiates within its bounds
  std::chrono::milliseconds connect_timeout{5000};   // sync connect() gives up after this
  std::chrono::milliseconds request_timeout{10000};  // sync calls give up after this
  // Resume an existing session instead of creating one (0: new session).
  int64_t session_id = 0;
  std::string session_password;
};

// A watch callback gets each event once (persistent watches: every event).
using WatchCallback = std::function<void(const WatchEvent&)>;
// Session state changes: kSyncConnected, kDisconnected, kExpired, kAuthFailed, kClosed.
using SessionCallback = std::function<void(KeeperState)>;
// Completion of one async call. resp.err is the ZooKeeper error code; the op's result is
// resp.result (resp.results for multi / multiRead).
using ResponseCallback = std::function<void(const Response&)>;

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();  // closes the session (closeSession) if still open, then stops the I/O thread
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects and establishes (or resumes) the session. Blocks until connected, expired or
  // the connect timeout; returns kOk, kSessionExpired or kConnectionLoss.
  ZkError connect();
  void setSessionListener(SessionCallback cb);

  int64_t sessionId() const;
  std::string sessionPassword() const;
  int32_t negotiatedTimeoutMs() const;
  KeeperState state() const;

  // Ends the session on the server (its ephemerals go) and disconnects.
  ZkError close();

  // --- async: every request ---
  // `op` is one operation as corral/proto.h describes it. Watch callbacks are registered
  // when op.watch is set (exists/getData/getChildren*) or op.op == kAddWatch.
  void submit(const Op& op, ResponseCallback done, WatchCallback watch = nullptr);
  void submitMulti(const std::vector<Op>& ops, bool read_only, ResponseCallback done);

  // --- sync conveniences; each returns the error code and fills the outputs on kOk ---
  ZkError create(const std::string& path, const std::string& data, CreateMode mode,
                 std::string* created_path = nullptr, Stat* stat = nullptr,
                 const std::vector<Acl>& acl = openAclUnsafe(), int64_t ttl_ms = 0);
  ZkError remove(const std::string& path, int32_t version = -1);
  ZkError exists(const std::string& path, Stat* stat = nullptr, WatchCallback watch = nullptr);
  ZkError getData(const std::string& path, std::string* data, Stat* stat = nullptr,
                  WatchCallback watch = nullptr);
  ZkError setData(const std::string& path, const std::string& data, int32_t version = -1,
                  Stat* stat = nullptr);
  ZkError getChildren(const std::string& path, std::vector<std::string>* children,
                      Stat* stat = nullptr, WatchCallback watch = nullptr);
  ZkError getAllChildrenNumber(const std::string& path, int32_t* count);
  ZkError getEphemerals(const std::string& prefix, std::vector<std::string>* paths);
  ZkError getAcl(const std::string& path, std::vector<Acl>* acl, Stat* stat = nullptr);
  ZkError setAcl(const std::string& path, const std::vector<Acl>& acl, int32_t aversion = -1,
                 Stat* stat = nullptr);
  ZkError sync(const std::string& path);
  ZkError addAuth(const std::string& scheme, const std::string& credentials);
  ZkError whoAmI(std::vector<Id>* ids);
  ZkError addWatch(const std::string& path, AddWatchMode mode, WatchCallback watch);
  ZkError removeWatches(const std::string& path, WatcherType type);
  // Atomic multi (read_only=false) or multiRead; *results gets one entry per op.
  ZkError multi(const std::vector<Op>& ops, std::vector<OpResult>* results, bool read_only = false);

  // Sync form of submit(): the whole response.
  Response call(const Op& op, WatchCallback watch = nullptr);

  static const std::vector<Acl>& openAclUnsafe();  // world:anyone, all perms
  static const std::vector<Acl>& readAclUnsafe();  // world:anyone, read

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral
