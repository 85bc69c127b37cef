// Fast leader election. A looking voter proposes itself, adopts any better vote it hears
// (higher epoch, zxid, id) and re-broadcasts; a vote backed by a quorum of voters decides,
// at once when every voter has spoken, else after a short wait for a better vote. A server
// that hears a quorum already following a leader that says it leads joins that leader.
//
// Election only has to be live: safety comes from discovery, where the new leader needs a
// quorum to accept its epoch and gives up if any of them has a newer history than its own.
#include "zab/zab_impl.h"

namespace corral::zab {

Vote Zab::Impl::selfVote() const {
  return Vote{opt.self_id, hs.current_epoch, last_logged};
}

void Zab::Impl::enterLooking(const std::string& why) {
  if (role != Role::kLooking || round == 0)
    log(CORRAL_LOG_INFO, "looking for a leader (" + why + ")");
  learners.clear();
  leader_phase = LeaderPhase::kDiscovery;
  new_epoch_acks.clear();
  barrier_echoes.clear();
  pending_epoch = 0;
  newleader_zxid = -1;
  acks_enabled = false;
  last_acked = 0;
  early_infos.clear();
  setRole(Role::kLooking, 0, 0, false);
  ++round;
  vote = selfVote();
  votes_this_round.clear();
  outside_election.clear();
  outside_state.clear();
  finalize_at = -1;
  if (!self_observer) votes_this_round[opt.self_id] = vote;
  broadcastVote();
  next_vote_resend = now + opt.tick_ms;
  checkElection();
}

void Zab::Impl::sendVote(int64_t peer) {
  VoteState state = VoteState::kLooking;
  if (role == Role::kFollowing) state = VoteState::kFollowing;
  if (role == Role::kLeading) state = VoteState::kLeading;
  if (role == Role::kObserving) state = VoteState::kObserving;
  sendMsg(peer, MsgType::kVote, vote.epoch, vote.zxid, {}, vote.leader, round,
          static_cast<uint8_t>(state));
}

void Zab::Impl::broadcastVote() {
  for (int64_t id : voters)
    if (id != opt.self_id) sendVote(id);
  for (int64_t id : observers)
    if (id != opt.self_id) sendVote(id);
}

void Zab::Impl::onVote(int64_t peer, const Msg& m) {
  Vote n{m.a, m.epoch, m.zxid};
  int64_t their_round = m.b;
  auto state = static_cast<VoteState>(m.flags);
  if (role != Role::kLooking) {
    // Tell a looking server whom we follow, so it can join.
    if (state == VoteState::kLooking) sendVote(peer);
    return;
  }
  if (!isVoter(peer)) return;  // observers never vote; they learn the leader from voters
  if (state == VoteState::kLooking) {
    if (self_observer) return;
    if (their_round > round) {
      round = their_round;
      votes_this_round.clear();
      vote = betterVote(n, selfVote()) ? n : selfVote();
      votes_this_round[opt.self_id] = vote;
      finalize_at = -1;
      broadcastVote();
    } else if (their_round < round) {
      sendVote(peer);  // bring it to our round
      return;
    } else if (betterVote(n, vote)) {
      vote = n;
      votes_this_round[opt.self_id] = vote;
      finalize_at = -1;
      broadcastVote();
    } else if (!(n == vote)) {
      // It proposes a worse vote in our round: it has not heard ours (it was still following
      // when we sent it, and answered as a follower). Without this it would only hear it at
      // the next resend, a tick later: a leader's death then took 250 ms instead of 50.
      sendVote(peer);
    }
    votes_this_round[peer] = n;
    checkElection();
    return;
  }
  if (state == VoteState::kObserving) return;
  if (their_round == round && !self_observer) votes_this_round[peer] = n;
  outside_election[peer] = n;
  outside_state[peer] = state;
  // A leader already runs: join it if a quorum (counting us) stands behind it and it says
  // it leads.
  int64_t leader = n.leader;
  if (leader == opt.self_id || !isVoter(leader)) return;
  auto claims = outside_state.find(leader);
  if (claims == outside_state.end() || claims->second != VoteState::kLeading) return;
  size_t support = self_observer ? 0 : 1;
  for (const auto& [id, v] : outside_election)
    if (isVoter(id) && v.leader == leader) ++support;
  if (support >= quorum()) {
    round = std::max(round, their_round);
    decide(n);
  }
}

void Zab::Impl::checkElection() {
  if (role != Role::kLooking || self_observer) return;
  size_t support = 0;
  for (const auto& [id, v] : votes_this_round)
    if (isVoter(id) && v == vote) ++support;
  if (support < quorum()) {
    finalize_at = -1;
    return;
  }
  if (votes_this_round.size() >= voters.size()) {
    decide(vote);
  } else if (finalize_at < 0) {
    finalize_at = now + opt.finalize_wait_ms;
  } else if (now >= finalize_at) {
    decide(vote);
  }
}

void Zab::Impl::electionTimer() {
  if (now >= next_vote_resend) {
    broadcastVote();
    next_vote_resend = now + opt.tick_ms;
  }
  checkElection();
}

void Zab::Impl::decide(const Vote& v) {
  finalize_at = -1;
  vote = v;
  if (v.leader == opt.self_id && !self_observer) {
    becomeLeader();
  } else {
    becomeLearner(v.leader);
  }
}

}  // namespace corral::zab
