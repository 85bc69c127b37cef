#include "server/kernel.h"

#include <corral/codec.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

namespace corral::kernel {
namespace {

constexpr int32_t kPingXid = -2;

// Requests answered from committed state (after the session's earlier writes applied).
bool isReadOp(OpCode op) {
  return !isWriteOp(op);
}

}  // namespace

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
    int64_t deadline_ms = 0;
    uint64_t conn = 0;         // 0: no connection attached
    std::vector<Id> auth_ids;  // from addauth
    std::vector<Id> ids;       // auth_ids + the connection's ids
    bool super_user = false;
    bool closing = false;
    int writes_in_flight = 0;
    std::deque<Request> waiting;  // requests held back to keep the session's order
  };

  enum class Origin { kClient, kCreateSession, kCloseSession, kExpire, kCleanup };
  struct InFlight {
    int64_t zxid;
    Txn txn;
    Origin origin;
    uint64_t conn;  // for kCreateSession: the connection waiting for its session
    int32_t timeout_ms = 0;
  };

  KernelOptions opt;
  const AuthRegistry* auth;
  KernelOutput* out;
  StateMachine sm;
  std::unordered_map<uint64_t, Connection> conns;
  std::map<int64_t, Session> sessions;
  std::deque<InFlight> in_flight;
  std::set<std::string> cleanup_in_flight;
  int64_t next_zxid = 1;
  int64_t next_session = 0;
  int64_t applied_since_snapshot = 0;
  std::mt19937_64 rng;

  Impl(KernelOptions o, const AuthRegistry* a, KernelOutput* k)
      : opt(o),
        auth(a),
        out(k),
        sm(a, StateLimits{static_cast<size_t>(o.max_request_bytes)}),
        rng(o.seed) {}

  void log(corral_log_level level, const std::string& msg) { out->log(level, msg); }

  void refreshIds(Session& s) {
    s.ids = s.auth_ids;
    auto c = conns.find(s.conn);
    if (c != conns.end()) s.ids.insert(s.ids.end(), c->second.ids.begin(), c->second.ids.end());
    s.super_user = auth != nullptr && auth->isSuper(s.ids);
  }

  SessionView viewOf(const Session& s) const { return SessionView{s.id, &s.ids, s.super_user}; }

  void sendTo(int64_t session_id, std::string frame) {
    auto it = sessions.find(session_id);
    if (it != sessions.end() && it->second.conn != 0) out->send(it->second.conn, std::move(frame));
  }

  void reply(int64_t session_id, Response resp) {
    resp.zxid = sm.lastZxid();
    sendTo(session_id, encodeResponse(resp));
  }

  void deliver(const Applied& a) {
    for (const auto& [session, event] : a.events) sendTo(session, encodeEvent(event));
  }

  void dropConnection(uint64_t conn, const std::string& why) {
    auto it = conns.find(conn);
    if (it == conns.end()) return;
    if (!why.empty())
      log(CORRAL_LOG_WARN, "client " + std::to_string(conn) + " from " + it->second.remote + ": " +
                               why + "; closing the connection");
    int64_t session = it->second.session;
    conns.erase(it);
    auto s = sessions.find(session);
    if (s != sessions.end() && s->second.conn == conn) {
      s->second.conn = 0;
      refreshIds(s->second);
    }
    out->close(conn);
  }

  // --- writes ---

  // Hands a prepared txn to storage. On refusal everything in flight fails (the overlay of
  // prepared txns can no longer be trusted).
  bool submit(InFlight item) {
    std::string error;
    if (!out->append(item.zxid, encodeTxn(item.txn), &error)) {
      log(CORRAL_LOG_ERROR, "storage refused txn " + std::to_string(item.zxid) + ": " + error);
      in_flight.push_back(std::move(item));
      failInFlight();
      return false;
    }
    next_zxid = item.zxid + 1;
    in_flight.push_back(std::move(item));
    out->requestSync();
    return true;
  }

  void failInFlight() {
    std::deque<InFlight> failed;
    failed.swap(in_flight);
    sm.discardPending();
    next_zxid = sm.lastZxid() + 1;
    out->truncateAfter(sm.lastZxid());
    cleanup_in_flight.clear();
    for (InFlight& f : failed) {
      switch (f.origin) {
        case Origin::kClient: {
          auto s = sessions.find(f.txn.session_id);
          if (s == sessions.end()) break;
          s->second.writes_in_flight--;
          Response r;
          r.xid = f.txn.xid;
          r.err = ZkError::kSystemError;
          reply(f.txn.session_id, r);
          break;
        }
        case Origin::kCreateSession:
          if (conns.count(f.conn)) {
            ConnectResponse cr;
            cr.err = ZkError::kSystemError;
            out->send(f.conn, encodeConnectResponse(cr));
            dropConnection(f.conn, "");
          }
          break;
        case Origin::kCloseSession:
        case Origin::kExpire: {
          auto s = sessions.find(f.txn.session_id);
          if (s != sessions.end()) s->second.closing = false;  // retried at the next tick
          break;
        }
        case Origin::kCleanup:
          break;
      }
    }
    for (auto& [id, s] : sessions) drain(s);
  }

  void startWrite(Session& s, const Request& req, int64_t now_ms) {
    Txn txn = sm.prepare(viewOf(s), req, next_zxid, now_ms);
    s.writes_in_flight++;
    submit(InFlight{txn.zxid, std::move(txn), Origin::kClient, s.conn});
  }

  void applyDurable(int64_t durable_zxid) {
    while (!in_flight.empty() && in_flight.front().zxid <= durable_zxid) {
      InFlight f = std::move(in_flight.front());
      in_flight.pop_front();
      Applied a = sm.apply(f.txn);
      ++applied_since_snapshot;
      deliver(a);
      switch (f.origin) {
        case Origin::kClient: {
          auto s = sessions.find(f.txn.session_id);
          if (s == sessions.end()) break;
          reply(s->first, a.response);
          s->second.writes_in_flight--;
          drain(s->second);
          break;
        }
        case Origin::kCreateSession:
          sessionCreated(f);
          break;
        case Origin::kCloseSession: {
          auto s = sessions.find(f.txn.session_id);
          if (s == sessions.end()) break;
          uint64_t conn = s->second.conn;
          Response r;
          r.xid = f.txn.xid;
          reply(s->first, r);
          sessions.erase(s);
          if (conn != 0) dropConnection(conn, "");
          break;
        }
        case Origin::kExpire: {
          auto s = sessions.find(f.txn.session_id);
          if (s == sessions.end()) break;
          uint64_t conn = s->second.conn;
          log(CORRAL_LOG_INFO, "session 0x" + hex(s->first) + " expired");
          if (conn != 0) {
            WatchEvent e;
            e.type = EventType::kNone;
            e.state = KeeperState::kExpired;
            out->send(conn, encodeEvent(e));
          }
          sessions.erase(s);
          if (conn != 0) dropConnection(conn, "");
          break;
        }
        case Origin::kCleanup:
          if (!f.txn.fields.empty()) cleanup_in_flight.erase(f.txn.fields[0]);
          break;
      }
    }
    if (opt.snapshot_every > 0 && applied_since_snapshot >= opt.snapshot_every) {
      applied_since_snapshot = 0;
      out->snapshotDue(sm.lastZxid());
    }
  }

  // --- per-session order ---

  void handleRequest(Session& s, Request req, int64_t now_ms) {
    if (!s.waiting.empty()) {
      s.waiting.push_back(std::move(req));
      return;
    }
    if (!process(s, req, now_ms)) s.waiting.push_back(std::move(req));
  }

  // Runs what the session may run now, in order: a read waits for the session's writes.
  void drain(Session& s) {
    while (!s.waiting.empty()) {
      if (!process(s, s.waiting.front(), last_now)) return;
      s.waiting.pop_front();
    }
  }

  // False when the request must wait for the session's writes in flight.
  bool process(Session& s, const Request& req, int64_t now_ms) {
    if (s.closing) {
      Response r;
      r.xid = req.xid;
      r.err = ZkError::kSessionExpired;
      reply(s.id, r);
      return true;
    }
    OpCode op = req.op.op;
    if (op == OpCode::kCloseSession) {
      if (s.writes_in_flight > 0) return false;
      s.closing = true;
      Txn txn = sm.prepareCloseSession(s.id, next_zxid, now_ms);
      txn.xid = req.xid;
      submit(InFlight{txn.zxid, std::move(txn), Origin::kCloseSession, s.conn});
      return true;
    }
    if (isWriteOp(op)) {
      if (op == OpCode::kCreateSession || op == OpCode::kDeleteContainer) {
        Response r;
        r.xid = req.xid;
        r.err = ZkError::kUnimplemented;
        reply(s.id, r);
        return true;
      }
      startWrite(s, req, now_ms);
      return true;
    }
    if (s.writes_in_flight > 0) return false;
    if (op == OpCode::kAuth) {
      Response r;
      r.xid = req.xid;
      r.result.op = OpCode::kAuth;
      Id id;
      std::string why;
      r.err = auth == nullptr ? ZkError::kAuthFailed
                              : auth->authenticate(req.op.scheme, req.op.auth, &id, &why);
      if (r.err == ZkError::kOk) {
        if (std::find(s.auth_ids.begin(), s.auth_ids.end(), id) == s.auth_ids.end())
          s.auth_ids.push_back(id);
        refreshIds(s);
      } else {
        log(CORRAL_LOG_INFO, "session 0x" + hex(s.id) + ": addauth failed: " + why);
      }
      reply(s.id, r);
      return true;
    }
    bool supported = isReadOp(op) && op != OpCode::kNotification && op != OpCode::kReconfig &&
                     op != OpCode::kSasl && op != OpCode::kError && op != OpCode::kPing;
    if (!supported) {
      Response r;
      r.xid = req.xid;
      r.err = ZkError::kUnimplemented;
      reply(s.id, r);
      return true;
    }
    Applied a = sm.read(viewOf(s), req);
    deliver(a);
    reply(s.id, a.response);
    return true;
  }

  // --- sessions ---

  void connect(uint64_t conn_id, Connection& c, const ConnectRequest& req, int64_t now_ms) {
    if (c.session != 0 || c.handshaking) {
      dropConnection(conn_id, "second connect request on one connection");
      return;
    }
    if (req.session_id != 0) {
      const SessionInfo* info = sm.session(req.session_id);
      auto s = sessions.find(req.session_id);
      if (info == nullptr || s == sessions.end() || s->second.closing ||
          info->password != req.password) {
        ConnectResponse cr;
        cr.err = ZkError::kSessionExpired;
        out->send(conn_id, encodeConnectResponse(cr));
        dropConnection(conn_id, "");
        return;
      }
      Session& session = s->second;
      if (session.conn != 0 && session.conn != conn_id) {
        uint64_t old = session.conn;
        session.conn = 0;
        dropConnection(old, "");
      }
      session.conn = conn_id;
      session.deadline_ms = now_ms + session.timeout_ms;
      c.session = session.id;
      refreshIds(session);
      ConnectResponse cr;
      cr.timeout_ms = session.timeout_ms;
      cr.session_id = session.id;
      cr.password = info->password;
      out->send(conn_id, encodeConnectResponse(cr));
      return;
    }
    int32_t timeout =
        std::clamp(req.timeout_ms, opt.min_session_timeout_ms, opt.max_session_timeout_ms);
    int64_t id = nextSessionId();
    std::string password(16, '\0');
    for (char& ch : password) ch = static_cast<char>(rng());
    Txn txn = sm.prepareCreateSession(id, timeout, password, next_zxid, now_ms);
    c.handshaking = true;
    submit(InFlight{txn.zxid, std::move(txn), Origin::kCreateSession, conn_id, timeout});
  }

  int64_t nextSessionId() {
    // ZooKeeper's layout: the server id in the top byte, a counter seeded from the time.
    int64_t id;
    do {
      id = (opt.server_id << 56) | (next_session++ & 0x00FFFFFFFFFFFFFFLL);
    } while (sm.session(id) != nullptr || sessions.count(id) != 0);
    return id;
  }

  void sessionCreated(const InFlight& f) {
    const SessionInfo* info = sm.session(f.txn.session_id);
    auto c = conns.find(f.conn);
    if (info == nullptr) return;
    Session s;
    s.id = info->session_id;
    s.timeout_ms = info->timeout_ms;
    s.deadline_ms = last_now + s.timeout_ms;
    if (c != conns.end()) {
      s.conn = f.conn;
      c->second.session = s.id;
      c->second.handshaking = false;
    }
    auto& ref = sessions[s.id] = std::move(s);
    refreshIds(ref);
    if (ref.conn != 0) {
      ConnectResponse cr;
      cr.timeout_ms = ref.timeout_ms;
      cr.session_id = ref.id;
      cr.password = info->password;
      out->send(ref.conn, encodeConnectResponse(cr));
    }
  }

  static std::string hex(int64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(v));
    return buf;
  }

  int64_t last_now = 0;
};

