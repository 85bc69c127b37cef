// The learner's side (follower or observer): FOLLOWERINFO -> accept the leader's epoch ->
// take its sync (DIFF / TRUNC / SNAP, then proposals) -> once the sync is durable, adopt the
// epoch and ack NEWLEADER -> UPTODATE: serve. Then log proposals, ack what is durable, apply
// what is committed. Anything out of order (a gap, an epoch we cannot accept, silence for
// too long) sends it back to election, from where it rejoins with a fresh sync.
#include <algorithm>

#include "zab/zab_impl.h"

namespace corral::zab {
namespace {
constexpr uint8_t kAckNewLeader = 1;
constexpr uint8_t kAckNewEpoch = 2;
}  // namespace

void Zab::Impl::becomeLearner(int64_t leader) {
  log(CORRAL_LOG_INFO,
      "following leader " + std::to_string(leader) + " (round " + std::to_string(round) + ")");
  setRole(self_observer ? Role::kObserving : Role::kFollowing, leader, 0, false);
  learner_state = LearnerState::kInfoSent;
  leader_epoch = 0;
  last_heard_leader = now;
  learner_since = now;
  newleader_zxid = -1;
  acks_enabled = false;
  last_acked = 0;
  sendMsg(leader, MsgType::kFollowerInfo, hs.accepted_epoch, last_logged, {}, 0, round,
          self_observer ? 1 : 0);
}

void Zab::Impl::onLearnerMessage(int64_t peer, const Msg& m) {
  last_heard_leader = now;
  bool in_sync = learner_state == LearnerState::kSyncing || learner_state == LearnerState::kSynced;
  switch (m.type) {
    case MsgType::kLeaderInfo: {
      // A second offer (the leader moved to a new epoch meanwhile) replaces the first.
      bool offered =
          learner_state == LearnerState::kInfoSent || learner_state == LearnerState::kEpochAcked;
      if (!offered || m.b != round) return;
      if (m.epoch < hs.accepted_epoch)
        return enterLooking("leader " + std::to_string(peer) + " offers epoch " +
                            std::to_string(m.epoch) + ", older than the accepted epoch " +
                            std::to_string(hs.accepted_epoch));
      if (m.epoch > hs.accepted_epoch) {
        hs.accepted_epoch = m.epoch;
        if (!persistHardState()) return enterLooking("cannot save the epochs");
      }
      leader_epoch = m.epoch;
      learner_state = LearnerState::kEpochAcked;
      sendMsg(peer, MsgType::kAckEpoch, hs.current_epoch, last_logged, {}, leader_epoch, round);
      return;
    }
    case MsgType::kDiff:
      if (learner_state == LearnerState::kEpochAcked) learner_state = LearnerState::kSyncing;
      return;
    case MsgType::kTrunc: {
      if (learner_state != LearnerState::kEpochAcked) return;
      int64_t to = m.zxid;
      if (to < committed)
        return enterLooking("leader asks to truncate below the committed zxid 0x" +
                            hexZxid(committed));
      if (!out->truncateLog(to)) return enterLooking("cannot truncate the log");
      while (!history.empty() && history.back().zxid > to) history.pop_back();
      log(CORRAL_LOG_INFO, "truncated the log after zxid 0x" + hexZxid(to) + " (was 0x" +
                               hexZxid(last_logged) + ")");
      last_logged = std::max(to, base_zxid);
      durable = std::min(durable, last_logged);
      learner_state = LearnerState::kSyncing;
      return;
    }
    case MsgType::kSnap: {
      if (learner_state != LearnerState::kEpochAcked) return;
      if (!out->installSnapshot(m.zxid, m.payload))
        return enterLooking("cannot install the leader's snapshot");
      log(CORRAL_LOG_INFO, "installed the leader's snapshot at zxid 0x" + hexZxid(m.zxid));
      history.clear();
      base_zxid = applied = committed = last_logged = durable = m.zxid;
      learner_state = LearnerState::kSyncing;
      return;
    }
    case MsgType::kProposal:
    case MsgType::kInform: {
      if (!in_sync) return;
      if (m.zxid > last_logged) {
        // Each record names its predecessor: a lost message (fault injection, a broken
        // link not yet reported) shows as a gap, and a fresh sync repairs it.
        if (m.a != last_logged || !followsZxid(m.zxid, last_logged))
          return enterLooking("gap in the leader's stream: 0x" + hexZxid(m.zxid) + " (after 0x" +
                              hexZxid(m.a) + ") follows 0x" + hexZxid(last_logged));
        if (!appendRecord(m.zxid, m.payload))
          return enterLooking("storage refused record 0x" + hexZxid(m.zxid));
        out->requestSync();
      }
      if (m.type == MsgType::kInform) {
        committed = std::max(committed, std::min(m.zxid, last_logged));
        applyUpTo(committed);
      }
      return;
    }
    case MsgType::kCommit:
      if (!in_sync) return;
      committed = std::max(committed, std::min(m.zxid, last_logged));
      applyUpTo(committed);
      return;
    case MsgType::kNewLeader:
      if (learner_state != LearnerState::kSyncing || m.epoch != leader_epoch) return;
      if (m.zxid != last_logged)
        return enterLooking("sync ended at 0x" + hexZxid(m.zxid) + " but the log at 0x" +
                            hexZxid(last_logged));
      // Adopt the epoch only once the whole sync is durable: a current epoch ahead of the
      // log would make this server's history look newer than it is.
      newleader_zxid = m.zxid;
      pending_ack_kind = kAckNewLeader;
      pending_ack_epoch = m.epoch;
      out->requestSync();
      learnerDurable();
      return;
    case MsgType::kNewEpoch:
      if (learner_state != LearnerState::kSynced || self_observer) return;
      if (m.epoch <= hs.accepted_epoch)
        return enterLooking("leader moves to epoch " + std::to_string(m.epoch) + " but epoch " +
                            std::to_string(hs.accepted_epoch) + " was accepted");
      if (m.zxid != last_logged)
        return enterLooking("new epoch from 0x" + hexZxid(m.zxid) + " but the log at 0x" +
                            hexZxid(last_logged));
      hs.accepted_epoch = m.epoch;
      if (!persistHardState()) return enterLooking("cannot save the epochs");
      newleader_zxid = m.zxid;
      pending_ack_kind = kAckNewEpoch;
      pending_ack_epoch = m.epoch;
      learnerDurable();
      return;
    case MsgType::kUpToDate:
      if (learner_state != LearnerState::kSyncing || !acks_enabled) return;
      learner_state = LearnerState::kSynced;
      committed = std::max(committed, std::min(m.zxid, last_logged));
      applyUpTo(committed);
      log(CORRAL_LOG_INFO, std::string(self_observer ? "observing" : "following") + " leader " +
                               std::to_string(peer) + " in epoch " + std::to_string(leader_epoch) +
                               " from zxid 0x" + hexZxid(last_logged));
      setRole(role, leader_id, leader_epoch, true);
      return;
    case MsgType::kPing:
      // Echo the leader's barrier number (a): it counts who still follows it.
      sendMsg(peer, MsgType::kPing, leader_epoch, last_logged,
              learner_state == LearnerState::kSynced ? out->pingPayload() : std::string(), m.a);
      return;
    case MsgType::kApp:
      if (learner_state == LearnerState::kSynced) out->onAppMessage(peer, m.payload);
      return;
    default:
      return;
  }
}

// An ack says "my log holds your history up to here". Before sending one, the epoch this
// server reports in elections must cover every record acked: a server that acked txns of
// epoch e while still claiming an older current epoch could lose an election to a server
// that lacks them, and a committed txn would be truncated. Records of a newer epoch reach a
// follower that missed the NEWEPOCH (it was still syncing when the leader moved on).
bool Zab::Impl::coverAckedEpoch(int64_t epoch_needed) {
  if (epoch_needed <= hs.current_epoch) return true;
  if (hs.accepted_epoch > epoch_needed) {
    enterLooking("records of epoch " + std::to_string(epoch_needed) + " but epoch " +
                 std::to_string(hs.accepted_epoch) + " was promised to another leader");
    return false;
  }
  hs.accepted_epoch = epoch_needed;
  hs.current_epoch = epoch_needed;
  if (!persistHardState()) {
    enterLooking("cannot save the epochs");
    return false;
  }
  return true;
}

void Zab::Impl::learnerDurable() {
  if (newleader_zxid >= 0 && durable >= newleader_zxid) {
    if (pending_ack_epoch > hs.current_epoch) hs.current_epoch = pending_ack_epoch;
    if (!persistHardState()) return enterLooking("cannot save the epochs");
    if (!coverAckedEpoch(epochOf(durable))) return;
    sendMsg(leader_id, MsgType::kAck, pending_ack_epoch, durable, {}, 0, 0, pending_ack_kind);
    if (pending_ack_kind == kAckNewEpoch) {
      leader_epoch = pending_ack_epoch;
      setRole(role, leader_id, leader_epoch, is_serving);
    }
    newleader_zxid = -1;
    acks_enabled = true;
    last_acked = durable;
    return;
  }
  if (acks_enabled && !self_observer && newleader_zxid < 0 && durable > last_acked) {
    if (!coverAckedEpoch(epochOf(durable))) return;
    sendMsg(leader_id, MsgType::kAck, leader_epoch, durable);
    last_acked = durable;
  }
}

void Zab::Impl::learnerTimer() {
  if (learner_state != LearnerState::kSynced && now - learner_since > opt.init_limit * opt.tick_ms)
    return enterLooking("not in sync with leader " + std::to_string(leader_id) + " after " +
                        std::to_string(now - learner_since) + " ms");
  int64_t limit = learner_state == LearnerState::kSynced ? opt.sync_limit : opt.init_limit;
  if (now - last_heard_leader > limit * opt.tick_ms)
    enterLooking("no word from leader " + std::to_string(leader_id) + " for " +
                 std::to_string(now - last_heard_leader) + " ms");
}

}  // namespace corral::zab
