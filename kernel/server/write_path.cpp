// The write path: prepare (on the server that orders writes) -> commit (durable here when
// standalone; a quorum's ack in an ensemble) -> apply in zxid order -> answer whoever waits.
#include <corral/codec.h>

#include "server/kernel_impl.h"

namespace corral::kernel {

int64_t Kernel::Impl::proposalZxid() const {
  return ensemble() ? zab->nextZxid() : next_zxid;
}

bool Kernel::Impl::canOrder() const {
  return ensemble() ? zab->canPropose() : true;
}

// Hands a prepared txn to storage (standalone) or to ZAB (leader). On refusal everything in
// flight fails (the overlay of prepared txns can no longer be trusted).
bool Kernel::Impl::submit(InFlight item) {
  if (ensemble()) {
    int64_t zxid = item.zxid;
    std::string record = encodeTxn(item.txn);
    in_flight.push_back(std::move(item));
    if (!zab->propose(zxid, std::move(record))) {
      // ZAB left the leader role (which reset every client) or could not take the zxid.
      if (!in_flight.empty() && in_flight.back().zxid == zxid) {
        in_flight.pop_back();
        failInFlight();
      }
      return false;
    }
    return true;
  }
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

void Kernel::Impl::failInFlight() {
  std::deque<InFlight> failed;
  failed.swap(in_flight);
  sm.discardPending();
  next_zxid = sm.lastZxid() + 1;
  if (!ensemble()) out->truncateAfter(sm.lastZxid());
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
      case Origin::kRemote:
        break;
    }
  }
  drainAll();
}

void Kernel::Impl::startWrite(Session& s, const Request& req, int64_t now_ms) {
  Txn txn = sm.prepare(viewOf(s), req, proposalZxid(), now_ms);
  s.writes_in_flight++;
  submit(InFlight{txn.zxid, std::move(txn), Origin::kClient, s.conn});
}

// Standalone: durable is committed.
void Kernel::Impl::applyDurable(int64_t durable_zxid) {
  while (!in_flight.empty() && in_flight.front().zxid <= durable_zxid) {
    InFlight f = std::move(in_flight.front());
    in_flight.pop_front();
    applyOne(std::move(f));
  }
  afterApply();
}

void Kernel::Impl::applyOne(InFlight f) {
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
    case Origin::kCloseSession:
      endSession(f.txn.session_id, true, f.txn.xid);
      break;
    case Origin::kExpire:
      endSession(f.txn.session_id, false, 0);
      break;
    case Origin::kCleanup:
      if (!f.txn.fields.empty()) cleanup_in_flight.erase(f.txn.fields[0]);
      break;
    case Origin::kRemote:
      answerRemote(f.txn, a);
      break;
  }
}

// A committed closeSession: the client that asked gets its answer; otherwise the session
// expired and its client (if connected here) is told so. Either way the connection closes.
void Kernel::Impl::endSession(int64_t session_id, bool asked, int32_t xid) {
  auto s = sessions.find(session_id);
  if (s == sessions.end()) return;
  uint64_t conn = s->second.conn;
  if (asked) {
    Response r;
    r.xid = xid;
    reply(session_id, r);
  } else {
    log(CORRAL_LOG_INFO, "session 0x" + hex(session_id) + " expired");
    if (conn != 0) {
      WatchEvent e;
      e.type = EventType::kNone;
      e.state = KeeperState::kExpired;
      out->send(conn, encodeEvent(e));
    }
  }
  sessions.erase(s);
  if (conn != 0) dropConnection(conn, "");
}

// A txn this server did not prepare (an ensemble's learner, or a leader applying what a
// learner forwarded): answer the local client that asked for it, if any.
void Kernel::Impl::answerRemote(const Txn& txn, const Applied& a) {
  switch (txn.type) {
    case OpCode::kCreateSession: {
      auto p = pending_connects.find(txn.session_id);
      if (p != pending_connects.end()) {
        InFlight g{txn.zxid, txn, Origin::kCreateSession, p->second};
        pending_connects.erase(p);
        sessionCreated(g);
      } else if (leading()) {
        const SessionInfo* info = sm.session(txn.session_id);
        if (info != nullptr) trackSession(info->session_id, info->timeout_ms);
      }
      return;
    }
    case OpCode::kCloseSession: {
      auto s = sessions.find(txn.session_id);
      if (s == sessions.end()) return;
      bool asked = s->second.closing && !s->second.forwarded.empty() &&
                   s->second.forwarded.front() == txn.xid;
      endSession(txn.session_id, asked, txn.xid);
      return;
    }
    default: {
      auto s = sessions.find(txn.session_id);
      if (s == sessions.end() || s->second.forwarded.empty() ||
          s->second.forwarded.front() != txn.xid)
        return;
      s->second.forwarded.pop_front();
      reply(s->first, a.response);
      s->second.writes_in_flight--;
      drain(s->second);
      return;
    }
  }
}

void Kernel::Impl::afterApply() {
  if (leading()) answerSyncs();
  if (opt.snapshot_every > 0 && applied_since_snapshot >= opt.snapshot_every) {
    applied_since_snapshot = 0;
    out->snapshotDue(sm.lastZxid());
  }
}

void Kernel::Impl::expireSessions(int64_t now_ms) {
  if (!orders() || !serving()) return;
  std::vector<int64_t> expired;
  for (auto& [id, s] : sessions)
    if (!s.closing && s.deadline_ms <= now_ms) expired.push_back(id);
  for (int64_t id : expired) {
    if (!canOrder()) return;
    Session& s = sessions[id];
    s.closing = true;
    Txn txn = sm.prepareCloseSession(id, proposalZxid(), now_ms);
    submit(InFlight{txn.zxid, std::move(txn), Origin::kExpire, s.conn});
  }
}

void Kernel::Impl::cleanupNodes(int64_t now_ms) {
  if (!orders() || !serving()) return;
  for (const std::string& path : sm.cleanupCandidates(now_ms)) {
    if (!canOrder()) return;
    if (!cleanup_in_flight.insert(path).second) continue;
    Txn txn = sm.prepareDeleteContainer(path, proposalZxid(), now_ms);
    if (txn.type == OpCode::kError) {
      cleanup_in_flight.erase(path);
      continue;
    }
    submit(InFlight{txn.zxid, std::move(txn), Origin::kCleanup, 0});
  }
}

}  // namespace corral::kernel