Kernel::Kernel(KernelOptions options, const AuthRegistry* auth, KernelOutput* out)
    : impl_(std::make_unique<Impl>(options, auth, out)) {}
Kernel::~Kernel() = default;

bool Kernel::restoreSnapshot(std::string_view snapshot, std::string* error) {
  if (!impl_->sm.restore(snapshot, error)) return false;
  impl_->next_zxid = impl_->sm.lastZxid() + 1;
  return true;
}

bool Kernel::replay(int64_t zxid, std::string_view record, std::string* error) {
  Txn txn;
  if (!decodeTxn(record, &txn, error)) {
    *error = "txn " + std::to_string(zxid) + ": " + *error;
    return false;
  }
  if (txn.zxid != zxid) {
    *error = "txn record keyed " + std::to_string(zxid) + " holds zxid " + std::to_string(txn.zxid);
    return false;
  }
  int64_t last = impl_->sm.lastZxid();
  if (zxid <= last) return true;  // already in the snapshot
  // The next counter, or the first txn of a new epoch: anything else means lost txns.
  bool follows = zxid == last + 1 || ((zxid >> 32) > (last >> 32) && (zxid & 0xffffffff) == 1);
  if (!follows) {
    *error = "log gap: txn " + std::to_string(zxid) + " follows txn " + std::to_string(last);
    return false;
  }
  impl_->sm.apply(txn);
  impl_->next_zxid = zxid + 1;
  return true;
}

