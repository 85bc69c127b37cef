// Zab's internals, shared by the files that implement its phases: zab.cpp (history, commits,
// the public API), election.cpp (fast leader election), leader.cpp (discovery, sync and
// broadcast as leader) and learner.cpp (the same as follower or observer).
#pragma once

#include <cstdio>
#include <deque>
#include <map>
#include <set>
#include <string>

#include "zab/messages.h"
#include "zab/zab.h"

namespace corral::zab {

struct Vote {
  int64_t leader = 0;
  int64_t epoch = 0;  // the proposed leader's current epoch
  int64_t zxid = 0;   // the proposed leader's last logged zxid
  bool operator==(const Vote&) const = default;
};

// Higher epoch, then higher zxid, then higher id: the server whose history holds every
// committed txn wins.
inline bool betterVote(const Vote& a, const Vote& b) {
  if (a.epoch != b.epoch) return a.epoch > b.epoch;
  if (a.zxid != b.zxid) return a.zxid > b.zxid;
  return a.leader > b.leader;
}

inline std::string hexZxid(int64_t zxid) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(zxid));
  return buf;
}

struct Entry {
  int64_t zxid;
  std::string record;
};

struct Zab::Impl {
  // --- a learner as the leader sees it ---
  enum class LearnerPhase { kInfo, kEpochAcked, kSyncing, kSynced };
  struct Learner {
    bool observer = false;
    LearnerPhase phase = LearnerPhase::kInfo;
    int64_t accepted_epoch = 0;
    int64_t current_epoch = 0;
    int64_t last_zxid = 0;
    int64_t acked = 0;  // durable up to (after its NEWLEADER ack)
    int64_t last_heard_ms = 0;
    int64_t since_ms = 0;  // its FOLLOWERINFO: it must be synced within init_limit
    bool newleader_acked = false;
    int64_t offered_epoch = 0;  // the epoch in the LEADERINFO it got (its NEWLEADER's)
    int64_t nonce = 0;  // echoes the learner's FOLLOWERINFO, so stale handshakes are ignored
  };
  enum class LeaderPhase { kDiscovery, kSync, kBroadcast, kNewEpoch };
  enum class LearnerState { kInfoSent, kEpochAcked, kSyncing, kSynced };

  ZabOptions opt;
  ZabOutput* out;
  std::set<int64_t> voters;
  std::set<int64_t> observers;
  bool self_observer = false;
  int64_t now = 0;

  // --- durable state and the log ---
  HardState hs;
  std::deque<Entry> history;  // records above base_zxid, the newest last
  int64_t base_zxid = 0;      // everything up to here is applied (and trimmed from history)
  int64_t last_logged = 0;
  int64_t durable = 0;
  int64_t committed = 0;
  int64_t applied = 0;

  Role role = Role::kLooking;
  bool is_serving = false;
  int64_t leader_id = 0;
  int64_t epoch = 0;  // the epoch being led / followed

  // --- election ---
  int64_t round = 0;
  Vote vote;
  std::map<int64_t, Vote> votes_this_round;    // voters' votes in our round
  std::map<int64_t, Vote> outside_election;    // servers already following or leading
  std::map<int64_t, VoteState> outside_state;  // what each of them said it is
  int64_t finalize_at = -1;
  int64_t next_vote_resend = 0;
  std::map<int64_t, Msg> early_infos;  // FOLLOWERINFO that came while still looking

  // --- leader ---
  LeaderPhase leader_phase = LeaderPhase::kDiscovery;
  std::map<int64_t, Learner> learners;
  int64_t new_epoch = 0;
  int64_t phase_deadline = 0;  // discovery/sync (or a learner's sync) must end by then
  int64_t next_counter = 1;
  int64_t next_ping = 0;
  int64_t pending_epoch = 0;  // kNewEpoch: the epoch moved to
  std::set<int64_t> new_epoch_acks;
  int64_t barrier_seq = 0;
  std::map<int64_t, std::set<int64_t>> barrier_echoes;  // barrier -> followers that echoed
  int64_t sync_point = 0;  // the leader's last zxid when sync began: its initial history

  // --- learner ---
  LearnerState learner_state = LearnerState::kInfoSent;
  int64_t leader_epoch = 0;  // from LEADERINFO
  int64_t last_heard_leader = 0;
  int64_t learner_since = 0;    // when this learner chose its leader: sync must end in init_limit
  int64_t newleader_zxid = -1;  // a NEWLEADER/NEWEPOCH ack owed once durable reaches it
  uint8_t pending_ack_kind = 0;
  int64_t pending_ack_epoch = 0;
  bool acks_enabled = false;  // after the NEWLEADER ack a follower acks every sync
  int64_t last_acked = 0;

  Impl(ZabOptions o, ZabOutput* k);

  // zab.cpp
  void log(corral_log_level level, const std::string& text);
  void sendMsg(int64_t peer, MsgType type, int64_t msg_epoch, int64_t zxid,
               std::string_view payload = {}, int64_t a = 0, int64_t b = 0, uint8_t flags = 0);
  bool isVoter(int64_t id) const { return voters.count(id) != 0; }
  bool isMember(int64_t id) const { return voters.count(id) != 0 || observers.count(id) != 0; }
  size_t quorum() const { return voters.size() / 2 + 1; }
  bool appendRecord(int64_t zxid, std::string record);
  const Entry* findEntry(int64_t zxid) const;
  void applyUpTo(int64_t zxid);
  void trimHistory();
  void setRole(Role r, int64_t leader, int64_t e, bool serving);
  bool persistHardState();

  // election.cpp
  void enterLooking(const std::string& why);
  Vote selfVote() const;
  void broadcastVote();
  void sendVote(int64_t peer);
  void onVote(int64_t peer, const Msg& m);
  void checkElection();
  void decide(const Vote& v);
  void electionTimer();

  // leader.cpp
  void becomeLeader();
  void onFollowerInfo(int64_t peer, const Msg& m);
  void offerEpoch(int64_t peer, Learner& l);
  void onAckEpoch(int64_t peer, const Msg& m);
  void syncLearner(int64_t peer, Learner& l);
  void onLearnerAck(int64_t peer, const Msg& m);
  void establish();
  void tryCommit();
  void leaderTimer();
  void dropLearner(int64_t peer, const std::string& why);
  void startNewEpoch();
  int64_t raiseBarrier();
  void onBarrierEcho(int64_t peer, int64_t id);
  void checkBarrier(int64_t id);
  void finishNewEpoch();
  void onLeaderMessage(int64_t peer, const Msg& m);

  // learner.cpp
  void becomeLearner(int64_t leader);
  void onLearnerMessage(int64_t peer, const Msg& m);
  void learnerDurable();
  bool coverAckedEpoch(int64_t epoch_needed);
  void learnerTimer();
};

}  // namespace corral::zab
