// The Kernel's inputs: each stamps the time and hands the event to the part that owns it.
#include "server/kernel.h"

#include <corral/codec.h>

#include "server/kernel_impl.h"

namespace corral::kernel {
namespace {
constexpr int32_t kPingXid = -2;
}  // namespace

Kernel::Kernel(KernelOptions options, const AuthRegistry* auth, KernelOutput* out)
    : impl_(std::make_unique<Impl>(std::move(options), auth, out)) {}
Kernel::~Kernel() = default;

bool Kernel::restoreSnapshot(std::string_view snapshot, std::string* error) {
  if (!impl_->sm.restore(snapshot, error)) return false;
  impl_->next_zxid = impl_->sm.lastZxid() + 1;
  impl_->last_replayed = impl_->sm.lastZxid();
  return true;
}

void Kernel::restoreHardState(const zab::HardState& state) {
  if (impl_->zab) impl_->zab->recover(state, impl_->sm.lastZxid());
}

void Kernel::reserveNodes(size_t more) {
  impl_->sm.reserveNodes(more);
}

bool Kernel::replay(int64_t zxid, std::string_view record, std::string* error) {
  Impl& k = *impl_;
  Txn& txn = k.replay_txn;
  if (!decodeTxnReusing(record, &txn, error)) {
    *error = "txn " + std::to_string(zxid) + ": " + *error;
    return false;
  }
  if (txn.zxid != zxid) {
    *error = "txn record keyed " + std::to_string(zxid) + " holds zxid " + std::to_string(txn.zxid);
    return false;
  }
  int64_t last = k.last_replayed;
  if (zxid <= last) return true;  // already in the snapshot
  if (!zab::followsZxid(zxid, last)) {
    *error = "log gap: txn " + std::to_string(zxid) + " follows txn " + std::to_string(last);
    return false;
  }
  k.last_replayed = zxid;
  if (k.zab) {
    // Not known to be committed: the leader confirms it (DIFF) or drops it (TRUNC).
    k.zab->recoverRecord(zxid, std::string(record));
    return true;
  }
  k.sm.apply(txn);
  k.next_zxid = zxid + 1;
  return true;
}

void Kernel::start(int64_t now_ms) {
  Impl& k = *impl_;
  k.last_now = now_ms;
  k.next_session = (now_ms << 24) >> 8;
  if (k.zab) {
    k.zab->start(now_ms);
    return;
  }
  for (const SessionInfo& info : k.sm.sessions()) k.trackSession(info.session_id, info.timeout_ms);
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
  if (k.zab) k.touched.insert(session.id);
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
  if (k.zab) {
    if (!ok) k.log(CORRAL_LOG_ERROR, "storage sync failed: " + message);
    k.zab->onDurable(zxid, ok, now_ms);
    return;
  }
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
  k.expireSessions(now_ms);
  k.cleanupNodes(now_ms);
}

void Kernel::onPeerUp(int64_t peer, int64_t now_ms) {
  impl_->last_now = now_ms;
  if (impl_->zab) impl_->zab->onPeerUp(peer, now_ms);
}

void Kernel::onPeerDown(int64_t peer, int64_t now_ms) {
  impl_->last_now = now_ms;
  if (impl_->zab) impl_->zab->onPeerDown(peer, now_ms);
}

void Kernel::onPeerMessage(int64_t peer, std::string_view message, int64_t now_ms) {
  impl_->last_now = now_ms;
  if (impl_->zab) impl_->zab->onMessage(peer, message, now_ms);
}

void Kernel::onTimer(int64_t now_ms) {
  impl_->last_now = now_ms;
  if (impl_->zab) impl_->zab->onTimer(now_ms);
}

std::optional<zab::ZabStatus> Kernel::ensembleStatus() const {
  if (!impl_->zab) return std::nullopt;
  return impl_->zab->status();
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
    if (impl_->zab) {
      zab::ZabStatus st = impl_->zab->status();
      out += std::string("server_state ") + zab::roleName(st.role) + "\n";
      out += std::string("serving ") + (st.serving ? "1" : "0") + "\n";
      out += "leader_id " + std::to_string(st.leader) + "\n";
      out += "epoch " + std::to_string(st.epoch) + "\n";
      out += "last_logged_zxid " + std::to_string(st.last_logged) + "\n";
      out += "last_committed_zxid " + std::to_string(st.last_committed) + "\n";
      if (st.role == zab::Role::kLeading) {
        size_t followers = 0, synced = 0, observers = 0;
        for (const auto& l : st.learners) {
          if (l.observer) {
            ++observers;
          } else {
            ++followers;
            if (l.synced) ++synced;
          }
        }
        out += "learners " + std::to_string(st.learners.size()) + "\n";
        out += "followers " + std::to_string(followers) + "\n";
        out += "synced_followers " + std::to_string(synced) + "\n";
        out += "observers " + std::to_string(observers) + "\n";
        for (const auto& l : st.learners)
          out += "learner_" + std::to_string(l.id) + (l.observer ? " observer" : " follower") +
                 (l.synced ? ",synced" : ",syncing") + ",acked=" + std::to_string(l.acked) +
                 ",lag=" + std::to_string(l.lag) + "\n";
      }
    }
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
