// Zab: one server's part of ZooKeeper's atomic broadcast — fast leader election, discovery
// (a new epoch from a quorum), synchronisation (DIFF / TRUNC / SNAP per learner), broadcast
// (proposal -> durable on a quorum -> commit, in zxid order) and observers (INFORM).
//
// Transport-agnostic and deterministic like the rest of the kernel: every input carries the
// time, every output goes through ZabOutput, and txn records are opaque bytes. The server
// kernel (kernel/server) feeds it peer messages and storage reports and turns commits into
// state changes; the simulation tests feed it a simulated network, disk and clock.
//
// Invariants it keeps (DESIGN.md "Replication"):
//  - the state machine only ever receives committed txns, in zxid order: a server's log may
//    hold proposals that are later truncated, its applied state never does;
//  - a follower acks a zxid only once every record up to it is durable in its log, and acks
//    are cumulative ("durable up to z"), so one ack covers a whole group commit;
//  - a leader commits only what a quorum of voters (itself included) holds durably, in its
//    own epoch, and its initial history once a quorum acked NEWLEADER;
//  - an epoch is accepted at most once by a server (accepted_epoch strictly rises), so two
//    leaders never establish the same epoch.
#pragma once

#include <corral/plugin_abi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace corral::zab {

enum class Role { kLooking, kFollowing, kLeading, kObserving };
const char* roleName(Role role);

inline int64_t epochOf(int64_t zxid) {
  return static_cast<int64_t>(static_cast<uint64_t>(zxid) >> 32);
}
inline int64_t counterOf(int64_t zxid) {
  return zxid & 0xffffffffLL;
}
inline int64_t makeZxid(int64_t epoch, int64_t counter) {
  return static_cast<int64_t>((static_cast<uint64_t>(epoch) << 32) |
                              static_cast<uint64_t>(counter));
}

// Whether zxid may come right after last in a history: the next counter of the same epoch,
// or the first counter of a later epoch. Anything else means lost txns.
inline bool followsZxid(int64_t zxid, int64_t last) {
  if (epochOf(zxid) == epochOf(last)) return counterOf(zxid) == counterOf(last) + 1;
  return epochOf(zxid) > epochOf(last) && counterOf(zxid) == 1;
}

struct HardState {
  int64_t accepted_epoch = 0;  // the newest epoch this server promised to follow
  int64_t current_epoch = 0;   // the newest epoch whose leader this server synced with
};

struct ZabOptions {
  int64_t self_id = 1;
  std::vector<int64_t> voters;     // every voter's id, self included when self votes
  std::vector<int64_t> observers;  // every observer's id, self included when self observes
  int64_t tick_ms = 200;
  int64_t init_limit = 10;  // ticks a learner may take to connect and sync
  int64_t sync_limit = 5;   // ticks without word from the leader / a follower before giving up
  // How long a looking voter that has a quorum for its vote, but not every voter's word,
  // waits for a better vote before deciding.
  int64_t finalize_wait_ms = 50;
  // Committed records kept in memory beyond the applied state, for DIFF; an older learner
  // gets a SNAP.
  size_t max_history = 20000;
  // The last counter (low 32 bits of a zxid) a leader uses before it moves to a new epoch.
  int64_t max_counter = 0xfffffffeLL;
};

