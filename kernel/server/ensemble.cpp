// The kernel as an ensemble member: ZAB's outputs (kernel/zab), writes forwarded from
// learners to the leader, global sessions (the leader expires them; learners report which
// are alive with their pings), sync round trips, and what happens to clients when the
// server's role changes.
#include <corral/codec.h>

#include <cstdlib>

#include "server/kernel_impl.h"
#include "state/bytes.h"

namespace corral::kernel {

class Kernel::Impl::ZabBridge : public zab::ZabOutput {
 public:
  explicit ZabBridge(Impl* k) : k_(k) {}

  void send(int64_t peer, std::string message) override {
    k_->out->sendPeer(peer, std::move(message));
  }
  bool append(int64_t zxid, std::string_view record) override {
    std::string error;
    if (k_->out->append(zxid, record, &error)) return true;
    k_->log(CORRAL_LOG_ERROR, "storage refused txn 0x" + hex(zxid) + ": " + error);
    return false;
  }
  void requestSync() override { k_->out->requestSync(); }
  bool truncateLog(int64_t zxid) override {
    std::string error;
    if (k_->out->truncateLog(zxid, &error)) return true;
    k_->log(CORRAL_LOG_ERROR, "cannot truncate the log after 0x" + hex(zxid) + ": " + error);
    return false;
  }
  bool saveHardState(const zab::HardState& state) override { return k_->out->saveHardState(state); }
  void commit(int64_t zxid, std::string_view record) override { k_->onCommitted(zxid, record); }
  std::string snapshot() override { return k_->sm.snapshot(); }
  bool installSnapshot(int64_t zxid, std::string_view data) override {
    std::string error;
    k_->resetClients("");
    if (!k_->sm.restore(data, &error)) {
      k_->log(CORRAL_LOG_ERROR, "the leader's snapshot does not load: " + error);
      return false;
    }
    k_->sessions.clear();
    if (!k_->out->installSnapshot(zxid, data, &error)) {
      k_->log(CORRAL_LOG_ERROR, "cannot store the leader's snapshot: " + error);
      return false;
    }
    return true;
  }
  void roleChanged(zab::Role role, int64_t leader, int64_t epoch, bool serving) override {
    k_->onRoleChanged(role, leader, epoch, serving);
  }
  void barrierPassed(int64_t id) override { k_->onBarrierPassed(id); }
  void proposalsResumed() override {
    k_->drainForwarded();
    k_->drainAll();
  }
  void onAppMessage(int64_t peer, std::string_view payload) override {
    k_->onAppMessage(peer, payload);
  }
  std::string pingPayload() override { return k_->touchPayload(); }
  void log(corral_log_level level, const std::string& message) override { k_->log(level, message); }

