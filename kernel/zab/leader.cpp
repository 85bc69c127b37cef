// The leader's side: discovery (a new epoch from a quorum's accepted epochs), sync (DIFF,
// TRUNC or SNAP per learner, then NEWLEADER), establishment on a quorum of NEWLEADER acks,
// broadcast with cumulative acks, observers' INFORMs, failure detection and the move to a
// new epoch when the zxid counter runs out.
#include <algorithm>

#include "zab/zab_impl.h"

namespace corral::zab {
namespace {
constexpr uint8_t kAckNewLeader = 1;
constexpr uint8_t kAckNewEpoch = 2;
}  // namespace

void Zab::Impl::becomeLeader() {
  log(CORRAL_LOG_INFO, "elected leader in round " + std::to_string(round) + "; discovering");
  setRole(Role::kLeading, opt.self_id, hs.current_epoch, false);
  leader_phase = LeaderPhase::kDiscovery;
  learners.clear();
  new_epoch = 0;
  phase_deadline = now + opt.init_limit * opt.tick_ms;
  next_ping = now;
  std::map<int64_t, Msg> early;
  early.swap(early_infos);
  for (auto& [peer, m] : early) onFollowerInfo(peer, m);
  if (new_epoch == 0) onFollowerInfo(0, Msg{});  // a quorum of one: choose the epoch now
}

// peer 0: no new learner, just check whether a quorum has spoken.
void Zab::Impl::onFollowerInfo(int64_t peer, const Msg& m) {
  if (peer != 0) {
    Learner l;
    l.observer = !isVoter(peer);
    l.accepted_epoch = m.epoch;
    l.last_zxid = m.zxid;
    l.last_heard_ms = now;
    l.since_ms = now;
    l.nonce = m.b;
    learners[peer] = l;
  }
  if (new_epoch == 0) {
    size_t known = 1;
    int64_t highest = hs.accepted_epoch;
    for (const auto& [id, l] : learners) {
      if (l.observer) continue;
      ++known;
      highest = std::max(highest, l.accepted_epoch);
    }
    if (known < quorum()) return;
    hs.accepted_epoch = highest + 1;
    if (!persistHardState()) return enterLooking("cannot save the epochs");
    new_epoch = hs.accepted_epoch;
    for (auto& [id, l] : learners)
      if (!l.observer) offerEpoch(id, l);
    onAckEpoch(0, Msg{});  // a quorum of one needs no acks
    return;
  }
  if (peer == 0) return;
  // Observers wait for an established epoch; everyone waits while the epoch moves on.
  Learner& l = learners[peer];
  if (leader_phase == LeaderPhase::kNewEpoch) return;
  if (!l.observer || leader_phase == LeaderPhase::kBroadcast) offerEpoch(peer, l);
}

void Zab::Impl::offerEpoch(int64_t peer, Learner& l) {
  l.offered_epoch = new_epoch;
  sendMsg(peer, MsgType::kLeaderInfo, new_epoch, 0, {}, 0, l.nonce);
}

void Zab::Impl::onAckEpoch(int64_t peer, const Msg& m) {
  if (peer != 0) {
    auto it = learners.find(peer);
    if (it == learners.end() || it->second.nonce != m.b || m.a != it->second.offered_epoch ||
        it->second.phase != LearnerPhase::kInfo)
      return;
    it->second.phase = LearnerPhase::kEpochAcked;
    it->second.current_epoch = m.epoch;
    it->second.last_zxid = m.zxid;
    if (leader_phase != LeaderPhase::kDiscovery) {
      syncLearner(peer, it->second);
      return;
    }
  }
  if (leader_phase != LeaderPhase::kDiscovery) return;
  size_t acked = 1;
  for (const auto& [id, l] : learners)
    if (!l.observer && l.phase == LearnerPhase::kEpochAcked) ++acked;
  if (acked < quorum()) return;
  // The leader must hold the newest history of the quorum, else a committed txn could be
  // missing from it. Election should have ensured it; a stale vote may not have.
  for (const auto& [id, l] : learners) {
    if (l.observer || l.phase != LearnerPhase::kEpochAcked) continue;
    bool newer = l.current_epoch > hs.current_epoch ||
                 (l.current_epoch == hs.current_epoch && l.last_zxid > last_logged);
    if (newer)
      return enterLooking("server " + std::to_string(id) + " has a newer history (epoch " +
                          std::to_string(l.current_epoch) + ", zxid " +
                          std::to_string(l.last_zxid) + ")");
  }
  leader_phase = LeaderPhase::kSync;
  sync_point = last_logged;
  out->requestSync();
  for (auto& [id, l] : learners)
    if (!l.observer && l.phase == LearnerPhase::kEpochAcked) syncLearner(id, l);
  tryCommit();
}

void Zab::Impl::syncLearner(int64_t peer, Learner& l) {
  // Observers learn only what is committed; their INFORMs continue from there.
  bool established =
      leader_phase == LeaderPhase::kBroadcast || leader_phase == LeaderPhase::kNewEpoch;
  int64_t limit = l.observer ? committed : last_logged;
  int64_t from = l.last_zxid;
  bool known = from == base_zxid || findEntry(from) != nullptr;
  if (from == limit || (from < limit && from >= base_zxid && known)) {
    sendMsg(peer, MsgType::kDiff, l.offered_epoch, from);
  } else if (from > limit && (known || from > last_logged)) {
    // Its extra records were never committed (we hold every committed txn): drop them.
    sendMsg(peer, MsgType::kTrunc, l.offered_epoch, limit);
    from = limit;
  } else {
    from = applied;
    sendMsg(peer, MsgType::kSnap, l.offered_epoch, from, out->snapshot());
  }
  auto it = std::upper_bound(history.begin(), history.end(), from,
                             [](int64_t z, const Entry& e) { return z < e.zxid; });
  int64_t previous = from;
  for (; it != history.end() && it->zxid <= limit; ++it) {
    sendMsg(peer, MsgType::kProposal, l.offered_epoch, it->zxid, it->record, previous);
    previous = it->zxid;
  }
  if (established && std::min(committed, limit) > from)
    sendMsg(peer, MsgType::kCommit, epoch, std::min(committed, limit));
  sendMsg(peer, MsgType::kNewLeader, l.offered_epoch, limit);
  l.phase = LearnerPhase::kSyncing;
  l.acked = 0;
  l.newleader_acked = false;
}

void Zab::Impl::onLearnerAck(int64_t peer, const Msg& m) {
  auto it = learners.find(peer);
  if (it == learners.end()) return;
  Learner& l = it->second;
  if (m.flags == kAckNewLeader) {
    if (l.phase != LearnerPhase::kSyncing || l.newleader_acked) return;
    l.newleader_acked = true;
    l.acked = std::max(l.acked, m.zxid);
    if (leader_phase == LeaderPhase::kSync) {
      tryCommit();
    } else {
      l.phase = LearnerPhase::kSynced;
      sendMsg(peer, MsgType::kUpToDate, epoch, l.observer ? committed : committed);
      tryCommit();
    }
    return;
  }
  if (m.flags == kAckNewEpoch) {
    if (leader_phase == LeaderPhase::kNewEpoch && m.epoch == pending_epoch && !l.observer) {
      new_epoch_acks.insert(peer);
      l.acked = std::max(l.acked, m.zxid);
      finishNewEpoch();
    }
    return;
  }
  if (l.observer || !l.newleader_acked) return;
  if (m.zxid > l.acked) {
    l.acked = std::min(m.zxid, last_logged);
    tryCommit();
  }
}

void Zab::Impl::establish() {
  hs.current_epoch = new_epoch;
  if (!persistHardState()) return enterLooking("cannot save the epochs");
  epoch = new_epoch;
  next_counter = 1;
  leader_phase = LeaderPhase::kBroadcast;
  committed = std::max(committed, sync_point);
  applyUpTo(committed);
  std::string members = std::to_string(opt.self_id);
  for (auto& [id, l] : learners) {
    if (l.newleader_acked) {
      l.phase = LearnerPhase::kSynced;
      sendMsg(id, MsgType::kUpToDate, epoch, committed);
      if (!l.observer) members += "," + std::to_string(id);
    } else if (l.observer && l.phase == LearnerPhase::kInfo) {
      offerEpoch(id, l);
    }
  }
  log(CORRAL_LOG_INFO, "leading epoch " + std::to_string(epoch) + " with " + members +
                           "; history up to zxid 0x" + hexZxid(committed) + " committed");
  setRole(Role::kLeading, opt.self_id, epoch, true);
  out->proposalsResumed();
}

void Zab::Impl::tryCommit() {
  if (role != Role::kLeading) return;
  if (leader_phase == LeaderPhase::kDiscovery) return;
  if (leader_phase == LeaderPhase::kSync) {
    size_t acked = durable >= sync_point ? 1 : 0;
    for (const auto& [id, l] : learners)
      if (!l.observer && l.newleader_acked) ++acked;
    if (acked >= quorum()) establish();
    return;
  }
  std::vector<int64_t> held{durable};
  for (const auto& [id, l] : learners)
    if (!l.observer && l.newleader_acked) held.push_back(l.acked);
  if (held.size() < quorum()) return;
  std::nth_element(held.begin(), held.begin() + (quorum() - 1), held.end(),
                   std::greater<int64_t>());
  int64_t q = std::min(held[quorum() - 1], last_logged);
  if (q <= committed) return;
  int64_t previous = committed;
  committed = q;
  std::string commit = encodeMsg(MsgType::kCommit, epoch, q, {});
  bool any_observer = false;
  for (const auto& [id, l] : learners) {
    if (l.phase < LearnerPhase::kSyncing) continue;
    if (l.observer) {
      any_observer = true;
    } else {
      out->send(id, commit);
    }
  }
  if (any_observer) {
    auto it = std::upper_bound(history.begin(), history.end(), previous,
                               [](int64_t z, const Entry& e) { return z < e.zxid; });
    for (; it != history.end() && it->zxid <= q; ++it) {
      int64_t before = it == history.begin() ? base_zxid : std::prev(it)->zxid;
      std::string inform = encodeMsg(MsgType::kInform, epoch, it->zxid, it->record, before);
      for (const auto& [id, l] : learners)
        if (l.observer && l.phase >= LearnerPhase::kSyncing) out->send(id, inform);
    }
  }
  applyUpTo(q);
}

void Zab::Impl::dropLearner(int64_t peer, const std::string& why) {
  log(CORRAL_LOG_WARN, "dropping learner " + std::to_string(peer) + ": " + why);
  learners.erase(peer);
  new_epoch_acks.erase(peer);
}

void Zab::Impl::leaderTimer() {
  if ((leader_phase != LeaderPhase::kBroadcast) && now > phase_deadline)
    return enterLooking("no quorum followed within init_limit");
  if (now >= next_ping) {
    next_ping = now + std::max<int64_t>(1, opt.tick_ms / 2);
    std::string ping = encodeMsg(MsgType::kPing, epoch, committed, {});
    for (const auto& [id, l] : learners) out->send(id, ping);
  }
  std::vector<std::pair<int64_t, std::string>> stale;
  for (const auto& [id, l] : learners) {
    int64_t limit = (l.phase == LearnerPhase::kSynced ? opt.sync_limit : opt.init_limit);
    if (now - l.last_heard_ms > limit * opt.tick_ms)
      stale.emplace_back(id, "silent for " + std::to_string(now - l.last_heard_ms) + " ms");
    else if (l.phase != LearnerPhase::kSynced && now - l.since_ms > opt.init_limit * opt.tick_ms)
      stale.emplace_back(id, "not in sync after " + std::to_string(now - l.since_ms) + " ms");
  }
  for (const auto& [id, why] : stale) dropLearner(id, why);
  if (leader_phase == LeaderPhase::kBroadcast || leader_phase == LeaderPhase::kNewEpoch) {
    size_t synced = 1;
    for (const auto& [id, l] : learners)
      if (!l.observer && l.phase == LearnerPhase::kSynced) ++synced;
    if (synced < quorum()) enterLooking("lost the quorum");
  }
}

// A barrier confirms, by a round trip to a quorum after it was raised, that this server still
// leads: no other leader can have committed anything a sync must wait for.
int64_t Zab::Impl::raiseBarrier() {
  int64_t id = ++barrier_seq;
  barrier_echoes[id];
  std::string ping = encodeMsg(MsgType::kPing, epoch, committed, {}, id);
  for (const auto& [peer, l] : learners)
    if (!l.observer && l.phase == LearnerPhase::kSynced) out->send(peer, ping);
  checkBarrier(id);
  return id;
}

void Zab::Impl::onBarrierEcho(int64_t peer, int64_t id) {
  auto it = barrier_echoes.find(id);
  if (it == barrier_echoes.end()) return;
  it->second.insert(peer);
  checkBarrier(id);
}

void Zab::Impl::checkBarrier(int64_t id) {
  auto it = barrier_echoes.find(id);
  if (it == barrier_echoes.end() || 1 + it->second.size() < quorum()) return;
  // Echoes come back in order on each link: every earlier barrier has passed too.
  barrier_echoes.erase(barrier_echoes.begin(), std::next(it));
  out->barrierPassed(id);
}

void Zab::Impl::startNewEpoch() {
  pending_epoch = std::max(epoch, hs.accepted_epoch) + 1;
  hs.accepted_epoch = pending_epoch;
  if (!persistHardState()) return enterLooking("cannot save the epochs");
  log(CORRAL_LOG_INFO, "zxid counter of epoch " + std::to_string(epoch) +
                           " exhausted; moving the quorum to epoch " +
                           std::to_string(pending_epoch));
  leader_phase = LeaderPhase::kNewEpoch;
  phase_deadline = now + opt.init_limit * opt.tick_ms;
  new_epoch_acks.clear();
  for (const auto& [id, l] : learners)
    if (!l.observer && l.phase >= LearnerPhase::kSyncing)
      sendMsg(id, MsgType::kNewEpoch, pending_epoch, last_logged);
  finishNewEpoch();
}

void Zab::Impl::finishNewEpoch() {
  if (leader_phase != LeaderPhase::kNewEpoch || durable < last_logged) return;
  size_t acked = 1;
  for (int64_t id : new_epoch_acks)
    if (isVoter(id)) ++acked;
  if (acked < quorum()) return;
  hs.current_epoch = pending_epoch;
  if (!persistHardState()) return enterLooking("cannot save the epochs");
  epoch = pending_epoch;
  new_epoch = pending_epoch;
  next_counter = 1;
  leader_phase = LeaderPhase::kBroadcast;
  log(CORRAL_LOG_INFO, "leading epoch " + std::to_string(epoch));
  setRole(Role::kLeading, opt.self_id, epoch, true);
  for (auto& [id, l] : learners)
    if (l.phase == LearnerPhase::kInfo) offerEpoch(id, l);
  tryCommit();
  out->proposalsResumed();
}

void Zab::Impl::onLeaderMessage(int64_t peer, const Msg& m) {
  if (m.type == MsgType::kFollowerInfo) return onFollowerInfo(peer, m);
  auto it = learners.find(peer);
  if (it == learners.end()) return;
  it->second.last_heard_ms = now;
  switch (m.type) {
    case MsgType::kAckEpoch:
      onAckEpoch(peer, m);
      break;
    case MsgType::kAck:
      onLearnerAck(peer, m);
      break;
    case MsgType::kPing:
      if (m.a > 0 && it->second.phase == LearnerPhase::kSynced && !it->second.observer)
        onBarrierEcho(peer, m.a);
      [[fallthrough]];
    case MsgType::kApp:
      if (it->second.phase == LearnerPhase::kSynced && !m.payload.empty())
        out->onAppMessage(peer, m.payload);
      break;
    default:
      break;
  }
}

}  // namespace corral::zab
