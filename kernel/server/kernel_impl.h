// The Kernel's internals, shared by the files that implement its parts: kernel.cpp (the
// public inputs), sessions.cpp (connections, handshake, per-session order, reads),
// write_path.cpp (prepare -> commit -> apply -> reply) and ensemble.cpp (ZAB, forwarding
// to the leader, global sessions).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "server/kernel.h"

namespace corral::kernel {

struct Kernel::Impl {
  struct Connection {
    std::string remote;
    std::vector<Id> ids;  // what the address alone grants (e.g. ip)
    int64_t session = 0;  // 0 until the handshake completed
    bool handshaking = false;
  };

  struct Session {
    int64_t id = 0;
    int32_t timeout_ms = 0;
    int64_t deadline_ms = 0;   // expiry (standalone, and on an ensemble's leader)
    uint64_t conn = 0;         // 0: no connection attached here
    std::vector<Id> auth_ids;  // from addauth
    std::vector<Id> ids;       // auth_ids + the connection's ids
    bool super_user = false;
    bool closing = false;
    int writes_in_flight = 0;
    std::deque<Request> waiting;  // requests held back to keep the session's order
    // Ensemble, not leading: xids of this session's writes forwarded to the leader, in
    // order; their commits answer them. kSyncXid marks a sync round trip.
    std::deque<int32_t> forwarded;
    std::deque<Request> syncs;  // sync requests waiting for the leader's answer
  };

  // Where a txn came from, to know whom to answer when it commits.
  enum class Origin { kClient, kCreateSession, kCloseSession, kExpire, kCleanup, kRemote };
  struct InFlight {
    int64_t zxid;
    Txn txn;
    Origin origin;
    uint64_t conn;  // for kCreateSession: the connection waiting for its session
    int32_t timeout_ms = 0;
  };

  // The kernel's own messages between servers, riding on ZAB's links.
  enum class AppKind : uint8_t {
    kForwardRequest = 1,  // learner -> leader: a session's write
    kForwardCreate = 2,   // learner -> leader: a new session
    kForwardClose = 3,    // learner -> leader: a session's close
    kTouch = 4,           // learner -> leader (with pings): sessions alive here
    kSync = 5,            // learner -> leader: answer once what is proposed now commits
    kSyncDone = 6,        // leader -> learner
  };
  // A sync the leader answers once what was proposed when it came is applied and a quorum
  // confirmed (barrier) that this server still leads. peer 0: a client of the leader itself.
  struct PendingSync {
    int64_t peer;
    int64_t id;
    int64_t zxid;
    int64_t barrier = 0;
    bool confirmed = false;
  };

  class ZabBridge;

  KernelOptions opt;
  const AuthRegistry* auth;
  KernelOutput* out;
  StateMachine sm;
  Txn replay_txn;  // reused by every replayed record
  std::unordered_map<uint64_t, Connection> conns;
  std::map<int64_t, Session> sessions;
  std::deque<InFlight> in_flight;
  std::set<std::string> cleanup_in_flight;
  int64_t next_zxid = 1;
  int64_t next_session = 0;
  int64_t applied_since_snapshot = 0;
  std::mt19937_64 rng;
  int64_t last_now = 0;

  // --- ensemble ---
  std::unique_ptr<ZabBridge> bridge;
  std::unique_ptr<zab::Zab> zab;
  int64_t last_replayed = 0;
  std::unordered_map<int64_t, uint64_t> pending_connects;  // session id -> connection
  std::unordered_set<int64_t> touched;                     // sessions active since the last ping
  std::deque<std::pair<int64_t, std::string>> forwarded_backlog;  // leader: waiting for zxids
  std::deque<PendingSync> pending_syncs;                          // leader: learners' syncs
  int64_t next_sync_id = 1;
  int64_t last_barrier_passed = 0;
  std::map<int64_t, int64_t> sync_sessions;  // learner: sync id -> session

  Impl(KernelOptions o, const AuthRegistry* a, KernelOutput* k);
  ~Impl();

  bool ensemble() const { return zab != nullptr; }
  bool leading() const { return zab != nullptr && zab->role() == zab::Role::kLeading; }
  bool serving() const { return zab == nullptr || zab->serving(); }
  // Where writes are prepared: standalone, or the leader of an ensemble.
  bool orders() const { return zab == nullptr || leading(); }

  void log(corral_log_level level, const std::string& msg) { out->log(level, msg); }
  static std::string hex(int64_t v);

  // sessions.cpp
  void refreshIds(Session& s);
  SessionView viewOf(const Session& s) const { return SessionView{s.id, &s.ids, s.super_user}; }
  void sendTo(int64_t session_id, std::string frame);
  void reply(int64_t session_id, Response resp);
  void deliver(const Applied& a);
  void dropConnection(uint64_t conn, const std::string& why);
  void sayGoodbye(uint64_t conn);
  void handleRequest(Session& s, Request req, int64_t now_ms);
  void drain(Session& s);
  void drainAll();
  bool process(Session& s, const Request& req, int64_t now_ms);
  void answerRead(Session& s, const Request& req);
  void connect(uint64_t conn_id, Connection& c, const ConnectRequest& req, int64_t now_ms);
  int64_t nextSessionId();
  void sessionCreated(const InFlight& f);
  Session& trackSession(int64_t id, int32_t timeout_ms);

  // write_path.cpp
  int64_t proposalZxid() const;
  bool canOrder() const;
  bool submit(InFlight item);
  void failInFlight();
  void startWrite(Session& s, const Request& req, int64_t now_ms);
  void applyDurable(int64_t durable_zxid);
  void applyOne(InFlight f);
  void answerRemote(const Txn& txn, const Applied& a);
  void endSession(int64_t session_id, bool asked, int32_t xid);
  void afterApply();
  void expireSessions(int64_t now_ms);
  void cleanupNodes(int64_t now_ms);

  // ensemble.cpp
  void startEnsemble();
  void onCommitted(int64_t zxid, std::string_view record);
  void onRoleChanged(zab::Role role, int64_t leader, int64_t epoch, bool now_serving);
  void onAppMessage(int64_t peer, std::string_view payload);
  bool forwardWrite(Session& s, const Request& req);
  void forwardCreate(uint64_t conn, int64_t id, int32_t timeout, const std::string& password);
  bool forwardSync(Session& s, const Request& req);
  bool leaderSync(Session& s, const Request& req);
  void queueSync(int64_t peer, int64_t id);
  void onBarrierPassed(int64_t id);
  void finishSync(int64_t id);
  void leaderTakesForwarded(int64_t peer, std::string_view payload);
  void drainForwarded();
  void answerSyncs();
  std::string touchPayload();
  void resetClients(const std::string& why);
};

}  // namespace corral::kernel