 private:
  Impl* k_;
};

Kernel::Impl::Impl(KernelOptions o, const AuthRegistry* a, KernelOutput* k)
    : opt(o),
      auth(a),
      out(k),
      sm(a, StateLimits{static_cast<size_t>(o.max_request_bytes)}),
      rng(o.seed) {
  if (opt.ensemble) {
    bridge = std::make_unique<ZabBridge>(this);
    zab = std::make_unique<zab::Zab>(*opt.ensemble, bridge.get());
  }
}

Kernel::Impl::~Impl() = default;

void Kernel::Impl::onCommitted(int64_t zxid, std::string_view record) {
  InFlight f{zxid, Txn{}, Origin::kRemote, 0};
  if (!in_flight.empty() && in_flight.front().zxid == zxid) {
    f = std::move(in_flight.front());
    in_flight.pop_front();
  } else {
    std::string error;
    if (!decodeTxn(record, &f.txn, &error)) {
      // A committed txn this server cannot apply would make its state diverge from the
      // ensemble's: stop rather than serve wrong data.
      log(CORRAL_LOG_ERROR,
          "committed txn 0x" + hex(zxid) + " does not decode (" + error + "); stopping the server");
      std::abort();
    }
  }
  applyOne(std::move(f));
  afterApply();
}

void Kernel::Impl::resetClients(const std::string& why) {
  std::vector<uint64_t> all;
  for (const auto& [id, c] : conns) all.push_back(id);
  if (!all.empty() && !why.empty())
    log(CORRAL_LOG_INFO, "closing " + std::to_string(all.size()) + " client connections: " + why);
  for (uint64_t id : all) sayGoodbye(id);
  in_flight.clear();
  sm.discardPending();
  cleanup_in_flight.clear();
  pending_connects.clear();
  forwarded_backlog.clear();
  pending_syncs.clear();
  sync_sessions.clear();
  touched.clear();
  for (auto& [id, s] : sessions) {
    s.writes_in_flight = 0;
    s.waiting.clear();
    s.forwarded.clear();
    s.syncs.clear();
    s.closing = false;
  }
}

void Kernel::Impl::onRoleChanged(zab::Role role, int64_t leader, int64_t epoch, bool now_serving) {
  if (!now_serving) {
    // Clients of a server that lost its leader reconnect elsewhere; their sessions live on.
    resetClients(std::string("this server is ") + zab::roleName(role) + " now");
    return;
  }
  log(CORRAL_LOG_INFO, std::string("serving as ") + zab::roleName(role) + " (leader " +
                           std::to_string(leader) + ", epoch " + std::to_string(epoch) + ")");
  if (role == zab::Role::kLeading) {
    // The leader expires sessions: every session gets a full timeout from now.
    for (const SessionInfo& info : sm.sessions()) {
      Session& s = trackSession(info.session_id, info.timeout_ms);
      s.deadline_ms = last_now + s.timeout_ms;
    }
    drainForwarded();
  }
}

// --- learner -> leader ---

namespace {

void writeIds(ByteWriter& w, const std::vector<Id>& ids) {
  w.u32(static_cast<uint32_t>(ids.size()));
  for (const Id& id : ids) {
    w.bytes(id.scheme);
    w.bytes(id.id);
  }
}

}  // namespace

bool Kernel::Impl::forwardWrite(Session& s, const Request& req) {
  std::string payload;
  ByteWriter w(&payload);
  w.u8(static_cast<uint8_t>(AppKind::kForwardRequest));
  w.i64(s.id);
  w.bytes(encodeRequest(req));
  writeIds(w, s.ids);
  w.u8(s.super_user ? 1 : 0);
  if (!zab->sendToLeader(std::move(payload))) {
    if (s.conn != 0) sayGoodbye(s.conn);  // no leader to forward it to: the client moves on
    return true;                          // the request is gone with its connection
  }
  s.forwarded.push_back(req.xid);
  s.writes_in_flight++;
  return true;
}

void Kernel::Impl::forwardCreate(uint64_t conn, int64_t id, int32_t timeout,
                                 const std::string& password) {
  std::string payload;
  ByteWriter w(&payload);
  w.u8(static_cast<uint8_t>(AppKind::kForwardCreate));
  w.i64(id);
  w.i32(timeout);
  w.bytes(password);
  if (!zab->sendToLeader(std::move(payload))) {
    sayGoodbye(conn);
    return;
  }
  pending_connects[id] = conn;
}

bool Kernel::Impl::forwardSync(Session& s, const Request& req) {
  int64_t id = next_sync_id++;
  std::string payload;
  ByteWriter w(&payload);
  w.u8(static_cast<uint8_t>(AppKind::kSync));
  w.i64(id);
  if (!zab->sendToLeader(std::move(payload))) {
    if (s.conn != 0) sayGoodbye(s.conn);
    return true;
  }
  sync_sessions[id] = s.id;
  s.syncs.push_back(req);
  s.writes_in_flight++;
  return true;
}

std::string Kernel::Impl::touchPayload() {
  if (touched.empty()) return {};
  std::string payload;
  ByteWriter w(&payload);
  w.u8(static_cast<uint8_t>(AppKind::kTouch));
  w.u32(static_cast<uint32_t>(touched.size()));
  for (int64_t id : touched) w.i64(id);
  touched.clear();
  return payload;
}

// --- messages between servers ---

void Kernel::Impl::onAppMessage(int64_t peer, std::string_view payload) {
  if (payload.empty()) return;
  auto kind = static_cast<AppKind>(static_cast<uint8_t>(payload[0]));
  ByteReader r(payload.substr(1));
  if (leading()) {
    switch (kind) {
      case AppKind::kForwardRequest:
      case AppKind::kForwardCreate:
        if (!canOrder()) {
          forwarded_backlog.emplace_back(peer, std::string(payload));
        } else {
          leaderTakesForwarded(peer, payload);
        }
        return;
      case AppKind::kTouch: {
        uint32_t n = r.count(8);
        for (uint32_t i = 0; i < n && r.ok(); ++i) {
          int64_t id = r.i64();
          const SessionInfo* info = sm.session(id);
          if (info == nullptr) continue;
          Session& s = trackSession(id, info->timeout_ms);
          s.deadline_ms = last_now + s.timeout_ms;
        }
        return;
      }
      case AppKind::kSync: {
        int64_t id = r.i64();
        if (!r.ok()) return;
        queueSync(peer, id);
        return;
      }
      default:
        return;
    }
  }
  if (kind == AppKind::kSyncDone) {
    int64_t id = r.i64();
    if (r.ok()) finishSync(id);
  }
}

void Kernel::Impl::finishSync(int64_t id) {
  auto it = sync_sessions.find(id);
  if (it == sync_sessions.end()) return;
  int64_t session = it->second;
  sync_sessions.erase(it);
  auto s = sessions.find(session);
  if (s == sessions.end() || s->second.syncs.empty()) return;
  Request req = std::move(s->second.syncs.front());
  s->second.syncs.pop_front();
  s->second.writes_in_flight--;
  answerRead(s->second, req);
  drain(s->second);
}

void Kernel::Impl::leaderTakesForwarded(int64_t peer, std::string_view payload) {
  auto kind = static_cast<AppKind>(static_cast<uint8_t>(payload[0]));
  ByteReader r(payload.substr(1));
  if (kind == AppKind::kForwardCreate) {
    int64_t id = r.i64();
    int32_t timeout = r.i32();
    std::string password = r.bytes();
    if (!r.ok() || sm.session(id) != nullptr) return;
    Txn txn = sm.prepareCreateSession(id, timeout, password, proposalZxid(), last_now);
    submit(InFlight{txn.zxid, std::move(txn), Origin::kRemote, 0});
    return;
  }
  int64_t session = r.i64();
  std::string frame = r.bytes();
  std::vector<Id> ids(r.count(8));
  for (Id& id : ids) {
    id.scheme = r.bytes();
    id.id = r.bytes();
  }
  bool super_user = r.u8() != 0;
  Frame f;
  std::string error;
  if (!r.ok() || !decodeFrame(frame, &f, &error) || f.kind != FrameKind::kRequest) {
    log(CORRAL_LOG_WARN, "malformed write forwarded by server " + std::to_string(peer));
    return;
  }
  const Request& req = f.request;
  Txn txn;
  if (sm.session(session) == nullptr) {
    // The session ended meanwhile: the client learns it in order with its other writes.
    txn.zxid = proposalZxid();
    txn.time_ms = last_now;
    txn.session_id = session;
    txn.xid = req.xid;
    txn.type = OpCode::kError;
    txn.err = ZkError::kSessionExpired;
  } else if (req.op.op == OpCode::kCloseSession) {
    txn = sm.prepareCloseSession(session, proposalZxid(), last_now);
    txn.xid = req.xid;
    auto s = sessions.find(session);
    if (s != sessions.end()) s->second.closing = true;
  } else {
    txn = sm.prepare(SessionView{session, &ids, super_user}, req, proposalZxid(), last_now);
  }
  submit(InFlight{txn.zxid, std::move(txn), Origin::kRemote, 0});
}

void Kernel::Impl::drainForwarded() {
  while (!forwarded_backlog.empty() && leading() && canOrder()) {
    auto [peer, payload] = std::move(forwarded_backlog.front());
    forwarded_backlog.pop_front();
    leaderTakesForwarded(peer, payload);
  }
}

bool Kernel::Impl::leaderSync(Session& s, const Request& req) {
  int64_t id = next_sync_id++;
  sync_sessions[id] = s.id;
  s.syncs.push_back(req);
  s.writes_in_flight++;
  queueSync(0, id);
  return true;
}

void Kernel::Impl::queueSync(int64_t peer, int64_t id) {
  pending_syncs.push_back(PendingSync{peer, id, zab->lastLogged()});
  int64_t barrier = zab->raiseBarrier();  // may pass at once (a single voter)
  for (PendingSync& p : pending_syncs)
    if (p.peer == peer && p.id == id) {
      p.barrier = barrier;
      p.confirmed = barrier != 0 && barrier <= last_barrier_passed;
    }
  answerSyncs();
}

void Kernel::Impl::onBarrierPassed(int64_t id) {
  last_barrier_passed = std::max(last_barrier_passed, id);
  for (PendingSync& p : pending_syncs)
    if (p.barrier != 0 && p.barrier <= id) p.confirmed = true;
  answerSyncs();
}

void Kernel::Impl::answerSyncs() {
  while (!pending_syncs.empty() && pending_syncs.front().confirmed &&
         sm.lastZxid() >= pending_syncs.front().zxid) {
    PendingSync p = pending_syncs.front();
    pending_syncs.pop_front();
    if (p.peer == 0) {
      finishSync(p.id);
      continue;
    }
    std::string payload;
    ByteWriter w(&payload);
    w.u8(static_cast<uint8_t>(AppKind::kSyncDone));
    w.i64(p.id);
    zab->sendToLearner(p.peer, std::move(payload));
  }
}

}  // namespace corral::kernel
