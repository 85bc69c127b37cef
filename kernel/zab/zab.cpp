#include "zab/zab.h"

#include <algorithm>

#include "zab/zab_impl.h"

namespace corral::zab {

const char* roleName(Role role) {
  switch (role) {
    case Role::kLooking:
      return "looking";
    case Role::kFollowing:
      return "follower";
    case Role::kLeading:
      return "leader";
    case Role::kObserving:
      return "observer";
  }
  return "?";
}

Zab::Impl::Impl(ZabOptions o, ZabOutput* k) : opt(std::move(o)), out(k) {
  voters.insert(opt.voters.begin(), opt.voters.end());
  observers.insert(opt.observers.begin(), opt.observers.end());
  self_observer = observers.count(opt.self_id) != 0;
}

void Zab::Impl::log(corral_log_level level, const std::string& text) {
  out->log(level, "zab: " + text);
}

void Zab::Impl::sendMsg(int64_t peer, MsgType type, int64_t msg_epoch, int64_t zxid,
                        std::string_view payload, int64_t a, int64_t b, uint8_t flags) {
  out->send(peer, encodeMsg(type, msg_epoch, zxid, payload, a, b, flags));
}

bool Zab::Impl::persistHardState() {
  if (out->saveHardState(hs)) return true;
  log(CORRAL_LOG_ERROR, "cannot save the epochs; stepping out of the ensemble");
  return false;
}

bool Zab::Impl::appendRecord(int64_t zxid, std::string record) {
  if (!out->append(zxid, record)) return false;
  history.push_back(Entry{zxid, std::move(record)});
  last_logged = zxid;
  return true;
}

const Entry* Zab::Impl::findEntry(int64_t zxid) const {
  auto it = std::lower_bound(history.begin(), history.end(), zxid,
                             [](const Entry& e, int64_t z) { return e.zxid < z; });
  return it != history.end() && it->zxid == zxid ? &*it : nullptr;
}

void Zab::Impl::applyUpTo(int64_t zxid) {
  zxid = std::min(zxid, committed);
  if (zxid <= applied) return;
  auto it = std::upper_bound(history.begin(), history.end(), applied,
                             [](int64_t z, const Entry& e) { return z < e.zxid; });
  for (; it != history.end() && it->zxid <= zxid; ++it) {
    out->commit(it->zxid, it->record);
    applied = it->zxid;
  }
  trimHistory();
}

void Zab::Impl::trimHistory() {
  while (history.size() > opt.max_history && history.front().zxid <= applied) {
    base_zxid = history.front().zxid;
    history.pop_front();
  }
}

void Zab::Impl::setRole(Role r, int64_t leader, int64_t e, bool serving) {
  bool changed = r != role || leader != leader_id || e != epoch || serving != is_serving;
  role = r;
  leader_id = leader;
  epoch = e;
  is_serving = serving;
  if (changed) out->roleChanged(r, leader, e, serving);
}

// --- public API ---

Zab::Zab(ZabOptions options, ZabOutput* out)
    : impl_(std::make_unique<Impl>(std::move(options), out)) {}
Zab::~Zab() = default;

void Zab::recover(const HardState& hard_state, int64_t applied_zxid) {
  Impl& z = *impl_;
  z.hs = hard_state;
  z.base_zxid = z.applied = z.committed = z.last_logged = z.durable = applied_zxid;
  z.history.clear();
}

void Zab::recoverRecord(int64_t zxid, std::string record) {
  Impl& z = *impl_;
  if (zxid <= z.last_logged) return;
  z.history.push_back(Entry{zxid, std::move(record)});
  z.last_logged = z.durable = zxid;
}

void Zab::start(int64_t now_ms) {
  impl_->now = now_ms;
  impl_->enterLooking("starting");
}

void Zab::onPeerUp(int64_t peer, int64_t now_ms) {
  Impl& z = *impl_;
  z.now = now_ms;
  if (!z.isMember(peer)) return;
  if (z.role == Role::kLooking) {
    z.sendVote(peer);
  } else if (peer == z.leader_id && z.role != Role::kLeading) {
    // A new link to our leader: what the old one carried may be lost. Rejoin.
    z.enterLooking("the link to leader " + std::to_string(peer) + " was re-established");
  }
}

void Zab::onPeerDown(int64_t peer, int64_t now_ms) {
  Impl& z = *impl_;
  z.now = now_ms;
  if (!z.isMember(peer)) return;
  if (z.role == Role::kLeading) {
    if (z.learners.count(peer)) z.dropLearner(peer, "its link broke");
  } else if (z.role != Role::kLooking && peer == z.leader_id) {
    z.enterLooking("lost the link to leader " + std::to_string(peer));
  } else if (z.role == Role::kLooking) {
    z.early_infos.erase(peer);
  }
}

void Zab::onMessage(int64_t peer, std::string_view bytes, int64_t now_ms) {
  Impl& z = *impl_;
  z.now = now_ms;
  if (!z.isMember(peer) || peer == z.opt.self_id) return;
  Msg m;
  if (!decodeMsg(bytes, &m)) {
    z.log(CORRAL_LOG_WARN, "malformed message from server " + std::to_string(peer) + " ignored");
    return;
  }
  if (m.type == MsgType::kVote) {
    z.onVote(peer, m);
    return;
  }
  switch (z.role) {
    case Role::kLooking:
      // A learner that decided before us: keep its info for when we lead.
      if (m.type == MsgType::kFollowerInfo) z.early_infos[peer] = std::move(m);
      return;
    case Role::kLeading:
      z.onLeaderMessage(peer, m);
      return;
    case Role::kFollowing:
    case Role::kObserving:
      if (peer == z.leader_id) z.onLearnerMessage(peer, m);
      return;
  }
}

void Zab::onDurable(int64_t zxid, bool ok, int64_t now_ms) {
  Impl& z = *impl_;
  z.now = now_ms;
  if (!ok) {
    z.enterLooking("the log could not be made durable");
    return;
  }
  // A report may cover records since truncated; it never claims records above it.
  z.durable = std::max(z.durable, std::min(zxid, z.last_logged));
  if (z.role == Role::kLeading) {
    z.tryCommit();
  } else if (z.role != Role::kLooking) {
    z.learnerDurable();
  }
}

void Zab::onTimer(int64_t now_ms) {
  Impl& z = *impl_;
  z.now = now_ms;
  switch (z.role) {
    case Role::kLooking:
      z.electionTimer();
      break;
    case Role::kLeading:
      z.leaderTimer();
      break;
    default:
      z.learnerTimer();
      break;
  }
}

bool Zab::canPropose() const {
  const Impl& z = *impl_;
  return z.role == Role::kLeading && z.leader_phase == Impl::LeaderPhase::kBroadcast &&
         z.next_counter <= z.opt.max_counter;
}

int64_t Zab::nextZxid() const {
  return makeZxid(impl_->epoch, impl_->next_counter);
}

bool Zab::propose(int64_t zxid, std::string record) {
  Impl& z = *impl_;
  if (!canPropose() || zxid != nextZxid()) return false;
  std::string msg = encodeMsg(MsgType::kProposal, z.epoch, zxid, record, z.last_logged);
  if (!z.appendRecord(zxid, std::move(record))) {
    z.enterLooking("storage refused proposal " + std::to_string(zxid));
    return false;
  }
  ++z.next_counter;
  for (auto& [id, l] : z.learners)
    if (!l.observer && l.phase >= Impl::LearnerPhase::kSyncing) z.out->send(id, msg);
  z.out->requestSync();
  if (z.next_counter > z.opt.max_counter) z.startNewEpoch();
  return true;
}

int64_t Zab::raiseBarrier() {
  Impl& z = *impl_;
  if (z.role != Role::kLeading || !z.is_serving) return 0;
  return z.raiseBarrier();
}

bool Zab::sendToLeader(std::string payload) {
  Impl& z = *impl_;
  if (z.role != Role::kFollowing && z.role != Role::kObserving) return false;
  if (z.learner_state != Impl::LearnerState::kSynced) return false;
  z.sendMsg(z.leader_id, MsgType::kApp, z.epoch, 0, payload);
  return true;
}

bool Zab::sendToLearner(int64_t peer, std::string payload) {
  Impl& z = *impl_;
  if (z.role != Role::kLeading || !z.learners.count(peer)) return false;
  z.sendMsg(peer, MsgType::kApp, z.epoch, 0, payload);
  return true;
}

Role Zab::role() const {
  return impl_->role;
}
bool Zab::serving() const {
  return impl_->is_serving;
}
int64_t Zab::leader() const {
  return impl_->leader_id;
}
int64_t Zab::lastCommitted() const {
  return impl_->committed;
}
int64_t Zab::lastApplied() const {
  return impl_->applied;
}
int64_t Zab::lastLogged() const {
  return impl_->last_logged;
}

ZabStatus Zab::status() const {
  const Impl& z = *impl_;
  ZabStatus s;
  s.role = z.role;
  s.serving = z.is_serving;
  s.leader = z.leader_id;
  s.epoch = z.epoch;
  s.accepted_epoch = z.hs.accepted_epoch;
  s.last_logged = z.last_logged;
  s.last_committed = z.committed;
  s.last_applied = z.applied;
  if (z.role == Role::kLeading) {
    for (const auto& [id, l] : z.learners) {
      ZabStatus::Learner x;
      x.id = id;
      x.observer = l.observer;
      x.synced = l.phase == Impl::LearnerPhase::kSynced;
      x.acked = l.acked;
      if (!l.observer) {
        auto it = std::upper_bound(z.history.begin(), z.history.end(), l.acked,
                                   [](int64_t v, const Entry& e) { return v < e.zxid; });
        x.lag = z.history.end() - it;
      }
      s.learners.push_back(x);
    }
  }
  return s;
}

}  // namespace corral::zab