void Kernel::start(int64_t now_ms) {
  Impl& k = *impl_;
  k.last_now = now_ms;
  k.next_session = (now_ms << 24) >> 8;
  for (const SessionInfo& info : k.sm.sessions()) {
    Impl::Session s;
    s.id = info.session_id;
    s.timeout_ms = info.timeout_ms;
    s.deadline_ms = now_ms + info.timeout_ms;
    k.sessions[s.id] = std::move(s);
  }
}

void Kernel::onOpen(uint64_t conn, std::string_view remote_addr, int64_t now_ms) {
  Impl& k = *impl_;
  k.last_now = now_ms;
  Impl::Connection c;
  c.remote = std::string(remote_addr);
  if (k.auth != nullptr) c.ids = k.auth->idsForConnection(c.remote);
  k.conns[conn] = std::move(c);
}

void Kernel::onFrame(uint64_t conn, std::string_view bytes, int64_t now_ms) {
  Impl& k = *impl_;
  k.last_now = now_ms;
  auto it = k.conns.find(conn);
  if (it == k.conns.end()) return;
  if (bytes.size() > k.opt.max_request_bytes) {
    k.dropConnection(conn, "frame of " + std::to_string(bytes.size()) +
                               " bytes exceeds max_request_bytes " +
                               std::to_string(k.opt.max_request_bytes));
    return;
  }
  Frame f;
  std::string error;
  if (!decodeFrame(bytes, &f, &error)) {
    k.dropConnection(conn, "malformed frame: " + error);
    return;
  }
  Impl::Connection& c = it->second;
  if (f.kind == FrameKind::kConnect) {
    k.connect(conn, c, f.connect, now_ms);
    return;
  }
  if (f.kind != FrameKind::kRequest) {
    k.dropConnection(conn, "unexpected frame kind " + std::to_string(static_cast<int>(f.kind)));
    return;
  }
  auto s = k.sessions.find(c.session);
  if (c.session == 0 || s == k.sessions.end()) {
    k.dropConnection(conn, "request before the session handshake");
    return;
  }
  Impl::Session& session = s->second;
  session.deadline_ms = now_ms + session.timeout_ms;
  if (f.request.op.op == OpCode::kPing) {
    Response r;
    r.xid = f.request.xid == 0 ? kPingXid : f.request.xid;
    r.result.op = OpCode::kPing;
    k.reply(session.id, r);
    return;
  }
  k.handleRequest(session, std::move(f.request), now_ms);
}

