// Connections, the session handshake, per-session order and reads.
#include <corral/codec.h>

#include <algorithm>
#include <cstdio>

#include "server/kernel_impl.h"

namespace corral::kernel {

std::string Kernel::Impl::hex(int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(v));
  return buf;
}

void Kernel::Impl::refreshIds(Session& s) {
  s.ids = s.auth_ids;
  auto c = conns.find(s.conn);
  if (c != conns.end()) s.ids.insert(s.ids.end(), c->second.ids.begin(), c->second.ids.end());
  s.super_user = auth != nullptr && auth->isSuper(s.ids);
}

void Kernel::Impl::sendTo(int64_t session_id, std::string frame) {
  auto it = sessions.find(session_id);
  if (it != sessions.end() && it->second.conn != 0) out->send(it->second.conn, std::move(frame));
}

void Kernel::Impl::reply(int64_t session_id, Response resp) {
  resp.zxid = sm.lastZxid();
  sendTo(session_id, encodeResponse(resp));
}

void Kernel::Impl::deliver(const Applied& a) {
  for (const auto& [session, event] : a.events) sendTo(session, encodeEvent(event));
}

void Kernel::Impl::dropConnection(uint64_t conn, const std::string& why) {
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

// Tells the client, before closing, that this server dropped it (not that its session
// ended), so it moves to the next server at once instead of waiting for a timeout. ZooKeeper
// clients learn it from the TCP close; the native protocol needs the word.
void Kernel::Impl::sayGoodbye(uint64_t conn) {
  WatchEvent e;
  e.type = EventType::kNone;
  e.state = KeeperState::kDisconnected;
  out->send(conn, encodeEvent(e));
  dropConnection(conn, "");
}

Kernel::Impl::Session& Kernel::Impl::trackSession(int64_t id, int32_t timeout_ms) {
  auto [it, fresh] = sessions.try_emplace(id);
  if (fresh) {
    it->second.id = id;
    it->second.timeout_ms = timeout_ms;
    it->second.deadline_ms = last_now + timeout_ms;
    refreshIds(it->second);
  }
  return it->second;
}

// --- per-session order ---

void Kernel::Impl::handleRequest(Session& s, Request req, int64_t now_ms) {
  if (!s.waiting.empty()) {
    s.waiting.push_back(std::move(req));
    return;
  }
  if (!process(s, req, now_ms)) s.waiting.push_back(std::move(req));
}

// Runs what the session may run now, in order: a read waits for the session's writes.
void Kernel::Impl::drain(Session& s) {
  while (!s.waiting.empty()) {
    if (!process(s, s.waiting.front(), last_now)) return;
    s.waiting.pop_front();
  }
}

void Kernel::Impl::drainAll() {
  for (auto& [id, s] : sessions) drain(s);
}

// False when the request must wait (for the session's writes in flight, or for the leader
// to have zxids again).
bool Kernel::Impl::process(Session& s, const Request& req, int64_t now_ms) {
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
    if (!orders()) {
      if (!forwardWrite(s, req)) return false;
      s.closing = true;
      return true;
    }
    if (!canOrder()) return false;
    s.closing = true;
    Txn txn = sm.prepareCloseSession(s.id, proposalZxid(), now_ms);
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
    if (!orders()) return forwardWrite(s, req);
    if (!canOrder()) return false;
    startWrite(s, req, now_ms);
    return true;
  }
  if (s.writes_in_flight > 0) return false;
  if (op == OpCode::kSync && ensemble())
    return leading() ? leaderSync(s, req) : forwardSync(s, req);
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
  answerRead(s, req);
  return true;
}

void Kernel::Impl::answerRead(Session& s, const Request& req) {
  OpCode op = req.op.op;
  bool supported = !isWriteOp(op) && op != OpCode::kNotification && op != OpCode::kReconfig &&
                   op != OpCode::kSasl && op != OpCode::kError && op != OpCode::kPing;
  if (!supported) {
    Response r;
    r.xid = req.xid;
    r.err = ZkError::kUnimplemented;
    reply(s.id, r);
    return;
  }
  Applied a = sm.read(viewOf(s), req);
  deliver(a);
  reply(s.id, a.response);
}

// --- sessions ---

void Kernel::Impl::connect(uint64_t conn_id, Connection& c, const ConnectRequest& req,
                           int64_t now_ms) {
  if (c.session != 0 || c.handshaking) {
    dropConnection(conn_id, "second connect request on one connection");
    return;
  }
  if (!serving()) {
    // Like ZooKeeper: a server without a leader takes no clients; they try the next one.
    log(CORRAL_LOG_DEBUG, "client " + std::to_string(conn_id) + " refused: not serving");
    sayGoodbye(conn_id);
    return;
  }
  if (req.session_id != 0) {
    const SessionInfo* info = sm.session(req.session_id);
    auto s = sessions.find(req.session_id);
    bool known = info != nullptr && (ensemble() || s != sessions.end());
    if (!known || (s != sessions.end() && s->second.closing) || info->password != req.password) {
      ConnectResponse cr;
      cr.err = ZkError::kSessionExpired;
      out->send(conn_id, encodeConnectResponse(cr));
      dropConnection(conn_id, "");
      return;
    }
    Session& session = trackSession(req.session_id, info->timeout_ms);
    if (session.conn != 0 && session.conn != conn_id) {
      uint64_t old = session.conn;
      session.conn = 0;
      dropConnection(old, "");
    }
    session.conn = conn_id;
    session.deadline_ms = now_ms + session.timeout_ms;
    if (ensemble()) touched.insert(session.id);
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
  c.handshaking = true;
  if (!orders()) {
    forwardCreate(conn_id, id, timeout, password);
    return;
  }
  if (!canOrder()) {
    sayGoodbye(conn_id);
    return;
  }
  Txn txn = sm.prepareCreateSession(id, timeout, password, proposalZxid(), now_ms);
  submit(InFlight{txn.zxid, std::move(txn), Origin::kCreateSession, conn_id, timeout});
}

int64_t Kernel::Impl::nextSessionId() {
  // ZooKeeper's layout: the server id in the top byte, a counter seeded from the time.
  int64_t id;
  do {
    id = (opt.server_id << 56) | (next_session++ & 0x00FFFFFFFFFFFFFFLL);
  } while (sm.session(id) != nullptr || sessions.count(id) != 0 || pending_connects.count(id));
  return id;
}

void Kernel::Impl::sessionCreated(const InFlight& f) {
  const SessionInfo* info = sm.session(f.txn.session_id);
  auto c = conns.find(f.conn);
  if (info == nullptr) return;
  Session& ref = trackSession(info->session_id, info->timeout_ms);
  ref.deadline_ms = last_now + ref.timeout_ms;
  if (c != conns.end()) {
    ref.conn = f.conn;
    c->second.session = ref.id;
    c->second.handshaking = false;
    if (ensemble()) touched.insert(ref.id);
  }
  refreshIds(ref);
  if (ref.conn != 0) {
    ConnectResponse cr;
    cr.timeout_ms = ref.timeout_ms;
    cr.session_id = ref.id;
    cr.password = info->password;
    out->send(ref.conn, encodeConnectResponse(cr));
  }
}

}  // namespace corral::kernel