// Where Zab's decisions go. Called from inside Zab's inputs, on the kernel thread.
class ZabOutput {
 public:
  virtual ~ZabOutput() = default;
  virtual void send(int64_t peer, std::string message) = 0;
  // Log: stage a record (false: storage refused it), make staged records durable (reported
  // back through Zab::onDurable), drop every record above zxid (durable on return).
  virtual bool append(int64_t zxid, std::string_view record) = 0;
  virtual void requestSync() = 0;
  virtual bool truncateLog(int64_t zxid) = 0;
  virtual bool saveHardState(const HardState& state) = 0;
  // A committed txn, in zxid order: apply it to the state.
  virtual void commit(int64_t zxid, std::string_view record) = 0;
  // The applied state as a snapshot (for a learner too far behind for a DIFF).
  virtual std::string snapshot() = 0;
  // A learner's state is replaced by a leader's snapshot taken at zxid; the output also
  // makes it this server's durable snapshot and drops its log above zxid.
  virtual bool installSnapshot(int64_t zxid, std::string_view data) = 0;
  // Role or serving status changed. serving: leader established / learner up to date.
  virtual void roleChanged(Role role, int64_t leader, int64_t epoch, bool serving) = 0;
  // The leader may propose again (after a quorum moved to a new epoch).
  virtual void proposalsResumed() = 0;
  // A quorum confirmed this leader after barrier `id` (and every earlier one) was raised.
  virtual void barrierPassed(int64_t /*id*/) {}
  // The server's own messages riding on Zab's links (forwarded requests, session touches,
  // sync): from a learner to its leader or from the leader to a learner.
  virtual void onAppMessage(int64_t peer, std::string_view payload) = 0;
  // What a learner sends with each ping to its leader (e.g. the sessions it saw alive).
  virtual std::string pingPayload() = 0;
  virtual void log(corral_log_level level, const std::string& message) = 0;
};

// What an operator sees (CLI status, srvr/mntr).
struct ZabStatus {
  Role role = Role::kLooking;
  bool serving = false;
  int64_t leader = 0;
  int64_t epoch = 0;
  int64_t accepted_epoch = 0;
  int64_t last_logged = 0;
  int64_t last_committed = 0;
  int64_t last_applied = 0;
  struct Learner {
    int64_t id = 0;
    bool observer = false;
    bool synced = false;
    int64_t acked = 0;  // durable up to (followers)
    int64_t lag = 0;    // proposals the learner has not acked (followers)
  };
  std::vector<Learner> learners;  // leader only
};

class Zab {
 public:
  Zab(ZabOptions options, ZabOutput* out);
  ~Zab();
  Zab(const Zab&) = delete;
  Zab& operator=(const Zab&) = delete;

  // --- recovery, before start() ---
  // The applied state holds every txn up to applied_zxid; the log records above it (in zxid
  // order, all durable) are history that is not known to be committed yet.
  void recover(const HardState& hard_state, int64_t applied_zxid);
  void recoverRecord(int64_t zxid, std::string record);
  // Starts looking for a leader.
  void start(int64_t now_ms);

  // --- inputs ---
  void onPeerUp(int64_t peer, int64_t now_ms);
  void onPeerDown(int64_t peer, int64_t now_ms);
  void onMessage(int64_t peer, std::string_view message, int64_t now_ms);
  // Every record up to zxid is durable in the local log (or the log failed).
  void onDurable(int64_t zxid, bool ok, int64_t now_ms);
  // Called often (every few ms): election timers, pings, failure detection.
  void onTimer(int64_t now_ms);

  // --- the leader's write path ---
  // True when this server leads an established epoch and has zxids left in it.
  bool canPropose() const;
  // The zxid the next proposal gets (valid when canPropose()).
  int64_t nextZxid() const;
  // Proposes one record under nextZxid(): logs it and sends it to the followers.
  // False when not possible (not leading, storage refused it).
  bool propose(int64_t zxid, std::string record);

  // Leader only: asks a quorum to confirm, by a round trip that starts now, that this server
  // still leads; ZabOutput::barrierPassed(id) follows once it has (never, if it loses the
  // lead). Returns the barrier's id; 0 when not leading.
  int64_t raiseBarrier();

  // --- the server's own messages ---
  // Learner -> leader; false when there is no synced leader link.
  bool sendToLeader(std::string payload);
  // Leader -> one learner (or a learner's reply path).
  bool sendToLearner(int64_t peer, std::string payload);

  Role role() const;
  bool serving() const;
  int64_t leader() const;
  int64_t lastCommitted() const;
  int64_t lastApplied() const;
  int64_t lastLogged() const;
  ZabStatus status() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::zab