void Kernel::onClose(uint64_t conn, int64_t now_ms) {
  Impl& k = *impl_;
  k.last_now = now_ms;
  auto it = k.conns.find(conn);
  if (it == k.conns.end()) return;
  int64_t session = it->second.session;
  k.conns.erase(it);
  auto s = k.sessions.find(session);
  if (s != k.sessions.end() && s->second.conn == conn) {
    // The session lives on until it times out: the client may reconnect and resume it.
    s->second.conn = 0;
    k.refreshIds(s->second);
  }
}

void Kernel::onDurable(int64_t zxid, bool ok, const std::string& message, int64_t now_ms) {
  Impl& k = *impl_;
  k.last_now = now_ms;
  if (!ok) {
    k.log(CORRAL_LOG_ERROR, "storage sync failed: " + message + "; failing the writes in flight");
    k.failInFlight();
    return;
  }
  k.applyDurable(zxid);
}

void Kernel::onTick(int64_t now_ms) {
  Impl& k = *impl_;
  k.last_now = now_ms;
  std::vector<int64_t> expired;
  for (auto& [id, s] : k.sessions)
    if (!s.closing && s.deadline_ms <= now_ms) expired.push_back(id);
  for (int64_t id : expired) {
    Impl::Session& s = k.sessions[id];
    s.closing = true;
    Txn txn = k.sm.prepareCloseSession(id, k.next_zxid, now_ms);
    k.submit(Impl::InFlight{txn.zxid, std::move(txn), Impl::Origin::kExpire, s.conn});
  }
  for (const std::string& path : k.sm.cleanupCandidates(now_ms)) {
    if (!k.cleanup_in_flight.insert(path).second) continue;
    Txn txn = k.sm.prepareDeleteContainer(path, k.next_zxid, now_ms);
    if (txn.type == OpCode::kError) {
      k.cleanup_in_flight.erase(path);
      continue;
    }
    k.submit(Impl::InFlight{txn.zxid, std::move(txn), Impl::Origin::kCleanup, 0});
  }
}

const StateMachine& Kernel::state() const {
  return impl_->sm;
}

std::string Kernel::describe(const std::string& question) const {
  std::string out = impl_->sm.describe(question);
  if (question == "stats") {
    size_t waiting = 0;
    for (const auto& [id, s] : impl_->sessions) waiting += s.waiting.size();
    out += "connections " + std::to_string(impl_->conns.size()) + "\n";
    out += "outstanding_requests " + std::to_string(impl_->in_flight.size() + waiting) + "\n";
  }
  return out;
}
size_t Kernel::connectionCount() const {
  return impl_->conns.size();
}
size_t Kernel::sessionCount() const {
  return impl_->sessions.size();
}

}  // namespace corral::kernel
